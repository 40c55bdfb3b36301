import re
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from pulseboard.analytics.deps import AnalyticsDep, BreakdownDep, ScopeDep, TimeseriesDep
from pulseboard.core.deps import ProjectReader, StateDep
from pulseboard.exports import service

router = APIRouter(prefix="/analytics/{project_id}/export", tags=["exports"])

MAX_EXPORT_ROWS = 5_000_000
CSV = {"text/csv": {"schema": {"type": "string"}}}


def _csv(chunks: AsyncIterator[str], name: str) -> StreamingResponse:
    return StreamingResponse(
        chunks,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": _as_file(name)},
    )


def _as_file(name: str) -> str:
    """An attachment named after the query, which may hold any character (a property key):
    an ASCII fallback, and the exact name as RFC 6266 spells it (headers are Latin-1 only)."""
    fallback = re.sub(r"[^A-Za-z0-9._-]", "_", name)
    return f"attachment; filename=\"{fallback}.csv\"; filename*=UTF-8''{quote(name)}.csv"


async def _from_rows(rows: Iterable[Sequence[Any]]) -> AsyncIterator[str]:
    yield service.csv_chunk(rows)


@router.get("/timeseries.csv", response_class=StreamingResponse, responses={200: {"content": CSV}})
async def export_timeseries(
    scope: ScopeDep, analytics: AnalyticsDep, request: TimeseriesDep
) -> StreamingResponse:
    """The timeseries query's points as CSV: timestamp, series, value."""
    answer = await analytics.timeseries(
        scope,
        metric=request.metric,
        interval=request.interval,
        events=request.events,
        breakdown=request.breakdown,
        limit=request.limit,
    )
    return _csv(_from_rows(service.timeseries_rows(answer)), "timeseries")


@router.get("/breakdown.csv", response_class=StreamingResponse, responses={200: {"content": CSV}})
async def export_breakdown(
    scope: ScopeDep, analytics: AnalyticsDep, request: BreakdownDep
) -> StreamingResponse:
    """The breakdown query's rows as CSV."""
    answer = await analytics.breakdown(
        scope,
        field=request.field,
        metric=request.metric,
        limit=request.limit,
        events=request.events,
    )
    return _csv(_from_rows(service.breakdown_rows(answer)), f"breakdown-{request.field.name}")


@router.get("/events.csv", response_class=StreamingResponse, responses={200: {"content": CSV}})
async def export_events(
    project: ProjectReader,
    scope: ScopeDep,
    state: StateDep,
    limit: Annotated[int, Query(ge=1, le=MAX_EXPORT_ROWS)] = 1_000_000,
) -> StreamingResponse:
    """Raw events of the range with the filters, oldest first, streamed from the database."""
    chunks = service.event_chunks(state.sessions, project, scope, limit)
    return _csv(chunks, "events")
