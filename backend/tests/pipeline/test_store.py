"""The worker's store step against both engines: idempotent, and rollups equal their raw rows,
whether rolled up in the transaction that stores them, later from the rollup backlog by the
worker that stored them, or by another that recovers them from the raw tables."""

import random
import uuid
from collections import defaultdict
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, text

from pulseboard.models import Event, EventRollup, MetricPoint, MetricRollup
from pulseboard.pipeline import backlog, sketches
from pulseboard.pipeline.messages import METRICS
from pulseboard.pipeline.partitions import Partitions
from pulseboard.pipeline.rollups import DIMENSIONS, all_events
from pulseboard.pipeline.store import store_batches
from tests.factories import read_session
from tests.pipeline.helpers import batch, event_item, metric_item

PROJECT = uuid.UUID("00000000-0000-4000-8000-000000000001")
SOURCE = uuid.UUID("00000000-0000-4000-8000-000000000002")


class Storer:
    """Stores batches as the worker does: rolled up at once ("together"), deferred and rolled up
    by the same worker ("deferred"), or deferred and recovered from the raw rows ("recovered")."""

    def __init__(self, app: FastAPI, mode: str) -> None:
        self.sessions = app.state.pulseboard.sessions
        self.partitions = Partitions(app.state.pulseboard.engine)
        self.mode = mode
        self.deferred: list[backlog.Deferred] = []

    async def store(self, *batches: Any) -> int:
        if self.mode == "together":
            stored = await store_batches(self.sessions, self.partitions, list(batches))
            return stored.event_count
        stored, entry = await backlog.store_deferred(self.sessions, self.partitions, list(batches))
        if entry is not None:
            self.deferred.append(entry)
        return stored.event_count

    async def roll_up(self) -> None:
        if self.mode == "deferred":
            await backlog.roll_up_deferred(self.sessions, self.deferred)
        elif self.mode == "recovered":
            await backlog.recover(self.sessions, datetime.now(UTC))
        self.deferred = []


@pytest.fixture(params=["together", "deferred", "recovered"])
def storer(app: FastAPI, request: pytest.FixtureRequest) -> Storer:
    return Storer(app, request.param)


async def test_storing_the_same_batch_twice_adds_nothing_the_second_time(
    app: FastAPI, storer: Storer
) -> None:
    now = datetime.now(UTC)
    items = [event_item(now, user=f"u{i}") for i in range(10)]
    first = batch(PROJECT, SOURCE, items)
    assert await storer.store(first) == 10
    assert await storer.store(batch(PROJECT, SOURCE, items)) == 0
    assert await storer.store(first, batch(PROJECT, SOURCE, items[:3])) == 0
    await storer.roll_up()

    async with read_session(app) as session:
        assert await session.scalar(select(func.count()).select_from(Event)) == 10
    assert await _rolled_up(app) == {60: 10, 3600: 10, 86400: 10}


async def _rolled_up(app: FastAPI) -> dict[int, int]:
    """The events counted in the totals rollups, per granularity."""
    async with read_session(app) as session:
        counts = (
            await session.execute(
                select(EventRollup.granularity, func.sum(EventRollup.count))
                .where(EventRollup.dimension == "")
                .group_by(EventRollup.granularity)
            )
        ).all()
    return {granularity: int(count) for granularity, count in counts}


async def test_deferred_rows_are_rolled_up_once_by_whoever_takes_their_backlog_row(
    app: FastAPI,
) -> None:
    state = app.state.pulseboard
    partitions = Partitions(state.engine)
    now = datetime.now(UTC)
    entries = []
    for b in range(3):
        items = [event_item(now, user=f"u{b}-{i}") for i in range(10)]
        _, entry = await backlog.store_deferred(
            state.sessions, partitions, [batch(PROJECT, SOURCE, items)]
        )
        assert entry is not None
        entries.append(entry)
    assert await _rolled_up(app) == {}

    # Another worker takes the first entry (to roll it up itself), a recovery the other two;
    # their owner then finds none of the three left.
    async with state.sessions() as session, session.begin():
        taken = await backlog.take(session, entries[:1])
    assert taken.event_count == 10
    await backlog.recover(state.sessions, datetime.now(UTC))  # the two left, read back
    assert (await backlog.roll_up_deferred(state.sessions, entries)).event_count == 0
    assert await _rolled_up(app) == {60: 20, 3600: 20, 86400: 20}
    # ... and nothing is left for anyone.
    assert (await backlog.recover(state.sessions, datetime.now(UTC))).event_count == 0
    assert (await backlog.roll_up_deferred(state.sessions, entries)).event_count == 0
    assert await _rolled_up(app) == {60: 20, 3600: 20, 86400: 20}


