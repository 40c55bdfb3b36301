"""The rollup backlog: raw rows committed whose rollups a worker deferred, kept so none is lost.

A worker that defers writes, in the transaction that stores the raw rows, one backlog row with
their keys. Rolling them up later deletes that backlog row in the rollup transaction and goes on
only with the rows whose backlog row it did delete. Whoever deletes a backlog row rolls its rows
up, once: the worker that still holds them in memory, or after a crash whoever recovers them
from the raw tables. In PostgreSQL a second deleter waits for the first to commit and then finds
nothing; SQLite has one writer at a time.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Table, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from pulseboard.models import RollupBacklog
from pulseboard.pipeline.messages import Batch
from pulseboard.pipeline.partitions import Partitions
from pulseboard.pipeline.repository import (
    EVENTS,
    METRIC_POINTS,
    RAW_KEY,
    PipelineRepository,
    RawKey,
)
from pulseboard.pipeline.store import Stored, ensure_partitions, roll_up, store_raw

BACKLOG: Table = RollupBacklog.__table__  # type: ignore[assignment]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
KEY_BYTES = 40  # project uuid, row uuid, microseconds since the epoch
# What rolling up reads of a raw row, beside its key.
EVENT_COLUMNS = (
    "event_name",
    "distinct_id",
    "session_id",
    "is_bot",
    "path",
    "referrer_domain",
    "utm_source",
    "browser",
    "os",
    "device",
)
METRIC_COLUMNS = ("name", "tags", "value")
EVENT_FIELDS = ("project_id", "timestamp", "id", "_timezone", *EVENT_COLUMNS)
METRIC_FIELDS = ("project_id", "timestamp", "id", "_timezone", *METRIC_COLUMNS)
# Backlog rows recovered per transaction.
RECOVER_ROWS = 10


@dataclass(slots=True)
class Deferred:
    """Rows stored by one transaction and not yet rolled up, with their backlog row's id. Kept
    as tuples of what rollups read (EVENT_FIELDS, METRIC_FIELDS): a third of a dict's memory
    (152 bytes against 464 for 14 fields), and a row's properties may be kilobytes."""

    id: uuid.UUID
    events: list[tuple[Any, ...]]
    metrics: list[tuple[Any, ...]]
    # The (project, minute) cells its rows fall in: what the rollup rows they make grow with
    # (live traffic fills a few, an import of old data up to one per row).
    minutes: frozenset[tuple[uuid.UUID, int]] = field(init=False)

    def __post_init__(self) -> None:
        self.minutes = frozenset(
            (row[0], int(row[1].timestamp()) // 60)
            for rows in (self.events, self.metrics)
            for row in rows
        )

    @property
    def event_count(self) -> int:
        return len(self.events)


async def store_deferred(
    sessions: async_sessionmaker[AsyncSession], partitions: Partitions, batches: list[Batch]
) -> tuple[Stored, Deferred | None]:
    """Store the batches' new rows raw, and record them in the backlog. Returns the new rows,
    and what to roll up later (None if no row was new)."""
    await ensure_partitions(partitions, batches)
    async with sessions() as session, session.begin():
        stored = await store_raw(PipelineRepository.for_session(session), batches)
        events = [row for rows in stored.events.values() for row in rows]
        metrics = [row for rows in stored.metrics.values() for row in rows]
        if not events and not metrics:
            return stored, None
        backlog_id = await add(session, events, metrics)
    return stored, Deferred(
        backlog_id,
        [tuple(row[name] for name in EVENT_FIELDS) for row in events],
        [tuple(row[name] for name in METRIC_FIELDS) for row in metrics],
    )


async def roll_up_deferred(
    sessions: async_sessionmaker[AsyncSession], deferred: Sequence[Deferred]
) -> Stored:
    """Roll up, in one transaction, the rows of these backlog entries that nobody else took."""
    async with sessions() as session, session.begin():
        stored = await take(session, deferred)
        await roll_up(PipelineRepository.for_session(session), stored)
    return stored


async def recover(sessions: async_sessionmaker[AsyncSession], before: datetime) -> Stored:
    """Roll up the rows of backlog entries made before `before`, read back from the raw tables:
    what a worker that stopped or crashed had deferred. Returns what it rolled up."""
    recovered = Stored()
    while True:
        async with sessions() as session, session.begin():
            repository = PipelineRepository.for_session(session)
            stored, more = await take_older(repository, before)
            await roll_up(repository, stored)
        for project_id, events in stored.events.items():
            recovered.events[project_id].extend(events)
        for project_id, metrics in stored.metrics.items():
            recovered.metrics[project_id].extend(metrics)
        if not more:
            return recovered


def pack(rows: Sequence[dict[str, Any]]) -> bytes:
    """The rows' (project, timestamp, id) keys, 40 bytes each."""
    parts: list[bytes] = []
    for row in rows:
        micros = (row["timestamp"] - EPOCH) // timedelta(microseconds=1)
        parts += (row["project_id"].bytes, row["id"].bytes, micros.to_bytes(8, "big", signed=True))
    return b"".join(parts)


def unpack(packed: bytes) -> list[RawKey]:
    keys: list[RawKey] = []
    for start in range(0, len(packed), KEY_BYTES):
        chunk = packed[start : start + KEY_BYTES]
        micros = int.from_bytes(chunk[32:], "big", signed=True)
        keys.append(
            (
                uuid.UUID(bytes=chunk[:16]),
                EPOCH + timedelta(microseconds=micros),
                uuid.UUID(bytes=chunk[16:32]),
            )
        )
    return keys


async def add(
    session: AsyncSession, events: Sequence[dict[str, Any]], metrics: Sequence[dict[str, Any]]
) -> uuid.UUID:
    """Record the stored rows as not rolled up yet (in the transaction that stored them)."""
    backlog_id = uuid.uuid4()
    await session.execute(
        insert(BACKLOG).values(
            id=backlog_id,
            created_at=datetime.now(UTC),
            events=pack(events),
            metrics=pack(metrics),
            timezones={str(row["project_id"]): row["_timezone"] for row in (*events, *metrics)},
        )
    )
    return backlog_id


async def take(session: AsyncSession, deferred: Sequence[Deferred]) -> Stored:
    """Delete these backlog rows; what is left to roll up is the rows of those this deleted."""
    ids = [entry.id for entry in deferred]
    statement = delete(BACKLOG).where(BACKLOG.c.id.in_(ids)).returning(BACKLOG.c.id)
    taken = set((await session.execute(statement)).scalars())
    rows = Stored()
    for entry in deferred:
        if entry.id in taken:
            for values in entry.events:
                event = dict(zip(EVENT_FIELDS, values, strict=True))
                rows.events[event["project_id"]].append(event)
            for values in entry.metrics:
                point = dict(zip(METRIC_FIELDS, values, strict=True))
                rows.metrics[point["project_id"]].append(point)
    return rows


async def take_older(repository: PipelineRepository, before: datetime) -> tuple[Stored, bool]:
    """Delete up to RECOVER_ROWS backlog rows made before `before` and read their rows back;
    also say whether there may be more."""
    oldest = (
        select(BACKLOG.c.id)
        .where(BACKLOG.c.created_at < before)
        .order_by(BACKLOG.c.created_at)
        .limit(RECOVER_ROWS)
        .with_for_update(skip_locked=True)
    )
    statement = (
        delete(BACKLOG)
        .where(BACKLOG.c.id.in_(oldest.scalar_subquery()))
        .returning(BACKLOG.c.events, BACKLOG.c.metrics, BACKLOG.c.timezones)
    )
    taken = (await repository.session.execute(statement)).all()
    rows = Stored()
    event_keys = [key for packed, _, _ in taken for key in unpack(packed)]
    metric_keys = [key for _, packed, _ in taken for key in unpack(packed)]
    zones = {uuid.UUID(p): zone for *_, named in taken for p, zone in named.items()}
    more = len(taken) == RECOVER_ROWS
    if event_keys:
        found = await repository.load_rollups(EVENTS, RAW_KEY, EVENT_COLUMNS, event_keys)
        for key, values in found.items():
            rows.events[key[0]].append(_row(key, EVENT_COLUMNS, values, zones))
    if metric_keys:
        found = await repository.load_rollups(METRIC_POINTS, RAW_KEY, METRIC_COLUMNS, metric_keys)
        for key, values in found.items():
            row = _row(key, METRIC_COLUMNS, values, zones)
            if isinstance(row["tags"], str | bytes):  # asyncpg returns jsonb as its text
                row["tags"] = orjson.loads(row["tags"])
            rows.metrics[key[0]].append(row)
    return rows, more


def _row(
    key: tuple[Any, ...], columns: Sequence[str], values: Sequence[Any], zones: dict[Any, str]
) -> dict[str, Any]:
    project_id, timestamp, row_id = key
    return {
        "project_id": project_id,
        "timestamp": timestamp,
        "id": row_id,
        "_timezone": zones.get(project_id, "UTC"),
        **dict(zip(columns, values, strict=True)),
    }
