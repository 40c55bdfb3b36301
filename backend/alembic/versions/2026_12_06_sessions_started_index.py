"""sessions: index the start of a session, not its end, so that a session can grow in place

The worker rewrites a session's row each time the session gets events, and its end moves every
time. While `ended_at` was indexed, every such update added entries to both indexes and left a
dead row behind (PostgreSQL can update a row in place, a HOT update, only when no indexed column
changes). The start moves only when an event arrives older than the session's first, so updates
are now in place. Retention, which deletes sessions that ended before the cutoff, finds them
through the start: a session that ended before the cutoff started before it too.

Revision ID: b8d4f2a6c913
Revises: a7c3e9f1d284
Create Date: 2026-12-06 06:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "b8d4f2a6c913"
down_revision: str | None = "a7c3e9f1d284"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index(op.f("ix_sessions_project_id_ended_at"), table_name="sessions")
    op.create_index(
        op.f("ix_sessions_project_id_started_at"), "sessions", ["project_id", "started_at"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_sessions_project_id_started_at"), table_name="sessions")
    op.create_index(op.f("ix_sessions_project_id_ended_at"), "sessions", ["project_id", "ended_at"])