def test_backlog_keys_pack_and_unpack() -> None:
    rows = [
        {
            "project_id": uuid.uuid4(),
            "id": uuid.uuid4(),
            "timestamp": datetime(2026, 11, 23, 17, 1, 2, 345678, tzinfo=UTC),
        },
        {"project_id": PROJECT, "id": SOURCE, "timestamp": datetime(1969, 12, 31, tzinfo=UTC)},
    ]
    packed = backlog.pack(rows)
    assert len(packed) == 2 * backlog.KEY_BYTES
    assert backlog.unpack(packed) == [(r["project_id"], r["timestamp"], r["id"]) for r in rows]


@pytest.mark.parametrize("timezone", ["UTC", "America/New_York", "Asia/Kolkata"])
async def test_every_rollup_equals_the_aggregate_of_its_raw_rows(
    app: FastAPI, timezone: str, storer: Storer
) -> None:
    rng = random.Random(7)
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=30)
    items = []
    for _ in range(3000):
        items.append(
            event_item(
                start + timedelta(seconds=rng.randrange(30 * 3600)),
                name=rng.choice(["pageview", "pageview", "signup", "click"]),
                user=f"user-{rng.randrange(400)}",
                session=rng.choice([None, f"session-{rng.randrange(900)}"]),
                path=rng.choice([None, "/", "/pricing", "/docs", "/blog/a"]),
                browser=rng.choice(["Chrome", "Firefox", "Safari"]),
                referrer_domain=rng.choice([None, "google.com", "news.ycombinator.com"]),
                utm_source=rng.choice([None, "newsletter"]),
                device=rng.choice(["desktop", "mobile"]),
                is_bot=rng.random() < 0.05,
            )
        )
    # Several bus messages, in one and in separate transactions.
    batches = [
        batch(PROJECT, SOURCE, items[i : i + 250], timezone=timezone) for i in range(0, 3000, 250)
    ]
    await storer.store(*batches[:6])
    for one in batches[6:]:
        await storer.store(one)
    await storer.roll_up()

    zone = ZoneInfo(timezone)
    expected: dict[tuple[Any, ...], list[Any]] = defaultdict(lambda: [0, set(), set()])
    for item in items:
        if item["is_bot"]:
            continue
        moment = item["timestamp"]
        local_day = datetime.combine(moment.astimezone(zone).date(), time(0), tzinfo=zone)
        starts = {
            60: moment.replace(second=0, microsecond=0),
            3600: moment.replace(minute=0, second=0, microsecond=0),
            86400: local_day.astimezone(UTC),
        }
        values = [("", "")] + [
            (dimension, item[column])
            for dimension, column in DIMENSIONS.items()
            if item[column] is not None
        ]
        for granularity, bucket in starts.items():
            keys = [
                (granularity, bucket, item["event_name"], dimension, value)
                for dimension, value in (values if granularity != 60 else values[:1])
            ]
            # Hours and days also count every event name together, per dimension value.
            if granularity != 60:
                keys += [(granularity, bucket, "", all_events(d), v) for d, v in values[1:]]
            for key in keys:
                entry = expected[key]
                entry[0] += 1
                entry[1].add(item["distinct_id"])
                if item["session_id"]:
                    entry[2].add(item["session_id"])

    async with read_session(app) as session:
        rows = (await session.execute(select(EventRollup))).scalars().all()
    actual = {(r.granularity, r.bucket, r.event_name, r.dimension, r.value): r for r in rows}
    assert set(actual) == set(expected)
    for key, (count, users, sessions) in expected.items():
        row = actual[key]
        assert row.count == count, key
        assert abs(sketches.hll_estimate(row.users) - len(users)) <= max(1, 0.02 * len(users)), key
        assert abs(sketches.hll_estimate(row.sessions) - len(sessions)) <= max(
            1, 0.02 * len(sessions)
        ), key


