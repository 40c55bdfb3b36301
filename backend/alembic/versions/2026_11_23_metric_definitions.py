"""metric definitions: a project's named metrics, from events or as formulas of others

Revision ID: 8b4d2e6f1a37
Revises: 6f1c2b7e9a10
Create Date: 2026-11-23 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

import pulseboard.models.base
from alembic import op

revision: str = "8b4d2e6f1a37"
down_revision: str | None = "6f1c2b7e9a10"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTCDateTime = pulseboard.models.base.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "metric_definitions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.String(length=1000), nullable=True),
        sa.Column("event", sa.String(length=200), nullable=True),
        sa.Column("aggregation", sa.String(length=16), nullable=True),
        sa.Column("property", sa.String(length=200), nullable=True),
        sa.Column("filters", sa.JSON(), nullable=False),
        sa.Column("formula", sa.String(length=1000), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_metric_definitions_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_metric_definitions")),
        sa.UniqueConstraint(
            "project_id", "name", name=op.f("uq_metric_definitions_project_id_name")
        ),
    )
    op.create_index(op.f("ix_metric_definitions_project_id"), "metric_definitions", ["project_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_metric_definitions_project_id"), table_name="metric_definitions")
    op.drop_table("metric_definitions")
