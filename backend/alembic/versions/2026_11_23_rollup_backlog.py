"""rollup_backlog: raw rows stored whose rollups the worker has deferred

Revision ID: f6a2d9c4b157
Revises: e5b8c1d7f924
Create Date: 2026-11-23 17:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

import pulseboard.models.base
from alembic import op

revision: str = "f6a2d9c4b157"
down_revision: str | None = "e5b8c1d7f924"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTCDateTime = pulseboard.models.base.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "rollup_backlog",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("events", sa.LargeBinary(), nullable=False),
        sa.Column("metrics", sa.LargeBinary(), nullable=False),
        sa.Column("timezones", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rollup_backlog")),
    )


def downgrade() -> None:
    op.drop_table("rollup_backlog")
