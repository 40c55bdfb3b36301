"""sessions: each session's state, and session rollups by the bucket a session started in

Revision ID: 9c5e3f7a2b48
Revises: 8b4d2e6f1a37
Create Date: 2026-11-23 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

import pulseboard.models.base
from alembic import op

revision: str = "9c5e3f7a2b48"
down_revision: str | None = "8b4d2e6f1a37"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTCDateTime = pulseboard.models.base.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "sessions",
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("session_id", sa.String(length=200), nullable=False),
        sa.Column("started_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("events", sa.BigInteger(), nullable=False),
        sa.Column("pageviews", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("project_id", "session_id", name=op.f("pk_sessions")),
    )
    op.create_index(op.f("ix_sessions_project_id_ended_at"), "sessions", ["project_id", "ended_at"])
    op.create_table(
        "session_rollups",
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("granularity", sa.Integer(), nullable=False),
        sa.Column("bucket", UTCDateTime(timezone=True), nullable=False),
        sa.Column("sessions", sa.BigInteger(), nullable=False),
        sa.Column("bounces", sa.BigInteger(), nullable=False),
        sa.Column("duration", sa.Double(), nullable=False),
        sa.Column("events", sa.BigInteger(), nullable=False),
        sa.Column("pageviews", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "project_id", "granularity", "bucket", name=op.f("pk_session_rollups")
        ),
    )


def downgrade() -> None:
    op.drop_table("session_rollups")
    op.drop_index(op.f("ix_sessions_project_id_ended_at"), table_name="sessions")
    op.drop_table("sessions")
