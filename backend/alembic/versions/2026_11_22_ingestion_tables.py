"""ingestion: data sources, raw events and metric points, rollups, daily salts

Each project's write key moves to a default data source. In PostgreSQL the raw tables are
range-partitioned by time; the worker creates the daily partitions it needs.

Revision ID: e3983b0655e6
Revises: d1058526add6
Create Date: 2026-11-22 08:25:45.853774
"""

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

import pulseboard.models.base
from alembic import op

revision: str = "e3983b0655e6"
down_revision: str | None = "d1058526add6"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTCDateTime = pulseboard.models.base.UTCDateTime
JSONVariant = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "daily_salts",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("salt", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_daily_salts")),
    )
    op.create_table(
        "event_rollups",
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("granularity", sa.Integer(), nullable=False),
        sa.Column("bucket", UTCDateTime(timezone=True), nullable=False),
        sa.Column("event_name", sa.String(length=200), nullable=False),
        sa.Column("dimension", sa.String(length=16), nullable=False),
        sa.Column("value", sa.String(length=1000), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("users", sa.LargeBinary(), nullable=False),
        sa.Column("sessions", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint(
            "project_id",
            "granularity",
            "bucket",
            "event_name",
            "dimension",
            "value",
            name=op.f("pk_event_rollups"),
        ),
    )
    op.create_table(
        "events",
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("timestamp", UTCDateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("source_id", sa.Uuid(), nullable=False),
        sa.Column("event_name", sa.String(length=200), nullable=False),
        sa.Column("distinct_id", sa.String(length=200), nullable=False),
        sa.Column("session_id", sa.String(length=200), nullable=True),
        sa.Column("properties", JSONVariant, nullable=False),
        sa.Column("page_url", sa.Text(), nullable=True),
        sa.Column("host", sa.String(length=255), nullable=True),
        sa.Column("path", sa.String(length=1000), nullable=True),
        sa.Column("referrer", sa.Text(), nullable=True),
        sa.Column("referrer_domain", sa.String(length=255), nullable=True),
        sa.Column("utm_source", sa.String(length=200), nullable=True),
        sa.Column("utm_medium", sa.String(length=200), nullable=True),
        sa.Column("utm_campaign", sa.String(length=200), nullable=True),
        sa.Column("utm_term", sa.String(length=200), nullable=True),
        sa.Column("utm_content", sa.String(length=200), nullable=True),
        sa.Column("browser", sa.String(length=64), nullable=True),
        sa.Column("os", sa.String(length=64), nullable=True),
        sa.Column("device", sa.String(length=16), nullable=True),
        sa.Column("is_bot", sa.Boolean(), nullable=False),
        sa.Column("ip_hash", sa.String(length=64), nullable=True),
        sa.Column("received_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("project_id", "timestamp", "id", name=op.f("pk_events")),
        postgresql_partition_by="RANGE (timestamp)",
    )
    op.create_index(
        "ix_events_project_id_event_name_timestamp",
        "events",
        ["project_id", "event_name", "timestamp"],
    )
    op.create_table(
        "metric_points",
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("timestamp", UTCDateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("source_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("tags", JSONVariant, nullable=False),
        sa.Column("value", sa.Double(), nullable=False),
        sa.Column("received_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("project_id", "timestamp", "id", name=op.f("pk_metric_points")),
        postgresql_partition_by="RANGE (timestamp)",
    )
    op.create_index(
        "ix_metric_points_project_id_name_timestamp",
        "metric_points",
        ["project_id", "name", "timestamp"],
    )
    op.create_table(
        "metric_rollups",
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("granularity", sa.Integer(), nullable=False),
        sa.Column("bucket", UTCDateTime(timezone=True), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("tags", sa.String(length=2000), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("sum", sa.Double(), nullable=False),
        sa.Column("min", sa.Double(), nullable=False),
        sa.Column("max", sa.Double(), nullable=False),
        sa.Column("quantiles", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint(
            "project_id", "granularity", "bucket", "name", "tags", name=op.f("pk_metric_rollups")
        ),
    )
    data_sources = op.create_table(
        "data_sources",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "web",
                "server",
                "import",
                name="source_kind",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("write_key_hash", sa.String(length=64), nullable=False),
        sa.Column("write_key_prefix", sa.String(length=16), nullable=False),
        sa.Column("last_event_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("events_count", sa.BigInteger(), nullable=False),
        sa.Column("metrics_count", sa.BigInteger(), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_data_sources_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_sources")),
        sa.UniqueConstraint("write_key_hash", name=op.f("uq_data_sources_write_key_hash")),
    )
    op.create_index(op.f("ix_data_sources_project_id"), "data_sources", ["project_id"])
    assert data_sources is not None

    # Every existing project keeps its key, now as its default source's.
    projects = sa.table(
        "projects",
        sa.column("id", sa.Uuid()),
        sa.column("write_key_hash", sa.String()),
        sa.column("write_key_prefix", sa.String()),
    )
    now = datetime.now(UTC)
    rows = op.get_bind().execute(sa.select(projects)).all()
    if rows:
        op.bulk_insert(
            data_sources,
            [
                {
                    "id": uuid.uuid4(),
                    "project_id": row.id,
                    "name": "Default",
                    "kind": "web",
                    "is_default": True,
                    "enabled": True,
                    "write_key_hash": row.write_key_hash,
                    "write_key_prefix": row.write_key_prefix,
                    "events_count": 0,
                    "metrics_count": 0,
                    "created_at": now,
                    "updated_at": now,
                }
                for row in rows
            ],
        )
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_projects_write_key_hash"), type_="unique")
        batch_op.drop_column("write_key_hash")
        batch_op.drop_column("write_key_prefix")


def downgrade() -> None:
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.add_column(sa.Column("write_key_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("write_key_prefix", sa.String(length=16), nullable=True))
    op.execute(
        "UPDATE projects SET (write_key_hash, write_key_prefix) = "
        "(SELECT write_key_hash, write_key_prefix FROM data_sources "
        "WHERE data_sources.project_id = projects.id AND data_sources.is_default)"
    )
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.alter_column("write_key_hash", nullable=False)
        batch_op.alter_column("write_key_prefix", nullable=False)
        batch_op.create_unique_constraint(
            batch_op.f("uq_projects_write_key_hash"), ["write_key_hash"]
        )
    op.drop_index(op.f("ix_data_sources_project_id"), table_name="data_sources")
    op.drop_table("data_sources")
    op.drop_table("metric_rollups")
    op.drop_index("ix_metric_points_project_id_name_timestamp", table_name="metric_points")
    op.drop_table("metric_points")
    op.drop_index("ix_events_project_id_event_name_timestamp", table_name="events")
    op.drop_table("events")
    op.drop_table("event_rollups")
    op.drop_table("daily_salts")
