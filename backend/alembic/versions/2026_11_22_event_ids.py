"""event ids: a repeated uuid counts once, whatever its timestamp

Existing events are copied in, so that a resend of one of them is recognised too.

Revision ID: 6f1c2b7e9a10
Revises: d3919547f07f
Create Date: 2026-11-22 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

import pulseboard.models.base
from alembic import op

revision: str = "6f1c2b7e9a10"
down_revision: str | None = "d3919547f07f"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "event_ids",
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("timestamp", pulseboard.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("project_id", "id", name=op.f("pk_event_ids")),
    )
    op.create_index("ix_event_ids_project_id_timestamp", "event_ids", ["project_id", "timestamp"])
    # The earliest copy of each uuid is the one that counts.
    op.execute(
        "INSERT INTO event_ids (project_id, id, timestamp) "
        "SELECT project_id, id, MIN(timestamp) FROM events GROUP BY project_id, id"
    )


def downgrade() -> None:
    op.drop_index("ix_event_ids_project_id_timestamp", table_name="event_ids")
    op.drop_table("event_ids")
