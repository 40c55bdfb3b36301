"""One process's live fan-out: one subscription per project, shared by that project's sockets.

A project's feed reads its channel, coalesces what arrives into one `events` frame at most
every `FLUSH_SECONDS`, serialises it once and offers it to each connection's outbox. An outbox
is bounded: when full it drops its oldest frames and counts the events lost, so that a slow
socket never slows the feed, the other sockets or the worker that published.
"""

import asyncio
import contextlib
import logging
import time
import uuid
from collections import Counter, deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from pulseboard.core.pubsub import PubSub, cursor_order, live_channel
from pulseboard.live.schemas import INTERVALS, Dropped, MetricsUpdate

log = logging.getLogger(__name__)

FLUSH_SECONDS = 0.1
Events = list[dict[str, Any]]


@dataclass(slots=True)
class Frame:
    """Events from one or more channel messages, with the cursors they came under."""

    parts: list[tuple[tuple[int, int], str, Events]]
    count: int
    _text: str | None = None

    @property
    def last(self) -> tuple[int, int]:
        return self.parts[-1][0]

    @property
    def text(self) -> str:
        # Made once per frame, whatever the number of sockets it goes to.
        if self._text is None:
            data = [event for _, _, events in self.parts for event in events]
            message = {"type": "events", "cursor": self.parts[-1][1], "data": data}
            self._text = orjson.dumps(message).decode()
        return self._text

    def after(self, cursor: tuple[int, int]) -> "Frame | None":
        """This frame without the events a connection already has (at or before `cursor`)."""
        parts = [part for part in self.parts if part[0] > cursor]
        if len(parts) == len(self.parts):
            return self
        return Frame(parts, sum(len(events) for _, _, events in parts)) if parts else None


@dataclass(slots=True)
class Subscription:
    numbers: list[str]
    last_values: dict[str, Any] = field(default_factory=dict)


class Connection:
    """A socket's outbox: events frames (bounded) and the few other messages for it."""

    def __init__(self, project_id: uuid.UUID, max_events: int) -> None:
        self.project_id = project_id
        self.max_events = max_events
        self.frames: deque[Frame] = deque()
        self.queued_events = 0
        self.dropped = 0
        self.messages: deque[str] = deque(maxlen=100)
        self.ready = asyncio.Event()
        self.subscriptions: dict[int, Subscription] = {}
        # None until the snapshot is read: frames wait, and are then cut at its cursor.
        self._after: tuple[int, int] | None = None

    def start_after(self, cursor: str) -> None:
        """Deliver only what is newer than `cursor`, which the snapshot already covered."""
        self._after = cursor_order(cursor)
        waiting, self.frames, self.queued_events = self.frames, deque(), 0
        for frame in waiting:
            self.offer(frame)

    def offer(self, frame: Frame) -> None:
        if self._after is not None:
            if frame.last <= self._after:
                return
            trimmed = frame.after(self._after)
            if trimmed is None:
                return
            frame = trimmed
        self.frames.append(frame)
        self.queued_events += frame.count
        while self.queued_events > self.max_events and len(self.frames) > 1:
            oldest = self.frames.popleft()
            self.queued_events -= oldest.count
            self.dropped += oldest.count
        self.ready.set()

    def push(self, message: str) -> None:
        self.messages.append(message)
        self.ready.set()

    def next_message(self) -> str | None:
        """The next message to send, or None when nothing waits.

        One at a time, so that frames stay in the outbox, where they can still be dropped,
        until the socket can take them. A `dropped` notice goes before the events after the gap.
        """
        if self.dropped:
            count, self.dropped = self.dropped, 0
            return Dropped(count=count).model_dump_json()
        if self.messages:
            return self.messages.popleft()
        if self.frames:
            frame = self.frames.popleft()
            self.queued_events -= frame.count
            return frame.text
        self.ready.clear()
        return None


class Window:
    """What one project stored during one interval, for the live numbers."""

    def __init__(self, start: float, interval: int) -> None:
        self.start = start
        self.end = start + interval
        self.events = 0
        self.by_event: Counter[str] = Counter()
        self.users: set[str] = set()
        self.sessions: set[str] = set()
        self.metrics: dict[str, list[float]] = {}

    def add_events(self, events: Events) -> None:
        self.events += len(events)
        for event in events:
            self.by_event[event["event_name"]] += 1
            self.users.add(event["distinct_id"])
            if event.get("session_id"):
                self.sessions.add(event["session_id"])

    def add_points(self, points: Events) -> None:
        for point in points:
            value = float(point["value"])
            stats = self.metrics.get(point["name"])
            if stats is None:
                self.metrics[point["name"]] = [1, value, value, value]
            else:
                stats[0] += 1
                stats[1] += value
                stats[2] = min(stats[2], value)
                stats[3] = max(stats[3], value)

    def value(self, number: str) -> Any:
        if number == "events":
            return self.events
        if number == "users":
            return len(self.users)
        if number == "sessions":
            return len(self.sessions)
        kind, _, name = number.partition(":")
        if kind == "event":
            return self.by_event.get(name, 0)
        count, total, low, high = self.metrics.get(name, (0, 0.0, None, None))
        return {"count": int(count), "sum": total, "min": low, "max": high}


