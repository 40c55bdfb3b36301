"""SQL expressions over raw events shared by every analytics query: fields, filters, durations.

Properties are read as text (`->>` in PostgreSQL; `json_extract` in SQLite, booleans spelled as
JSON spells them) and as numbers only where the stored value is a number, so no filter can fail on
a value of the wrong type.
"""

from typing import Any

from sqlalchemy import Double, String, and_, case, cast, func, literal, or_, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from pulseboard.analytics.fields import Dimension, Field, Property
from pulseboard.analytics.filters import Filter, Op
from pulseboard.models import Event

EVENTS = Event.__table__.c


class EventSql:
    """Expressions for one SQL dialect ("postgresql" or "sqlite")."""

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect

    def filters(self, filters: tuple[Filter, ...]) -> list[ColumnElement[bool]]:
        """Bots are never counted; then every filter must hold."""
        return [EVENTS.is_bot.is_(False), *(self.filter(item) for item in filters)]

    def filter(self, item: Filter) -> ColumnElement[bool]:
        if item.op in (Op.GT, Op.LT):
            number = self.number_of(item.field)
            return number > item.value if item.op is Op.GT else number < item.value
        return condition(self.text_of(item.field), item)

    def text_of(self, field: Field) -> ColumnElement[Any]:
        """A dimension's column, or a property's value as text (JSON text for objects)."""
        if isinstance(field, Dimension):
            expression: ColumnElement[Any] = EVENTS[field.column]
            return expression
        properties = EVENTS.properties
        if self.dialect == "postgresql":
            return properties.op("->>")(literal(field.key, String))
        path = _json_path(field)
        kind = func.json_type(properties, path)
        return case(
            (kind == "true", literal("true")),
            (kind == "false", literal("false")),
            else_=cast(func.json_extract(properties, path), String),
        )

    def number_of(self, field: Field) -> ColumnElement[Any]:
        """A numeric value, NULL where the value is not a number (never a cast error)."""
        if isinstance(field, Dimension):
            return literal(None, Double)
        properties = EVENTS.properties
        if self.dialect == "postgresql":
            return case(
                (
                    func.jsonb_typeof(properties.op("->")(literal(field.key, String))) == "number",
                    cast(properties.op("->>")(literal(field.key, String)), Double),
                ),
                else_=None,
            )
        path = _json_path(field)
        return case(
            (
                func.json_type(properties, path).in_(("integer", "real")),
                cast(func.json_extract(properties, path), Double),
            ),
            else_=None,
        )

    def seconds_between(self, first: Any, last: Any) -> ColumnElement[Any]:
        if self.dialect == "postgresql":
            return func.extract("epoch", last - first)
        return (func.julianday(last) - func.julianday(first)) * 86400.0

    def least(self, *values: Any) -> ColumnElement[Any]:
        # SQLite's many-argument min() is PostgreSQL's least().
        return func.least(*values) if self.dialect == "postgresql" else func.min(*values)


# Sorts and hashes of one raw scan (per process of a parallel plan): with the default 4 MB a
# month of events grouped by day was sorted on disk (1.37 s against 1.29 s in bench/query.py).
SORT_MEMORY = "64MB"


async def tune_raw_scan(session: AsyncSession) -> None:
    """PostgreSQL settings for the raw-event scans of the current transaction.

    Each statement is planned for its own parameters: after five runs PostgreSQL would reuse a
    generic plan, which reads a month of partitions 2.5 times slower (5.0 s against 1.9 s in
    bench/query.py). JIT is off: compiling these scans costs more (~0.5 s) than it saves. Sorts
    get SORT_MEMORY: a property filter is estimated to keep 0.5 % of rows, so the planner sorts
    what it thinks is a few thousand rows and is often millions.
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    # One round trip; `true` makes each setting local to the transaction, as SET LOCAL does.
    await session.execute(
        text(
            "SELECT set_config('plan_cache_mode', 'force_custom_plan', true), "
            "set_config('jit', 'off', true), "
            "set_config('work_mem', :sort_memory, true)"
        ),
        {"sort_memory": SORT_MEMORY},
    )


def condition(expression: ColumnElement[Any], item: Filter) -> ColumnElement[bool]:
    """A text filter on one column; `neq` also matches NULL (an unset value is not equal)."""
    match item.op:
        case Op.EQ:
            return expression == item.value
        case Op.NEQ:
            return or_(expression.is_(None), expression != item.value)
        case Op.IN:
            assert isinstance(item.value, tuple)
            return expression.in_(item.value)
        case Op.CONTAINS:
            assert isinstance(item.value, str)
            return func.lower(expression).contains(item.value.lower(), autoescape=True)
        case Op.IS_SET:
            return expression.is_not(None)
        case Op.SET_BUT_NOT_IN:
            assert isinstance(item.value, tuple)
            return and_(expression.is_not(None), expression.not_in(item.value))
        case _:
            raise ValueError(f"{item.op} compares numbers")


def _json_path(field: Property) -> Any:
    escaped = field.key.replace("\\", "\\\\").replace('"', '\\"')
    return literal(f'$."{escaped}"', String)
