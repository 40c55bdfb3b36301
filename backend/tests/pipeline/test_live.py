"""After a commit the worker tells live dashboards what it stored, and only what was new."""

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
from fastapi import FastAPI
from redis.asyncio import Redis

from pulseboard.core.pubsub import RedisPubSub, live_channel
from pulseboard.pipeline.live import LivePublisher
from pulseboard.pipeline.store import Stored
from tests.factories import ingest, pageview


async def test_stored_events_are_published_on_the_projects_channel(
    client: httpx.AsyncClient, app: FastAPI, project: dict[str, Any]
) -> None:
    pubsub = app.state.pulseboard.pubsub
    async with pubsub.subscribe(live_channel(project["id"])) as queue:
        events = [pageview("/a", uuid=str(uuid.uuid4())), pageview("/b")]
        assert (await ingest(client, project["write_key"], events)).status_code == 202
        message = orjson.loads(await asyncio.wait_for(queue.get(), 5))
        assert message["type"] == "events"
        assert message["project_id"] == project["id"]
        assert [event["path"] for event in message["data"]] == ["/a", "/b"]

        # A resent event (its uuid again, stamped anew at arrival) adds nothing: not announced.
        assert (await ingest(client, project["write_key"], events[:1])).status_code == 202
        await asyncio.sleep(0.3)
        assert queue.empty()


async def test_redis_pubsub_carries_live_messages_across_processes(redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    project_id = uuid.uuid4()
    try:
        pubsub = RedisPubSub(redis)
        async with pubsub.subscribe(live_channel(str(project_id))) as queue:
            stored = Stored()
            stored.metrics[project_id].append(
                {"timestamp": datetime.now(UTC), "name": "cpu", "value": 0.5, "tags": {}}
            )
            await LivePublisher(pubsub)(stored)
            message = orjson.loads(await asyncio.wait_for(queue.get(), 5))
        assert message["type"] == "metrics"
        assert message["data"][0]["name"] == "cpu"
    finally:
        await redis.aclose()
