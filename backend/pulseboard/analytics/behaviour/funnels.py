"""Funnels: ordered steps that a user takes within a window that opens at the first step.

Per user, over the user's events in time order, each step keeps the chain (the timestamps of the
steps before it) with the latest start that reached it: a later start leaves the most window for
the steps after (ClickHouse's `windowFunnel`), so the deepest step any chain could reach is
found in one pass. A user counts at every step up to the deepest reached, and the gaps between
steps are measured along that deepest chain.
"""

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from pulseboard.analytics.metrics import PAGEVIEW
from pulseboard.analytics.timerange import DAY, MICROS_PER_SECOND, InvalidQuery

MIN_STEPS, MAX_STEPS = 2, 10
MAX_WINDOW = 90 * DAY
PATH_PREFIX = "path:"


@dataclass(frozen=True, slots=True)
class Step:
    """An event name, or (`path:/pricing`) a pageview of one path."""

    label: str
    event: str
    path: str | None = None

    def matches(self, event: str, path: str | None) -> bool:
        return event == self.event and (self.path is None or path == self.path)


def parse_steps(values: Sequence[str]) -> tuple[Step, ...]:
    """Steps from repeated `steps` parameters, or from one holding a JSON array of them."""
    items: list[Any] = list(values)
    if len(values) == 1 and values[0].lstrip().startswith("["):
        try:
            items = orjson.loads(values[0])
        except orjson.JSONDecodeError:
            raise InvalidQuery("`steps` is not a valid JSON array") from None
    if not MIN_STEPS <= len(items) <= MAX_STEPS:
        raise InvalidQuery(f"A funnel has {MIN_STEPS} to {MAX_STEPS} steps")
    return tuple(_step(index, item) for index, item in enumerate(items))


def _step(index: int, item: Any) -> Step:
    if isinstance(item, dict):
        event, path = item.get("event", PAGEVIEW if "path" in item else None), item.get("path")
        if not isinstance(event, str) or not (path is None or isinstance(path, str)):
            raise InvalidQuery(f"steps[{index}] needs an `event` or a `path` (strings)")
        label = event if path is None else PATH_PREFIX + path
        if path is not None and event != PAGEVIEW:
            label = f"{event} ({label})"
        return _checked(index, Step(label, event, path))
    if not isinstance(item, str):
        raise InvalidQuery(f"steps[{index}] must be an event name or `path:/some/page`")
    if item.startswith(PATH_PREFIX):
        return _checked(index, Step(item, PAGEVIEW, item.removeprefix(PATH_PREFIX)))
    return _checked(index, Step(item, item))


def _checked(index: int, step: Step) -> Step:
    if not step.event or step.path == "" or len(step.label) > 1000:
        raise InvalidQuery(f"steps[{index}] is empty or too long")
    if "\x00" in step.event or "\x00" in (step.path or ""):
        raise InvalidQuery(f"steps[{index}] holds a NUL character")
    return step


class FunnelCounter:
    """Counts users step by step, one user's ordered events at a time."""

    def __init__(self, steps: Sequence[Step], window_seconds: int) -> None:
        self.steps = steps
        self.window = window_seconds * MICROS_PER_SECOND  # in microseconds, as events' times come
        self.reached = [0] * len(steps)
        self.gaps: list[list[float]] = [[] for _ in steps]
        self._matches: dict[tuple[str, str | None], tuple[int, ...]] = {}

    def add_user(self, events: Sequence[tuple[int, str, str | None]]) -> None:
        """One user's events in time order: (microseconds since the epoch, name, path)."""
        if len(events) == 1:
            # Most users: one event can only open a chain, and only if it is the first step.
            _, event, path = events[0]
            matches = self._matching(event, path)
            if matches and matches[-1] == 0:
                self.reached[0] += 1
            return
        chains: list[tuple[int, ...] | None] = [None] * len(self.steps)
        matched = [(timestamp, self._matching(event, path)) for timestamp, event, path in events]
        # Events of the same instant are taken in the funnel's order, not in the order of ids.
        matched.sort(key=lambda item: (item[0], item[1][-1] if item[1] else 0))
        for timestamp, indices in matched:
            # From the last step down, so that one event never advances a chain two steps.
            for index in indices:
                if index == 0:
                    chains[0] = (timestamp,)
                    continue
                before = chains[index - 1]
                if before is not None and timestamp - before[0] <= self.window:
                    chains[index] = (*before, timestamp)
        deepest = max((i for i, chain in enumerate(chains) if chain is not None), default=None)
        if deepest is None:
            return
        chain = chains[deepest]
        assert chain is not None
        for index in range(deepest + 1):
            self.reached[index] += 1
            if index:
                self.gaps[index].append((chain[index] - chain[index - 1]) / MICROS_PER_SECOND)

    def _matching(self, event: str, path: str | None) -> tuple[int, ...]:
        """The steps an event matches, the last first (remembered: few events differ)."""
        key = (event, path)
        found = self._matches.get(key)
        if found is None:
            last_first = range(len(self.steps) - 1, -1, -1)
            found = tuple(i for i in last_first if self.steps[i].matches(event, path))
            self._matches[key] = found
        return found

    def result(self) -> list[dict[str, Any]]:
        first = self.reached[0]
        rows = []
        for index, step in enumerate(self.steps):
            previous = self.reached[index - 1] if index else first
            gaps = self.gaps[index]
            rows.append(
                {
                    "step": step.label,
                    "count": self.reached[index],
                    "conversion_from_first": percentage(self.reached[index], first),
                    "conversion_from_previous": percentage(self.reached[index], previous),
                    "median_seconds_from_previous": statistics.median(gaps) if gaps else None,
                }
            )
        return rows


def percentage(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 2) if whole else None
