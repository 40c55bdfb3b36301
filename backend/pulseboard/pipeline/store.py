"""Storing a group of bus batches in one transaction: raw rows first, then what was new in them
rolled up, then the sources' counters."""

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from pulseboard.pipeline import rollups
from pulseboard.pipeline.messages import EVENTS, Batch, canonical_tags
from pulseboard.pipeline.partitions import Partitions
from pulseboard.pipeline.repository import PipelineRepository
from pulseboard.sources.repository import DataSourceRepository


@dataclass(slots=True)
class Stored:
    """What a store added: the new rows per project, for live updates and the caller's counts."""

    events: dict[uuid.UUID, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    metrics: dict[uuid.UUID, list[dict[str, Any]]] = field(
        default_factory=lambda: defaultdict(list)
    )

    @property
    def event_count(self) -> int:
        return sum(len(rows) for rows in self.events.values())

    @property
    def metric_count(self) -> int:
        return sum(len(rows) for rows in self.metrics.values())


@dataclass(slots=True)
class _Group:
    project_id: uuid.UUID
    timezone: str
    rows: list[dict[str, Any]] = field(default_factory=list)


async def store_batches(
    sessions: async_sessionmaker[AsyncSession], partitions: Partitions, batches: list[Batch]
) -> Stored:
    """Make the partitions the rows need (short transactions of their own), then store."""
    await ensure_partitions(partitions, batches)
    async with sessions() as session, session.begin():
        return await store(session, batches)


async def ensure_partitions(partitions: Partitions, batches: list[Batch]) -> None:
    for table, days in partition_days(batches).items():
        await partitions.ensure(table, days)


async def store(session: AsyncSession, batches: list[Batch]) -> Stored:
    """Store the batches' new rows and roll them up, in the caller's transaction."""
    repository = PipelineRepository.for_session(session)
    stored = await store_raw(repository, batches)
    await roll_up(repository, stored)
    return stored


async def store_raw(repository: PipelineRepository, batches: list[Batch]) -> Stored:
    """Store the rows that are new and count them per source; return them."""
    events, metrics = _raw_rows(batches)
    new_events = await _store_new_events(repository, events)
    new_metrics = await _store_new_metrics(repository, metrics)
    await _count_per_source(repository.session, new_events, new_metrics)
    stored = Stored()
    for row in new_events:
        stored.events[row["project_id"]].append(row)
    for row in new_metrics:
        stored.metrics[row["project_id"]].append(row)
    return stored


async def roll_up(repository: PipelineRepository, stored: Stored) -> None:
    """Merge what these new rows add into the rollups (each row needs `_timezone`).

    What the rows add is worked out before the project's rollup lock is taken: only reading the
    stored rows, merging and writing them back wait for other workers.
    """
    new_events = [row for rows in stored.events.values() for row in rows]
    new_metrics = [row for rows in stored.metrics.values() for row in rows]
    events = event_deltas(new_events)
    sessions = grown_sessions(new_events)
    metrics = _metric_deltas(new_metrics)
    await repository.lock_rollups({*stored.events, *stored.metrics})
    await merge_event_deltas(repository, events)
    await merge_sessions(repository, sessions)
    await _merge_metric_deltas(repository, metrics)


def partition_days(batches: list[Batch]) -> dict[str, set[date]]:
    """The UTC days each raw table needs a partition for."""
    days: dict[str, set[date]] = {"events": set(), "metric_points": set()}
    for batch in batches:
        table = days["events" if batch.kind == EVENTS else "metric_points"]
        table.update(item["timestamp"].astimezone(UTC).date() for item in batch.items)
    return days


def _raw_rows(batches: list[Batch]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The batches' items as table rows; an item repeated inside the group is kept once.

    An event is known by its project and uuid alone; a metric point by its timestamp too (its
    id comes from the API, so only a redelivered bus message repeats it).
    """
    events: dict[tuple[Any, ...], dict[str, Any]] = {}
    metrics: dict[tuple[Any, ...], dict[str, Any]] = {}
    for batch in batches:
        for item in batch.items:
            row = {
                **item,
                "project_id": batch.project_id,
                "source_id": batch.source_id,
                "received_at": batch.received_at,
                # Carried beside the row, not stored: the project's day boundaries for rollups.
                "_timezone": batch.timezone,
            }
            if batch.kind == EVENTS:
                events.setdefault((batch.project_id, item["id"]), row)
            else:
                metrics.setdefault((batch.project_id, item["timestamp"], item["id"]), row)
    return list(events.values()), list(metrics.values())


async def _store_new_events(
    repository: PipelineRepository, rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Store the events whose uuid is new to their project (at whatever timestamp); return them."""
    if not rows:
        return []
    keys = [(row["project_id"], row["id"], row["timestamp"]) for row in rows]
    unseen = await repository.claim_event_ids(keys)
    new = [row for row in rows if (row["project_id"], row["id"]) in unseen]
    await repository.insert_events(new)
    return new


async def _store_new_metrics(
    repository: PipelineRepository, rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Store the metric points not stored before; return them."""
    if not rows:
        return []
    new_keys = await repository.insert_metric_points(rows)
    return [row for row in rows if (row["project_id"], row["timestamp"], row["id"]) in new_keys]


def _groups(rows: list[dict[str, Any]]) -> list[_Group]:
    groups: dict[tuple[uuid.UUID, str], _Group] = {}
    for row in rows:
        key = (row["project_id"], row["_timezone"])
        group = groups.get(key)
        if group is None:
            group = groups[key] = _Group(*key)
        group.rows.append(row)
    return list(groups.values())


def event_deltas(rows: list[dict[str, Any]]) -> dict[rollups.EventKey, rollups.EventDelta]:
    """What these new events add to each event rollup row."""
    deltas: dict[rollups.EventKey, rollups.EventDelta] = {}
    for group in _groups(rows):
        deltas.update(rollups.event_deltas(group.project_id, group.timezone, group.rows))
    return deltas


async def merge_event_deltas(
    repository: PipelineRepository, deltas: dict[rollups.EventKey, rollups.EventDelta]
) -> None:
    if not deltas:
        return
    existing = await repository.load_event_rollups(list(deltas))
    merged = {key: rollups.merge_event(delta, existing.get(key)) for key, delta in deltas.items()}
    await repository.save_event_rollups(merged, existing.keys())


GrownSessions = dict[str, dict[rollups.SessionKey, rollups.SessionState]]


def grown_sessions(rows: list[dict[str, Any]]) -> GrownSessions:
    """What these new events make of each session they belong to, per project timezone."""
    grown: GrownSessions = {}
    for group in _groups(rows):
        states = rollups.session_states(group.project_id, group.rows)
        grown.setdefault(group.timezone, {}).update(states)
    return grown


async def merge_sessions(repository: PipelineRepository, grown: GrownSessions) -> None:
    """Merge the grown sessions with what is stored, and move them in the session rollups."""
    keys = [key for states in grown.values() for key in states]
    if not keys:
        return
    before = await repository.load_sessions(keys)
    after: dict[rollups.SessionKey, rollups.SessionState] = {}
    deltas: dict[rollups.SessionRollupKey, rollups.SessionTotals] = {}
    for timezone, states in grown.items():
        now = {k: s.merged(before[k]) if k in before else s for k, s in states.items()}
        after.update(now)
        for key, change in rollups.session_deltas(timezone, before, now).items():
            deltas[key] = deltas.get(key, rollups.SessionTotals()) + change
    existing = await repository.load_session_rollups(list(deltas))
    merged = {k: existing.get(k, rollups.SessionTotals()) + d for k, d in deltas.items()}
    await repository.save_sessions(after, before.keys())
    await repository.save_session_rollups(merged, existing.keys())


def _metric_deltas(rows: list[dict[str, Any]]) -> dict[rollups.MetricKey, rollups.MetricDelta]:
    deltas: dict[rollups.MetricKey, rollups.MetricDelta] = {}
    for group in _groups(rows):
        for row in group.rows:
            row["tags_key"] = canonical_tags(row["tags"])
        deltas.update(rollups.metric_deltas(group.project_id, group.timezone, group.rows))
    return deltas


async def _merge_metric_deltas(
    repository: PipelineRepository, deltas: dict[rollups.MetricKey, rollups.MetricDelta]
) -> None:
    if not deltas:
        return
    existing = await repository.load_metric_rollups(list(deltas))
    merged = {key: rollups.merge_metric(delta, existing.get(key)) for key, delta in deltas.items()}
    await repository.save_metric_rollups(merged, existing.keys())


async def _count_per_source(
    session: AsyncSession, events: list[dict[str, Any]], metrics: list[dict[str, Any]]
) -> None:
    counts: dict[uuid.UUID, list[Any]] = {}
    for index, rows in enumerate((events, metrics)):
        for row in rows:
            entry = counts.setdefault(row["source_id"], [0, 0, row["timestamp"]])
            entry[index] += 1
            entry[2] = max(entry[2], row["timestamp"])
    sources = DataSourceRepository(session)
    for source_id in sorted(counts):
        event_count, metric_count, latest = counts[source_id]
        await sources.record_ingest(source_id, event_count, metric_count, latest)
