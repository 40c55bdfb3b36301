"""The worker loop: read batches from the bus, store them, acknowledge, publish live updates.

A batch is acknowledged only after its transaction committed, so a worker that dies in between
leaves it pending for another to claim; storing is idempotent, so that second delivery adds
nothing that the first already added. Database errors are retried with backoff, without ack.

With a rollup delay, a transaction stores raw rows only (and their keys in the rollup backlog),
and the worker rolls up everything it stored in the last `rollup_delay_ms`, or `batch_events`
events, in one later transaction: each rollup row is rewritten once for all of them. The embedded
mode needs this, since each of its transactions holds only what the waiting requests sent.
`settled()` rolls up at once whatever is deferred (the API calls it before reading), and a worker
that starts rolls up what a stopped one left in the backlog (`pipeline.backlog`).
"""

import asyncio
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from pulseboard.core.bus import Bus, Delivery
from pulseboard.pipeline.backlog import Deferred, recover, roll_up_deferred, store_deferred
from pulseboard.pipeline.messages import Batch, MalformedMessage, decode
from pulseboard.pipeline.partitions import Partitions
from pulseboard.pipeline.store import Stored, store_batches

log = logging.getLogger(__name__)

# A batch failing this often for a reason other than a lost database goes to the dead letters.
MAX_ATTEMPTS = 5
# Deferred rows are rolled up at once when they span this many (project, minute) cells: a rollup's
# memory grows with the rollup rows it writes, and rows of many minutes (an import of old data)
# make many. Live traffic spans a minute or two; a 10 MB import peaked at 33 MB without this.
MAX_DEFERRED_MINUTES = 1_000
BACKOFF_START = 0.05
BACKOFF_MAX = 5.0

OnStored = Callable[[Stored], Awaitable[None]]


@dataclass
class WorkerStats:
    batches: int = 0
    events: int = 0
    metrics: int = 0
    retries: int = 0
    dead_letters: int = 0
    rollups: int = 0  # rollup transactions of deferred rows
    recovered_events: int = 0


def is_transient(error: BaseException) -> bool:
    """A lost or restarting database: wait and retry, for as long as it takes."""
    if isinstance(
        error, OperationalError | InterfaceError | ConnectionError | OSError | TimeoutError
    ):
        return True
    return isinstance(error, DBAPIError) and error.connection_invalidated


