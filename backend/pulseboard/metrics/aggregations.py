"""How samples become one number: each aggregation a small declarative object (Polar's metrics).

Both query paths fill the same `Stats` per bucket and series: the rollup path adds up rollup
rows (count, sum, min, max, KLL sketches), the raw path aggregates raw rows (and keeps the values
themselves for percentiles). An aggregation reads its number from a `Stats`; a new one is a line.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from pulseboard.analytics.timerange import InvalidQuery
from pulseboard.pipeline import sketches


@dataclass(slots=True)
class Stats:
    """What a set of samples adds up to; `quantile` reads sketches or the values themselves."""

    count: int = 0
    sum: float = 0.0
    min: float | None = None
    max: float | None = None
    sketches: list[bytes] = field(default_factory=list)
    values: list[float] = field(default_factory=list)

    def add(self, count: int, total: float, low: float | None, high: float | None) -> None:
        self.count += count
        self.sum += total
        if low is not None:
            self.min = low if self.min is None else min(self.min, low)
        if high is not None:
            self.max = high if self.max is None else max(self.max, high)

    def quantile(self, q: float) -> float | None:
        if self.sketches:
            return sketches.quantiles_get(sketches.quantiles_merge(self.sketches), [q])[0]
        return exact_quantile(self.values, q)


def exact_quantile(values: list[float], q: float) -> float | None:
    """The smallest sample whose inclusive rank reaches q: what a KLL sketch estimates."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


@dataclass(frozen=True, slots=True)
class Aggregation:
    name: str
    read: Callable[[Stats], float | None]
    # The rank a percentile reads; the rollup path then fetches sketches, the raw path values.
    quantile: float | None = None


AGGREGATIONS: dict[str, Aggregation] = {
    aggregation.name: aggregation
    for aggregation in (
        Aggregation("count", lambda s: s.count),
        Aggregation("sum", lambda s: s.sum),
        Aggregation("avg", lambda s: s.sum / s.count if s.count else None),
        Aggregation("min", lambda s: s.min),
        Aggregation("max", lambda s: s.max),
        Aggregation("p50", lambda s: s.quantile(0.5), quantile=0.5),
        Aggregation("p95", lambda s: s.quantile(0.95), quantile=0.95),
        Aggregation("p99", lambda s: s.quantile(0.99), quantile=0.99),
    )
}


def aggregation_of(name: str) -> Aggregation:
    found = AGGREGATIONS.get(name)
    if found is None:
        raise InvalidQuery(f"Unknown aggregation {name!r}; use one of {', '.join(AGGREGATIONS)}")
    return found
