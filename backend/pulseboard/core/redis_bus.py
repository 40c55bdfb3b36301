"""The production bus: one Redis stream, read by the workers through one consumer group."""

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError
from redis.typing import EncodableT, FieldT

from pulseboard.core.bus import BusUnavailable, Delivery

_FIELD = b"p"

T = TypeVar("T")


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _parse_id(entry_id: bytes | str) -> tuple[int, int]:
    ms, _, seq = _text(entry_id).partition("-")
    return int(ms), int(seq or 0)


def _entries(reply: Any) -> list[Any]:
    """The entries of a one-stream XREADGROUP reply, whatever shape the client's protocol gives."""
    if not reply:
        return []
    entries: list[Any] = next(iter(reply.values())) if isinstance(reply, dict) else reply[0][1]
    # RESP3 with legacy_responses wraps the entry list once more: {stream: [[entry, ...]]}.
    return entries[0] if entries and isinstance(entries[0], list) else entries


@asynccontextmanager
async def _unavailable(doing: str) -> AsyncIterator[None]:
    # One exception type for every Redis failure, so that neither the API nor the worker
    # has to know which bus it was given.
    try:
        yield
    except RedisError as exc:
        raise BusUnavailable(f"redis {doing} failed: {exc}") from exc


# The stream the API publishes ingest batches on and `pulseboard worker` reads.
INGEST_STREAM = "pulseboard:ingest"


class RedisStreamBus:
    """The `Bus` on a Redis stream and consumer group.

    The client belongs to the caller (the app's lifespan makes and closes it); it must not decode
    responses, as payloads are bytes. Its socket timeout, if any, must exceed `block_ms`.
    """

    def __init__(self, redis: Redis, stream: str = INGEST_STREAM, group: str = "workers") -> None:
        if redis.connection_pool.connection_kwargs.get("decode_responses"):
            raise ValueError("RedisStreamBus needs a client with decode_responses=False")
        self.redis = redis
        self.stream = stream
        self.group = group
        self.dead_stream = f"{stream}:dead"

    async def publish(self, payload: bytes) -> None:
        async with _unavailable("XADD"):
            await self.redis.xadd(self.stream, {_FIELD: payload})

    async def ensure_group(self) -> None:
        """Create the group if missing, from the start, so batches already queued are consumed."""
        async with _unavailable("XGROUP CREATE"):
            try:
                await self.redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
            except ResponseError as exc:
                if not str(exc).startswith("BUSYGROUP"):
                    raise

    async def read(self, consumer: str, count: int, block_ms: int) -> list[Delivery]:
        # BLOCK 0 means "forever" to Redis, "don't wait" to the Bus protocol.
        block = block_ms if block_ms > 0 else None

        async def read_new() -> Any:
            return await self.redis.xreadgroup(
                self.group, consumer, {self.stream: ">"}, count=count, block=block
            )

        async with _unavailable("XREADGROUP"):
            reply = await self._with_group(read_new)
        return [
            Delivery(_text(entry_id), fields[_FIELD])
            for entry_id, fields in _entries(reply)
            if entry_id is not None
        ]

    async def claim_stale(self, consumer: str, min_idle_ms: int, count: int) -> list[Delivery]:
        async with _unavailable("XAUTOCLAIM"):
            return await self._with_group(lambda: self._claim(consumer, min_idle_ms, count))

    async def ack(self, ids: Sequence[str]) -> None:
        if ids:
            async with _unavailable("XACK"):
                await self.redis.xack(self.stream, self.group, *ids)

    async def dead_letter(self, delivery: Delivery, reason: str) -> None:
        """Set a batch that keeps failing aside in `<stream>:dead`, then ack it."""
        fields: dict[FieldT, EncodableT] = {
            _FIELD: delivery.payload,
            "id": delivery.id,
            "attempts": delivery.attempts,
            "reason": reason,
        }
        async with _unavailable("dead-letter"):
            # Two commands, not MULTI: the keys may sit on different cluster slots, and a crash
            # in between only leaves a duplicate dead letter, never a lost batch.
            await self.redis.xadd(self.dead_stream, fields)
            await self.redis.xack(self.stream, self.group, delivery.id)

    async def trim(self) -> int:
        """Delete the entries every group has both delivered and acked; return how many."""
        async with _unavailable("XTRIM"):
            try:
                groups = await self.redis.xinfo_groups(self.stream)
            except ResponseError:
                return 0  # no stream yet
            if self.group not in {_text(group["name"]) for group in groups}:
                return 0  # our group will start from "0": every entry is still undelivered to it
            bounds: list[tuple[int, int]] = []
            for group in groups:
                ms, seq = _parse_id(group["last-delivered-id"])
                bounds.append((ms, seq + 1))  # entries after the last delivered one are kept
                if group["pending"]:
                    summary = await self.redis.xpending(self.stream, group["name"])
                    bounds.append(_parse_id(summary["min"]))
            ms, seq = min(bounds)
            # Exact MINID: trims every entry below the bound and nothing at or above it. `~` would
            # be safe as well (it only drops whole nodes below the bound) but often drops nothing.
            # A group created at "0" during a trim could miss entries; Pulseboard has one group.
            return await self.redis.xtrim(self.stream, minid=f"{ms}-{seq}", approximate=False)

    async def backlog(self) -> tuple[int, int]:
        """The stream's length and how many entries are delivered but not acked."""
        async with _unavailable("XLEN"):
            length = await self.redis.xlen(self.stream)
            try:
                summary = await self.redis.xpending(self.stream, self.group)
            except ResponseError:
                return length, 0  # no group yet
            return length, int(summary["pending"])

    async def close(self) -> None:
        """Nothing to do: the client is the lifespan's, which closes it."""

    async def _with_group(self, operation: Callable[[], Awaitable[T]]) -> T:
        # A Redis restart without persistence loses the stream and its group; re-create them
        # instead of failing every read until someone steps in.
        try:
            return await operation()
        except ResponseError as exc:
            if not str(exc).startswith("NOGROUP"):
                raise
        await self.ensure_group()
        return await operation()

    async def _claim(self, consumer: str, min_idle_ms: int, count: int) -> list[Delivery]:
        claimed: list[tuple[str, bytes]] = []
        cursor: bytes | str = "0-0"
        while len(claimed) < count:
            cursor, entries, *rest = await self.redis.xautoclaim(
                self.stream, self.group, consumer, min_idle_ms, cursor, count - len(claimed)
            )
            claimed += [(_text(i), fields[_FIELD]) for i, fields in entries if i is not None]
            # Entries deleted while pending (Redis 7+): nothing to store, so take them off the PEL.
            if rest and rest[0]:
                await self.redis.xack(self.stream, self.group, *rest[0])
            if _parse_id(cursor) == (0, 0):
                break
        if not claimed:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for entry_id, _ in claimed:
                pipe.xpending_range(self.stream, self.group, entry_id, entry_id, 1)
            details: list[list[dict[str, Any]]] = await pipe.execute()
        attempts = {_text(d[0]["message_id"]): int(d[0]["times_delivered"]) for d in details if d}
        # An entry no longer pending was acked since it was claimed: it is stored, skip it.
        return [
            Delivery(entry_id, payload, attempts[entry_id])
            for entry_id, payload in claimed
            if entry_id in attempts
        ]
