"""All SQL of the ingest worker: idempotent raw inserts, locked rollup merges, source counters."""

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Table, select, text, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from pulseboard.models import Event, EventRollup, MetricPoint, MetricRollup
from pulseboard.pipeline.rollups import (
    EventKey,
    EventRollupValues,
    MetricKey,
    MetricRollupValues,
)

# Rows per statement: SQLite allows 32,766 bound values; events have 24 columns.
CHUNK = 1000
KEY_CHUNK = 500
# Namespace of the advisory locks that serialise rollup merges per project.
ROLLUP_LOCK = 7_410_001

EVENT_KEY = ("project_id", "granularity", "bucket", "event_name", "dimension", "value")
METRIC_KEY = ("project_id", "granularity", "bucket", "name", "tags")


class PipelineRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.dialect = session.get_bind().dialect.name

    def _insert(self, table: Table) -> Any:
        module = postgresql if self.dialect == "postgresql" else sqlite
        return module.insert(table)

    async def insert_new(
        self, table: Table, rows: Sequence[dict[str, Any]]
    ) -> set[tuple[Any, ...]]:
        """Insert rows, skipping any already stored; return the keys of those that were new."""
        inserted: set[tuple[Any, ...]] = set()
        columns = (table.c.project_id, table.c.timestamp, table.c.id)
        for start in range(0, len(rows), CHUNK):
            statement = (
                self._insert(table)
                .values(rows[start : start + CHUNK])
                .on_conflict_do_nothing()
                .returning(*columns)
            )
            result = await self.session.execute(statement)
            inserted.update((row[0], row[1], row[2]) for row in result)
        return inserted

    async def insert_events(self, rows: Sequence[dict[str, Any]]) -> set[tuple[Any, ...]]:
        return await self.insert_new(Event.__table__, rows)  # type: ignore[arg-type]

    async def insert_metric_points(self, rows: Sequence[dict[str, Any]]) -> set[tuple[Any, ...]]:
        return await self.insert_new(MetricPoint.__table__, rows)  # type: ignore[arg-type]

    async def lock_rollups(self, project_ids: Iterable[uuid.UUID]) -> None:
        """Hold each project's rollups until commit, so that concurrent workers merge in turn.

        In sorted order, so that two workers never wait on each other. SQLite needs no lock: the
        raw insert before this already took the database's single write lock.
        """
        if self.dialect != "postgresql":
            return
        for project_id in sorted(set(project_ids)):
            await self.session.execute(
                text("SELECT pg_advisory_xact_lock(:space, hashtext(:project))"),
                {"space": ROLLUP_LOCK, "project": str(project_id)},
            )

    async def load_event_rollups(
        self, keys: Sequence[EventKey]
    ) -> dict[EventKey, EventRollupValues]:
        table = EventRollup.__table__
        found: dict[EventKey, EventRollupValues] = {}
        key_columns = [table.c[name] for name in EVENT_KEY]
        for start in range(0, len(keys), KEY_CHUNK):
            statement = select(*key_columns, table.c.count, table.c.users, table.c.sessions).where(
                tuple_(*key_columns).in_(keys[start : start + KEY_CHUNK])
            )
            for row in await self.session.execute(statement):
                key = (row[0], row[1], row[2], row[3], row[4], row[5])
                found[key] = EventRollupValues(row[6], row[7], row[8])
        return found

    async def save_event_rollups(self, values: dict[EventKey, EventRollupValues]) -> None:
        rows = [
            {
                **dict(zip(EVENT_KEY, key, strict=True)),
                "count": v.count,
                "users": v.users,
                "sessions": v.sessions,
            }
            for key, v in values.items()
        ]
        await self._upsert(EventRollup.__table__, rows, EVENT_KEY, ("count", "users", "sessions"))  # type: ignore[arg-type]

    async def load_metric_rollups(
        self, keys: Sequence[MetricKey]
    ) -> dict[MetricKey, MetricRollupValues]:
        table = MetricRollup.__table__
        found: dict[MetricKey, MetricRollupValues] = {}
        key_columns = [table.c[name] for name in METRIC_KEY]
        for start in range(0, len(keys), KEY_CHUNK):
            values = [table.c[name] for name in ("count", "sum", "min", "max", "quantiles")]
            statement = select(*key_columns, *values).where(
                tuple_(*key_columns).in_(keys[start : start + KEY_CHUNK])
            )
            for row in await self.session.execute(statement):
                key = (row[0], row[1], row[2], row[3], row[4])
                found[key] = MetricRollupValues(row[5], row[6], row[7], row[8], row[9])
        return found

    async def save_metric_rollups(self, values: dict[MetricKey, MetricRollupValues]) -> None:
        rows = [
            {
                **dict(zip(METRIC_KEY, key, strict=True)),
                "count": v.count,
                "sum": v.sum,
                "min": v.min,
                "max": v.max,
                "quantiles": v.quantiles,
            }
            for key, v in values.items()
        ]
        await self._upsert(
            MetricRollup.__table__,  # type: ignore[arg-type]
            rows,
            METRIC_KEY,
            ("count", "sum", "min", "max", "quantiles"),
        )

    async def _upsert(
        self,
        table: Table,
        rows: list[dict[str, Any]],
        key: tuple[str, ...],
        columns: tuple[str, ...],
    ) -> None:
        # The merged values were computed under the rollup lock: they replace what is stored.
        for start in range(0, len(rows), CHUNK):
            statement = self._insert(table)
            statement = statement.on_conflict_do_update(
                index_elements=list(key),
                set_={name: statement.excluded[name] for name in columns},
            )
            await self.session.execute(statement, rows[start : start + CHUNK])
