"""Live fan-out: the worker publishes what it stored; API processes pass it to their sockets.

Redis pub/sub across processes in production, a dictionary of queues in embedded mode. Each
process holds one Redis connection for all the channels it listens to. Beside each channel
is a short history of recent messages (a capped Redis stream, a deque in embedded mode) with a
cursor per message, so that a client that reconnects can catch up on what it missed.
"""

import asyncio
import contextlib
import logging
import re
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from redis.asyncio import Redis
from redis.asyncio.client import PubSub as RedisConnection
from redis.exceptions import RedisError, ResponseError

log = logging.getLogger(__name__)

SUBSCRIBER_QUEUE = 1000
SUBSCRIBE_TIMEOUT = 5.0
# Per channel; the publisher puts at most 100 events in a message, so ≤ 20,000 events.
HISTORY_MESSAGES = 200
# A channel nobody publishes on for a day loses its history (a project gone quiet).
HISTORY_TTL_SECONDS = 86_400
NO_CURSOR = "0-0"


def live_channel(project_id: str) -> str:
    return f"pulseboard:live:{project_id}"


def history_key(channel: str) -> str:
    return f"{channel}:recent"


_CURSOR = re.compile(r"([0-9]{1,20})(?:-([0-9]{1,20}))?")


def cursor_order(cursor: str) -> tuple[int, int]:
    """Cursors are Redis stream ids, `<milliseconds>-<sequence>`; raise ValueError otherwise.

    Strictly: what `int()` also takes (`1_0`, `+1`, other scripts' digits, `1-`, past 64 bits)
    would reach Redis as it was sent, and Redis refuses it.
    """
    match = _CURSOR.fullmatch(cursor)
    order = (int(match[1]), int(match[2] or 0)) if match else None
    if order is None or max(order) >= 2**64:
        raise ValueError(f"not a cursor: {cursor!r}")
    return order


@dataclass(frozen=True, slots=True)
class History:
    """Recent messages of a channel, oldest first, and whether any after `since` were lost."""

    entries: list[tuple[str, bytes]]
    complete: bool
    # The newest cursor the channel has given, whether or not it is among `entries`.
    cursor: str


class PubSub(Protocol):
    async def publish(self, channel: str, message: bytes) -> None: ...

    def listened(self, channel: str) -> bool:
        """False only when nobody can be listening, so that a message need not be built."""

    def subscribe(self, channel: str) -> AbstractAsyncContextManager["asyncio.Queue[bytes]"]:
        """A queue of this channel's messages for as long as the context lasts."""

    async def append(self, channel: str, messages: list[bytes]) -> list[str]:
        """Keep messages in the channel's history; return their cursors, in order."""

    async def history(self, channel: str, since: str | None, limit: int) -> History:
        """The messages after `since` (at most `limit`, the newest), or the last `limit`."""

    async def close(self) -> None: ...


