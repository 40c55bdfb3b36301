from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class RangeRead(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: datetime = Field(alias="from")
    to: datetime
    timezone: str


class AnswerBase(BaseModel):
    range: RangeRead
    compare: RangeRead | None = None
    # Which path answered: "rollups", "raw", or both ("raw+rollups").
    source: str


class Number(BaseModel):
    value: float | None
    previous: float | None = None
    # Percent change from `previous`; null when there is no comparison or it was 0.
    change: float | None = None


class TopEvent(BaseModel):
    name: str | None
    count: int


class TopEventNumber(BaseModel):
    value: TopEvent | None
    previous: TopEvent | None = None


class OverviewRead(AnswerBase):
    total_events: Number
    unique_users: Number
    unique_sessions: Number
    pageviews: Number
    bounce_rate: Number
    avg_session_duration: Number
    top_event: TopEventNumber


class Point(BaseModel):
    timestamp: datetime
    value: float


class Series(BaseModel):
    # The event name, the breakdown value or "other"; null for all events.
    key: str | None
    other: bool = False
    data: list[Point]


class TimeseriesRead(AnswerBase):
    interval: str
    metric: str
    series: list[Series]
    previous: list[Series] | None = None


class BreakdownRow(BaseModel):
    value: str
    count: int
    unique_users: int
    unique_sessions: int
    previous: float | None = None
    change: float | None = None


class OtherRow(BaseModel):
    values: int
    count: int


class BreakdownRead(AnswerBase):
    by: str
    metric: str
    rows: list[BreakdownRow]
    # Every value past the top `limit`, together.
    other: OtherRow | None = None


class DurationBand(BaseModel):
    band: str
    sessions: int


class PagesBand(BaseModel):
    pages: int
    sessions: int


class SessionNumbers(BaseModel):
    sessions: int
    bounce_rate: float | None
    avg_duration: float | None
    pages_per_session: float | None


class SessionsRead(AnswerBase, SessionNumbers):
    duration_distribution: list[DurationBand]
    pages_distribution: list[PagesBand]
    previous: SessionNumbers | None = None
