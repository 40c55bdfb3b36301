"""What the lifespan builds once per process and every request shares."""

from dataclasses import dataclass

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from pulseboard.core.security import Passwords
from pulseboard.core.settings import Settings


@dataclass(slots=True)
class AppState:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    passwords: Passwords
    redis: "Redis | None" = None
