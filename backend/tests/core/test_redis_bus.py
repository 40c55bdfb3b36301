"""The Redis Streams bus against a real Redis: delivery, redelivery, trimming, failures."""

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any
from unittest.mock import ANY
from uuid import uuid4

import pytest
from redis.asyncio import Redis

from pulseboard.core.bus import BusUnavailable
from pulseboard.core.redis_bus import RedisStreamBus


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def bus(redis: Redis) -> AsyncIterator[RedisStreamBus]:
    stream_bus = RedisStreamBus(redis, stream=f"pulseboard:test:{uuid4().hex}")
    await stream_bus.ensure_group()
    yield stream_bus
    await redis.delete(stream_bus.stream, stream_bus.dead_stream)


async def publish(bus: RedisStreamBus, *payloads: bytes) -> None:
    for payload in payloads:
        await bus.publish(payload)


# Every wire protocol and response style redis-py offers gives the same deliveries.
@pytest.mark.parametrize(
    "options",
    [{}, {"protocol": 2}, {"protocol": 3}, {"protocol": 3, "legacy_responses": False}],
    ids=["default", "resp2", "resp3", "resp3-unified"],
)
async def test_publish_read_ack_round_trip(redis_url: str, options: dict[str, Any]) -> None:
    client = Redis.from_url(redis_url, **options)
    bus = RedisStreamBus(client, stream=f"pulseboard:test:{uuid4().hex}")
    try:
        await publish(bus, b"one", b"two", b"three")

        first = await bus.read("a", count=2, block_ms=100)
        second = await bus.read("a", count=2, block_ms=100)

        assert [d.payload for d in first] == [b"one", b"two"]
        assert [d.payload for d in second] == [b"three"]
        assert all(d.attempts == 1 for d in first + second)
        await bus.ack([d.id for d in first + second])
        assert await bus.backlog() == (3, 0)
        assert await bus.read("a", count=10, block_ms=10) == []
    finally:
        await client.delete(bus.stream)
        await client.aclose()


async def test_batches_published_before_the_group_exists_are_read(redis: Redis) -> None:
    bus = RedisStreamBus(redis, stream=f"pulseboard:test:{uuid4().hex}")
    try:
        await publish(bus, b"early")
        assert [d.payload for d in await bus.read("a", count=10, block_ms=10)] == [b"early"]
    finally:
        await redis.delete(bus.stream)


async def test_two_consumers_split_the_entries(bus: RedisStreamBus) -> None:
    await publish(bus, b"1", b"2", b"3", b"4")

    a = await bus.read("a", count=2, block_ms=10)
    b = await bus.read("b", count=10, block_ms=10)

    assert [d.payload for d in a] == [b"1", b"2"]
    assert [d.payload for d in b] == [b"3", b"4"]


async def test_blocking_read_returns_a_batch_published_while_waiting(bus: RedisStreamBus) -> None:
    waiting = asyncio.create_task(bus.read("a", count=10, block_ms=2000))
    await asyncio.sleep(0.05)
    await publish(bus, b"late")
    assert [d.payload for d in await asyncio.wait_for(waiting, 1)] == [b"late"]


async def test_zero_block_does_not_wait(bus: RedisStreamBus) -> None:
    # Redis reads BLOCK 0 as "forever"; the bus must not.
    started = time.monotonic()
    assert await asyncio.wait_for(bus.read("a", count=10, block_ms=0), 1) == []
    assert time.monotonic() - started < 0.5


async def test_unacked_entry_is_claimed_by_another_consumer(bus: RedisStreamBus) -> None:
    await publish(bus, b"batch")
    [taken] = await bus.read("dead-worker", count=1, block_ms=10)

    assert await bus.claim_stale("b", min_idle_ms=60_000, count=10) == []
    await asyncio.sleep(0.06)
    [claimed] = await bus.claim_stale("b", min_idle_ms=50, count=10)

    assert (claimed.id, claimed.payload, claimed.attempts) == (taken.id, b"batch", 2)
    await bus.ack([claimed.id])
    assert await bus.backlog() == (1, 0)


async def test_claim_stale_stops_at_count_and_resumes(bus: RedisStreamBus) -> None:
    await publish(bus, *(str(i).encode() for i in range(5)))
    await bus.read("dead-worker", count=5, block_ms=10)
    await asyncio.sleep(0.02)

    first = await bus.claim_stale("b", min_idle_ms=10, count=3)
    second = await bus.claim_stale("c", min_idle_ms=10, count=3)

    assert [d.payload for d in first] == [b"0", b"1", b"2"]
    assert [d.payload for d in second] == [b"3", b"4"]


