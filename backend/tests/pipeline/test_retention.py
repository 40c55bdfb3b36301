"""Retention on both engines: raw rows by each project's retention, rollups by the settings."""

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, text

from pulseboard.core.settings import Settings
from pulseboard.models import Event, EventId, EventRollup, MetricPoint, MetricRollup
from pulseboard.pipeline import maintenance
from pulseboard.pipeline.messages import METRICS
from pulseboard.pipeline.partitions import Partitions, partition_name
from pulseboard.pipeline.retention import RetentionReport, apply_retention
from pulseboard.pipeline.rollups import DAY, HOUR, MINUTE
from pulseboard.pipeline.store import store_batches
from tests.factories import Actor, create_actor, create_project, read_session
from tests.pipeline.helpers import batch, event_item, metric_item

SOURCE = uuid.UUID("00000000-0000-4000-8000-000000000031")
NOW = datetime.now(UTC)


def _ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


async def _project(client: httpx.AsyncClient, actor: Actor, retention_days: int) -> uuid.UUID:
    project = await create_project(client, actor, retention_days=retention_days)
    return uuid.UUID(project["id"])


async def _store(app: FastAPI, project_id: uuid.UUID, moments: list[datetime]) -> None:
    """One event and one metric point at each moment."""
    state = app.state.pulseboard
    events = [event_item(moment, user=f"u{i}") for i, moment in enumerate(moments)]
    metrics = [metric_item(moment, "latency", 1.0) for moment in moments]
    await store_batches(
        state.sessions,
        Partitions(state.engine),
        [batch(project_id, SOURCE, events), batch(project_id, SOURCE, metrics, kind=METRICS)],
    )


async def _retain(app: FastAPI, **overrides: Any) -> RetentionReport:
    state = app.state.pulseboard
    settings: Settings = state.settings.model_copy(update=overrides)
    partitions = Partitions(state.engine)
    return await apply_retention(state.engine, state.sessions, partitions, NOW, settings=settings)


async def _raw_moments(app: FastAPI, project_id: uuid.UUID) -> dict[str, list[datetime]]:
    async with read_session(app) as session:
        return {
            model.__tablename__: list(
                await session.scalars(
                    select(model.timestamp)
                    .where(model.project_id == project_id)
                    .order_by(model.timestamp)
                )
            )
            for model in (Event, EventId, MetricPoint)
        }


async def _rollup_counts(app: FastAPI) -> dict[tuple[str, int], int]:
    counts: dict[tuple[str, int], int] = {}
    async with read_session(app) as session:
        for model in (EventRollup, MetricRollup):
            rows = await session.execute(
                select(model.granularity, func.count()).group_by(model.granularity)
            )
            counts.update({(model.__tablename__, g): n for g, n in rows})
    return counts


async def _partitions(app: FastAPI) -> set[str]:
    async with app.state.pulseboard.engine.connect() as connection:
        rows = await connection.execute(
            text(
                "SELECT child.relname FROM pg_inherits "
                "JOIN pg_class child ON child.oid = pg_inherits.inhrelid "
                "WHERE child.relkind = 'r'"  # tables, not the partitions of their indexes
            )
        )
        return {name for (name,) in rows}


@pytest.fixture(autouse=True)
async def _drop_new_partitions(app: FastAPI) -> AsyncIterator[None]:
    """Old days' partitions made here would outlive the test (the migrations test sees them)."""
    engine = app.state.pulseboard.engine
    if engine.dialect.name != "postgresql":
        yield
        return
    before = await _partitions(app)
    yield
    async with engine.begin() as connection:
        for name in sorted(await _partitions(app) - before):
            await connection.execute(text(f'DROP TABLE "{name}"'))


