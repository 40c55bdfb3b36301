"""The daily salt of IP hashes: random, kept in the database so every process shares it, and
deleted after two days so that a stored hash can no longer be tied to an address."""

import secrets
from datetime import date, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from pulseboard.ingest.repository import SaltRepository

KEEP_DAYS = 2


class SaltStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._cached: tuple[date, bytes] | None = None

    async def salt_for(self, day: date) -> bytes:
        if self._cached is not None and self._cached[0] == day:
            return self._cached[1]
        async with self._sessions() as session, session.begin():
            salts = SaltRepository(session)
            salt = await salts.get_or_create(day, secrets.token_bytes(32))
            await salts.delete_before(day - timedelta(days=KEEP_DAYS - 1))
        self._cached = (day, salt)
        return salt
