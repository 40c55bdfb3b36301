"""Tag filters and grouping for metric samples, read from each tag set in Python.

Rollup rows and raw groups are one per tag set, and a project has few tag sets, so each set is
matched once (cached by its canonical text) instead of asking SQL to read JSON on every row.
Filters take the analytics grammar (`filters.py`): `eq`, `in` and `contains` compare the tag's text
form, `gt`/`lt` its number, `neq` also matches an unset tag.
"""

from dataclasses import dataclass, field
from typing import Any

import orjson

from pulseboard.analytics.fields import Dimension, Field
from pulseboard.analytics.filters import Filter, Op
from pulseboard.pipeline.messages import canonical_tags

TagValue = str | int | float | bool
# The values of the group_by tags, in their order; None for a sample without that tag.
GroupKey = tuple[str | None, ...]


def tag_key(field: Field) -> str:
    """The tag a parsed filter names: `route` for both `route` and `properties.route`."""
    return field.name if isinstance(field, Dimension) else field.key


def tag_text(value: Any) -> str | None:
    """A tag value as text, spelled as the analytics filters spell a property's value."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def matches(tags: dict[str, Any], item: Filter) -> bool:
    value = tags.get(tag_key(item.field))
    text = tag_text(value)
    match item.op:
        case Op.EQ:
            return text == item.value
        case Op.NEQ:
            return text != item.value
        case Op.IN:
            assert isinstance(item.value, tuple)
            return text in item.value
        case Op.CONTAINS:
            assert isinstance(item.value, str)
            return text is not None and item.value.lower() in text.lower()
        case Op.IS_SET:
            return text is not None
        case Op.GT | Op.LT:
            number = _number(value)
            assert isinstance(item.value, float)
            if number is None:
                return False
            return number > item.value if item.op is Op.GT else number < item.value
        case _:
            return False


@dataclass(slots=True)
class TagSelector:
    """Which tag sets a query keeps, and the series each belongs to."""

    filters: tuple[Filter, ...] = ()
    group_by: tuple[str, ...] = ()
    _seen: dict[str, GroupKey | None] = field(default_factory=dict)

    def group_of(self, tags: dict[str, Any] | str) -> GroupKey | None:
        """The series of a tag set (a dict or its canonical JSON), None when filtered out."""
        text = tags if isinstance(tags, str) else canonical_tags(tags)
        if text not in self._seen:
            parsed: dict[str, Any] = orjson.loads(text) if isinstance(tags, str) else tags
            kept = all(matches(parsed, item) for item in self.filters)
            self._seen[text] = (
                tuple(tag_text(parsed.get(key)) for key in self.group_by) if kept else None
            )
        return self._seen[text]
