"""The planner: answer from rollups whenever the query allows, from raw rows otherwise.

Each bucket of a query is tiled by the coarsest rollup buckets that fit: whole local days from
day rollups, whole hours at the edges from hour rollups, the minutes left from minute rollups.
Rollup rows hold the event name and at most one dimension (hours and days only; each dimension
also has rows of all events together, read when no event name is filtered on or grouped by), so
a query that filters or breaks down by a property, by two dimensions, by a dimension with
`neq`/`gt`/`lt`, or over a range not on minute boundaries goes to raw rows. So does a span older
than the rollups of its granularity are kept. Both paths count the same rows (bots excluded) and
give the same answers, unique counts within the sketch's error.
"""

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from pulseboard.analytics.fields import EVENT, Dimension, Field, Property
from pulseboard.analytics.filters import ROLLUP_OPS, Filter, Op
from pulseboard.analytics.metrics import Needs
from pulseboard.analytics.timerange import (
    DAY,
    HOUR,
    MINUTE,
    InvalidQuery,
    TimeRange,
    local_date,
    local_midnight,
)
from pulseboard.core.settings import Settings
from pulseboard.pipeline.rollups import TOTAL, all_events

Bucket = tuple[datetime, datetime]


class Source(StrEnum):
    AUTO = "auto"
    ROLLUPS = "rollups"
    RAW = "raw"


@dataclass(frozen=True, slots=True)
class EventQuery:
    """Events of a project counted per bucket, optionally per value of one field."""

    project_id: uuid.UUID
    time_range: TimeRange
    buckets: tuple[Bucket, ...]
    filters: tuple[Filter, ...] = ()
    group_by: Field | None = None
    needs: Needs = Needs.COUNT
    # Only the values wanted of `group_by`, when a top N was chosen first.
    group_values: tuple[str, ...] | None = None
    source: Source = Source.AUTO


@dataclass(frozen=True, slots=True)
class Span:
    granularity: int
    start: datetime
    end: datetime
    bucket: int  # the index of the query bucket this span is part of


@dataclass(frozen=True, slots=True)
class RollupPlan:
    dimension: str  # the rollup dimension read, TOTAL when none
    spans: tuple[Span, ...]
    # Filters on that dimension's value (the others are on the event name).
    value_filters: tuple[Filter, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class RawPlan:
    reason: str


Plan = RollupPlan | RawPlan


def plan(query: EventQuery, now: datetime, settings: Settings) -> Plan:
    chosen = _plan(query, now, settings)
    if query.source is Source.ROLLUPS and isinstance(chosen, RawPlan):
        raise InvalidQuery(f"Rollups cannot answer this query: {chosen.reason}")
    return chosen


def _plan(query: EventQuery, now: datetime, settings: Settings) -> Plan:
    if query.source is Source.RAW:
        return RawPlan("raw rows were asked for")
    fields = {f.field for f in query.filters if f.field != EVENT}
    if query.group_by is not None and query.group_by != EVENT:
        fields.add(query.group_by)
    if len(fields) > 1:
        return RawPlan("rollups keep one dimension at a time")
    dimension: Dimension | None = None
    if fields:
        only = fields.pop()
        if isinstance(only, Property):
            return RawPlan(f"property {only.key!r} is not rolled up")
        if only.rollup is None:
            return RawPlan(f"dimension {only.name!r} is not rolled up")
        dimension = only
    for item in query.filters:
        if item.field == EVENT and item.op in (Op.GT, Op.LT):
            return RawPlan("event names are compared as text")
        if item.field != EVENT and item.op not in ROLLUP_OPS:
            return RawPlan(f"{item.op.value} also matches unset values, which rollups don't keep")
    spans: list[Span] = []
    tz = query.time_range.zone
    for index, (start, end) in enumerate(query.buckets):
        if start.timestamp() % MINUTE or end.timestamp() % MINUTE:
            return RawPlan("the range is not on minute boundaries")
        for granularity, span_start, span_end in cover(start, end, tz):
            if granularity == MINUTE and dimension is not None:
                return RawPlan("minute rollups hold totals only")
            if not _kept(granularity, span_start, now, settings):
                return RawPlan("rollups of that age are no longer kept")
            spans.append(Span(granularity, span_start, span_end, index))
    value_filters = tuple(f for f in query.filters if f.field != EVENT)
    rollup = TOTAL if dimension is None or dimension.rollup is None else dimension.rollup
    if rollup != TOTAL and query.group_by != EVENT and len(value_filters) == len(query.filters):
        # Nothing tells event names apart: the rows of every event, one per value and bucket.
        rollup = all_events(rollup)
    return RollupPlan(rollup, tuple(spans), value_filters)


def cover(start: datetime, end: datetime, tz: ZoneInfo) -> list[tuple[int, datetime, datetime]]:
    """[start, end) as whole local days, then whole hours, then minutes (both on minutes)."""
    spans: list[tuple[int, datetime, datetime]] = []
    first_midnight = local_midnight(local_date(start, tz), tz)
    if first_midnight < start:
        first_midnight = local_midnight(local_date(start, tz) + timedelta(days=1), tz)
    last_midnight = local_midnight(local_date(end, tz), tz)
    edges = [(start, end)]
    if first_midnight < last_midnight:
        spans.append((DAY, first_midnight, last_midnight))
        edges = [(start, first_midnight), (last_midnight, end)]
    for edge_start, edge_end in edges:
        if edge_start >= edge_end:
            continue
        first_hour = _ceil(edge_start, HOUR)
        last_hour = _floor(edge_end, HOUR)
        minutes = [(edge_start, edge_end)]
        if first_hour < last_hour:
            spans.append((HOUR, first_hour, last_hour))
            minutes = [(edge_start, first_hour), (last_hour, edge_end)]
        spans.extend((MINUTE, s, e) for s, e in minutes if s < e)
    return spans


def _floor(moment: datetime, seconds: int) -> datetime:
    return moment - timedelta(seconds=moment.timestamp() % seconds)


def _ceil(moment: datetime, seconds: int) -> datetime:
    floored = _floor(moment, seconds)
    return floored if floored == moment else floored + timedelta(seconds=seconds)


def _kept(granularity: int, start: datetime, now: datetime, settings: Settings) -> bool:
    days = {
        MINUTE: settings.retention_minute_rollup_days,
        HOUR: settings.retention_hour_rollup_days,
        DAY: settings.retention_day_rollup_days,
    }[granularity]
    # Retention runs hourly and drops whole buckets: stay a day clear of its edge.
    return days == 0 or start >= now - timedelta(days=days - 1)
