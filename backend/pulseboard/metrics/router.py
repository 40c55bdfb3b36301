import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, status

from pulseboard.analytics.filters import parse_filters
from pulseboard.analytics.timerange import resolve
from pulseboard.core.deps import ProjectEditor, ProjectReader, SessionDep, StateDep
from pulseboard.metrics import definitions
from pulseboard.metrics.schemas import (
    MetricDefinitionCreate,
    MetricDefinitionRead,
    MetricDefinitionUpdate,
    MetricListRead,
    MetricQueryCreate,
    MetricQueryRead,
    RawPointsRead,
)
from pulseboard.metrics.service import MetricQueries, MetricQuery

router = APIRouter(prefix="/metrics", tags=["metrics"])
definitions_router = APIRouter(
    prefix="/projects/{project_id}/metric-definitions", tags=["metric-definitions"]
)

# Editors and above change definitions, as they change dashboards and alerts.
MAX_POINTS_LISTED = 1000


async def get_queries(
    project: ProjectReader, session: SessionDep, state: StateDep
) -> MetricQueries:
    return MetricQueries(session, state.settings, state.cache, project)


QueriesDep = Annotated[MetricQueries, Depends(get_queries)]


@router.get("", response_model=MetricListRead)
async def list_metrics(queries: QueriesDep, days: Annotated[int, Query(ge=1, le=3660)] = 30) -> Any:
    """Metric names with the values of each tag seen in the last `days`, then the definitions."""
    return {"metrics": await queries.catalogue(days)}


@router.get("/points", response_model=RawPointsRead)
async def list_points(
    project: ProjectReader,
    queries: QueriesDep,
    name: Annotated[str, Query(min_length=1, max_length=200)],
    from_: Annotated[datetime | None, Query(alias="from")] = None,
    to: datetime | None = None,
    filters: Annotated[
        str | None, Query(description='JSON array: [{"key": "route", "op": "eq", "value": "/a"}]')
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_POINTS_LISTED)] = 100,
) -> Any:
    """Raw samples of one metric, the newest first; the range defaults to the last 7 days."""
    time_range = resolve(None, from_, to, project.timezone, datetime.now(UTC))
    points = await queries.points(name, time_range, parse_filters(filters), limit)
    return {"name": name, "points": points}


@router.post("/query", response_model=MetricQueryRead)
async def query_metric(body: MetricQueryCreate, project: ProjectReader, queries: QueriesDep) -> Any:
    """A metric per interval over a range, one series per tag combination of `group_by`."""
    return await queries.query(MetricQuery.of(body, project))


@definitions_router.get("/", response_model=list[MetricDefinitionRead])
async def list_definitions(project: ProjectReader, session: SessionDep) -> Any:
    return await definitions.list_definitions(session, project)


@definitions_router.post(
    "/", status_code=status.HTTP_201_CREATED, response_model=MetricDefinitionRead
)
async def create_definition(
    data: MetricDefinitionCreate, project: ProjectEditor, session: SessionDep
) -> Any:
    """Define a metric; a bad filter, a formula that does not parse or a cycle is a 422."""
    return await definitions.create_definition(session, project, data)


@definitions_router.get("/{definition_id}", response_model=MetricDefinitionRead)
async def get_definition(
    definition_id: uuid.UUID, project: ProjectReader, session: SessionDep
) -> Any:
    return await definitions.get_definition(session, project, definition_id)


@definitions_router.patch("/{definition_id}", response_model=MetricDefinitionRead)
async def update_definition(
    definition_id: uuid.UUID,
    data: MetricDefinitionUpdate,
    project: ProjectEditor,
    session: SessionDep,
) -> Any:
    """Change a definition; a null clears a field, and the result is checked whole."""
    definition = await definitions.get_definition(session, project, definition_id)
    return await definitions.update_definition(session, project, definition, data)


@definitions_router.delete("/{definition_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_definition(
    definition_id: uuid.UUID, project: ProjectEditor, session: SessionDep
) -> None:
    """Delete a definition no formula reads (409 otherwise)."""
    definition = await definitions.get_definition(session, project, definition_id)
    await definitions.delete_definition(session, project, definition)
