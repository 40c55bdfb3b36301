"""What the lifespan builds once per process and every request shares."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from pulseboard.core.bus import Bus
from pulseboard.core.cache import Cache
from pulseboard.core.pubsub import PubSub
from pulseboard.core.security import Passwords
from pulseboard.core.settings import Settings
from pulseboard.ingest.keys import KeyCache
from pulseboard.ingest.salts import SaltStore
from pulseboard.ingest.schemas import Limits
from pulseboard.live.hub import LiveHub


@dataclass(slots=True)
class AppState:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    passwords: Passwords
    bus: Bus
    pubsub: PubSub
    cache: Cache
    key_cache: KeyCache
    salts: SaltStore
    limits: Limits
    redis: Redis | None = None
    live: LiveHub | None = None
    # Embedded mode: the in-process worker's `settled` (see `settle`).
    settle_rollups: Callable[[], Awaitable[None]] | None = None

    async def settle(self) -> None:
        """Before a read: in embedded mode, have the worker roll up what it stored and has not
        rolled up yet, so that what is read includes every event acknowledged before it."""
        if self.settle_rollups is not None:
            await self.settle_rollups()
