"""Retention: raw rows by each project's `retention_days`, rollups by the settings.

In PostgreSQL, daily partitions past every project's retention are dropped whole; everything else
(shorter retentions, SQLite, rollups) is deleted in chunks, each its own short transaction, so no
lock is held for long and the worker keeps storing in between.
"""

import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Delete,
    Table,
    delete,
    func,
    literal,
    literal_column,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from pulseboard.core.settings import Settings
from pulseboard.models import (
    Event,
    EventId,
    EventRollup,
    MetricPoint,
    MetricRollup,
    Project,
    Session,
    SessionRollup,
)
from pulseboard.pipeline.partitions import PARTITIONED, Partitions
from pulseboard.pipeline.rollups import DAY, HOUR, MINUTE

log = logging.getLogger(__name__)

RAW_TABLES: tuple[Table, ...] = (Event.__table__, MetricPoint.__table__)  # type: ignore[assignment]
EVENT_IDS: Table = EventId.__table__  # type: ignore[assignment]
SESSIONS: Table = Session.__table__  # type: ignore[assignment]
ROLLUP_TABLES: tuple[Table, ...] = (  # type: ignore[assignment]
    EventRollup.__table__,
    MetricRollup.__table__,
    SessionRollup.__table__,
)
# The time a row is expired by, where it is not `timestamp` (raw rows) or `bucket` (rollups).
EXPIRY_COLUMNS = {SESSIONS.name: "ended_at"}
# Where the expiry column is not indexed: the indexed column that rows are found and ordered by,
# never later than it (a session that ended before the cutoff started before it).
FOUND_BY = {SESSIONS.name: "started_at"}
# Namespace of the advisory lock that lets one process at a time apply retention.
RETENTION_LOCK = 7_410_002


@dataclass(slots=True)
class RetentionReport:
    partitions_dropped: list[str] = field(default_factory=list)
    deleted: dict[str, int] = field(
        default_factory=lambda: {
            table.name: 0 for table in (*RAW_TABLES, EVENT_IDS, SESSIONS, *ROLLUP_TABLES)
        }
    )

    @property
    def rows_deleted(self) -> int:
        return sum(self.deleted.values())

    def __str__(self) -> str:
        rows = ", ".join(f"{name} {count}" for name, count in self.deleted.items())
        return f"{len(self.partitions_dropped)} partitions dropped; rows deleted: {rows}"


async def apply_retention(
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    partitions: Partitions,
    now: datetime,
    *,
    settings: Settings,
) -> RetentionReport:
    """Delete what is past its retention at `now`; skipped while another process does it."""
    report = RetentionReport()
    async with _exclusive(engine) as acquired:
        if not acquired:
            log.info("retention: another process is applying it; skipped")
            return report
        async with sessions() as session:
            rows = await session.execute(select(Project.id, Project.retention_days))
            retention: dict[uuid.UUID, int] = dict(rows.all())
        chunk = settings.retention_delete_chunk
        await _expire_raw(engine, partitions, retention, now, chunk, report)
        await _expire_rollups(engine, list(retention), now, settings, report)
    log.info("retention: %s", report)
    return report


async def _expire_raw(
    engine: AsyncEngine,
    partitions: Partitions,
    retention: dict[uuid.UUID, int],
    now: datetime,
    chunk: int,
    report: RetentionReport,
) -> None:
    if not retention:
        return
    every_project = dict(retention)
    if partitions.enabled:
        # A partition goes whole once all of it is past the longest retention; only projects
        # keeping less lose rows by deletes. The longest keepers' oldest day so waits for its
        # partition: kept up to a day longer, instead of row deletes every hour for everyone.
        longest = max(retention.values())
        before = (now - timedelta(days=longest)).date()
        for table_name in PARTITIONED:
            report.partitions_dropped += await partitions.drop_before(table_name, before)
        retention = {project: days for project, days in retention.items() if days < longest}
    for project_id, days in retention.items():
        cutoff = now - timedelta(days=days)
        for table in RAW_TABLES:
            report.deleted[table.name] += await _delete_chunked(
                engine, table, project_id, cutoff, chunk
            )
    # After the events: a stored event always has its uuid here (the worker inserts events
    # without a conflict check). Not partitioned, so deleted by chunks for every project.
    # Sessions go with their last event.
    for project_id, days in every_project.items():
        for table in (EVENT_IDS, SESSIONS):
            report.deleted[table.name] += await _delete_chunked(
                engine, table, project_id, now - timedelta(days=days), chunk
            )