async def test_acked_entry_is_never_redelivered(bus: RedisStreamBus) -> None:
    await publish(bus, b"stored")
    delivered = await bus.read("a", count=1, block_ms=10)
    await bus.ack([d.id for d in delivered])
    await asyncio.sleep(0.02)

    assert await bus.read("b", count=10, block_ms=10) == []
    assert await bus.claim_stale("b", min_idle_ms=0, count=10) == []


async def test_trim_removes_only_acked_entries(bus: RedisStreamBus, redis: Redis) -> None:
    await publish(bus, b"acked-1", b"acked-2", b"pending", b"acked-3", b"undelivered")
    delivered = await bus.read("a", count=4, block_ms=10)
    await bus.ack([delivered[0].id, delivered[1].id, delivered[3].id])
    assert await redis.xlen(bus.stream) == 5

    # Entries up to the oldest pending one go; "acked-3" stays behind "pending".
    assert await bus.trim() == 2
    assert await redis.xlen(bus.stream) == 3

    await bus.ack([delivered[2].id])
    assert await bus.trim() == 2
    assert [d.payload for d in await bus.read("a", count=10, block_ms=10)] == [b"undelivered"]
    assert await bus.trim() == 0  # delivered, not acked
    assert await redis.xlen(bus.stream) == 1


async def test_trim_waits_for_every_group(bus: RedisStreamBus, redis: Redis) -> None:
    other = RedisStreamBus(redis, stream=bus.stream, group="other")
    await other.ensure_group()
    await publish(bus, b"1", b"2")
    await bus.ack([d.id for d in await bus.read("a", count=10, block_ms=10)])

    assert await bus.trim() == 0
    await other.ack([d.id for d in await other.read("x", count=1, block_ms=10)])
    assert await bus.trim() == 1
    assert await redis.xlen(bus.stream) == 1


async def test_trim_before_the_group_exists_keeps_everything(redis: Redis) -> None:
    bus = RedisStreamBus(redis, stream=f"pulseboard:test:{uuid4().hex}")
    try:
        assert await bus.trim() == 0  # no stream
        await publish(bus, b"early")
        assert await bus.trim() == 0
        assert await redis.xlen(bus.stream) == 1
    finally:
        await redis.delete(bus.stream)


async def test_entries_deleted_while_pending_are_acked_not_returned(
    bus: RedisStreamBus, redis: Redis
) -> None:
    await publish(bus, b"gone", b"kept")
    gone, kept = await bus.read("dead-worker", count=2, block_ms=10)
    await redis.xdel(bus.stream, gone.id)
    await asyncio.sleep(0.02)

    claimed = await bus.claim_stale("b", min_idle_ms=10, count=10)

    assert [d.id for d in claimed] == [kept.id]
    pending = await redis.xpending_range(bus.stream, bus.group, "-", "+", 10)
    assert [p["message_id"] for p in pending] == [kept.id.encode()]


async def test_dead_letter_sets_the_batch_aside_and_acks_it(
    bus: RedisStreamBus, redis: Redis
) -> None:
    await publish(bus, b"poison")
    [delivery] = await bus.read("a", count=1, block_ms=10)

    await bus.dead_letter(delivery, "invalid JSON")

    dead = {
        b"p": b"poison",
        b"id": delivery.id.encode(),
        b"attempts": b"1",
        b"reason": b"invalid JSON",
    }
    assert await redis.xrange(bus.dead_stream) == [(ANY, dead)]
    assert await bus.backlog() == (1, 0)


async def test_publish_to_unreachable_redis_raises_bus_unavailable() -> None:
    client = Redis.from_url(
        "redis://127.0.0.1:1", socket_connect_timeout=0.2, socket_timeout=0.2, retry=None
    )
    try:
        with pytest.raises(BusUnavailable, match="XADD"):
            await RedisStreamBus(client).publish(b"batch")
    finally:
        await client.aclose()


async def test_group_is_recreated_after_the_stream_is_lost(
    bus: RedisStreamBus, redis: Redis
) -> None:
    await publish(bus, b"before")
    await bus.read("a", count=10, block_ms=10)
    await redis.delete(bus.stream)  # what a Redis restart without persistence leaves

    assert await bus.read("a", count=10, block_ms=10) == []
    await publish(bus, b"after")
    assert [d.payload for d in await bus.read("a", count=10, block_ms=10)] == [b"after"]

    await redis.delete(bus.stream)
    await publish(bus, b"published first")
    assert await bus.claim_stale("a", min_idle_ms=0, count=10) == []
    assert [d.payload for d in await bus.read("a", count=10, block_ms=10)] == [b"published first"]


async def test_client_that_decodes_responses_is_refused(redis_url: str) -> None:
    client = Redis.from_url(redis_url, decode_responses=True)
    with pytest.raises(ValueError, match="decode_responses"):
        RedisStreamBus(client)
    await client.aclose()
