"""Request parameters shared by the analytics routes, their CSV exports and their GraphQL twins."""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Query

from pulseboard.analytics import service
from pulseboard.analytics.fields import Field, field_of
from pulseboard.analytics.filters import parse_filters
from pulseboard.analytics.metrics import EventMetric, event_metric
from pulseboard.analytics.planner import Source
from pulseboard.analytics.timerange import Compare, Interval, InvalidQuery, Preset, resolve
from pulseboard.core.deps import ProjectReader, SessionDep, StateDep

MAX_LIMIT = 1000


async def get_scope(
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


async def get_analytics(
    project: ProjectReader, session: SessionDep, state: StateDep
) -> service.Analytics:
    return service.Analytics(session, state.settings, state.cache, project)


AnalyticsDep = Annotated[service.Analytics, Depends(get_analytics)]


def field_param(name: str, parameter: str) -> Field:
    field = field_of(name)
    if field is None:
        raise InvalidQuery(f"`{parameter}` must be a dimension or property name")
    return field


@dataclass(frozen=True, slots=True)
class TimeseriesRequest:
    metric: EventMetric
    interval: Interval | None
    events: tuple[str, ...]
    breakdown: Field | None
    limit: int


async def timeseries_request(
    events: Events = [],  # noqa: B006 (FastAPI copies query defaults)
    metric: str = "count",
    interval: Annotated[
        str, Query(description="minute, 5m, 15m, hour, day, week, month or auto")
    ] = "auto",
    breakdown: Annotated[
        str | None, Query(description="A dimension or property key: one series per top value")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=50)] = 5,
) -> TimeseriesRequest:
    by = field_param(breakdown, "breakdown") if breakdown else None
    if by is not None and len(events) > 1:
        raise InvalidQuery("A breakdown takes at most one event")
    return TimeseriesRequest(
        metric=event_metric(metric),
        interval=Interval.parse(interval),
        events=tuple(dict.fromkeys(events)),
        breakdown=by,
        limit=limit,
    )


TimeseriesDep = Annotated[TimeseriesRequest, Depends(timeseries_request)]


@dataclass(frozen=True, slots=True)
class BreakdownRequest:
    field: Field
    metric: EventMetric
    limit: int
    events: tuple[str, ...]


async def breakdown_request(
    by: Annotated[str, Query(description="path, referrer, utm_source, browser, os, device, ...")],
    events: Events = [],  # noqa: B006
    metric: str = "count",
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 10,
) -> BreakdownRequest:
    return BreakdownRequest(
        field=field_param(by, "by"),
        metric=event_metric(metric),
        limit=limit,
        events=tuple(dict.fromkeys(events)),
    )


BreakdownDep = Annotated[BreakdownRequest, Depends(breakdown_request)]
