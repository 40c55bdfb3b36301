"""Write-key lookups remembered for a few seconds, so that ingest does not query per request."""

import time
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession

from pulseboard.core.security import hash_secret
from pulseboard.sources.service import IngestTarget

MAX_ENTRIES = 10_000


class KeyCache:
    """A TTL cache of key hash → target (or None for an unknown key).

    A rotated, disabled or deleted key stops working at once in the process that changed it
    (which clears the cache) and within `ttl` seconds in the others.
    """

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._entries: dict[str, tuple[float, IngestTarget | None]] = {}

    async def resolve(
        self, key: str, load: Callable[[str], Awaitable[IngestTarget | None]]
    ) -> IngestTarget | None:
        key_hash = hash_secret(key)
        now = time.monotonic()
        cached = self._entries.get(key_hash)
        if cached is not None and cached[0] > now:
            return cached[1]
        target = await load(key)
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()
        self._entries[key_hash] = (now + self.ttl, target)
        return target

    def clear(self) -> None:
        self._entries.clear()


async def commit_then_forget(session: AsyncSession, cache: KeyCache) -> None:
    """After a key, a source or a project changed: commit first, then drop cached lookups.

    The other order would let a concurrent ingest reload the old row and cache it again.
    """
    await session.commit()
    cache.clear()