async def test_metric_rollups_equal_their_raw_points(app: FastAPI, storer: Storer) -> None:
    rng = random.Random(3)
    start = datetime.now(UTC) - timedelta(hours=5)
    items = [
        metric_item(
            start + timedelta(seconds=rng.randrange(5 * 3600)),
            "http.latency",
            rng.lognormvariate(3, 1),
            route=rng.choice(["/a", "/b"]),
        )
        for _ in range(2000)
    ]
    for i in range(0, 2000, 500):
        await storer.store(batch(PROJECT, SOURCE, items[i : i + 500], kind=METRICS))
    await storer.store(batch(PROJECT, SOURCE, items[:500], kind=METRICS))  # redelivered
    await storer.roll_up()

    async with read_session(app) as session:
        assert await session.scalar(select(func.count()).select_from(MetricPoint)) == 2000
        hours = (
            (await session.execute(select(MetricRollup).where(MetricRollup.granularity == 3600)))
            .scalars()
            .all()
        )
    by_key: dict[tuple[Any, ...], list[float]] = defaultdict(list)
    for item in items:
        hour = item["timestamp"].replace(minute=0, second=0, microsecond=0)
        by_key[(hour, f'{{"route":"{item["tags"]["route"]}"}}')].append(item["value"])
    assert len(hours) == len(by_key)
    for row in hours:
        values = by_key[(row.bucket, row.tags)]
        assert row.count == len(values)
        assert row.sum == pytest.approx(sum(values))
        assert (row.min, row.max) == (min(values), max(values))
        median = sorted(values)[len(values) // 2]
        estimate = sketches.quantiles_get(row.quantiles, [0.5])[0]
        rank = sum(v <= estimate for v in values) / len(values)
        # A rank moves in steps of 1/n: an hour at the edge of the data may hold a dozen points.
        assert abs(rank - 0.5) < 0.05 + 1 / len(values), (median, estimate, len(values))


@pytest.mark.parametrize("settings", ["postgresql"], indirect=True)  # TOAST is PostgreSQL's
async def test_a_rollup_row_of_full_sketches_stays_whole_in_its_page(app: FastAPI) -> None:
    """PostgreSQL keeps a row's two ~2 KB sketches in the row, not in the TOAST table, so that
    reading and rewriting them touches one page (migration e2b7c4d9a615)."""
    engine = app.state.pulseboard.engine
    async with engine.connect() as connection:
        toast = await connection.scalar(
            text("SELECT reltoastrelid::regclass::text FROM pg_class WHERE relname = :name"),
            {"name": "event_rollups"},
        )
        chunks = text(f"SELECT count(*) FROM {toast}")
        before = await connection.scalar(chunks)
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    items = [
        event_item(hour + timedelta(seconds=i % 3600), user=f"user-{i}", session=f"session-{i}")
        for i in range(3000)
    ]
    await store_batches(
        app.state.pulseboard.sessions,
        Partitions(engine),
        [batch(PROJECT, SOURCE, items[i : i + 1000]) for i in range(0, 3000, 1000)],
    )

    async with engine.connect() as connection:
        sizes = await connection.scalar(
            select(func.min(func.length(EventRollup.users) + func.length(EventRollup.sessions)))
            .where(EventRollup.granularity == 3600, EventRollup.dimension == "")
            .where(EventRollup.project_id == PROJECT)
        )
        assert sizes > 4000  # full sketches: the row is past PostgreSQL's default 2 KB target
        assert await connection.scalar(chunks) == before
