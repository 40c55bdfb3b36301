"""Filters, all of which must hold: `[{"key": "path", "op": "eq", "value": "/pricing"}, ...]`.

`eq`, `in` and `contains` compare text; `gt` and `lt` compare numbers; `is_set` asks for a value;
`neq` matches events whose value differs or is unset.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson

from pulseboard.analytics.fields import Field, field_of
from pulseboard.analytics.timerange import InvalidQuery
from pulseboard.core.nul import storable

MAX_FILTERS = 20
MAX_VALUES = 100


class Op(StrEnum):
    EQ = "eq"
    NEQ = "neq"
    IN = "in"
    CONTAINS = "contains"
    GT = "gt"
    LT = "lt"
    IS_SET = "is_set"
    # Not in the API: the "other" of a breakdown, values that are set but not in its top N.
    SET_BUT_NOT_IN = "set_but_not_in"


PUBLIC_OPS = tuple(op for op in Op if op is not Op.SET_BUT_NOT_IN)
# Ops a rollup's (dimension, value) rows can answer: each names a set of values that are set.
ROLLUP_OPS = frozenset({Op.EQ, Op.IN, Op.CONTAINS, Op.IS_SET, Op.SET_BUT_NOT_IN})


@dataclass(frozen=True, slots=True)
class Filter:
    field: Field
    op: Op
    # str for eq/neq/contains, a tuple of str for in, float for gt/lt, None for is_set.
    value: str | float | tuple[str, ...] | None = None

    def normalised(self) -> list[Any]:
        value = list(self.value) if isinstance(self.value, tuple) else self.value
        return [self.field.name, self.op.value, value]


def parse_filters(raw: str | None) -> tuple[Filter, ...]:
    """Filters from the `filters` query parameter (a JSON array)."""
    if not raw:
        return ()
    try:
        items = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidQuery("`filters` must be a JSON array of {key, op, value}") from None
    if not isinstance(items, list):
        raise InvalidQuery("`filters` must be a JSON array of {key, op, value}")
    return parse_filter_items(items)


def parse_filter_items(items: Sequence[Any]) -> tuple[Filter, ...]:
    if len(items) > MAX_FILTERS:
        raise InvalidQuery(f"At most {MAX_FILTERS} filters")
    return tuple(_parse_one(index, item) for index, item in enumerate(items))


def _parse_one(index: int, item: Any) -> Filter:
    where = f"filters[{index}]"
    if not isinstance(item, dict):
        raise InvalidQuery(f"{where} must be an object with key, op and value")
    key = item.get("key")
    if _unstorable(key) or _unstorable(item.get("value")):
        raise InvalidQuery(f"{where} holds a NUL character or a lone surrogate")
    field = field_of(key) if isinstance(key, str) else None
    if field is None:
        raise InvalidQuery(f"{where}.key must be a dimension or property name")
    op = next((op for op in PUBLIC_OPS if op.value == item.get("op", "eq")), None)
    if op is None:
        known = ", ".join(op.value for op in PUBLIC_OPS)
        raise InvalidQuery(f"{where}.op must be one of {known}")
    value = item.get("value")
    if _out_of_range(value):
        raise InvalidQuery(
            f"{where}.value must hold finite numbers within 64 bits (no NaN or Infinity)"
        )
    match op:
        case Op.IS_SET:
            return Filter(field, op)
        case Op.IN:
            if (
                not isinstance(value, list)
                or not value
                or len(value) > MAX_VALUES
                or not all(isinstance(v, str | int | float) for v in value)
            ):
                raise InvalidQuery(f"{where}.value must be a list of 1 to {MAX_VALUES} values")
            return Filter(field, op, tuple(_text(v) for v in value))
        case Op.GT | Op.LT:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InvalidQuery(f"{where}.value must be a number for {op.value}")
            return Filter(field, op, float(value))
        case _:
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                raise InvalidQuery(f"{where}.value must be a string or number for {op.value}")
            return Filter(field, op, _text(value))


def _out_of_range(value: Any) -> bool:
    """NaN, infinities and integers past 64 bits: JSON cannot store them, nor SQL compare them."""
    if isinstance(value, list):
        return any(_out_of_range(v) for v in value)
    if isinstance(value, float):
        return not math.isfinite(value)
    return isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**63


def _unstorable(value: Any) -> bool:
    """Text no column can hold: a NUL, or a lone surrogate."""
    if isinstance(value, list):
        return any(_unstorable(v) for v in value)
    return isinstance(value, str) and not storable(value)


def _text(value: str | float) -> str:
    # Properties are compared as their JSON text form: 3 matches {"n": 3}, "3" and {"n": "3"}.
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
