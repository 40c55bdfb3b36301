"""The ingest bus: the API publishes batches, workers read, store, then acknowledge.

Two implementations behind one interface: Redis Streams with a consumer group (production) and an
in-process queue (embedded mode). Either way, `publish` returns only once the batch is durable:
for Redis when XADD has answered, in-process when a worker has committed the batch and acked it.
"""

import asyncio
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Delivery:
    """One published batch as a worker receives it."""

    id: str
    payload: bytes
    # How many times the bus has handed this entry out (1 on the first delivery).
    attempts: int = 1


class BusUnavailable(Exception):
    """The bus could not take the batch; the API answers 503 so that the client retries."""


class Bus(Protocol):
    async def publish(self, payload: bytes) -> None:
        """Return once the batch cannot be lost; raise BusUnavailable otherwise."""

    async def read(self, consumer: str, count: int, block_ms: int) -> list[Delivery]:
        """Up to `count` new batches for this consumer, waiting at most `block_ms` (0: no wait)."""

    async def claim_stale(self, consumer: str, min_idle_ms: int, count: int) -> list[Delivery]:
        """Batches another consumer took but has not acked for `min_idle_ms` (it died)."""

    async def ack(self, ids: Sequence[str]) -> None:
        """Forget these batches: they are stored."""

    async def dead_letter(self, delivery: Delivery, reason: str) -> None:
        """Set aside a batch that cannot be stored, with the reason, and stop delivering it."""

    async def trim(self) -> int:
        """Forget batches every consumer has acknowledged; return how many."""

    async def close(self) -> None: ...


@dataclass(slots=True)
class _Pending:
    payload: bytes
    done: asyncio.Future[None]
    attempts: int = 0


@dataclass
class InProcessBus:
    """The embedded-mode bus: a queue in this process; `publish` waits for the worker's commit.

    Waiting for the commit is what keeps "202 means durable" true without Redis, and it lets the
    worker commit many requests' batches in one transaction (a group commit).
    """

    publish_timeout: float = 30.0
    max_dead_letters: int = 100
    dead_letters: list[tuple[Delivery, str]] = field(default_factory=list)
    _queue: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    _pending: dict[str, _Pending] = field(default_factory=dict)
    _ids: "itertools.count[int]" = field(default_factory=itertools.count)
    _closed: bool = False

    async def publish(self, payload: bytes) -> None:
        if self._closed:
            raise BusUnavailable("the bus is closed")
        entry_id = str(next(self._ids))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending[entry_id] = _Pending(payload, done)
        self._queue.put_nowait(entry_id)
        try:
            await asyncio.wait_for(asyncio.shield(done), self.publish_timeout)
        except TimeoutError as exc:
            # The batch stays queued and will be stored; the client may retry (same uuids).
            raise BusUnavailable("the worker did not store the batch in time") from exc

    async def read(self, consumer: str, count: int, block_ms: int) -> list[Delivery]:
        ids: list[str] = []
        if self._queue.empty():
            if block_ms <= 0:
                return []
            try:
                ids.append(await asyncio.wait_for(self._queue.get(), block_ms / 1000))
            except TimeoutError:
                return []
        while len(ids) < count and not self._queue.empty():
            ids.append(self._queue.get_nowait())
        return [self._deliver(entry_id) for entry_id in ids if entry_id in self._pending]

    def wake(self) -> None:
        """Return a waiting `read` at once (empty), so that a stopping worker need not wait."""
        self._queue.put_nowait("")

    async def claim_stale(self, consumer: str, min_idle_ms: int, count: int) -> list[Delivery]:
        # One process holds every consumer: a batch is only ever pending while it is being
        # stored, and a failed store is retried by the same worker before it reads on.
        return []

    async def trim(self) -> int:
        return 0  # acknowledged batches are forgotten at once

    async def ack(self, ids: Sequence[str]) -> None:
        for entry_id in ids:
            pending = self._pending.pop(entry_id, None)
            if pending is not None and not pending.done.done():
                pending.done.set_result(None)

    async def dead_letter(self, delivery: Delivery, reason: str) -> None:
        # The publisher is still waiting: it must hear that the batch was not stored, not 202.
        self.dead_letters.append((delivery, reason))
        del self.dead_letters[: -self.max_dead_letters]
        pending = self._pending.pop(delivery.id, None)
        if pending is not None and not pending.done.done():
            pending.done.set_exception(BusUnavailable(f"the batch could not be stored: {reason}"))
            pending.done.exception()

    async def close(self) -> None:
        self._closed = True
        for pending in self._pending.values():
            if not pending.done.done():
                pending.done.set_exception(BusUnavailable("the server is shutting down"))
                pending.done.exception()  # retrieved: a publisher that gave up is not an error
        self._pending.clear()

    def _deliver(self, entry_id: str) -> Delivery:
        pending = self._pending[entry_id]
        pending.attempts += 1
        return Delivery(entry_id, pending.payload, pending.attempts)
