"""all-events rollup rows: each dimension value's rows of every event name, merged

The worker now also writes, for each dimension, rows under dimension `*<dimension>` and event
name "" that count every event by the dimension's value. A breakdown over all events reads one
row per value and bucket instead of one per event name. This backfills them for the rows that
exist: hours and days (minute rows have no dimensions), counts summed and sketches merged.

Revision ID: e5b8c1d7f924
Revises: d4a9b2c6e813
Create Date: 2026-11-23 14:45:00
"""

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from alembic import op
from pulseboard.pipeline import sketches

revision: str = "e5b8c1d7f924"
down_revision: str | None = "d4a9b2c6e813"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As the worker wrote them when this migration was made (pipeline.rollups), frozen here: a
# migration must keep meaning what it meant if those names change later.
MINUTE, TOTAL, ALL_EVENTS = 60, "", "*"

ROLLUPS = sa.table(
    "event_rollups",
    sa.column("project_id", sa.Uuid()),
    sa.column("granularity", sa.Integer()),
    sa.column("bucket", sa.DateTime(timezone=True)),
    sa.column("event_name", sa.String()),
    sa.column("dimension", sa.String()),
    sa.column("value", sa.String()),
    sa.column("count", sa.BigInteger()),
    sa.column("users", sa.LargeBinary()),
    sa.column("sessions", sa.LargeBinary()),
)
NAMED = sa.and_(
    ROLLUPS.c.granularity != MINUTE,
    ROLLUPS.c.dimension != TOTAL,
    ROLLUPS.c.dimension.not_like(f"{ALL_EVENTS}%"),
)


def upgrade() -> None:
    bind = op.get_bind()
    buckets = bind.execute(
        sa.select(ROLLUPS.c.project_id, ROLLUPS.c.granularity, ROLLUPS.c.bucket)
        .where(NAMED)
        .distinct()
    ).all()
    # One bucket at a time: its rows are found by the primary key's prefix.
    for project_id, granularity, bucket in buckets:
        rows = bind.execute(
            sa.select(
                ROLLUPS.c.dimension,
                ROLLUPS.c.value,
                ROLLUPS.c.count,
                ROLLUPS.c.users,
                ROLLUPS.c.sessions,
            ).where(
                NAMED,
                ROLLUPS.c.project_id == project_id,
                ROLLUPS.c.granularity == granularity,
                ROLLUPS.c.bucket == bucket,
            )
        )
        groups: dict[tuple[str, str], list[Any]] = defaultdict(lambda: [0, [], []])
        for dimension, value, count, users, sessions in rows:
            group = groups[(dimension, value)]
            group[0] += count
            group[1].append(users)
            group[2].append(sessions)
        if groups:
            bind.execute(
                sa.insert(ROLLUPS),
                [
                    {
                        "project_id": project_id,
                        "granularity": granularity,
                        "bucket": bucket,
                        "event_name": TOTAL,
                        "dimension": ALL_EVENTS + dimension,
                        "value": value,
                        "count": count,
                        "users": sketches.hll_merge(users),
                        "sessions": sketches.hll_merge(sessions),
                    }
                    for (dimension, value), (count, users, sessions) in groups.items()
                ],
            )


def downgrade() -> None:
    op.execute(ROLLUPS.delete().where(ROLLUPS.c.dimension.like(f"{ALL_EVENTS}%")))
