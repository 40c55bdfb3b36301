"""The messages of the live WebSocket protocol, both ways (docs/LIVE.md)."""

from datetime import datetime
from enum import IntEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator

# The refresh intervals a dashboard widget offers, in seconds.
INTERVALS = (1, 5, 30, 60)
# Live numbers: totals, or one event's count, or one metric's count/sum/min/max.
PLAIN_NUMBERS = ("events", "users", "sessions")
NUMBER_PREFIXES = ("event:", "metric:")
MAX_NAME_LENGTH = 200


class CloseCode(IntEnum):
    """Why the server closed a socket; 4000-4999 is the range left to applications."""

    POLICY_VIOLATION = 1008  # the project id in the path is not a UUID
    BAD_REQUEST = 4400  # a malformed `since` or first message
    UNAUTHENTICATED = 4401  # no token, or an invalid, expired or revoked one
    FORBIDDEN = 4403  # a member whose role may not read the project
    NOT_FOUND = 4404  # no such project, or another organization's
    TOO_SLOW = 4408  # the client stopped reading


# Client → server.


class _ClientMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AuthMessage(_ClientMessage):
    type: Literal["auth"]
    token: str = Field(min_length=1, max_length=4096)


class SubscribeMessage(_ClientMessage):
    """Ask for these numbers every `interval` seconds; an empty list stops that interval."""

    type: Literal["subscribe"]
    interval: Literal[1, 5, 30, 60]
    numbers: list[str] = Field(max_length=50)

    @field_validator("numbers")
    @classmethod
    def _known_numbers(cls, numbers: list[str]) -> list[str]:
        for number in numbers:
            if number in PLAIN_NUMBERS:
                continue
            prefix, _, name = number.partition(":")
            if f"{prefix}:" not in NUMBER_PREFIXES or not 0 < len(name) <= MAX_NAME_LENGTH:
                raise ValueError(
                    f"unknown number {number[:50]!r}: use events, users, sessions, "
                    "event:<event name> or metric:<metric name>"
                )
        return list(dict.fromkeys(numbers))


class PingMessage(_ClientMessage):
    type: Literal["ping"]


ClientMessage = Annotated[AuthMessage | SubscribeMessage | PingMessage, Field(discriminator="type")]
client_message: TypeAdapter[AuthMessage | SubscribeMessage | PingMessage] = TypeAdapter(
    ClientMessage
)


# Server → client. `events` frames are built by the hub directly (docs/LIVE.md).


class MinuteCounters(BaseModel):
    bucket: datetime
    events: int
    users: int
    sessions: int
    by_event: dict[str, int]


class Snapshot(BaseModel):
    """Sent once on connect: recent events (or those after `since`) and this minute's totals."""

    type: Literal["snapshot"] = "snapshot"
    cursor: str
    # False when `since` was older than the recent buffer reaches: some events are not here.
    complete: bool
    events: list[dict[str, Any]]
    counters: MinuteCounters


class Subscribed(BaseModel):
    type: Literal["subscribed"] = "subscribed"
    interval: int
    numbers: list[str]


class MetricsUpdate(BaseModel):
    """The subscribed numbers over the interval just ended, only those that changed."""

    type: Literal["metrics_update"] = "metrics_update"
    interval: int
    start: datetime
    end: datetime
    values: dict[str, Any]


class Dropped(BaseModel):
    type: Literal["dropped"] = "dropped"
    count: int


class Heartbeat(BaseModel):
    type: Literal["heartbeat"] = "heartbeat"
    at: datetime


class Pong(BaseModel):
    type: Literal["pong"] = "pong"


class ErrorMessage(BaseModel):
    type: Literal["error"] = "error"
    code: str
    detail: str
