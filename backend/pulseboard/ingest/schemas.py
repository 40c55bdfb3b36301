"""What an ingest request may carry; the limits come from Settings and each refusal says why."""

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from pulseboard.core.nul import REASON as NUL_REASON
from pulseboard.core.nul import check_text, has_escaped_nul
from pulseboard.core.settings import Settings


@dataclass(frozen=True, slots=True)
class Limits:
    max_batch: int
    max_name_length: int
    max_property_keys: int
    max_property_depth: int
    max_property_bytes: int
    max_age: timedelta
    max_future: timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> "Limits":
        return cls(
            max_batch=settings.ingest_max_batch,
            max_name_length=settings.ingest_max_name_length,
            max_property_keys=settings.ingest_max_property_keys,
            max_property_depth=settings.ingest_max_property_depth,
            max_property_bytes=settings.ingest_max_property_bytes,
            max_age=timedelta(days=settings.ingest_max_age_days),
            max_future=timedelta(minutes=settings.ingest_max_future_minutes),
        )


def _limits(info: ValidationInfo) -> Limits:
    limits: Limits = (info.context or {})["limits"]
    return limits


def _depth(value: Any) -> int:
    # Called for every event's properties: a loop, and no call for the scalars that most hold.
    if isinstance(value, dict):
        children: Iterable[Any] = value.values()
    elif isinstance(value, list):
        children = value
    else:
        return 0
    deepest = 0
    for child in children:
        if isinstance(child, dict | list):
            deepest = max(deepest, _depth(child))
    return 1 + deepest


def check_name(value: str, info: ValidationInfo) -> str:
    limit = _limits(info).max_name_length
    if len(value) > limit:
        raise ValueError(f"is {len(value)} characters long; the limit is {limit}")
    if not value.strip():
        raise ValueError("must not be blank")
    if "\x00" in value:
        raise ValueError(NUL_REASON)
    return value


def check_mapping(value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
    limits = _limits(info)
    if len(value) > limits.max_property_keys:
        raise ValueError(f"has {len(value)} keys; the limit is {limits.max_property_keys}")
    depth = _depth(value)
    if depth > limits.max_property_depth:
        raise ValueError(f"nests {depth} levels deep; the limit is {limits.max_property_depth}")
    text = orjson.dumps(value)
    if len(text) > limits.max_property_bytes:
        raise ValueError(f"is {len(text)} bytes as JSON; the limit is {limits.max_property_bytes}")
    if has_escaped_nul(text):
        raise ValueError(f"{NUL_REASON} (in a key or a value)")
    return value


def check_moment(value: datetime | None) -> datetime | None:
    """`sent_at` in UTC. Items' timestamps are converted where they are checked against the
    clock: a validator less each."""
    return None if value is None else as_utc(value)


class EventIn(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=False)

    event: str = Field(min_length=1)
    properties: dict[str, Any] = Field(default_factory=dict)
    distinct_id: str | None = Field(default=None, max_length=200)
    session_id: str | None = Field(default=None, max_length=200)
    page_url: str | None = Field(default=None, max_length=4096)
    referrer: str | None = Field(default=None, max_length=4096)
    timestamp: datetime | None = None
    uuid: UUID | None = None

    _name = field_validator("event")(check_name)
    _properties = field_validator("properties")(check_mapping)


class CheckedEventIn(EventIn):
    """An event whose text fields are also checked for NUL characters (name and properties are
    always): for bodies that hold one, which the API finds in their JSON text before parsing
    (four more validators an event cost a request's validation 30 %), and for imports."""

    _texts = field_validator("distinct_id", "session_id", "page_url", "referrer")(check_text)


class EventBatch(BaseModel):
    model_config = ConfigDict(extra="ignore")

    events: list[EventIn]
    api_key: str | None = Field(default=None, max_length=200)
    # When the client sent the batch, by its own clock: corrects that clock's skew.
    sent_at: datetime | None = None

    _sent_at = field_validator("sent_at")(check_moment)


class CheckedEventBatch(EventBatch):
    events: list[CheckedEventIn]  # type: ignore[assignment]


class MetricIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str = Field(min_length=1)
    value: float
    timestamp: datetime | None = None
    tags: dict[str, str | int | float | bool] = Field(default_factory=dict)

    _name = field_validator("name")(check_name)
    _tags = field_validator("tags")(check_mapping)

    @field_validator("value")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value


class MetricBatch(BaseModel):
    model_config = ConfigDict(extra="ignore")

    metrics: list[MetricIn]
    api_key: str | None = Field(default=None, max_length=200)
    sent_at: datetime | None = None

    _sent_at = field_validator("sent_at")(check_moment)


class Accepted(BaseModel):
    accepted: int


class ItemError(BaseModel):
    # None when the problem is the batch itself (not a list, a field missing), not one item.
    index: int | None
    field: str
    reason: str


class BatchRejected(BaseModel):
    """The 422 body when any item is invalid: nothing of the batch was stored."""

    detail: str
    code: str = "invalid_items"
    errors: list[ItemError]


def as_utc(moment: datetime) -> datetime:
    """The moment in UTC (one without an offset is taken as UTC already); ValueError when its
    offset takes it past what a datetime holds (0001-01-01T00:00+01:00 is valid ISO 8601)."""
    try:
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range") from None