class ProjectFeed:
    """One project's channel in this process, and the connections that follow it."""

    def __init__(self, hub: "LiveHub", project_id: uuid.UUID) -> None:
        self.hub = hub
        self.project_id = project_id
        self.connections: set[Connection] = set()
        self.windows: dict[int, Window] = {}
        self.subscribed = asyncio.Event()
        self._last_flush = 0.0
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async with self.hub.pubsub.subscribe(live_channel(str(self.project_id))) as queue:
            self.subscribed.set()
            while True:
                messages = [await queue.get()]
                wait = self._last_flush + FLUSH_SECONDS - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)  # coalesce: at most one frame per FLUSH_SECONDS
                while not queue.empty():
                    messages.append(queue.get_nowait())
                self._last_flush = time.monotonic()
                try:
                    self._flush(messages)
                except Exception:
                    # A message this code cannot read must not end the project's feed.
                    log.exception("live feed %s: unreadable message", self.project_id)

    def _flush(self, messages: list[bytes]) -> None:
        parts: list[tuple[tuple[int, int], str, Events]] = []
        for raw in messages:
            message = orjson.loads(raw)
            if message["type"] == "events":
                parts.append((cursor_order(message["cursor"]), message["cursor"], message["data"]))
                for window in self.windows.values():
                    window.add_events(message["data"])
            elif message["type"] == "metrics":
                for window in self.windows.values():
                    window.add_points(message["data"])
        if not parts:
            return
        frame = Frame(parts, sum(len(events) for _, _, events in parts))
        for connection in self.connections:
            connection.offer(frame)

    def subscribe(self, connection: Connection, interval: int, numbers: list[str]) -> None:
        if numbers:
            connection.subscriptions[interval] = Subscription(numbers)
            if interval not in self.windows:
                self.windows[interval] = Window(_window_start(time.time(), interval), interval)
        else:
            connection.subscriptions.pop(interval, None)
            self._forget_unused_windows()

    def tick(self, now: float) -> None:
        """Close the windows that have ended; send each subscriber the numbers that changed."""
        for interval, window in list(self.windows.items()):
            if window.end > now:
                continue
            self.windows[interval] = Window(_window_start(now, interval), interval)
            for connection in self.connections:
                subscription = connection.subscriptions.get(interval)
                if subscription is not None:
                    _send_changes(connection, subscription, interval, window)

    def _forget_unused_windows(self) -> None:
        used = {i for connection in self.connections for i in connection.subscriptions}
        for interval in set(self.windows) - used:
            del self.windows[interval]


def _send_changes(
    connection: Connection, subscription: Subscription, interval: int, window: Window
) -> None:
    values = {number: window.value(number) for number in subscription.numbers}
    changed = {
        number: value
        for number, value in values.items()
        if number not in subscription.last_values or subscription.last_values[number] != value
    }
    subscription.last_values = values
    if changed:
        update = MetricsUpdate(
            interval=interval,
            start=datetime.fromtimestamp(window.start, UTC),
            end=datetime.fromtimestamp(window.end, UTC),
            values=changed,
        )
        connection.push(update.model_dump_json())


def _window_start(now: float, interval: int) -> float:
    # Windows line up with the clock, so that every process's 5 s windows end together.
    return float(int(now) - int(now) % interval)


class LiveHub:
    def __init__(self, pubsub: PubSub, *, max_queued_events: int) -> None:
        self.pubsub = pubsub
        self.max_queued_events = max_queued_events
        self.feeds: dict[uuid.UUID, ProjectFeed] = {}
        self._ticker: asyncio.Task[None] | None = None

    @property
    def connection_count(self) -> int:
        return sum(len(feed.connections) for feed in self.feeds.values())

    @asynccontextmanager
    async def connect(self, project_id: uuid.UUID) -> AsyncIterator[Connection]:
        """A connection that receives the project's frames from now until the context ends."""
        feed = self.feeds.get(project_id)
        if feed is None or feed.task.done():
            feed = self.feeds[project_id] = ProjectFeed(self, project_id)
        connection = Connection(project_id, self.max_queued_events)
        feed.connections.add(connection)
        try:
            # Subscribed before the snapshot is read, so that nothing falls between the two.
            await _wait_subscribed(feed)
            yield connection
        finally:
            feed.connections.discard(connection)
            feed._forget_unused_windows()
            if not feed.connections and self.feeds.get(project_id) is feed:
                del self.feeds[project_id]
                feed.task.cancel()

    def subscribe(self, connection: Connection, interval: int, numbers: list[str]) -> None:
        assert interval in INTERVALS
        feed = self.feeds[connection.project_id]
        feed.subscribe(connection, interval, numbers)
        if self._ticker is None:
            self._ticker = asyncio.create_task(self._tick())

    async def close(self) -> None:
        tasks = [feed.task for feed in self.feeds.values()]
        if self._ticker is not None:
            tasks.append(self._ticker)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.feeds.clear()

    async def _tick(self) -> None:
        while True:
            now = time.time()
            await asyncio.sleep(1 - now % 1 + 0.001)  # just after each whole second
            now = time.time()
            for feed in list(self.feeds.values()):
                try:
                    feed.tick(now)
                except Exception:
                    log.exception("live feed %s: numbers failed", feed.project_id)


async def _wait_subscribed(feed: ProjectFeed) -> None:
    waiter = asyncio.ensure_future(feed.subscribed.wait())
    done, _ = await asyncio.wait({waiter, feed.task}, return_when=asyncio.FIRST_COMPLETED)
    if waiter not in done:
        waiter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiter
        # The subscription itself failed (Redis away): say so rather than wait for ever.
        feed.task.result()
        raise RuntimeError("live feed ended before it subscribed")