class Worker:
    def __init__(
        self,
        bus: Bus,
        sessions: async_sessionmaker[AsyncSession],
        *,
        name: str,
        batch_size: int = 50,
        batch_events: int = 20_000,
        block_ms: int = 1000,
        claim_idle_ms: int = 30_000,
        rollup_delay_ms: int = 0,
        on_stored: Sequence[OnStored] = (),
        on_rolled_up: Sequence[OnStored] = (),
        partitions: Partitions,
    ) -> None:
        self.bus = bus
        self.sessions = sessions
        self.name = name
        self.batch_size = batch_size
        self.batch_events = batch_events
        self.block_ms = block_ms
        self.claim_idle_ms = claim_idle_ms
        self.rollup_delay_ms = rollup_delay_ms
        self.on_stored = on_stored
        self.on_rolled_up = on_rolled_up
        self.partitions = partitions
        self.stats = WorkerStats()
        self._stopping = asyncio.Event()
        self._deferred: list[Deferred] = []
        self._deferred_since = 0.0  # monotonic time of the oldest deferred entry
        self._rolling_up = asyncio.Lock()
        self._made_at = datetime.now(UTC)
        self._next_recovery = 0.0  # monotonic time of the next look at the rollup backlog
        self._recovered = False

    def stop(self) -> None:
        self._stopping.set()

    async def wait_stopping(self, seconds: float = 60.0) -> bool:
        """Wait up to `seconds`; True once the worker is asked to stop (for companion loops)."""
        return not await self._sleep(seconds)

    async def run(self) -> None:
        log.info("worker %s started", self.name)
        while not self._stopping.is_set():
            try:
                await self.step()
            except asyncio.CancelledError:
                raise
            except Exception:
                # The bus itself failed (Redis away): wait a little and carry on.
                log.exception("worker %s: bus error", self.name)
                await self._sleep(1.0)
        await self.settled()
        log.info("worker %s stopped", self.name)

    async def step(self) -> int:
        """Take one group of batches through; return how many deliveries it handled.

        A group is what one read brings, and while the bus has more at once, further reads until
        it holds `batch_events` events: under load a transaction rewrites each rollup row once
        for many events, and when traffic is light the group is whatever has arrived.
        """
        await self._recover_due()
        deliveries = await self.bus.claim_stale(self.name, self.claim_idle_ms, self.batch_size)
        claimed = bool(deliveries)
        if not claimed:
            deliveries = await self.bus.read(self.name, self.batch_size, self._wait_ms())
        handled, events = 0, 0
        readable: list[tuple[Delivery, Batch]] = []
        while deliveries:
            handled += len(deliveries)
            for delivery in deliveries:
                try:
                    batch = decode(delivery.payload)
                except MalformedMessage as exc:
                    await self._dead_letter(delivery, str(exc))
                    continue
                readable.append((delivery, batch))
                events += len(batch.items)
            if claimed or len(deliveries) < self.batch_size or events >= self.batch_events:
                break
            deliveries = await self.bus.read(self.name, self.batch_size, 0)
        if readable and not await self._store_all(readable):
            return 0
        if self._deferred and self._wait_ms() == 0:
            await self.roll_up()
        return handled

    def _wait_ms(self) -> int:
        """How long a read may wait: until deferred rows are due to be rolled up, if any are."""
        if not self._deferred:
            return self.block_ms
        if self._deferred_full():
            return 0
        left = self.rollup_delay_ms - (time.monotonic() - self._deferred_since) * 1000
        return max(0, min(self.block_ms, int(left)))

    def _deferred_full(self) -> bool:
        """Whether the deferred rows are to be rolled up now, whatever the delay: they hold
        `batch_events` events, or span MAX_DEFERRED_MINUTES (project, minute) cells."""
        if sum(entry.event_count for entry in self._deferred) >= self.batch_events:
            return True
        cells: set[tuple[uuid.UUID, int]] = set()
        cells.update(*(entry.minutes for entry in self._deferred))
        return len(cells) >= MAX_DEFERRED_MINUTES

    async def settled(self) -> None:
        """Roll up now whatever this worker deferred (one attempt; a failure is logged, and the
        rows stay deferred): what is acknowledged is then in the rollups too."""
        if self._deferred or self._rolling_up.locked():
            await self.roll_up(attempts=1)

    async def roll_up(self, attempts: int | None = None) -> None:
        """Roll up the deferred rows in one transaction, retrying database errors with backoff
        (up to `attempts` tries; None: while the worker runs, or MAX_ATTEMPTS for other errors).
        Rows given up on stay in the backlog, for the next worker to start."""
        async with self._rolling_up:
            deferred, self._deferred = self._deferred, []
            if not deferred:
                return
            attempt = 0
            while True:
                try:
                    stored = await roll_up_deferred(self.sessions, deferred)
                    break
                except Exception as exc:
                    attempt += 1
                    self.stats.retries += 1
                    log.warning("worker %s: rollup failed (%d): %s", self.name, attempt, exc)
                    limit = attempts or (None if is_transient(exc) else MAX_ATTEMPTS)
                    if limit is not None and attempt >= limit:
                        if attempts is not None:  # given back, to be tried again with more
                            self._defer(deferred + self._deferred)
                        else:
                            log.error("worker %s: rollups left in the backlog", self.name)
                        return
                    if not await self._sleep(_backoff(attempt)):
                        self._defer(deferred + self._deferred)
                        return
            self.stats.rollups += 1
        await self._notify(stored, self.on_rolled_up)

    def _defer(self, entries: list[Deferred]) -> None:
        if entries and not self._deferred:
            self._deferred_since = time.monotonic()
        self._deferred = entries

    async def _recover_due(self) -> None:
        """At start, and then every `claim_idle_ms`: roll up what workers that stopped left
        deferred in the backlog (at start all of it, later what is older than that)."""
        now = time.monotonic()
        if now < self._next_recovery:
            return
        self._next_recovery = now + self.claim_idle_ms / 1000
        if self._recovered:
            before = datetime.now(UTC) - timedelta(milliseconds=self.claim_idle_ms)
        else:
            # Rows deferred since this worker was made are other live workers' to roll up.
            before = self._made_at
        try:
            stored = await recover(self.sessions, before)
        except Exception:
            log.exception("worker %s: recovering the rollup backlog failed", self.name)
            self._next_recovery = now + 1.0
            return
        self._recovered = True
        if stored.event_count or stored.metric_count:
            log.info(
                "worker %s: rolled up %d events and %d metric points left in the backlog",
                self.name,
                stored.event_count,
                stored.metric_count,
            )
            self.stats.recovered_events += stored.event_count
            await self._notify(stored, self.on_rolled_up)

    async def _store_all(self, readable: list[tuple[Delivery, Batch]]) -> bool:
        attempt = 0
        while True:
            try:
                stored = await self._store([batch for _, batch in readable])
            except Exception as exc:
                attempt += 1
                self.stats.retries += 1
                if not is_transient(exc) and attempt >= MAX_ATTEMPTS:
                    return await self._isolate(readable, exc)
                log.warning("worker %s: store failed (attempt %d): %s", self.name, attempt, exc)
                if not await self._sleep(_backoff(attempt)):
                    return False  # stopping: the batches stay unacknowledged, nothing is lost
                continue
            await self.bus.ack([delivery.id for delivery, _ in readable])
            self.stats.batches += len(readable)
            self.stats.events += stored.event_count
            self.stats.metrics += stored.metric_count
            await self._notify(stored, self.on_stored)
            return True

    async def _isolate(self, readable: list[tuple[Delivery, Batch]], error: Exception) -> bool:
        """A group keeps failing: store its batches one by one, and dead-letter the bad ones."""
        if len(readable) == 1:
            await self._dead_letter(readable[0][0], f"store failed {MAX_ATTEMPTS} times: {error}")
            return True
        for entry in readable:
            if not await self._store_all([entry]):
                return False
        return True

    async def _store(self, batches: list[Batch]) -> Stored:
        if not self.rollup_delay_ms:
            return await store_batches(self.sessions, self.partitions, batches)
        stored, deferred = await store_deferred(self.sessions, self.partitions, batches)
        if deferred is not None:
            self._defer([*self._deferred, deferred])
        return stored

    async def _notify(self, stored: Stored, callbacks: Sequence[OnStored]) -> None:
        for callback in callbacks:
            try:
                await callback(stored)
            except Exception:
                # Live updates and cache versions are best effort once the data is committed.
                log.exception("worker %s: after-commit callback failed", self.name)

    async def _dead_letter(self, delivery: Delivery, reason: str) -> None:
        log.error("worker %s: dead-lettering %s: %s", self.name, delivery.id, reason)
        self.stats.dead_letters += 1
        await self.bus.dead_letter(delivery, reason)

    async def _sleep(self, seconds: float) -> bool:
        """Sleep unless asked to stop; return False if stopping."""
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            return True
        return False


def _backoff(attempt: int) -> float:
    delay: float = min(BACKOFF_MAX, BACKOFF_START * 2 ** (attempt - 1))
    return delay * (0.5 + random.random() / 2)
