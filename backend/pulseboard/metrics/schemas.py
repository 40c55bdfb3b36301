import uuid
from datetime import datetime
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pulseboard.analytics.planner import Source
from pulseboard.metrics.formula import NAME_PATTERN

Aggregation = Literal["count", "sum", "avg", "min", "max", "p50", "p95", "p99"]
MetricName = Annotated[str, Field(min_length=1, max_length=200)]
DefinitionName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=100,
        pattern=NAME_PATTERN,
        description="Letters, digits, `_` and `.`, not starting with a digit: a formula reads it",
    ),
]
FilterItems = Annotated[
    list[dict[str, Any]],
    Field(max_length=20, description='[{"key": "route", "op": "eq", "value": "/a"}]'),
]


class TimeRangeIn(BaseModel):
    start: datetime
    end: datetime


class MetricQueryCreate(BaseModel):
    """The body of POST /metrics/query."""

    metric_name: MetricName
    time_range: TimeRangeIn
    aggregation: Aggregation | None = Field(
        default=None, description="For a raw metric (default avg); a definition has its own"
    )
    interval: str = Field(default="auto", description="minute, 5m, 15m, hour, day, week, month")
    group_by: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default_factory=list, max_length=5
    )
    filters: FilterItems = Field(default_factory=list)
    source: Source = Source.AUTO


class MetricPointRead(BaseModel):
    timestamp: datetime
    value: float | None
    tags: dict[str, Any]


class MetricQueryRead(BaseModel):
    metric_name: str
    aggregation: str
    interval: str
    # Which path answered: "rollups", "raw", or both ("raw+rollups").
    source: str
    data: list[MetricPointRead]


class MetricSummaryRead(BaseModel):
    name: str
    # "raw" for samples sent to /metrics, "events" or "formula" for a definition.
    kind: str
    # Each tag's values seen in the period (raw metrics only).
    tags: dict[str, list[str]]


class MetricListRead(BaseModel):
    metrics: list[MetricSummaryRead]


class RawPointRead(BaseModel):
    timestamp: datetime
    value: float
    tags: dict[str, Any]


class RawPointsRead(BaseModel):
    name: str
    points: list[RawPointRead]


class MetricDefinitionCreate(BaseModel):
    """An aggregate of one event (`event` set) or a formula of other definitions."""

    model_config = ConfigDict(extra="forbid")

    name: DefinitionName
    description: str | None = Field(default=None, max_length=1000)
    event: str | None = Field(default=None, min_length=1, max_length=200)
    aggregation: Aggregation | None = None
    property: str | None = Field(default=None, min_length=1, max_length=200)
    filters: FilterItems = Field(default_factory=list)
    formula: str | None = Field(default=None, min_length=1, max_length=1000)

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        if (self.event is None) == (self.formula is None):
            raise ValueError("give either `event` (with its aggregation) or `formula`")
        if self.formula is not None:
            if self.aggregation or self.property or self.filters:
                raise ValueError(
                    "a formula takes no aggregation, property or filters: its operands have them"
                )
            return self
        self.aggregation = self.aggregation or "count"
        if self.aggregation == "count" and self.property is not None:
            raise ValueError("`count` counts events: drop `property` or choose another aggregation")
        if self.aggregation != "count" and self.property is None:
            raise ValueError(f"`{self.aggregation}` needs `property`, the number it aggregates")
        return self


class MetricDefinitionUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: DefinitionName | None = None
    description: str | None = Field(default=None, max_length=1000)
    event: str | None = Field(default=None, min_length=1, max_length=200)
    aggregation: Aggregation | None = None
    property: str | None = Field(default=None, min_length=1, max_length=200)
    filters: FilterItems | None = None
    formula: str | None = Field(default=None, min_length=1, max_length=1000)


class MetricDefinitionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    project_id: uuid.UUID
    name: str
    description: str | None
    event: str | None
    aggregation: str | None
    property: str | None
    filters: list[dict[str, Any]]
    formula: str | None
    created_at: datetime
    updated_at: datetime
