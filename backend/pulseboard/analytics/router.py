from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from pulseboard.analytics import service
from pulseboard.analytics.fields import EVENT, field_of
from pulseboard.analytics.filters import parse_filters
from pulseboard.analytics.metrics import event_metric
from pulseboard.analytics.planner import Source
from pulseboard.analytics.schemas import BreakdownRead, OverviewRead, SessionsRead, TimeseriesRead
from pulseboard.analytics.timerange import Compare, Interval, InvalidQuery, Preset, resolve
from pulseboard.core.deps import ProjectReader, SessionDep, StateDep

router = APIRouter(prefix="/analytics/{project_id}", tags=["analytics"])

MAX_LIMIT = 1000


def get_scope(
    project: ProjectReader,
    range_: Annotated[Preset | None, Query(alias="range")] = None,
    from_: Annotated[datetime | None, Query(alias="from")] = None,
    to: datetime | None = None,
    filters: Annotated[
        str | None, Query(description='JSON array: [{"key": "path", "op": "eq", "value": "/"}]')
    ] = None,
    compare: Compare | None = None,
    source: Annotated[
        Source, Query(description="auto: rollups when they can answer; rollups or raw to insist")
    ] = Source.AUTO,
) -> service.Scope:
    time_range = resolve(range_, from_, to, project.timezone, datetime.now(UTC))
    return service.Scope(time_range, parse_filters(filters), compare, source)


ScopeDep = Annotated[service.Scope, Depends(get_scope)]
Events = Annotated[list[str], Query(alias="event", description="Event names; none for all")]


def get_analytics(
    project: ProjectReader, session: SessionDep, state: StateDep
) -> service.Analytics:
    return service.Analytics(session, state.settings, state.cache, project)


AnalyticsDep = Annotated[service.Analytics, Depends(get_analytics)]


@router.get("/overview", response_model=OverviewRead)
async def overview(scope: ScopeDep, analytics: AnalyticsDep) -> Any:
    """Totals of the range, each beside its comparison value and change."""
    return await analytics.overview(scope)


@router.get("/timeseries", response_model=TimeseriesRead)
async def timeseries(
    scope: ScopeDep,
    analytics: AnalyticsDep,
    events: Events = [],  # noqa: B006 (FastAPI copies query defaults)
    metric: str = "count",
    interval: Annotated[
        str, Query(description="minute, 5m, 15m, hour, day, week, month or auto")
    ] = "auto",
    breakdown: Annotated[
        str | None, Query(description="A dimension or property key: one series per top value")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=50)] = 5,
) -> Any:
    """One series per event (or one for all), or per top value of a breakdown, gaps filled."""
    by = _field(breakdown, "breakdown") if breakdown else None
    if by is not None and len(events) > 1:
        raise InvalidQuery("A breakdown takes at most one event")
    return await analytics.timeseries(
        scope,
        metric=event_metric(metric),
        interval=Interval.parse(interval),
        events=tuple(dict.fromkeys(events)),
        breakdown=by,
        limit=limit,
    )


@router.get("/top-events", response_model=BreakdownRead)
async def top_events(
    scope: ScopeDep,
    analytics: AnalyticsDep,
    metric: str = "count",
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 10,
) -> Any:
    """The events of the range, the most frequent first."""
    return await analytics.breakdown(
        scope, field=EVENT, metric=event_metric(metric), limit=limit, events=()
    )


@router.get("/breakdown", response_model=BreakdownRead)
async def breakdown(
    scope: ScopeDep,
    analytics: AnalyticsDep,
    by: Annotated[str, Query(description="path, referrer, utm_source, browser, os, device, ...")],
    events: Events = [],  # noqa: B006
    metric: str = "count",
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 10,
) -> Any:
    """The top values of a dimension or property key, with their counts and unique counts."""
    return await analytics.breakdown(
        scope,
        field=_field(by, "by"),
        metric=event_metric(metric),
        limit=limit,
        events=tuple(dict.fromkeys(events)),
    )


@router.get("/sessions", response_model=SessionsRead)
async def sessions(scope: ScopeDep, analytics: AnalyticsDep) -> Any:
    """Sessions of the range: count, bounce rate, durations and pages per session."""
    return await analytics.sessions(scope)


def _field(name: str, parameter: str) -> Any:
    field = field_of(name)
    if field is None:
        raise InvalidQuery(f"`{parameter}` must be a dimension or property name")
    return field
