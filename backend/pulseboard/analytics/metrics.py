"""The numbers a query can ask for, each a small declarative object (Polar's metrics).

An event metric reads one field of an `Aggregate`, which both the rollup path (counts summed,
HyperLogLog sketches merged) and the raw path (COUNT and COUNT DISTINCT) produce; a metric may
carry an implicit event (`pageviews`). Session metrics come from raw rows grouped by session.
A new metric is a few lines here.
"""

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from pulseboard.analytics.timerange import InvalidQuery

PAGEVIEW = "pageview"


@dataclass(frozen=True, slots=True)
class Aggregate:
    """What a set of events adds up to; users and sessions are counts of distinct values."""

    count: int = 0
    users: float = 0.0
    sessions: float = 0.0


@dataclass(frozen=True, slots=True)
class SessionStats:
    sessions: int = 0
    bounces: int = 0
    total_duration: float = 0.0
    total_events: int = 0
    total_pageviews: int = 0

    @property
    def bounce_rate(self) -> float | None:
        return round(100 * self.bounces / self.sessions, 2) if self.sessions else None

    @property
    def avg_duration(self) -> float | None:
        return round(self.total_duration / self.sessions, 2) if self.sessions else None

    @property
    def pages_per_session(self) -> float | None:
        return round(self.total_pageviews / self.sessions, 2) if self.sessions else None


class Needs(StrEnum):
    COUNT = "count"  # counts only: summed in SQL
    SKETCHES = "sketches"  # unique counts: sketches merged, or COUNT DISTINCT


@dataclass(frozen=True, slots=True)
class EventMetric:
    name: str
    read: Callable[[Aggregate], float]
    needs: Needs
    event: str | None = None


@dataclass(frozen=True, slots=True)
class SessionMetric:
    name: str
    read: Callable[[SessionStats], float | None]


Metric = EventMetric | SessionMetric

EVENT_METRICS: dict[str, EventMetric] = {
    metric.name: metric
    for metric in (
        EventMetric("count", lambda a: a.count, Needs.COUNT),
        EventMetric("unique_users", lambda a: round(a.users), Needs.SKETCHES),
        EventMetric("unique_sessions", lambda a: round(a.sessions), Needs.SKETCHES),
        EventMetric("pageviews", lambda a: a.count, Needs.COUNT, event=PAGEVIEW),
    )
}
SESSION_METRICS: dict[str, SessionMetric] = {
    metric.name: metric
    for metric in (
        SessionMetric("bounce_rate", lambda s: s.bounce_rate),
        SessionMetric("avg_session_duration", lambda s: s.avg_duration),
        SessionMetric("pages_per_session", lambda s: s.pages_per_session),
    )
}
# What a timeseries or breakdown can plot.
SERIES_METRICS = ("count", "unique_users", "unique_sessions")


def event_metric(name: str) -> EventMetric:
    metric = EVENT_METRICS.get(name)
    if metric is None or name not in SERIES_METRICS:
        raise InvalidQuery(f"Unknown metric {name!r}; use one of {', '.join(SERIES_METRICS)}")
    return metric
