"""Live fan-out: the worker publishes what it stored; API processes pass it to their sockets.

Redis pub/sub across processes in production, a dictionary of queues in embedded mode.
"""

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol

from redis.asyncio import Redis

SUBSCRIBER_QUEUE = 1000


def live_channel(project_id: str) -> str:
    return f"pulseboard:live:{project_id}"


class PubSub(Protocol):
    async def publish(self, channel: str, message: bytes) -> None: ...

    def listened(self, channel: str) -> bool:
        """False only when nobody can be listening, so that a message need not be built."""

    def subscribe(self, channel: str) -> AbstractAsyncContextManager["asyncio.Queue[bytes]"]:
        """A queue of this channel's messages for as long as the context lasts."""


class InProcessPubSub:
    def __init__(self) -> None:
        self._subscribers: dict[str, set[asyncio.Queue[bytes]]] = defaultdict(set)

    def listened(self, channel: str) -> bool:
        return channel in self._subscribers

    async def publish(self, channel: str, message: bytes) -> None:
        for queue in list(self._subscribers.get(channel, ())):
            if queue.full():
                # A subscriber that does not keep up loses its oldest message, never blocks us.
                queue.get_nowait()
            queue.put_nowait(message)

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[asyncio.Queue[bytes]]:
        queue: asyncio.Queue[bytes] = asyncio.Queue(SUBSCRIBER_QUEUE)
        self._subscribers[channel].add(queue)
        try:
            yield queue
        finally:
            self._subscribers[channel].discard(queue)
            if not self._subscribers[channel]:
                del self._subscribers[channel]


class RedisPubSub:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    def listened(self, channel: str) -> bool:
        return True  # subscribers are in other processes

    async def publish(self, channel: str, message: bytes) -> None:
        await self.redis.publish(channel, message)

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[asyncio.Queue[bytes]]:
        queue: asyncio.Queue[bytes] = asyncio.Queue(SUBSCRIBER_QUEUE)
        pubsub = self.redis.pubsub()
        await pubsub.subscribe(channel)

        async def pump() -> None:
            async for message in pubsub.listen():
                if message.get("type") != "message":
                    continue
                if queue.full():
                    queue.get_nowait()
                queue.put_nowait(message["data"])

        task = asyncio.create_task(pump())
        try:
            yield queue
        finally:
            task.cancel()
            await pubsub.unsubscribe(channel)
            await pubsub.aclose()  # type: ignore[no-untyped-call]
