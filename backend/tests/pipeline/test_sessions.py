"""Sessions grow across batches and move between rollup buckets; each is counted once."""

import random
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import FastAPI
from sqlalchemy import delete, select

from pulseboard.models import Session, SessionRollup
from pulseboard.pipeline.partitions import Partitions
from pulseboard.pipeline.repository import PipelineRepository
from pulseboard.pipeline.rollups import DAY, HOUR, MINUTE, SessionState
from pulseboard.pipeline.store import store_batches
from tests.factories import read_session
from tests.pipeline.helpers import batch, event_item

PROJECT = uuid.UUID("00000000-0000-4000-8000-000000000011")
SOURCE = uuid.UUID("00000000-0000-4000-8000-000000000012")


async def _store(app: FastAPI, items: list[dict[str, Any]]) -> None:
    state = app.state.pulseboard
    await store_batches(state.sessions, Partitions(state.engine), [batch(PROJECT, SOURCE, items)])


async def _rollups(app: FastAPI, granularity: int) -> dict[datetime, tuple[Any, ...]]:
    async with read_session(app) as session:
        rows = await session.execute(
            select(SessionRollup).where(
                SessionRollup.project_id == PROJECT, SessionRollup.granularity == granularity
            )
        )
        return {
            r.bucket: (r.sessions, r.bounces, r.duration, r.events, r.pageviews)
            for r in rows.scalars()
            if r.sessions or r.events
        }


def _hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


async def test_a_session_that_grows_moves_from_bucket_to_bucket(app: FastAPI) -> None:
    start = _hour(datetime.now(UTC) - timedelta(hours=3)) + timedelta(minutes=30)
    await _store(app, [event_item(start, session="s1")])
    assert await _rollups(app, HOUR) == {_hour(start): (1, 1, 0.0, 1, 1)}

    # Later events lengthen it: no longer a bounce, 10 minutes long, same bucket.
    later = [event_item(start + timedelta(minutes=10), session="s1", name="click")]
    await _store(app, later)
    assert await _rollups(app, HOUR) == {_hour(start): (1, 0, 600.0, 2, 1)}

    # An event that arrives late but happened earlier moves the session's start back an hour.
    early = start - timedelta(minutes=45)
    await _store(app, [event_item(early, session="s1")])
    assert await _rollups(app, HOUR) == {_hour(early): (1, 0, 3300.0, 3, 2)}
    assert await _rollups(app, MINUTE) == {
        early.replace(second=0, microsecond=0): (1, 0, 3300.0, 3, 2)
    }

    # Redelivered events are not new: nothing changes.
    state = app.state.pulseboard
    same = batch(PROJECT, SOURCE, later)
    await store_batches(state.sessions, Partitions(state.engine), [same])
    assert await _rollups(app, HOUR) == {_hour(early): (1, 0, 3300.0, 3, 2)}

    # Bots and events without a session have no session.
    await _store(
        app, [event_item(start, session="s2", is_bot=True), event_item(start, session=None)]
    )
    async with state.sessions() as session:
        stored = (await session.execute(select(Session.session_id))).scalars().all()
    assert stored == ["s1"]


async def test_session_rollups_equal_the_sessions_of_their_raw_events(app: FastAPI) -> None:
    rng = random.Random(3)
    base = _hour(datetime.now(UTC) - timedelta(hours=30))
    items = [
        event_item(
            base + timedelta(seconds=rng.randrange(30 * 3600)),
            session=f"s{rng.randrange(60)}",
            name=rng.choice(["pageview", "click"]),
        )
        for _ in range(600)
    ]
    # In several batches, out of order.
    for offset in range(0, len(items), 75):
        await _store(app, items[offset : offset + 75])
    by_session: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item in items:
        by_session[item["session_id"]].append(item)
    expected: dict[datetime, list[float]] = defaultdict(lambda: [0, 0, 0.0, 0, 0])
    for events in by_session.values():
        first = min(e["timestamp"] for e in events)
        last = max(e["timestamp"] for e in events)
        day = first.replace(hour=0, minute=0, second=0, microsecond=0)
        totals = expected[day]
        totals[0] += 1
        totals[1] += len(events) == 1
        totals[2] += (last - first).total_seconds()
        totals[3] += len(events)
        totals[4] += sum(e["event_name"] == "pageview" for e in events)
    found = await _rollups(app, DAY)
    assert set(found) == set(expected)
    for day, totals in expected.items():
        sessions, bounces, duration, events, pageviews = found[day]
        assert (sessions, bounces, events, pageviews) == (
            totals[0],
            totals[1],
            totals[3],
            totals[4],
        )
        assert abs(duration - totals[2]) < 1e-6


async def test_a_session_read_as_stored_but_deleted_before_its_write_is_written_again(
    app: FastAPI,
) -> None:
    # Rows read under the rollup lock are updated in place, the others inserted; a row that
    # retention deletes between the two is inserted with its merged values, not lost.
    now = datetime.now(UTC).replace(microsecond=0)
    kept = SessionState(now, now + timedelta(seconds=5), 2, 1)
    gone = SessionState(now, now + timedelta(seconds=9), 3, 2)
    new = SessionState(now, now, 1, 1)
    async with app.state.pulseboard.sessions.begin() as session:
        repository = PipelineRepository.for_session(session)
        await repository.save_sessions(
            {(PROJECT, "kept"): kept, (PROJECT, "gone"): gone}, stored=set()
        )
    async with app.state.pulseboard.sessions.begin() as session:
        await session.execute(delete(Session).where(Session.session_id == "gone"))
    grown = {
        (PROJECT, "kept"): SessionState(now, now + timedelta(seconds=30), 4, 2),
        (PROJECT, "gone"): SessionState(now, now + timedelta(seconds=40), 5, 3),
        (PROJECT, "new"): new,
    }
    async with app.state.pulseboard.sessions.begin() as session:
        repository = PipelineRepository.for_session(session)
        await repository.save_sessions(grown, stored={(PROJECT, "kept"), (PROJECT, "gone")})
    async with read_session(app) as session:
        rows = (await session.execute(select(Session))).scalars().all()
        stored = {
            (r.project_id, r.session_id): SessionState(
                r.started_at, r.ended_at, r.events, r.pageviews
            )
            for r in rows
        }
    assert stored == grown
