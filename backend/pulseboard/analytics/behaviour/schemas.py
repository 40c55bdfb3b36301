import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from pulseboard.analytics.schemas import RangeRead


class BehaviourAnswer(BaseModel):
    range: RangeRead


class EventRead(BaseModel):
    id: uuid.UUID
    timestamp: datetime
    event: str
    distinct_id: str
    session_id: str | None
    properties: dict[str, Any]
    page_url: str | None
    host: str | None
    path: str | None
    referrer: str | None
    referrer_domain: str | None
    utm_source: str | None
    utm_medium: str | None
    utm_campaign: str | None
    utm_term: str | None
    utm_content: str | None
    browser: str | None
    os: str | None
    device: str | None


class EventsRead(BehaviourAnswer):
    events: list[EventRead]
    # Pass as `cursor` for the next (older) page; null on the last page.
    next_cursor: str | None


class UserRead(BaseModel):
    distinct_id: str
    first_seen: datetime
    last_seen: datetime
    events: int
    sessions: int


class UsersRead(BehaviourAnswer):
    # Every user that matches, across all pages.
    total: int
    users: list[UserRead]
    next_cursor: str | None


class UserTimelineRead(EventsRead):
    user: UserRead


class FunnelStep(BaseModel):
    step: str
    count: int
    # Percentages; null when nobody reached the step they are measured from.
    conversion_from_first: float | None
    conversion_from_previous: float | None
    median_seconds_from_previous: float | None


class FunnelRead(BehaviourAnswer):
    window: int
    steps: list[FunnelStep]


class RetentionCell(BaseModel):
    period: int
    # Null for a period that starts after the range ends: not yet known.
    users: int | None
    percentage: float | None


class Cohort(BaseModel):
    start: datetime
    size: int
    values: list[RetentionCell]


class RetentionRead(BehaviourAnswer):
    start_event: str
    return_event: str
    period: str
    periods: int
    cohorts: list[Cohort]


class PathNode(BaseModel):
    item: str
    # Sessions that went this way; `ended` of them stopped here, the rest went on to `children`
    # or to items too rare (or steps too deep) to show.
    count: int
    ended: int
    children: list["PathNode"]


class PathsRead(BehaviourAnswer):
    kind: str
    direction: str
    steps: int
    root: PathNode
