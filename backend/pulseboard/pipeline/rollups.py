"""Rollups: what a batch of new rows adds to each (bucket, event, dimension) and how it merges.

Counts add; unique users and sessions are HyperLogLog sketches and quantiles KLL sketches, both
merged with what a bucket already holds. Only rows that were new in the database get here, so a
redelivered batch adds nothing.
"""

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from pulseboard.pipeline import sketches

MINUTE, HOUR, DAY = 60, 3600, 86400
GRANULARITIES = (MINUTE, HOUR, DAY)
TOTAL = ""
# Dimension name in rollups → column of the raw event it is read from.
DIMENSIONS: dict[str, str] = {
    "path": "path",
    "referrer": "referrer_domain",
    "utm_source": "utm_source",
    "browser": "browser",
    "os": "os",
    "device": "device",
}

# Each dimension also has rows that count every event by the dimension's value: dimension
# `*path` (and so on) with event name TOTAL, never a real event's (names are non-empty). A
# breakdown over all events reads one of these per value and bucket, not one per event name.
ALL_EVENTS = "*"


def all_events(dimension: str) -> str:
    """The rollup dimension that counts every event by this dimension's value."""
    return ALL_EVENTS + dimension


EventKey = tuple[uuid.UUID, int, datetime, str, str, str]
MetricKey = tuple[uuid.UUID, int, datetime, str, str]
SessionKey = tuple[uuid.UUID, str]
SessionRollupKey = tuple[uuid.UUID, int, datetime]
PAGEVIEW = "pageview"


@dataclass(slots=True)
class EventDelta:
    """What new rows add to one rollup row. Users and sessions may repeat: a sketch ignores that."""

    count: int = 0
    users: list[str] = field(default_factory=list)
    sessions: list[str] = field(default_factory=list)

    def add(self, count: int, users: list[str], sessions: list[str]) -> None:
        self.count += count
        self.users.extend(users)
        self.sessions.extend(sessions)


@dataclass(slots=True)
class MetricDelta:
    count: int = 0
    sum: float = 0.0
    min: float = float("inf")
    max: float = float("-inf")
    values: list[float] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class EventRollupValues:
    count: int
    users: bytes
    sessions: bytes


@dataclass(frozen=True, slots=True)
class MetricRollupValues:
    count: int
    sum: float
    min: float
    max: float
    quantiles: bytes


class Buckets:
    """Bucket starts for one timezone; day buckets begin at the project's local midnight."""

    def __init__(self, timezone: str) -> None:
        self._zone = _zone(timezone)
        self._days: dict[int, datetime] = {}
        self._starts: dict[int, datetime] = {}

    def starts(self, moment: datetime) -> tuple[datetime, datetime, datetime]:
        return self.starts_at(int(moment.timestamp()))

    def starts_at(self, seconds: int) -> tuple[datetime, datetime, datetime]:
        """The minute, hour and local day holding this Unix time."""
        minute = seconds - seconds % MINUTE
        hour = seconds - seconds % HOUR
        day = self._days.get(minute)
        if day is None:
            local_date = datetime.fromtimestamp(minute, UTC).astimezone(self._zone).date()
            day = datetime.combine(local_date, time(0), tzinfo=self._zone).astimezone(UTC)
            self._days[minute] = day
        return self._start(minute), self._start(hour), day

    def _start(self, seconds: int) -> datetime:
        start = self._starts.get(seconds)
        if start is None:
            start = self._starts[seconds] = datetime.fromtimestamp(seconds, UTC)
        return start


@lru_cache(maxsize=1024)
def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError):
        return ZoneInfo("UTC")


def event_deltas(
    project_id: uuid.UUID, timezone: str, rows: Iterable[dict[str, Any]]
) -> dict[EventKey, EventDelta]:
    """What these new events add to each rollup row; bots are stored but never counted.

    Rows are first put in cells by event name and minute. A minute lies in one hour and one
    local day (zone offsets are whole quarter hours), so each coarser rollup row is a union of
    cells, and each row is looked at once per dimension rather than once per rollup row.
    """
    buckets = Buckets(timezone)
    cells: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for row in rows:
        if row["is_bot"]:
            continue
        seconds = int(row["timestamp"].timestamp())
        key = (row["event_name"], seconds - seconds % MINUTE)
        cell = cells.get(key)
        if cell is None:
            cell = cells[key] = []
        cell.append(row)

    deltas: dict[EventKey, EventDelta] = {}

    def delta(key: EventKey) -> EventDelta:
        found = deltas.get(key)
        if found is None:
            found = deltas[key] = EventDelta()
        return found

    # Minute rollups carry totals only (live charts, 5-minute series); breakdowns by a dimension
    # come from hours and days, which keeps minute rows few.
    hours: dict[tuple[str, datetime, datetime], list[dict[str, Any]]] = {}
    for (name, seconds), cell in cells.items():
        minute, hour, day = buckets.starts_at(seconds)
        delta((project_id, MINUTE, minute, name, TOTAL, "")).add(*_people(cell))
        hours.setdefault((name, hour, day), []).extend(cell)
    for (name, hour, day), group in hours.items():
        parts: list[tuple[str, str, list[dict[str, Any]]]] = [(TOTAL, "", group)]
        for dimension, column in DIMENSIONS.items():
            by_value: dict[str, list[dict[str, Any]]] = {}
            for row in group:
                value = row.get(column)
                if value is not None:
                    same = by_value.get(value)
                    if same is None:
                        same = by_value[value] = []
                    same.append(row)
            parts.extend((dimension, value, same) for value, same in by_value.items())
        for dimension, value, same in parts:
            people = _people(same)
            delta((project_id, HOUR, hour, name, dimension, value)).add(*people)
            delta((project_id, DAY, day, name, dimension, value)).add(*people)
            if dimension != TOTAL:
                every = all_events(dimension)
                delta((project_id, HOUR, hour, TOTAL, every, value)).add(*people)
                delta((project_id, DAY, day, TOTAL, every, value)).add(*people)
    return deltas


