"""rollup values index: `value` joins the key of the rollup counts index, so a breakdown reads
the sketches of its top values without scanning every dimension's rows

Revision ID: b7e2c9d4f160
Revises: a1d6f4b8c359
Create Date: 2026-11-23 12:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "b7e2c9d4f160"
down_revision: str | None = "a1d6f4b8c359"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD = "ix_event_rollups_project_id_granularity_dimension_bucket"
NEW = "ix_event_rollups_project_id_granularity_dimension_bucket_value"


def upgrade() -> None:
    op.create_index(
        NEW,
        "event_rollups",
        ["project_id", "granularity", "dimension", "bucket", "value"],
        postgresql_include=["event_name", "count"],
    )
    op.drop_index(OLD, table_name="event_rollups")


def downgrade() -> None:
    op.create_index(
        OLD,
        "event_rollups",
        ["project_id", "granularity", "dimension", "bucket"],
        postgresql_include=["event_name", "value", "count"],
    )
    op.drop_index(NEW, table_name="event_rollups")
