"""events name index include: funnels and retention read their columns from the index

Revision ID: c3f8a1e5d702
Revises: b7e2c9d4f160
Create Date: 2026-11-23 12:55:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "c3f8a1e5d702"
down_revision: str | None = "b7e2c9d4f160"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME = "ix_events_project_id_event_name_timestamp"
COLUMNS = ["project_id", "event_name", "timestamp"]


def upgrade() -> None:
    op.drop_index(NAME, table_name="events")
    op.create_index(
        NAME, "events", COLUMNS, postgresql_include=["distinct_id", "path", "is_bot", "id"]
    )


def downgrade() -> None:
    op.drop_index(NAME, table_name="events")
    op.create_index(NAME, "events", COLUMNS)