async def _expire_rollups(
    engine: AsyncEngine,
    project_ids: list[uuid.UUID],
    now: datetime,
    settings: Settings,
    report: RetentionReport,
) -> None:
    kept_days = {
        MINUTE: settings.retention_minute_rollup_days,
        HOUR: settings.retention_hour_rollup_days,
        DAY: settings.retention_day_rollup_days,
    }
    # Per project, so that each delete is a range of the primary key
    # (project_id, granularity, bucket, ...): no index of its own needed.
    for project_id in project_ids:
        for granularity, days in kept_days.items():
            if days <= 0:  # kept for ever
                continue
            cutoff = now - timedelta(days=days)
            for table in ROLLUP_TABLES:
                report.deleted[table.name] += await _delete_chunked(
                    engine,
                    table,
                    project_id,
                    cutoff,
                    chunk=settings.retention_delete_chunk,
                    granularity=granularity,
                )


async def _delete_chunked(
    engine: AsyncEngine,
    table: Table,
    project_id: uuid.UUID,
    before: datetime,
    chunk: int,
    granularity: int | None = None,
) -> int:
    """Delete the project's rows older than `before`, `chunk` at a time; return how many."""
    statement = _delete_oldest(engine.dialect.name, table, project_id, before, chunk, granularity)
    total = 0
    while True:
        async with engine.begin() as connection:
            deleted = (await connection.execute(statement)).rowcount
        total += deleted
        if deleted < chunk:
            return total


def _delete_oldest(
    dialect: str,
    table: Table,
    project_id: uuid.UUID,
    before: datetime,
    chunk: int,
    granularity: int | None,
) -> Delete:
    """A statement deleting about `chunk` of the oldest rows, found through the primary key."""
    expiry = table.c[
        EXPIRY_COLUMNS.get(table.name, "timestamp" if granularity is None else "bucket")
    ]
    moment = table.c[FOUND_BY.get(table.name, expiry.name)]
    old: list[ColumnElement[bool]] = [table.c.project_id == project_id, expiry < before]
    if moment is not expiry:
        old.append(moment < before)
    if granularity is not None:
        old.append(table.c.granularity == granularity)
    if dialect == "postgresql" and table.name in PARTITIONED:
        # A ctid is unique only inside one partition, and a join on the key over the parent
        # scans every old row of the project per chunk (measured). So delete up to the
        # chunk-th oldest timestamp: one pruned range of the key; ties there go along.
        last = (
            select(moment).where(*old).order_by(moment).offset(chunk - 1).limit(1)
        ).scalar_subquery()
        return delete(table).where(
            *old, moment <= func.coalesce(last, literal(before, moment.type))
        )
    # The physical row id: a nested loop of row lookups, the oldest first by the key's order.
    row_id: ColumnElement[Any] = literal_column("rowid" if dialect == "sqlite" else "ctid")
    oldest = select(row_id).select_from(table).where(*old).order_by(moment).limit(chunk)
    return delete(table).where(row_id.in_(oldest))


@asynccontextmanager
async def _exclusive(engine: AsyncEngine) -> AsyncIterator[bool]:
    """Whether this process may apply retention now (one at a time, when workers are many)."""
    if engine.dialect.name != "postgresql":
        yield True  # a SQLite database belongs to one process
        return
    # A transaction lock, not a session one: a cancelled run can't leave it held in the pool.
    async with engine.connect() as connection, connection.begin():
        acquired = await connection.scalar(
            text("SELECT pg_try_advisory_xact_lock(:space, 0)"), {"space": RETENTION_LOCK}
        )
        yield bool(acquired)
