"""The raw-event rows of an export, read with a server-side cursor so that none is held whole."""

import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from pulseboard.analytics.filters import Filter
from pulseboard.analytics.sql import EVENTS, EventSql
from pulseboard.analytics.timerange import TimeRange

EVENT_COLUMNS = (
    "timestamp",
    "id",
    "event_name",
    "distinct_id",
    "session_id",
    "page_url",
    "host",
    "path",
    "referrer",
    "referrer_domain",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "browser",
    "os",
    "device",
    "properties",
)
FETCH_ROWS = 2000


async def stream_events(
    session: AsyncSession,
    project_id: uuid.UUID,
    time_range: TimeRange,
    filters: tuple[Filter, ...],
    limit: int,
) -> AsyncIterator[Sequence[Any]]:
    """Rows of the range, oldest first, in chunks of FETCH_ROWS."""
    sql = EventSql(session.get_bind().dialect.name)
    statement = (
        select(*(EVENTS[name] for name in EVENT_COLUMNS))
        .where(
            EVENTS.project_id == project_id,
            EVENTS.timestamp >= time_range.start,
            EVENTS.timestamp < time_range.end,
            *sql.filters(filters),
        )
        .order_by(EVENTS.timestamp, EVENTS.id)
        .limit(limit)
        .execution_options(yield_per=FETCH_ROWS)
    )
    result = await session.stream(statement)
    async for chunk in result.partitions(FETCH_ROWS):
        yield chunk
