from typing import Annotated, Any

from fastapi import APIRouter, Query

from pulseboard.analytics.deps import (
    MAX_LIMIT,
    AnalyticsDep,
    BreakdownDep,
    ScopeDep,
    TimeseriesDep,
)
from pulseboard.analytics.fields import EVENT
from pulseboard.analytics.metrics import event_metric
from pulseboard.analytics.schemas import BreakdownRead, OverviewRead, SessionsRead, TimeseriesRead

router = APIRouter(prefix="/analytics/{project_id}", tags=["analytics"])


@router.get("/overview", response_model=OverviewRead)
async def overview(scope: ScopeDep, analytics: AnalyticsDep) -> Any:
    """Totals of the range, each beside its comparison value and change."""
    return await analytics.overview(scope)


@router.get("/timeseries", response_model=TimeseriesRead)
async def timeseries(scope: ScopeDep, analytics: AnalyticsDep, request: TimeseriesDep) -> Any:
    """One series per event (or one for all), or per top value of a breakdown, gaps filled."""
    return await analytics.timeseries(
        scope,
        metric=request.metric,
        interval=request.interval,
        events=request.events,
        breakdown=request.breakdown,
        limit=request.limit,
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
async def breakdown(scope: ScopeDep, analytics: AnalyticsDep, request: BreakdownDep) -> Any:
    """The top values of a dimension or property key, with their counts and unique counts."""
    return await analytics.breakdown(
        scope,
        field=request.field,
        metric=request.metric,
        limit=request.limit,
        events=request.events,
    )


@router.get("/sessions", response_model=SessionsRead)
async def sessions(scope: ScopeDep, analytics: AnalyticsDep) -> Any:
    """Sessions of the range: count, bounce rate, durations and pages per session."""
    return await analytics.sessions(scope)
