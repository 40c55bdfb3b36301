"""Input types and enums, and how they become the services' Scope, filters and queries."""

from datetime import UTC, datetime
from enum import Enum
from typing import Any

import strawberry
from pydantic import ValidationError
from strawberry.utils.str_converters import to_camel_case

from pulseboard.analytics.filters import Filter, parse_filter_items
from pulseboard.analytics.planner import Source
from pulseboard.analytics.service import Scope
from pulseboard.analytics.timerange import Compare, InvalidQuery, Preset, resolve
from pulseboard.metrics.schemas import MetricQueryCreate
from pulseboard.metrics.service import MetricQuery
from pulseboard.models import Project

# The services' own enums, exposed under their member names (LAST_7D, PREVIOUS_PERIOD, RAW).
strawberry.enum(Preset, name="RangePreset")
strawberry.enum(Compare, name="Compare")
strawberry.enum(
    Source, name="Source", description="AUTO: rollups when they can answer; ROLLUPS or RAW insist"
)


@strawberry.enum(description="Bucket width of a series; AUTO picks one from the range's length")
class Interval(Enum):
    AUTO = "auto"
    MINUTE = "minute"
    FIVE_MINUTES = "5m"
    FIFTEEN_MINUTES = "15m"
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


@strawberry.enum(description="What a timeseries or breakdown counts")
class SeriesMetric(Enum):
    COUNT = "count"
    UNIQUE_USERS = "unique_users"
    UNIQUE_SESSIONS = "unique_sessions"


@strawberry.enum(description="How the samples of a raw metric are aggregated per bucket")
class Aggregation(Enum):
    COUNT = "count"
    SUM = "sum"
    AVG = "avg"
    MIN = "min"
    MAX = "max"
    P50 = "p50"
    P95 = "p95"
    P99 = "p99"


@strawberry.enum(
    description="EQ, NEQ and CONTAINS take `value`; IN takes `values`; GT and LT take "
    "`number`; IS_SET takes nothing"
)
class FilterOp(Enum):
    EQ = "eq"
    NEQ = "neq"
    IN = "in"
    CONTAINS = "contains"
    GT = "gt"
    LT = "lt"
    IS_SET = "is_set"


# Which input field each op reads; the others must be left out.
_OPERAND = {
    FilterOp.EQ: "value",
    FilterOp.NEQ: "value",
    FilterOp.CONTAINS: "value",
    FilterOp.IN: "values",
    FilterOp.GT: "number",
    FilterOp.LT: "number",
    FilterOp.IS_SET: None,
}


@strawberry.input(description="One condition; every filter of a list must hold")
class FilterInput:
    key: str = strawberry.field(
        description="A dimension (path, referrer, browser, ...) or a property key"
    )
    op: FilterOp = FilterOp.EQ
    value: str | None = None
    values: list[str] | None = None
    number: float | None = None


@strawberry.input(description="The range (a preset, or from/to), filters, comparison and path")
class ScopeInput:
    range: Preset | None = strawberry.field(
        default=None, description="Default LAST_7D when neither range nor from is given"
    )
    from_: datetime | None = strawberry.field(
        default=None, name="from", description="ISO 8601 with an offset"
    )
    to: datetime | None = strawberry.field(default=None, description="Defaults to now")
    filters: list[FilterInput] = strawberry.field(default_factory=list)
    compare: Compare | None = None
    source: Source = Source.AUTO


@strawberry.input
class TimeRangeInput:
    start: datetime
    end: datetime


@strawberry.input(description="The body of POST /api/v1/metrics/query, typed")
class MetricQueryInput:
    metric_name: str
    time_range: TimeRangeInput
    aggregation: Aggregation | None = strawberry.field(
        default=None, description="For a raw metric (default AVG); a definition has its own"
    )
    interval: Interval = Interval.AUTO
    group_by: list[str] = strawberry.field(default_factory=list)
    filters: list[FilterInput] = strawberry.field(default_factory=list)
    source: Source = Source.AUTO


def filter_items(filters: list[FilterInput]) -> list[dict[str, Any]]:
    """The REST form of the filters, refusing an operand the op does not take."""
    items: list[dict[str, Any]] = []
    for index, item in enumerate(filters):
        operand = _OPERAND[item.op]
        given = {"value": item.value, "values": item.values, "number": item.number}
        extra = [name for name, value in given.items() if value is not None and name != operand]
        if extra or (operand is not None and given[operand] is None):
            wants = f"`{operand}`" if operand else "no operand"
            raise InvalidQuery(f"filters[{index}]: op {item.op.name} takes {wants}")
        body: dict[str, Any] = {"key": item.key, "op": item.op.value}
        if operand is not None:
            body["value"] = given[operand]
        items.append(body)
    return items


def parse_filters(filters: list[FilterInput]) -> tuple[Filter, ...]:
    return parse_filter_items(filter_items(filters))


def scope_of(scope: ScopeInput | None, project: Project) -> Scope:
    """The Scope the REST routes build from their query parameters."""
    scope = scope or ScopeInput()
    time_range = resolve(scope.range, scope.from_, scope.to, project.timezone, datetime.now(UTC))
    return Scope(time_range, parse_filters(scope.filters), scope.compare, scope.source)


def metric_query_of(data: MetricQueryInput, project: Project) -> MetricQuery:
    """The MetricQuery that POST /metrics/query builds from the same body."""
    try:
        body = MetricQueryCreate(
            metric_name=data.metric_name,
            time_range={"start": data.time_range.start, "end": data.time_range.end},
            aggregation=data.aggregation.value if data.aggregation else None,
            interval=data.interval.value,
            group_by=data.group_by,
            filters=filter_items(data.filters),
            source=data.source,
        )
    except ValidationError as exc:
        raise InvalidQuery(_first_problem(exc)) from None
    return MetricQuery.of(body, project)


def _first_problem(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(to_camel_case(str(part)) for part in error["loc"])
    return f"input.{where}: {error['msg']}" if where else error["msg"]
