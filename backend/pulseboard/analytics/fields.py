"""What a query can filter and break down by: event columns (dimensions) and property keys.

A dimension that the worker rolls up names its rollup dimension; the planner answers from rollups
only through those. Any other name is a key of the event's `properties`.
"""

from dataclasses import dataclass

from pulseboard.core.nul import storable
from pulseboard.pipeline.rollups import DIMENSIONS as ROLLUP_DIMENSIONS

PROPERTY_PREFIX = "properties."
MAX_KEY_LENGTH = 200


@dataclass(frozen=True, slots=True)
class Dimension:
    name: str
    column: str
    # The rollups' dimension that keeps this column; None when only raw rows have it.
    rollup: str | None = None


@dataclass(frozen=True, slots=True)
class Property:
    key: str

    @property
    def name(self) -> str:
        return PROPERTY_PREFIX + self.key


Field = Dimension | Property

# Every rollup row has its event name, so "event" goes with any rolled-up dimension.
EVENT = Dimension("event", "event_name")
DIMENSIONS: dict[str, Dimension] = {
    dimension.name: dimension
    for dimension in (
        EVENT,
        *(Dimension(name, column, rollup=name) for name, column in ROLLUP_DIMENSIONS.items()),
        Dimension("host", "host"),
        Dimension("utm_medium", "utm_medium"),
        Dimension("utm_campaign", "utm_campaign"),
        Dimension("utm_term", "utm_term"),
        Dimension("utm_content", "utm_content"),
        Dimension("distinct_id", "distinct_id"),
        Dimension("session_id", "session_id"),
    )
}


def field_of(name: str) -> Field | None:
    """The dimension of that name, else the property key (`plan` or `properties.plan`)."""
    name = name.strip()
    if not storable(name):
        return None
    if name.startswith(PROPERTY_PREFIX):
        key = name.removeprefix(PROPERTY_PREFIX)
        return Property(key) if 0 < len(key) <= MAX_KEY_LENGTH else None
    dimension = DIMENSIONS.get(name)
    if dimension is not None:
        return dimension
    return Property(name) if 0 < len(name) <= MAX_KEY_LENGTH else None