async def test_each_project_keeps_raw_rows_for_its_own_retention(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    actor = await create_actor(client)
    short = await _project(client, actor, retention_days=30)
    long = await _project(client, actor, retention_days=90)
    await _store(app, short, [_ago(100), _ago(45), _ago(20), _ago(1)])
    await _store(app, long, [_ago(100), _ago(60), _ago(45), _ago(20), _ago(1)])

    report = await _retain(app)

    # The uuids of stored events go with them (and only with them).
    assert report.deleted["event_ids"] == 3
    for table in ("events", "event_ids", "metric_points"):
        assert (await _raw_moments(app, short))[table] == [_ago(20), _ago(1)]
        assert (await _raw_moments(app, long))[table] == [_ago(60), _ago(45), _ago(20), _ago(1)]
    postgres = app.state.pulseboard.engine.dialect.name == "postgresql"
    if postgres:
        # The day 100 days back is past every project's retention: its partitions went whole,
        # and only the 30-day project's 45-day-old rows were deleted one by one.
        old = {partition_name(table, _ago(100).date()) for table in ("events", "metric_points")}
        assert old <= set(report.partitions_dropped)
        remaining = await _partitions(app)
        assert not old & remaining
        assert partition_name("events", _ago(45).date()) in remaining
        assert report.deleted["events"] == report.deleted["metric_points"] == 1
    else:
        assert report.partitions_dropped == []
        assert report.deleted["events"] == report.deleted["metric_points"] == 3

    again = await _retain(app)
    assert again.rows_deleted == 0
    assert again.partitions_dropped == []


async def test_minute_rollups_go_after_their_retention_and_coarser_ones_stay(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    actor = await create_actor(client)
    project = await _project(client, actor, retention_days=90)
    await _store(app, project, [_ago(20), _ago(2)])
    before = await _rollup_counts(app)

    report = await _retain(app)

    after = await _rollup_counts(app)
    for table in ("event_rollups", "metric_rollups"):
        # The 20-day-old minute buckets are gone, the 2-day-old ones stay; hours and days stay.
        assert 0 < after[table, MINUTE] < before[table, MINUTE]
        assert report.deleted[table] == before[table, MINUTE] - after[table, MINUTE]
        assert after[table, HOUR] == before[table, HOUR]
        assert after[table, DAY] == before[table, DAY]
    assert (await _raw_moments(app, project))["events"] == [_ago(20), _ago(2)]
    assert (await _retain(app)).rows_deleted == 0

    # A day setting above 0 applies to daily rollups too; the minute ones left are newer.
    await _retain(app, retention_hour_rollup_days=10, retention_day_rollup_days=10)
    shorter = await _rollup_counts(app)
    for table in ("event_rollups", "metric_rollups"):
        assert shorter[table, MINUTE] == after[table, MINUTE]
        assert 0 < shorter[table, HOUR] < after[table, HOUR]
        assert 0 < shorter[table, DAY] < after[table, DAY]


@pytest.mark.parametrize("chunk", [7, 5000])
async def test_deleting_in_small_chunks_gives_the_same_result(
    app: FastAPI, client: httpx.AsyncClient, chunk: int
) -> None:
    actor = await create_actor(client)
    short = await _project(client, actor, retention_days=30)
    await _project(client, actor, retention_days=90)
    # 40 old rows over ten days (in partitions that stay), a minute apart, and 5 to keep.
    old = [_ago(31 + i % 10) - timedelta(minutes=i) for i in range(40)]
    kept = [_ago(days) for days in range(5, 0, -1)]
    await _store(app, short, old + kept)
    before = await _rollup_counts(app)

    report = await _retain(app, retention_delete_chunk=chunk)

    assert (await _raw_moments(app, short)) == {
        "events": kept,
        "event_ids": kept,
        "metric_points": kept,
    }
    assert report.deleted["events"] == report.deleted["metric_points"] == 40
    assert report.deleted["event_ids"] == 40
    after = await _rollup_counts(app)
    for table in ("event_rollups", "metric_rollups"):
        # Each old row had a minute bucket of its own; the kept ones are younger than 14 days.
        assert report.deleted[table] == before[table, MINUTE] - after[table, MINUTE]
    assert after["metric_rollups", MINUTE] == len(kept)
    assert (await _retain(app, retention_delete_chunk=chunk)).rows_deleted == 0


async def test_maintenance_applies_retention_at_most_hourly(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    rounds = iter(start + timedelta(minutes=minute) for minute in range(1, 130))
    clock = {"now": start}
    runs: list[datetime] = []

    def utcnow() -> datetime:
        return clock["now"]

    async def apply(*args: Any, settings: Settings) -> RetentionReport:
        runs.append(args[3])
        return RetentionReport()

    async def stopping() -> bool:
        moment = next(rounds, None)
        if moment is None:
            return True
        clock["now"] = moment
        return False

    monkeypatch.setattr(maintenance, "utcnow", utcnow)
    monkeypatch.setattr(maintenance, "apply_retention", apply)
    state = app.state.pulseboard
    await maintenance.maintain(Partitions(state.engine), state.bus, stopping, state.settings)

    # Not in the first round after a start, then once an hour.
    assert runs == [start + timedelta(minutes=minute) for minute in (1, 61, 121)]
