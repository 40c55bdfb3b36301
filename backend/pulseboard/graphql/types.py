"""The answers' GraphQL types, built from the REST schemas so that both say the same thing.

Each `of` validates a service's answer with its REST schema first: a cached answer comes back as
JSON (times as text), and the schema is what turns it into the values both APIs serialise.
"""

from datetime import datetime
from typing import Any, NewType

import strawberry
from strawberry.types.scalar import scalar

from pulseboard.analytics import schemas
from pulseboard.graphql.inputs import Interval, SeriesMetric
from pulseboard.metrics.schemas import MetricQueryRead

# GraphQL's Int is 32 bits; a count over a long range of a busy project is not.
Count = NewType("Count", int)
COUNT_SCALAR = scalar(
    name="Count",
    description="A count of events, users or sessions; an integer that may pass 2^31",
    serialize=int,
    parse_value=int,
)


@strawberry.type
class Range:
    from_: datetime = strawberry.field(name="from")
    to: datetime
    timezone: str

    @classmethod
    def of(cls, model: schemas.RangeRead) -> "Range":
        return cls(from_=model.from_, to=model.to, timezone=model.timezone)


@strawberry.type
class Number:
    value: float | None
    previous: float | None
    change: float | None = strawberry.field(
        description="Percent change from `previous`; null without a comparison or from 0"
    )

    @classmethod
    def of(cls, model: schemas.Number) -> "Number":
        return cls(value=model.value, previous=model.previous, change=model.change)


@strawberry.type
class TopEvent:
    name: str | None
    count: Count

    @classmethod
    def of(cls, model: schemas.TopEvent | None) -> "TopEvent | None":
        return None if model is None else cls(name=model.name, count=Count(model.count))


@strawberry.type
class TopEventNumber:
    value: TopEvent | None
    previous: TopEvent | None


@strawberry.type
class Overview:
    range: Range
    compare: Range | None
    source: str = strawberry.field(description='The path that answered: "rollups", "raw" or both')
    total_events: Number
    unique_users: Number
    unique_sessions: Number
    pageviews: Number
    bounce_rate: Number
    avg_session_duration: Number
    top_event: TopEventNumber

    @classmethod
    def of(cls, answer: dict[str, Any]) -> "Overview":
        model = schemas.OverviewRead.model_validate(answer)
        top = model.top_event
        return cls(
            range=Range.of(model.range),
            compare=_compare(model.compare),
            source=model.source,
            total_events=Number.of(model.total_events),
            unique_users=Number.of(model.unique_users),
            unique_sessions=Number.of(model.unique_sessions),
            pageviews=Number.of(model.pageviews),
            bounce_rate=Number.of(model.bounce_rate),
            avg_session_duration=Number.of(model.avg_session_duration),
            top_event=TopEventNumber(
                value=TopEvent.of(top.value), previous=TopEvent.of(top.previous)
            ),
        )


@strawberry.type
class Point:
    timestamp: datetime
    value: float


@strawberry.type
class Series:
    key: str | None = strawberry.field(
        description='The event name, the breakdown value or "other"; null for all events'
    )
    other: bool
    data: list[Point]

    @classmethod
    def of(cls, model: schemas.Series) -> "Series":
        points = [Point(timestamp=p.timestamp, value=p.value) for p in model.data]
        return cls(key=model.key, other=model.other, data=points)


@strawberry.type
class Timeseries:
    range: Range
    compare: Range | None
    source: str
    interval: Interval
    metric: SeriesMetric
    series: list[Series]
    previous: list[Series] | None

    @classmethod
    def of(cls, answer: dict[str, Any]) -> "Timeseries":
        model = schemas.TimeseriesRead.model_validate(answer)
        return cls(
            range=Range.of(model.range),
            compare=_compare(model.compare),
            source=model.source,
            interval=Interval(model.interval),
            metric=SeriesMetric(model.metric),
            series=[Series.of(s) for s in model.series],
            previous=None if model.previous is None else [Series.of(s) for s in model.previous],
        )


