from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query

from pulseboard.analytics.behaviour.funnels import MAX_WINDOW, parse_steps
from pulseboard.analytics.behaviour.paths import MAX_LIMIT, MAX_STEPS, Direction, Kind
from pulseboard.analytics.behaviour.retention import MAX_PERIODS
from pulseboard.analytics.behaviour.schemas import (
    EventsRead,
    FunnelRead,
    PathsRead,
    RetentionRead,
    UsersRead,
    UserTimelineRead,
)
from pulseboard.analytics.behaviour.service import Behaviour
from pulseboard.analytics.deps import AnalyticsDep, ScopeDep
from pulseboard.analytics.planner import Source
from pulseboard.analytics.service import Scope
from pulseboard.analytics.timerange import Interval, InvalidQuery
from pulseboard.core.deps import SessionDep

router = APIRouter(prefix="/analytics/{project_id}", tags=["analytics"])

MAX_PAGE = 1000
Cursor = Annotated[
    str | None, Query(max_length=1000, description="`next_cursor` of the previous page")
]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE)]
# PostgreSQL text cannot hold NUL, so no stored value has one: refused instead of failing in SQL.
NO_NUL = r"^[^\x00]*$"
EventName = Annotated[str, Query(min_length=1, max_length=200, pattern=NO_NUL)]


async def get_raw_scope(scope: ScopeDep) -> Scope:
    """The scope, refused where it asks for what raw-row answers cannot give."""
    if scope.compare is not None:
        raise InvalidQuery("`compare` is not available for this answer")
    if scope.source is Source.ROLLUPS:
        raise InvalidQuery("This answer is computed from raw events; rollups cannot give it")
    return scope


RawScope = Annotated[Scope, Depends(get_raw_scope)]


async def get_behaviour(analytics: AnalyticsDep, session: SessionDep) -> Behaviour:
    return Behaviour(analytics, session)


BehaviourDep = Annotated[Behaviour, Depends(get_behaviour)]


@router.get("/events", response_model=EventsRead)
async def events(
    scope: RawScope, behaviour: BehaviourDep, limit: Limit = 100, cursor: Cursor = None
) -> Any:
    """Raw events of the range that pass the filters, newest first, a page at a time."""
    return await behaviour.events(scope, limit=limit, cursor=cursor)


@router.get("/users", response_model=UsersRead)
async def users(
    scope: RawScope,
    behaviour: BehaviourDep,
    limit: Limit = 50,
    cursor: Cursor = None,
    search: Annotated[
        str | None, Query(max_length=200, pattern=NO_NUL, description="Part of the distinct id")
    ] = None,
    anonymous: Annotated[
        bool, Query(description="Include visitors without a distinct id of their own")
    ] = False,
) -> Any:
    """Identified users seen in the range, the most recently seen first."""
    return await behaviour.users(
        scope, limit=limit, cursor=cursor, search=search, include_anonymous=anonymous
    )


# `:path`, so that a distinct id may hold slashes (`/users/a/b/events` is user "a/b").
@router.get("/users/{distinct_id:path}/events", response_model=UserTimelineRead)
async def user_events(
    distinct_id: Annotated[str, Path(max_length=200, pattern=NO_NUL)],
    scope: RawScope,
    behaviour: BehaviourDep,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Any:
    """One user's events in the range, newest first, with the user's totals."""
    return await behaviour.timeline(scope, distinct_id, limit=limit, cursor=cursor)


@router.get("/funnels", response_model=FunnelRead)
async def funnels(
    scope: RawScope,
    behaviour: BehaviourDep,
    steps: Annotated[
        list[str],
        Query(
            description="2 to 10, in order: an event name or `path:/pricing` (a pageview of "
            "that path); or one JSON array of them"
        ),
    ],
    window: Annotated[
        int,
        Query(ge=1, le=MAX_WINDOW, description="Seconds from the first step to the last"),
    ] = 86400,
) -> Any:
    """Users at each step in order within the window, conversions, median time between steps."""
    return await behaviour.funnel(scope, parse_steps(steps), window)


@router.get("/retention", response_model=RetentionRead)
async def retention(
    scope: RawScope,
    behaviour: BehaviourDep,
    start_event: EventName,
    return_event: EventName | None = None,
    period: Annotated[str, Query(description="day or week")] = "day",
    periods: Annotated[int, Query(ge=1, le=MAX_PERIODS)] = 8,
) -> Any:
    """Cohorts by their first start event, and how many came back period after period."""
    interval = Interval.parse(period)
    if interval not in (Interval.DAY, Interval.WEEK):
        raise InvalidQuery("`period` must be day or week")
    return await behaviour.retention(
        scope,
        start_event=start_event,
        return_event=return_event or start_event,
        period=interval,
        periods=periods,
    )


@router.get("/paths", response_model=PathsRead)
async def paths(
    scope: RawScope,
    behaviour: BehaviourDep,
    start: Annotated[
        str,
        Query(min_length=1, max_length=1000, pattern=NO_NUL, description="A page path or an event"),
    ],
    direction: Direction = Direction.NEXT,
    kind: Kind = Kind.PATH,
    steps: Annotated[int, Query(ge=1, le=MAX_STEPS)] = 3,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Children per node")] = 5,
) -> Any:
    """The most common next (or previous) pages or events from `start`, within sessions."""
    return await behaviour.paths(
        scope, start=start, direction=direction, kind=kind, steps=steps, limit=limit
    )
