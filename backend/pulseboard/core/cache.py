"""The query result cache: answers keyed by the normalised query and the data versions it read.

The worker bumps a project's version for each UTC day it wrote rows into, after the commit. A
query reads the versions of the days its range touches before it reads the data, and its key holds
them: new data in a range makes a new key at once (a live range is never stale), and a closed
range whose days are not written again stays cached. Redis in production, an in-process LRU in
embedded mode.
"""

import time
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from datetime import date
from typing import Protocol

from redis.asyncio import Redis

# How long an answer is kept at most, whatever its versions say.
ANSWER_SECONDS = 6 * 3600
IN_PROCESS_ENTRIES = 2000
KEY_PREFIX = "pulseboard:cache:"


def version_key(project_id: uuid.UUID) -> str:
    return f"pulseboard:versions:{project_id}"


class Cache(Protocol):
    async def get(self, key: str) -> bytes | None: ...

    async def put(self, key: str, value: bytes) -> None: ...

    async def versions(self, project_id: uuid.UUID, days: Sequence[date]) -> list[int]:
        """The data version of each day, 0 for a day never written."""

    async def bump(self, changed: dict[uuid.UUID, set[date]]) -> None:
        """Mark these days of these projects as changed."""


class InProcessCache:
    def __init__(self, entries: int = IN_PROCESS_ENTRIES) -> None:
        self._entries = entries
        self._answers: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._versions: dict[tuple[uuid.UUID, date], int] = {}

    async def get(self, key: str) -> bytes | None:
        found = self._answers.get(key)
        if found is None:
            return None
        stored_at, value = found
        if time.monotonic() - stored_at > ANSWER_SECONDS:
            del self._answers[key]
            return None
        self._answers.move_to_end(key)
        return value

    async def put(self, key: str, value: bytes) -> None:
        self._answers[key] = (time.monotonic(), value)
        self._answers.move_to_end(key)
        while len(self._answers) > self._entries:
            self._answers.popitem(last=False)

    async def versions(self, project_id: uuid.UUID, days: Sequence[date]) -> list[int]:
        return [self._versions.get((project_id, day), 0) for day in days]

    async def bump(self, changed: dict[uuid.UUID, set[date]]) -> None:
        for project_id, days in changed.items():
            for day in days:
                key = (project_id, day)
                self._versions[key] = self._versions.get(key, 0) + 1


class RedisCache:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def get(self, key: str) -> bytes | None:
        value = await self.redis.get(KEY_PREFIX + key)
        return value.encode() if isinstance(value, str) else value

    async def put(self, key: str, value: bytes) -> None:
        await self.redis.set(KEY_PREFIX + key, value, ex=ANSWER_SECONDS)

    async def versions(self, project_id: uuid.UUID, days: Sequence[date]) -> list[int]:
        if not days:
            return []
        found = await self.redis.hmget(version_key(project_id), [d.isoformat() for d in days])
        return [int(value) if value is not None else 0 for value in found]

    async def bump(self, changed: dict[uuid.UUID, set[date]]) -> None:
        if not changed:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for project_id, days in changed.items():
                for day in days:
                    pipe.hincrby(version_key(project_id), day.isoformat(), 1)
            await pipe.execute()