class InProcessPubSub:
    def __init__(self) -> None:
        self._subscribers: dict[str, set[asyncio.Queue[bytes]]] = defaultdict(set)
        self._history: dict[str, deque[tuple[str, bytes]]] = {}
        # Per channel, the newest cursor trimmed out of its history.
        self._trimmed: dict[str, str] = {}
        self._last: tuple[int, int] = (0, 0)

    def listened(self, channel: str) -> bool:
        return channel in self._subscribers

    async def publish(self, channel: str, message: bytes) -> None:
        for queue in list(self._subscribers.get(channel, ())):
            _put_dropping_oldest(queue, message)

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

    async def append(self, channel: str, messages: list[bytes]) -> list[str]:
        history = self._history.setdefault(channel, deque(maxlen=HISTORY_MESSAGES))
        cursors = []
        for message in messages:
            if len(history) == history.maxlen:
                self._trimmed[channel] = history[0][0]
            cursor = self._next_cursor()
            history.append((cursor, message))
            cursors.append(cursor)
        return cursors

    async def history(self, channel: str, since: str | None, limit: int) -> History:
        history = self._history.get(channel, deque())
        newest = history[-1][0] if history else NO_CURSOR
        if since is None:
            return History(list(history)[-limit:] if limit else [], True, newest)
        after = cursor_order(since)
        entries = [entry for entry in history if cursor_order(entry[0]) > after]
        trimmed = self._trimmed.get(channel, NO_CURSOR)
        complete = after >= cursor_order(trimmed) and len(entries) <= limit
        return History(entries[-limit:], complete, newest)

    async def close(self) -> None:
        return None

    def _next_cursor(self) -> str:
        # Like a Redis stream id: milliseconds, then a sequence within the millisecond.
        now = (time.time_ns() // 1_000_000, 0)
        self._last = now if now > self._last else (self._last[0], self._last[1] + 1)
        return f"{self._last[0]}-{self._last[1]}"


class RedisPubSub:
    """Pub/sub over Redis; one connection per process carries every channel it listens to."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._subscribers: dict[str, set[asyncio.Queue[bytes]]] = defaultdict(set)
        self._connection: RedisConnection | None = None
        self._confirmed: dict[str, asyncio.Event] = {}
        self._reader: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    def listened(self, channel: str) -> bool:
        return True  # subscribers are in other processes

    async def publish(self, channel: str, message: bytes) -> None:
        await self.redis.publish(channel, message)

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[asyncio.Queue[bytes]]:
        queue: asyncio.Queue[bytes] = asyncio.Queue(SUBSCRIBER_QUEUE)
        async with self._lock:
            if self._connection is None:
                self._connection = self.redis.pubsub()
            if channel not in self._subscribers:
                confirmed = self._confirmed[channel] = asyncio.Event()
                await self._connection.subscribe(channel)
                if self._reader is None:
                    self._reader = asyncio.create_task(self._read(self._connection))
                # Redis confirms on the same connection; from then on no message is missed.
                async with asyncio.timeout(SUBSCRIBE_TIMEOUT):
                    await confirmed.wait()
            self._subscribers[channel].add(queue)
        try:
            yield queue
        finally:
            async with self._lock:
                self._subscribers[channel].discard(queue)
                if not self._subscribers[channel]:
                    del self._subscribers[channel]
                    self._confirmed.pop(channel, None)
                    with contextlib.suppress(RedisError, OSError):
                        await self._connection.unsubscribe(channel)

    async def append(self, channel: str, messages: list[bytes]) -> list[str]:
        key = history_key(channel)
        pipe = self.redis.pipeline(transaction=False)
        for message in messages:
            pipe.xadd(key, {"m": message}, maxlen=HISTORY_MESSAGES, approximate=True)
        pipe.expire(key, HISTORY_TTL_SECONDS)
        results = await pipe.execute()
        return [cursor.decode() for cursor in results[:-1]]

    async def history(self, channel: str, since: str | None, limit: int) -> History:
        key = history_key(channel)
        info = await self._info(key)
        newest = info.get("last-generated-id", NO_CURSOR.encode()).decode()
        if since is None:
            rows = await self._newest_rows(key, "-", limit) if limit else []
            return History(_entries(rows), True, newest)
        after = cursor_order(since)
        rows = await self._newest_rows(key, f"({since}", limit + 1)
        # Trimming leaves no trace in Redis 7.0 but a count: if any message was trimmed and the
        # cursor is older than the oldest kept, some of those it missed are gone.
        first = info.get("first-entry")
        trimmed = info.get("entries-added", 0) > info.get("length", 0)
        lost = trimmed and first is not None and after < cursor_order(first[0].decode())
        return History(_entries(rows[:limit]), not lost and len(rows) <= limit, newest)

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._connection is not None:
            await self._connection.aclose()  # type: ignore[no-untyped-call]

    async def _newest_rows(
        self, key: str, after: str, count: int
    ) -> list[tuple[bytes, dict[bytes, bytes]]]:
        rows: list[tuple[bytes, dict[bytes, bytes]]] = await self.redis.xrevrange(
            key, min=after, count=count
        )  # type: ignore[assignment]
        return rows

    async def _info(self, key: str) -> dict[str, Any]:
        try:
            info: dict[str, Any] = await self.redis.xinfo_stream(key)
        except ResponseError:
            return {}  # no such stream: nothing was ever kept, or it expired
        return info

    async def _read(self, connection: RedisConnection) -> None:
        while True:
            try:
                message = await connection.get_message(timeout=None)
            except (RedisError, OSError):
                # Redis away: the client reconnects and subscribes again on the next read.
                log.warning("live pub/sub: Redis connection lost; retrying", exc_info=True)
                await asyncio.sleep(0.5)
                continue
            if message is None:
                continue
            channel = message["channel"].decode()
            if message["type"] == "subscribe" and channel in self._confirmed:
                self._confirmed[channel].set()
            if message["type"] != "message":
                continue
            for queue in list(self._subscribers.get(channel, ())):
                _put_dropping_oldest(queue, message["data"])


def _entries(rows: list[tuple[bytes, dict[bytes, bytes]]]) -> list[tuple[str, bytes]]:
    """XREVRANGE rows as (cursor, message), oldest first."""
    return [(cursor.decode(), fields[b"m"]) for cursor, fields in reversed(rows)]


def _put_dropping_oldest(queue: "asyncio.Queue[bytes]", message: bytes) -> None:
    # A subscriber that does not keep up loses its oldest message, never blocks the publisher.
    if queue.full():
        queue.get_nowait()
    queue.put_nowait(message)