def _people(rows: list[dict[str, Any]]) -> tuple[int, list[str], list[str]]:
    """The count, users and sessions of these rows."""
    users = [row["distinct_id"] for row in rows]
    return len(rows), users, [session for row in rows if (session := row["session_id"])]


def metric_deltas(
    project_id: uuid.UUID, timezone: str, rows: Iterable[dict[str, Any]]
) -> dict[MetricKey, MetricDelta]:
    buckets = Buckets(timezone)
    deltas: dict[MetricKey, MetricDelta] = {}
    for row in rows:
        value = row["value"]
        for granularity, start in zip(GRANULARITIES, buckets.starts(row["timestamp"]), strict=True):
            key = (project_id, granularity, start, row["name"], row["tags_key"])
            delta = deltas.get(key)
            if delta is None:
                delta = deltas[key] = MetricDelta()
            delta.count += 1
            delta.sum += value
            delta.min = min(delta.min, value)
            delta.max = max(delta.max, value)
            delta.values.append(value)
    return deltas


def merge_event(delta: EventDelta, existing: EventRollupValues | None) -> EventRollupValues:
    if existing is None:
        return EventRollupValues(
            delta.count, sketches.hll_of(delta.users), sketches.hll_of(delta.sessions)
        )
    # Adding to the stored sketch is far cheaper than building one and taking a union.
    return EventRollupValues(
        count=existing.count + delta.count,
        users=sketches.hll_add(existing.users, delta.users),
        sessions=sketches.hll_add(existing.sessions, delta.sessions),
    )


def merge_metric(delta: MetricDelta, existing: MetricRollupValues | None) -> MetricRollupValues:
    if existing is None:
        return MetricRollupValues(
            delta.count, delta.sum, delta.min, delta.max, sketches.quantiles_of(delta.values)
        )
    return MetricRollupValues(
        count=existing.count + delta.count,
        sum=existing.sum + delta.sum,
        min=min(existing.min, delta.min),
        max=max(existing.max, delta.max),
        quantiles=sketches.quantiles_add(existing.quantiles, delta.values),
    )


@dataclass(frozen=True, slots=True)
class SessionState:
    started_at: datetime
    ended_at: datetime
    events: int
    pageviews: int

    def merged(self, other: "SessionState") -> "SessionState":
        return SessionState(
            min(self.started_at, other.started_at),
            max(self.ended_at, other.ended_at),
            self.events + other.events,
            self.pageviews + other.pageviews,
        )


@dataclass(frozen=True, slots=True)
class SessionTotals:
    """Additive: a session that grows is taken out of its old bucket and put in its new one."""

    sessions: int = 0
    bounces: int = 0
    duration: float = 0.0
    events: int = 0
    pageviews: int = 0

    def __add__(self, other: "SessionTotals") -> "SessionTotals":
        return SessionTotals(
            self.sessions + other.sessions,
            self.bounces + other.bounces,
            self.duration + other.duration,
            self.events + other.events,
            self.pageviews + other.pageviews,
        )


def session_states(
    project_id: uuid.UUID, rows: Iterable[dict[str, Any]]
) -> dict[SessionKey, SessionState]:
    """What these new events make of each session they belong to; bots have no sessions."""
    states: dict[SessionKey, SessionState] = {}
    for row in rows:
        session = row["session_id"]
        if row["is_bot"] or not session:
            continue
        moment = row["timestamp"]
        state = SessionState(moment, moment, 1, 1 if row["event_name"] == PAGEVIEW else 0)
        key = (project_id, session)
        known = states.get(key)
        states[key] = state if known is None else known.merged(state)
    return states


def session_deltas(
    timezone: str,
    before: dict[SessionKey, SessionState],
    after: dict[SessionKey, SessionState],
) -> dict[SessionRollupKey, SessionTotals]:
    """How the session rollups change when these sessions go from `before` to `after`."""
    # Summed per project and start minute first: every session of a minute lands in the same
    # three rollup rows.
    minutes: dict[tuple[uuid.UUID, int], list[float]] = {}
    for key, state in after.items():
        _add_session(minutes, key[0], state, 1)
        old = before.get(key)
        if old is not None:
            _add_session(minutes, key[0], old, -1)
    buckets = Buckets(timezone)
    deltas: dict[SessionRollupKey, SessionTotals] = {}
    for (project_id, seconds), (sessions, bounces, duration, events, pageviews) in minutes.items():
        change = SessionTotals(int(sessions), int(bounces), duration, int(events), int(pageviews))
        for granularity, start in zip(GRANULARITIES, buckets.starts_at(seconds), strict=True):
            rollup = (project_id, granularity, start)
            known = deltas.get(rollup)
            deltas[rollup] = change if known is None else known + change
    return deltas


def _add_session(
    minutes: dict[tuple[uuid.UUID, int], list[float]],
    project_id: uuid.UUID,
    state: SessionState,
    sign: int,
) -> None:
    """Add (sign 1) or take away (sign -1) what a session counts in the minute it started:
    one session, a bounce if it has one event, its duration, events and pageviews."""
    seconds = int(state.started_at.timestamp())
    key = (project_id, seconds - seconds % MINUTE)
    totals = minutes.get(key)
    if totals is None:
        totals = minutes[key] = [0, 0, 0.0, 0, 0]
    totals[0] += sign
    if state.events == 1:
        totals[1] += sign
    totals[2] += sign * (state.ended_at - state.started_at).total_seconds()
    totals[3] += sign * state.events
    totals[4] += sign * state.pageviews
