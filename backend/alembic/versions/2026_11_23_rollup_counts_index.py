"""rollup counts index: count queries read event rollups from an index, not their wide rows

Revision ID: a1d6f4b8c359
Revises: 9c5e3f7a2b48
Create Date: 2026-11-23 11:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "a1d6f4b8c359"
down_revision: str | None = "9c5e3f7a2b48"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_event_rollups_project_id_granularity_dimension_bucket",
        "event_rollups",
        ["project_id", "granularity", "dimension", "bucket"],
        postgresql_include=["event_name", "value", "count"],
    )


def downgrade() -> None:
    op.drop_index(
        "ix_event_rollups_project_id_granularity_dimension_bucket", table_name="event_rollups"
    )
