"""After a commit the worker tells live dashboards what it stored, and only what was new."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import orjson
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from pulseboard.core.pubsub import (
    HISTORY_MESSAGES,
    InProcessPubSub,
    PubSub,
    RedisPubSub,
    cursor_order,
    history_key,
    live_channel,
)
from pulseboard.pipeline.live import EVENTS_PER_MESSAGE, LivePublisher
from pulseboard.pipeline.store import Stored
from tests.factories import ingest, pageview


async def test_stored_events_are_published_with_a_cursor_and_kept(
    client: httpx.AsyncClient, app: FastAPI, project: dict[str, object]
) -> None:
    pubsub: PubSub = app.state.pulseboard.pubsub
    channel = live_channel(str(project["id"]))
    async with pubsub.subscribe(channel) as queue:
        events = [pageview("/a", uuid=str(uuid.uuid4())), pageview("/b")]
        assert (await ingest(client, str(project["write_key"]), events)).status_code == 202
        message = orjson.loads(await asyncio.wait_for(queue.get(), 5))
        assert message["type"] == "events"
        assert [event["path"] for event in message["data"]] == ["/a", "/b"]

        history = await pubsub.history(channel, None, 10)
        assert history.cursor == message["cursor"]
        assert [orjson.loads(data) for _, data in history.entries] == [message["data"]]

        # A resent event (its uuid again, stamped anew at arrival) adds nothing: not announced.
        assert (await ingest(client, str(project["write_key"]), events[:1])).status_code == 202
        await asyncio.sleep(0.3)
        assert queue.empty()


def _stored(project_id: uuid.UUID, events: int = 0, points: int = 0) -> Stored:
    stored = Stored()
    now = datetime.now(UTC)
    for i in range(events):
        stored.events[project_id].append(
            {"id": uuid.uuid4(), "timestamp": now, "event_name": "pageview", "path": f"/{i}"}
        )
    for _ in range(points):
        stored.metrics[project_id].append(
            {"timestamp": now, "name": "cpu", "value": 0.5, "tags": {}}
        )
    return stored


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


async def test_one_redis_connection_carries_every_channel_across_processes(redis: Redis) -> None:
    first, second = uuid.uuid4(), uuid.uuid4()
    listener, publisher = RedisPubSub(redis), RedisPubSub(redis)
    try:
        async with (
            listener.subscribe(live_channel(str(first))) as first_queue,
            listener.subscribe(live_channel(str(second))) as second_queue,
        ):
            channels = [live_channel(str(first)), live_channel(str(second))]
            assert [count for _, count in await redis.pubsub_numsub(*channels)] == [1, 1]
            await LivePublisher(publisher)(_stored(first, events=EVENTS_PER_MESSAGE + 1))
            await LivePublisher(publisher)(_stored(second, points=1))
            big = orjson.loads(await asyncio.wait_for(first_queue.get(), 5))
            small = orjson.loads(await asyncio.wait_for(first_queue.get(), 5))
            metrics = orjson.loads(await asyncio.wait_for(second_queue.get(), 5))
        assert len(big["data"]) == EVENTS_PER_MESSAGE
        assert len(small["data"]) == 1
        assert cursor_order(small["cursor"]) > cursor_order(big["cursor"])
        assert metrics["type"] == "metrics"
        assert metrics["data"][0]["name"] == "cpu"
    finally:
        await redis.delete(history_key(live_channel(str(first))))
        await listener.close()


@pytest.fixture(params=["in-process", "redis"])
async def any_pubsub(request: pytest.FixtureRequest) -> AsyncIterator[PubSub]:
    if request.param == "in-process":
        yield InProcessPubSub()
        return
    client = Redis.from_url(request.getfixturevalue("redis_url"))
    yield RedisPubSub(client)
    await client.aclose()


async def test_history_says_when_a_cursor_is_older_than_it_reaches(any_pubsub: PubSub) -> None:
    pubsub = any_pubsub
    channel = live_channel(str(uuid.uuid4()))
    try:
        cursors = await pubsub.append(channel, [b"[%d]" % i for i in range(HISTORY_MESSAGES * 3)])
        recent = await pubsub.history(channel, cursors[-3], limit=HISTORY_MESSAGES)
        assert [data for _, data in recent.entries] == [b"[598]", b"[599]"]
        assert recent.complete
        assert recent.cursor == cursors[-1]

        lost = await pubsub.history(channel, cursors[0], limit=HISTORY_MESSAGES)
        assert not lost.complete
        assert lost.entries[-1] == (cursors[-1], b"[599]")

        latest = await pubsub.history(channel, None, limit=2)
        assert [data for _, data in latest.entries] == [b"[598]", b"[599]"]
    finally:
        if isinstance(pubsub, RedisPubSub):
            await pubsub.redis.delete(history_key(channel))


@pytest.mark.parametrize(
    "cursor", ["1_0-0", "1-", "+1-0", "\u0661-0", "\uff11-0", "18446744073709551616-0"]
)
def test_a_cursor_is_a_stream_id_spelled_strictly(cursor: str) -> None:
    # int() takes these (Arabic-Indic and full-width digits too); Redis refused them as they
    # were sent, and the socket was dropped.
    with pytest.raises(ValueError, match="not a cursor"):
        cursor_order(cursor)
    assert cursor_order("1733400000000-7") == (1733400000000, 7)
    assert cursor_order("12") == (12, 0)
