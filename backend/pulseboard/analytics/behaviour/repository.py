"""All SQL of the behaviour answers: raw event pages, users, and ordered streams of raw rows.

Pages are keyset-paginated (never OFFSET), so a page costs the same however deep it is. The
funnel, retention and path logic runs in Python over ordered streams that the service bounds.
"""

import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Select, and_, cast, func, null, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from pulseboard.analytics.filters import Filter
from pulseboard.analytics.metrics import PAGEVIEW
from pulseboard.analytics.sql import EVENTS, EventSql, tune_raw_scan
from pulseboard.analytics.timerange import MICROS_PER_SECOND, TimeRange, micros

# Without a distinct id from the sender, ingest names a visitor `anon:` + a daily hash.
ANONYMOUS_PREFIX = "anon:"
# Rows fetched from the database, and handed over, at a time while streaming.
STREAM_CHUNK = 5000

EVENT_COLUMNS = (
    EVENTS.id,
    EVENTS.timestamp,
    EVENTS.event_name.label("event"),
    EVENTS.distinct_id,
    EVENTS.session_id,
    EVENTS.properties,
    EVENTS.page_url,
    EVENTS.host,
    EVENTS.path,
    EVENTS.referrer,
    EVENTS.referrer_domain,
    EVENTS.utm_source,
    EVENTS.utm_medium,
    EVENTS.utm_campaign,
    EVENTS.utm_term,
    EVENTS.utm_content,
    EVENTS.browser,
    EVENTS.os,
    EVENTS.device,
)


@dataclass(frozen=True, slots=True)
class Selection:
    """The raw events an answer reads: one project, a range, filters (bots never)."""

    project_id: uuid.UUID
    time_range: TimeRange
    filters: tuple[Filter, ...]


@dataclass(frozen=True, slots=True)
class UserQuery:
    search: str | None = None
    include_anonymous: bool = False
    distinct_id: str | None = None


class BehaviourRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.sql = EventSql(session.get_bind().dialect.name)

    def _where(self, selection: Selection) -> list[ColumnElement[bool]]:
        return [
            EVENTS.project_id == selection.project_id,
            EVENTS.timestamp >= selection.time_range.start,
            EVENTS.timestamp < selection.time_range.end,
            *self.sql.filters(selection.filters),
        ]

    async def events(
        self,
        selection: Selection,
        limit: int,
        after: tuple[datetime, uuid.UUID] | None = None,
        distinct_id: str | None = None,
    ) -> Sequence[Any]:
        """Up to `limit` events, newest first, older than the `after` key when given."""
        conditions = self._where(selection)
        if distinct_id is not None:
            conditions.append(EVENTS.distinct_id == distinct_id)
        if after is not None:
            moment, event_id = after
            conditions.append(
                or_(
                    EVENTS.timestamp < moment,
                    and_(EVENTS.timestamp == moment, EVENTS.id < event_id),
                )
            )
        statement = (
            select(*EVENT_COLUMNS)
            .where(*conditions)
            .order_by(EVENTS.timestamp.desc(), EVENTS.id.desc())
            .limit(limit)
        )
        return (await self.session.execute(statement)).all()

    def _users(self, selection: Selection, query: UserQuery) -> Select[Any]:
        conditions = self._where(selection)
        if query.distinct_id is not None:
            conditions.append(EVENTS.distinct_id == query.distinct_id)
        if not query.include_anonymous:
            conditions.append(EVENTS.distinct_id.not_like(ANONYMOUS_PREFIX + "%"))
        if query.search:
            conditions.append(
                func.lower(EVENTS.distinct_id).contains(query.search.lower(), autoescape=True)
            )
        return (
            select(
                EVENTS.distinct_id,
                func.min(EVENTS.timestamp).label("first_seen"),
                func.max(EVENTS.timestamp).label("last_seen"),
                func.count().label("events"),
                func.count(EVENTS.session_id.distinct()).label("sessions"),
            )
            .where(*conditions)
            .group_by(EVENTS.distinct_id)
        )

    async def users(
        self,
        selection: Selection,
        query: UserQuery,
        limit: int,
        after: tuple[datetime, str] | None = None,
    ) -> Sequence[Any]:
        """Users with events in the selection, the most recently seen first."""
        last_seen = func.max(EVENTS.timestamp)
        statement = self._users(selection, query)
        if after is not None:
            moment, distinct_id = after
            statement = statement.having(
                or_(last_seen < moment, and_(last_seen == moment, EVENTS.distinct_id > distinct_id))
            )
        statement = statement.order_by(last_seen.desc(), EVENTS.distinct_id).limit(limit)
        rows: Sequence[Any] = (await self.session.execute(statement)).all()
        return rows

    async def count_users(self, selection: Selection, query: UserQuery) -> int:
        counted = self._users(selection, query).subquery()
        total = await self.session.scalar(select(func.count()).select_from(counted))
        return int(total or 0)

    def funnel_rows(
        self, selection: Selection, steps: Sequence[tuple[str, str | None]]
    ) -> AsyncIterator[Sequence[Any]]:
        """(distinct_id, microseconds since the epoch, event, path) of every event some step
        matches, per user in time order; the path is None when no step names one."""
        # The names as an IN list, so that the (project, name, time) index finds the rows.
        conditions: list[ColumnElement[bool]] = [
            EVENTS.event_name.in_(sorted({event for event, _ in steps}))
        ]
        if any(path is not None for _, path in steps):
            conditions.append(
                or_(
                    *(
                        EVENTS.event_name == event if path is None else _pageview_of(path)
                        for event, path in steps
                    )
                )
            )
        path = EVENTS.path if any(path is not None for _, path in steps) else null()
        statement = (
            select(EVENTS.distinct_id, self._micros(), EVENTS.event_name, path)
            .where(*self._where(selection), *conditions)
            .order_by(self._together(EVENTS.distinct_id), EVENTS.timestamp, EVENTS.id)
        )
        return self._stream_micros(statement)

    def retention_rows(
        self, selection: Selection, events: Sequence[str]
    ) -> AsyncIterator[Sequence[Any]]:
        """(distinct_id, microseconds since the epoch, event) of the start and return events,
        per user in time order."""
        statement = (
            select(EVENTS.distinct_id, self._micros(), EVENTS.event_name)
            .where(*self._where(selection), EVENTS.event_name.in_(events))
            .order_by(self._together(EVENTS.distinct_id), EVENTS.timestamp, EVENTS.id)
        )
        return self._stream_micros(statement)

    def _micros(self) -> ColumnElement[Any]:
        """An event's time as integer microseconds since the epoch, on PostgreSQL: funnels and
        retention read a few hundred thousand rows a week of a busy project, and asyncpg makes
        an integer several times faster than an aware datetime (bench/query.py's funnel query
        in psql: 336-419 ms against 430-536 ms). SQLite's are converted as they are read."""
        if self.sql.dialect == "postgresql":
            return cast(func.extract("epoch", EVENTS.timestamp) * MICROS_PER_SECOND, BigInteger)
        return EVENTS.timestamp

    async def _stream_micros(self, statement: Select[Any]) -> AsyncIterator[Sequence[Any]]:
        """`_stream` of rows whose second column is `_micros()`."""
        async for chunk in self._stream(statement):
            if self.sql.dialect == "postgresql":
                yield chunk
            else:
                yield [(row[0], micros(row[1]), *row[2:]) for row in chunk]

    def session_items(self, selection: Selection, *, pages: bool) -> AsyncIterator[Sequence[Any]]:
        """(session_id, item) per session in order: page paths of pageviews, or event names."""
        item = EVENTS.path if pages else EVENTS.event_name
        conditions = [*self._where(selection), EVENTS.session_id.is_not(None)]
        if pages:
            conditions += [EVENTS.event_name == PAGEVIEW, EVENTS.path.is_not(None)]
        statement = (
            select(EVENTS.session_id, item.label("item"))
            .where(*conditions)
            .order_by(self._together(EVENTS.session_id), EVENTS.timestamp, EVENTS.id)
        )
        return self._stream(statement)

    def _together(self, key: ColumnElement[Any]) -> ColumnElement[Any]:
        """A sort key that only has to keep equal values together: in PostgreSQL compared as
        bytes, several times cheaper than by the database's collation."""
        return key.collate("C") if self.sql.dialect == "postgresql" else key

    async def _stream(self, statement: Select[Any]) -> AsyncIterator[Sequence[Any]]:
        # Sorting a week of a busy project's funnel rows by user spills to disk at the default
        # 4 MB of work_mem.
        await tune_raw_scan(self.session)
        if self.sql.dialect == "postgresql":
            async for records in self._stream_records(statement):
                yield records
            return
        result = await self.session.stream(statement.execution_options(yield_per=STREAM_CHUNK))
        try:
            # A chunk at a time: row by row, the async hand-over per row costs more than the SQL.
            async for chunk in result.partitions():
                yield chunk
        finally:
            await result.close()

    async def _stream_records(self, statement: Select[Any]) -> AsyncIterator[Sequence[Any]]:
        """asyncpg's own records from a cursor in the session's transaction: a funnel reads
        hundreds of thousands of rows, and building a SQLAlchemy Row for each one costs more
        than the query. Every column read here comes back from asyncpg as it is stored (text,
        and timestamptz as aware UTC datetimes)."""
        connection = await self.session.connection()
        compiled = statement.compile(
            dialect=connection.dialect, compile_kwargs={"render_postcompile": True}
        )
        values = compiled.construct_params()
        # The parameters converted as SQLAlchemy would (uuids, UTC datetimes), in $n order.
        processors: Mapping[str, Callable[[Any], Any]] = compiled._bind_processors  # type: ignore[assignment]
        params = [
            processors[name](values[name]) if name in processors else values[name]
            for name in compiled.positiontup or ()
        ]
        raw = await connection.get_raw_connection()
        driver: Any = raw.driver_connection
        cursor = await driver.cursor(str(compiled), *params)
        while records := await cursor.fetch(STREAM_CHUNK):
            yield records


def _pageview_of(path: str) -> ColumnElement[bool]:
    return and_(EVENTS.event_name == PAGEVIEW, EVENTS.path == path)