@strawberry.type
class BreakdownRow:
    value: str
    count: Count
    unique_users: Count
    unique_sessions: Count
    previous: float | None
    change: float | None


@strawberry.type(description="Every value past the top `limit`, together")
class OtherRow:
    values: Count
    count: Count


@strawberry.type
class Breakdown:
    range: Range
    compare: Range | None
    source: str
    by: str
    metric: SeriesMetric
    rows: list[BreakdownRow]
    other: OtherRow | None

    @classmethod
    def of(cls, answer: dict[str, Any]) -> "Breakdown":
        model = schemas.BreakdownRead.model_validate(answer)
        rows = [
            BreakdownRow(
                value=row.value,
                count=Count(row.count),
                unique_users=Count(row.unique_users),
                unique_sessions=Count(row.unique_sessions),
                previous=row.previous,
                change=row.change,
            )
            for row in model.rows
        ]
        other = model.other
        return cls(
            range=Range.of(model.range),
            compare=_compare(model.compare),
            source=model.source,
            by=model.by,
            metric=SeriesMetric(model.metric),
            rows=rows,
            other=None
            if other is None
            else OtherRow(
                values=Count(other.values),
                count=Count(other.count),
            ),
        )


@strawberry.type
class DurationBand:
    band: str
    sessions: Count


@strawberry.type
class PagesBand:
    pages: int
    sessions: Count


@strawberry.type
class SessionNumbers:
    sessions: Count
    bounce_rate: float | None
    avg_duration: float | None
    pages_per_session: float | None

    @classmethod
    def of(cls, model: schemas.SessionNumbers | None) -> "SessionNumbers | None":
        if model is None:
            return None
        return cls(
            sessions=Count(model.sessions),
            bounce_rate=model.bounce_rate,
            avg_duration=model.avg_duration,
            pages_per_session=model.pages_per_session,
        )


@strawberry.type
class Sessions:
    range: Range
    compare: Range | None
    source: str
    sessions: Count
    bounce_rate: float | None
    avg_duration: float | None
    pages_per_session: float | None
    duration_distribution: list[DurationBand]
    pages_distribution: list[PagesBand]
    previous: SessionNumbers | None

    @classmethod
    def of(cls, answer: dict[str, Any]) -> "Sessions":
        model = schemas.SessionsRead.model_validate(answer)
        return cls(
            range=Range.of(model.range),
            compare=_compare(model.compare),
            source=model.source,
            sessions=Count(model.sessions),
            bounce_rate=model.bounce_rate,
            avg_duration=model.avg_duration,
            pages_per_session=model.pages_per_session,
            duration_distribution=[
                DurationBand(band=b.band, sessions=Count(b.sessions))
                for b in model.duration_distribution
            ],
            pages_distribution=[
                PagesBand(pages=b.pages, sessions=Count(b.sessions))
                for b in model.pages_distribution
            ],
            previous=SessionNumbers.of(model.previous),
        )


@strawberry.type
class Tag:
    key: str
    value: str | None = strawberry.field(description="Null for samples without the tag")


@strawberry.type
class MetricPoint:
    timestamp: datetime
    value: float | None
    tags: list[Tag] = strawberry.field(description="The series' value of each `groupBy` tag")


@strawberry.type
class MetricQueryResult:
    metric_name: str
    aggregation: str
    interval: Interval
    source: str
    data: list[MetricPoint]

    @classmethod
    def of(cls, answer: dict[str, Any]) -> "MetricQueryResult":
        model = MetricQueryRead.model_validate(answer)
        points = [
            MetricPoint(
                timestamp=point.timestamp,
                value=point.value,
                tags=[
                    Tag(key=key, value=None if value is None else str(value))
                    for key, value in point.tags.items()
                ],
            )
            for point in model.data
        ]
        return cls(
            metric_name=model.metric_name,
            aggregation=model.aggregation,
            interval=Interval(model.interval),
            source=model.source,
            data=points,
        )


def _compare(model: schemas.RangeRead | None) -> Range | None:
    return None if model is None else Range.of(model)
