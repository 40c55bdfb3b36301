"""CSV exports of analytics answers and of raw events, streamed as they are written."""

import csv
import io
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from pulseboard.analytics.service import Scope
from pulseboard.exports.repository import EVENT_COLUMNS, stream_events
from pulseboard.models import Project


def csv_chunk(rows: Iterable[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerows([_cell(value) for value in row] for row in rows)
    return buffer.getvalue()


def _cell(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    return "" if value is None else value


def timeseries_rows(answer: dict[str, Any]) -> Iterable[Sequence[Any]]:
    """One row per point: timestamp, series key, value (and its comparison when asked)."""
    previous = answer.get("previous") or []
    yield ["timestamp", "series", "value", *(["previous"] if previous else [])]
    for index, series in enumerate(answer["series"]):
        before = previous[index]["data"] if index < len(previous) else None
        key = series["key"] if series["key"] is not None else "all events"
        for position, point in enumerate(series["data"]):
            row = [point["timestamp"], key, point["value"]]
            if previous:
                row.append(before[position]["value"] if before and position < len(before) else "")
            yield row


def breakdown_rows(answer: dict[str, Any]) -> Iterable[Sequence[Any]]:
    compared = answer.get("compare") is not None
    numbers = ["count", "unique_users", "unique_sessions"]
    yield [answer["by"], *numbers, *(["previous", "change"] if compared else [])]
    for row in answer["rows"]:
        extra = [row.get("previous"), row.get("change")] if compared else []
        yield [row["value"], *(row[name] for name in numbers), *extra]
    other = answer.get("other")
    if other:
        yield [f"other ({other['values']} values)", other["count"]]


async def event_chunks(
    sessions: async_sessionmaker[AsyncSession], project: Project, scope: Scope, limit: int
) -> AsyncIterator[str]:
    """The CSV text of the raw events, a chunk of rows at a time, from its own session."""
    yield csv_chunk([["event" if name == "event_name" else name for name in EVENT_COLUMNS]])
    async with sessions() as session:
        async for rows in stream_events(
            session, project.id, scope.time_range, scope.filters, limit
        ):
            yield csv_chunk(rows)
