"""After a commit the worker bumps the cache versions of the days it wrote rows into."""

import uuid
from datetime import UTC, date

from pulseboard.core.cache import Cache
from pulseboard.pipeline.store import Stored


def changed_days(stored: Stored) -> dict[uuid.UUID, set[date]]:
    """The UTC days each project got new rows in."""
    changed: dict[uuid.UUID, set[date]] = {}
    for rows_by_project in (stored.events, stored.metrics):
        for project_id, rows in rows_by_project.items():
            days = changed.setdefault(project_id, set())
            days.update(row["timestamp"].astimezone(UTC).date() for row in rows)
    return changed


class VersionBumper:
    def __init__(self, cache: Cache) -> None:
        self.cache = cache

    async def __call__(self, stored: Stored) -> None:
        await self.cache.bump(changed_days(stored))
