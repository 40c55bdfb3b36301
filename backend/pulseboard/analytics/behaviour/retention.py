"""Retention: users grouped by the local day or week of their first start event in the range,
and how many of each group did the return event 1, 2, … periods later.

Period 0 is the cohort itself (100 %). Only events inside the range are read, so a period that
starts at or after the range's end is unknown (null), not zero.
"""

import bisect
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pulseboard.analytics.behaviour.funnels import percentage
from pulseboard.analytics.timerange import micros

MAX_PERIODS = 60


class RetentionCounter:
    """Fills the cohort grid one user's ordered events at a time."""

    def __init__(
        self,
        spans: Sequence[tuple[datetime, datetime]],
        periods: int,
        start_event: str,
        return_event: str,
    ) -> None:
        self.starts = [start for start, _end in spans]
        self._start_micros = [micros(start) for start in self.starts]
        self.periods = periods
        self.start_event = start_event
        self.return_event = return_event
        self.sizes = [0] * len(spans)
        self.returned = [[0] * (periods + 1) for _ in spans]

    def add_user(self, events: Sequence[tuple[int, str]]) -> None:
        """One user's events in time order: (microseconds since the epoch, name)."""
        cohort: int | None = None
        later: set[int] = set()
        for moment, event in events:
            index = bisect.bisect_right(self._start_micros, moment) - 1
            if cohort is None:
                if event == self.start_event:
                    cohort = index
                continue
            if event == self.return_event and 1 <= index - cohort <= self.periods:
                later.add(index - cohort)
        if cohort is None:
            return
        self.sizes[cohort] += 1
        for offset in later:
            self.returned[cohort][offset] += 1

    def result(self) -> list[dict[str, Any]]:
        cohorts = []
        for index, start in enumerate(self.starts):
            size = self.sizes[index]
            values = []
            for offset in range(self.periods + 1):
                known = index + offset < len(self.starts)
                users = (size if offset == 0 else self.returned[index][offset]) if known else None
                values.append(
                    {
                        "period": offset,
                        "users": users,
                        "percentage": None if users is None else percentage(users, size),
                    }
                )
            cohorts.append({"start": start, "size": size, "values": values})
        return cohorts
