"""Custom metric definitions: checked whole when created or changed, so that a query never meets
a formula that does not parse, names an unknown metric or refers to itself."""

import uuid
from collections.abc import Sequence

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from pulseboard.analytics.filters import parse_filter_items
from pulseboard.analytics.timerange import InvalidQuery
from pulseboard.core.errors import Conflict, NotFound, Unprocessable
from pulseboard.core.security import utcnow
from pulseboard.metrics import formula
from pulseboard.metrics.repository import MetricDefinitionRepository
from pulseboard.metrics.schemas import (
    MetricDefinitionCreate,
    MetricDefinitionUpdate,
)
from pulseboard.models import MetricDefinition, Project


class InvalidDefinition(Unprocessable):
    code = "invalid_definition"
    detail = "The metric definition is not valid"


class DuplicateDefinition(Conflict):
    code = "duplicate_definition"
    detail = "The project already has a metric of that name"


class DefinitionInUse(Conflict):
    code = "definition_in_use"
    detail = "Other metrics' formulas read this metric"


async def list_definitions(session: AsyncSession, project: Project) -> Sequence[MetricDefinition]:
    return await MetricDefinitionRepository(session).list_for_project(project.id)


async def get_definition(
    session: AsyncSession, project: Project, definition_id: uuid.UUID
) -> MetricDefinition:
    found = await MetricDefinitionRepository(session).get_in_project(project.id, definition_id)
    if found is None:
        raise NotFound("Metric definition not found")
    return found


async def create_definition(
    session: AsyncSession, project: Project, data: MetricDefinitionCreate
) -> MetricDefinition:
    others = await list_definitions(session, project)
    check(data, {d.name: d.formula for d in others})
    definition = MetricDefinition(project_id=project.id, **data.model_dump())
    return await MetricDefinitionRepository(session).add(definition)


async def update_definition(
    session: AsyncSession,
    project: Project,
    definition: MetricDefinition,
    data: MetricDefinitionUpdate,
) -> MetricDefinition:
    """Apply a PATCH; the result is checked as a whole, with every formula that reads it."""
    changes = data.model_dump(exclude_unset=True)
    current = _fields(definition)
    # Naming the other kind switches to it: what only the old kind had is dropped.
    if changes.get("formula") is not None:
        current.update(event=None, aggregation=None, property=None, filters=[])
    if changes.get("event") is not None:
        current.update(formula=None)
    try:
        merged = MetricDefinitionCreate.model_validate({**current, **changes})
    except ValidationError as error:
        reasons = "; ".join(e["msg"].removeprefix("Value error, ") for e in error.errors())
        raise InvalidDefinition(reasons) from None
    others = {
        d.name: d.formula for d in await list_definitions(session, project) if d is not definition
    }
    if merged.name != definition.name:
        readers = _readers(definition.name, others)
        if readers:
            raise DefinitionInUse(
                f"Cannot rename {definition.name!r}: {', '.join(readers)} read it by name"
            )
    check(merged, others)
    for field, value in merged.model_dump().items():
        setattr(definition, field, value)
    definition.updated_at = utcnow()
    await session.flush()
    return definition


async def delete_definition(
    session: AsyncSession, project: Project, definition: MetricDefinition
) -> None:
    others = {
        d.name: d.formula for d in await list_definitions(session, project) if d is not definition
    }
    readers = _readers(definition.name, others)
    if readers:
        raise DefinitionInUse(
            f"Cannot delete {definition.name!r}: {', '.join(readers)} read it; change them first"
        )
    await MetricDefinitionRepository(session).delete(definition)


def check(data: MetricDefinitionCreate, others: dict[str, str | None]) -> None:
    """Refuse a definition whose filters or formula are wrong, or that makes a cycle."""
    if data.name in others:
        raise DuplicateDefinition(f"The project already has a metric named {data.name!r}")
    try:
        parse_filter_items(data.filters)
    except InvalidQuery as error:
        raise InvalidDefinition(f"Bad filters: {error.detail}") from None
    if data.formula is None:
        return
    try:
        tree = formula.parse(data.formula)
    except formula.FormulaError as error:
        raise InvalidDefinition(f"Bad formula: {error}") from None
    graph = {name: _names(text) for name, text in others.items()}
    graph[data.name] = formula.names(tree)
    unknown = sorted(graph[data.name] - graph.keys())
    if unknown:
        raise InvalidDefinition(
            f"The formula reads {', '.join(map(repr, unknown))}, which the project does not define"
        )
    cycle = _cycle(data.name, graph)
    if cycle:
        raise InvalidDefinition(f"The formula refers to itself: {' → '.join(cycle)}")


def _names(text: str | None) -> set[str]:
    return set() if text is None else formula.names(formula.parse(text))


def _cycle(start: str, graph: dict[str, set[str]]) -> list[str] | None:
    """A path from `start` back to itself through the formulas, if there is one."""
    stack: list[tuple[str, list[str]]] = [(start, [start])]
    seen: set[str] = set()
    while stack:
        name, path = stack.pop()
        for operand in sorted(graph.get(name, ())):
            if operand == start:
                return [*path, start]
            if operand not in seen:
                seen.add(operand)
                stack.append((operand, [*path, operand]))
    return None


def _readers(name: str, others: dict[str, str | None]) -> list[str]:
    return sorted(other for other, text in others.items() if name in _names(text))


def _fields(definition: MetricDefinition) -> dict[str, object]:
    return {field: getattr(definition, field) for field in MetricDefinitionCreate.model_fields}


async def _others(
    session: AsyncSession, project: Project, definition: MetricDefinition
) -> dict[str, str | None]:
    """Every other definition's formula by name (None for event definitions)."""
    found = await list_definitions(session, project)
    return {d.name: d.formula for d in found if d is not definition}
