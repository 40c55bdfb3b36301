"""Daily partitions of the raw tables in PostgreSQL, made before rows need them."""

import logging
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger(__name__)

PARTITIONED = ("events", "metric_points")
# Made ahead by the maintenance job; older days are made on demand (an import of old data).
DAYS_AHEAD = 3


def partition_name(table: str, day: date) -> str:
    return f"{table}_p{day:%Y%m%d}"


def day_of_partition(table: str, name: str) -> date | None:
    prefix = f"{table}_p"
    if not name.startswith(prefix):
        return None
    try:
        return datetime.strptime(name.removeprefix(prefix), "%Y%m%d").date()
    except ValueError:
        return None


class Partitions:
    """Knows which daily partitions exist, and creates the missing ones in short transactions."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.enabled = engine.dialect.name == "postgresql"
        self._known: set[tuple[str, date]] = set()

    async def ensure(self, table: str, days: Iterable[date]) -> None:
        if not self.enabled:
            return
        missing = sorted(day for day in set(days) if (table, day) not in self._known)
        if not missing:
            return
        async with self.engine.connect() as connection:
            for name in await _children(connection, table):
                if (day := day_of_partition(table, name)) is not None:
                    self._known.add((table, day))
            for day in missing:
                if (table, day) in self._known:
                    continue
                await self._create(connection, table, day)
                self._known.add((table, day))

    async def ensure_ahead(self, today: date) -> None:
        days = [today + timedelta(days=offset) for offset in range(-1, DAYS_AHEAD + 1)]
        for table in PARTITIONED:
            await self.ensure(table, days)

    async def drop_before(self, table: str, day: date) -> list[str]:
        """Drop whole daily partitions older than `day`; the fast path of retention."""
        if not self.enabled:
            return []
        dropped: list[str] = []
        async with self.engine.connect() as connection:
            for name in await _children(connection, table):
                partition_day = day_of_partition(table, name)
                if partition_day is not None and partition_day < day:
                    await connection.execute(text(f'DROP TABLE IF EXISTS "{name}"'))
                    await connection.commit()
                    self._known.discard((table, partition_day))
                    dropped.append(name)
        return dropped

    async def _create(self, connection: AsyncConnection, table: str, day: date) -> None:
        start = datetime.combine(day, time(0), tzinfo=UTC)
        end = start + timedelta(days=1)
        name = partition_name(table, day)
        try:
            await connection.execute(
                text(
                    f'CREATE TABLE IF NOT EXISTS "{name}" PARTITION OF "{table}" '
                    f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
                )
            )
            await connection.commit()
            log.info("created partition %s", name)
        except DBAPIError as exc:
            # Another worker made it between our look and our create.
            await connection.rollback()
            if "already exists" not in str(exc):
                raise


async def _children(connection: AsyncConnection, table: str) -> list[str]:
    result = await connection.execute(
        text(
            "SELECT child.relname FROM pg_inherits "
            "JOIN pg_class parent ON parent.oid = pg_inherits.inhparent "
            "JOIN pg_class child ON child.oid = pg_inherits.inhrelid "
            "WHERE parent.relname = :table"
        ),
        {"table": table},
    )
    return [name for (name,) in result]
