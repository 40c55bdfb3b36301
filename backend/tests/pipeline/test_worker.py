"""The worker loop with its real buses: ack only after commit, claim what a dead worker left."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy import func, select

from pulseboard.core.bus import BusUnavailable, InProcessBus
from pulseboard.core.redis_bus import RedisStreamBus
from pulseboard.models import Event, EventRollup
from pulseboard.pipeline import worker as worker_module
from pulseboard.pipeline.messages import decode
from pulseboard.pipeline.partitions import Partitions
from pulseboard.pipeline.store import store_batches
from pulseboard.pipeline.worker import Worker
from tests.pipeline.helpers import event_item, message

PROJECT = uuid.UUID("00000000-0000-4000-8000-000000000011")
SOURCE = uuid.UUID("00000000-0000-4000-8000-000000000012")


@pytest.fixture
async def redis_bus(redis_url: str) -> AsyncIterator[RedisStreamBus]:
    redis = Redis.from_url(redis_url)
    stream = f"test:ingest:{uuid.uuid4().hex}"
    bus = RedisStreamBus(redis, stream=stream)
    try:
        yield bus
    finally:
        await redis.delete(stream, f"{stream}:dead")
        await redis.aclose()


def _worker(app: FastAPI, bus: object, name: str, **options: int) -> Worker:
    state = app.state.pulseboard
    return Worker(
        bus,  # type: ignore[arg-type]
        state.sessions,
        name=name,
        partitions=Partitions(state.engine),
        **{"block_ms": 100, **options},
    )


async def _counts(app: FastAPI) -> tuple[int, int]:
    async with app.state.pulseboard.sessions() as session:
        raw = await session.scalar(select(func.count()).select_from(Event))
        rolled = await session.scalar(
            select(func.sum(EventRollup.count)).where(
                EventRollup.granularity == 60, EventRollup.dimension == ""
            )
        )
    return raw or 0, int(rolled or 0)


def _payloads(batches: int, size: int) -> list[bytes]:
    now = datetime.now(UTC)
    return [
        message(PROJECT, SOURCE, [event_item(now, user=f"u{b}-{i}") for i in range(size)])
        for b in range(batches)
    ]


async def test_a_worker_killed_between_commit_and_ack_loses_and_doubles_nothing(
    app: FastAPI, redis_bus: RedisStreamBus
) -> None:
    for payload in _payloads(4, 25):
        await redis_bus.publish(payload)

    # Worker A reads and commits, then dies before its XACK: the entries stay pending.
    state = app.state.pulseboard
    taken = await redis_bus.read("worker-a", 10, 100)
    assert len(taken) == 4
    await store_batches(
        state.sessions, Partitions(state.engine), [decode(d.payload) for d in taken]
    )
    assert await _counts(app) == (100, 100)
    assert (await redis_bus.backlog())[1] == 4

    # Worker B claims them once they have been idle long enough, stores (nothing new), acks.
    worker_b = _worker(app, redis_bus, "worker-b", claim_idle_ms=50)
    await asyncio.sleep(0.1)
    assert await worker_b.step() == 4
    assert await _counts(app) == (100, 100)
    assert (await redis_bus.backlog())[1] == 0
    assert await worker_b.step() == 0


async def test_a_worker_killed_before_commit_leaves_its_batches_to_another(
    app: FastAPI, redis_bus: RedisStreamBus
) -> None:
    for payload in _payloads(3, 10):
        await redis_bus.publish(payload)
    assert len(await redis_bus.read("worker-a", 10, 100)) == 3  # and then it died
    assert await _counts(app) == (0, 0)

    worker_b = _worker(app, redis_bus, "worker-b", claim_idle_ms=50)
    await asyncio.sleep(0.1)
    assert await worker_b.step() == 3
    assert await _counts(app) == (30, 30)


async def test_the_worker_runs_until_stopped_and_acks_everything(
    app: FastAPI, redis_bus: RedisStreamBus
) -> None:
    worker = _worker(app, redis_bus, "worker-a", batch_size=3)
    task = asyncio.create_task(worker.run())
    for payload in _payloads(10, 7):
        await redis_bus.publish(payload)
    for _ in range(100):
        if (await _counts(app))[0] == 70:
            break
        await asyncio.sleep(0.05)
    worker.stop()
    await asyncio.wait_for(task, 5)
    assert await _counts(app) == (70, 70)
    assert (await redis_bus.backlog())[1] == 0  # nothing left unacknowledged
    assert worker.stats.batches == 10


async def test_a_backlog_is_read_on_until_a_transaction_holds_batch_events(
    app: FastAPI, redis_bus: RedisStreamBus
) -> None:
    for payload in _payloads(9, 5):
        await redis_bus.publish(payload)
    worker = _worker(app, redis_bus, "worker-a", batch_size=2, batch_events=25)
    # Reads of 2 batches (10 events) until 25 are held: three reads, one transaction.
    assert await worker.step() == 6
    assert await _counts(app) == (30, 30)
    # The rest: a full read, then a short one, which shows that the bus has no more.
    assert await worker.step() == 3
    assert await _counts(app) == (45, 45)
    assert await worker.step() == 0
    assert (await redis_bus.backlog())[1] == 0


async def test_in_process_read_without_waiting_takes_what_is_queued(app: FastAPI) -> None:
    bus = InProcessBus(publish_timeout=5)
    assert await bus.read("embedded", 10, 0) == []
    publishing = [asyncio.create_task(bus.publish(p)) for p in _payloads(3, 1)]
    await asyncio.sleep(0)
    assert len(await bus.read("embedded", 2, 0)) == 2
    assert len(await bus.read("embedded", 2, 0)) == 1
    assert await bus.read("embedded", 2, 0) == []
    await bus.close()
    await asyncio.gather(*publishing, return_exceptions=True)


async def test_an_unreadable_message_is_dead_lettered_and_the_rest_stored(
    app: FastAPI, redis_bus: RedisStreamBus
) -> None:
    await redis_bus.publish(b"this is not a batch")
    for payload in _payloads(2, 5):
        await redis_bus.publish(payload)
    worker = _worker(app, redis_bus, "worker-a")
    assert await worker.step() == 3
    assert await _counts(app) == (10, 10)
    assert worker.stats.dead_letters == 1
    assert await redis_bus.redis.xlen(f"{redis_bus.stream}:dead") == 1


async def test_in_process_publish_returns_only_after_the_commit(app: FastAPI) -> None:
    bus = InProcessBus(publish_timeout=5)
    worker = _worker(app, bus, "embedded")
    publishing = asyncio.create_task(bus.publish(_payloads(1, 5)[0]))
    await asyncio.sleep(0.05)
    assert not publishing.done()  # nobody has stored it yet
    assert await worker.step() == 1
    await asyncio.wait_for(publishing, 1)
    assert await _counts(app) == (5, 5)


async def test_in_process_publish_fails_when_the_batch_is_dead_lettered(app: FastAPI) -> None:
    bus = InProcessBus(publish_timeout=5)
    worker = _worker(app, bus, "embedded")
    publishing = asyncio.create_task(bus.publish(b"garbage"))
    await asyncio.sleep(0)
    await worker.step()
    with pytest.raises(BusUnavailable):
        await publishing


async def test_with_a_rollup_delay_publish_returns_after_the_raw_commit_and_rollups_follow(
    app: FastAPI,
) -> None:
    bus = InProcessBus(publish_timeout=5)
    worker = _worker(app, bus, "embedded", rollup_delay_ms=60_000)
    publishing = asyncio.create_task(bus.publish(_payloads(1, 5)[0]))
    await asyncio.sleep(0)
    assert await worker.step() == 1
    await asyncio.wait_for(publishing, 1)  # acknowledged: the raw rows are committed
    assert await _counts(app) == (5, 0)
    await worker.settled()  # what the API does before it reads
    assert await _counts(app) == (5, 5)
    assert worker.stats.rollups == 1


async def test_deferred_rows_are_rolled_up_once_the_delay_passes_or_batch_events_are_held(
    app: FastAPI,
) -> None:
    bus = InProcessBus(publish_timeout=5)
    worker = _worker(app, bus, "embedded", rollup_delay_ms=200, batch_events=10, block_ms=1000)
    publishing = [asyncio.create_task(bus.publish(p)) for p in _payloads(3, 4)]
    await asyncio.sleep(0)
    assert await worker.step() == 3  # 12 events held, more than batch_events: rolled up
    assert await _counts(app) == (12, 12)

    publishing.append(asyncio.create_task(bus.publish(_payloads(1, 4)[0])))
    await asyncio.sleep(0)
    assert await worker.step() == 1
    assert await _counts(app) == (16, 12)
    assert await worker.step() == 0  # the read waits out the delay, then rolls up
    assert await _counts(app) == (16, 16)
    await asyncio.gather(*publishing)


async def test_deferred_rows_of_many_minutes_are_rolled_up_without_waiting(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An import of old data spreads its rows over many minutes, each making rollup rows of its
    own: past MAX_DEFERRED_MINUTES (project, minute) cells they are rolled up at once."""
    monkeypatch.setattr(worker_module, "MAX_DEFERRED_MINUTES", 5)
    bus = InProcessBus(publish_timeout=5)
    worker = _worker(app, bus, "embedded", rollup_delay_ms=60_000)
    start = datetime.now(UTC) - timedelta(hours=1)
    live = [event_item(datetime.now(UTC), user=f"u{i}") for i in range(4)]
    spread = [event_item(start + timedelta(minutes=i), user=f"v{i}") for i in range(4)]

    publishing = [asyncio.create_task(bus.publish(message(PROJECT, SOURCE, live)))]
    await asyncio.sleep(0)
    assert await worker.step() == 1
    assert await _counts(app) == (4, 0)  # one or two minutes: held for the delay

    publishing.append(asyncio.create_task(bus.publish(message(PROJECT, SOURCE, spread))))
    await asyncio.sleep(0)
    assert await worker.step() == 1
    assert await _counts(app) == (8, 8)
    await asyncio.gather(*publishing)


async def test_a_new_worker_rolls_up_what_a_crashed_one_deferred(app: FastAPI) -> None:
    bus = InProcessBus(publish_timeout=5)
    crashed = _worker(app, bus, "embedded", rollup_delay_ms=60_000)
    publishing = asyncio.create_task(bus.publish(_payloads(1, 5)[0]))
    await asyncio.sleep(0)
    assert await crashed.step() == 1
    await asyncio.wait_for(publishing, 1)
    assert await _counts(app) == (5, 0)  # the worker dies here, its rollups not written

    successor = _worker(app, InProcessBus(), "embedded", block_ms=10)
    assert await successor.step() == 0
    assert await _counts(app) == (5, 5)
    assert successor.stats.recovered_events == 5
    await crashed.settled()  # had it lived on: nothing is counted twice
    assert await _counts(app) == (5, 5)
