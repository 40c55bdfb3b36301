"""The schema: projects, their analytics answers, and metric queries."""

import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar, cast

import strawberry
from graphql import GraphQLError
from strawberry.types import ExecutionContext

from pulseboard.analytics.deps import MAX_LIMIT, breakdown_request, timeseries_request
from pulseboard.analytics.fields import EVENT
from pulseboard.analytics.metrics import event_metric
from pulseboard.analytics.service import Analytics
from pulseboard.analytics.timerange import InvalidQuery
from pulseboard.graphql.context import Info
from pulseboard.graphql.errors import ErrorCodes, is_unexpected
from pulseboard.graphql.inputs import (
    Interval,
    MetricQueryInput,
    ScopeInput,
    SeriesMetric,
    metric_query_of,
    scope_of,
)
from pulseboard.graphql.limits import limits
from pulseboard.graphql.types import (
    COUNT_SCALAR,
    Breakdown,
    Count,
    MetricQueryResult,
    Overview,
    Sessions,
    Timeseries,
)
from pulseboard.metrics.service import MetricQueries
from pulseboard.models import Project as ProjectModel
from pulseboard.projects import service as projects_service
from pulseboard.projects.schemas import ProjectRead

logger = logging.getLogger(__name__)
MAX_SERIES_LIMIT = 50
Answer = dict[str, Any]
Resolver = TypeVar("Resolver", bound=Callable[..., Any])


def field(description: str) -> Callable[[Resolver], Resolver]:
    """`strawberry.field` with a description, typed: strawberry's own overload gives Any."""
    return cast(Callable[[Resolver], Resolver], strawberry.field(description=description))


def _limit(value: int, most: int) -> int:
    if not 1 <= value <= most:
        raise InvalidQuery(f"`limit` must be between 1 and {most}")
    return value


async def _answer(
    info: Info, project_id: uuid.UUID, run: Callable[[Analytics, ProjectModel], Awaitable[Answer]]
) -> Answer:
    """Run one analytics answer for a project the caller may read."""
    project = await info.context.project(project_id)
    state = info.context.state
    async with info.context.db() as session:
        # One Analytics per answer: it records which paths (rollups, raw) answered it.
        return await run(Analytics(session, state.settings, state.cache, project), project)


@strawberry.type
class Project:
    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    domains: list[str]
    timezone: str
    retention_days: int
    write_key_prefix: str = strawberry.field(
        description="The first characters of the write key, to tell keys apart"
    )
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, read: ProjectRead) -> "Project":
        return cls(**read.model_dump())

    @field("Totals of the range, each beside its comparison and change")
    async def overview(self, info: Info, scope: ScopeInput | None = None) -> Overview:
        async def run(analytics: Analytics, project: ProjectModel) -> Answer:
            return await analytics.overview(scope_of(scope, project))

        return Overview.of(await _answer(info, self.id, run))

    @field("One series per event (or one for all), or per top value of a breakdown")
    async def timeseries(
        self,
        info: Info,
        scope: ScopeInput | None = None,
        metric: SeriesMetric = SeriesMetric.COUNT,
        interval: Interval = Interval.AUTO,
        events: list[str] | None = None,
        breakdown: Annotated[
            str | None,
            strawberry.argument(description="A dimension or property key: one series per value"),
        ] = None,
        limit: int = 5,
    ) -> Timeseries:
        async def run(analytics: Analytics, project: ProjectModel) -> Answer:
            request = await timeseries_request(
                events=events or [],
                metric=metric.value,
                interval=interval.value,
                breakdown=breakdown,
                limit=_limit(limit, MAX_SERIES_LIMIT),
            )
            return await analytics.timeseries(
                scope_of(scope, project),
                metric=request.metric,
                interval=request.interval,
                events=request.events,
                breakdown=request.breakdown,
                limit=request.limit,
            )

        return Timeseries.of(await _answer(info, self.id, run))

    @field("The events of the range, the most frequent first")
    async def top_events(
        self,
        info: Info,
        scope: ScopeInput | None = None,
        metric: SeriesMetric = SeriesMetric.COUNT,
        limit: int = 10,
    ) -> Breakdown:
        async def run(analytics: Analytics, project: ProjectModel) -> Answer:
            return await analytics.breakdown(
                scope_of(scope, project),
                field=EVENT,
                metric=event_metric(metric.value),
                limit=_limit(limit, MAX_LIMIT),
                events=(),
            )

        return Breakdown.of(await _answer(info, self.id, run))

    @field("The top values of a dimension or property key")
    async def breakdown(
        self,
        info: Info,
        by: Annotated[
            str,
            strawberry.argument(
                description="path, referrer, utm_source, browser, os, device, ... or a property key"
            ),
        ],
        scope: ScopeInput | None = None,
        metric: SeriesMetric = SeriesMetric.COUNT,
        limit: int = 10,
        events: list[str] | None = None,
    ) -> Breakdown:
        async def run(analytics: Analytics, project: ProjectModel) -> Answer:
            request = await breakdown_request(
                by=by, events=events or [], metric=metric.value, limit=_limit(limit, MAX_LIMIT)
            )
            return await analytics.breakdown(
                scope_of(scope, project),
                field=request.field,
                metric=request.metric,
                limit=request.limit,
                events=request.events,
            )

        return Breakdown.of(await _answer(info, self.id, run))

    @field("Sessions: count, bounce rate, durations, pages per session")
    async def sessions(self, info: Info, scope: ScopeInput | None = None) -> Sessions:
        async def run(analytics: Analytics, project: ProjectModel) -> Answer:
            return await analytics.sessions(scope_of(scope, project))

        return Sessions.of(await _answer(info, self.id, run))


@strawberry.type
class Query:
    @field("The projects the caller can read, oldest first")
    async def projects(self, info: Info, organization_id: uuid.UUID | None = None) -> list[Project]:
        user = await info.context.user()
        async with info.context.db() as session:
            found = await projects_service.list_projects(session, user, organization_id)
        return [Project.of(read) for read in found]

    @field("A project; another organization's is a NOT_FOUND error")
    async def project(self, info: Info, id: uuid.UUID) -> Project:
        model = await info.context.project(id)
        async with info.context.db() as session:
            return Project.of(await projects_service.read_project(session, model))

    @field("POST /api/v1/metrics/query: a metric per interval over a range")
    async def metrics_query(
        self, info: Info, project_id: uuid.UUID, input: MetricQueryInput
    ) -> MetricQueryResult:
        project = await info.context.project(project_id)
        state = info.context.state
        async with info.context.db() as session:
            queries = MetricQueries(session, state.settings, state.cache, project)
            answer = await queries.query(metric_query_of(input, project))
        return MetricQueryResult.of(answer)


class Schema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # A refusal (not found, bad input, no token) is the client's business, not a log line.
        unexpected = [error for error in errors if is_unexpected(error)]
        if unexpected:
            super().process_errors(unexpected, execution_context)


schema = Schema(
    query=Query,
    extensions=[*limits(), ErrorCodes],
    config=strawberry.schema.config.StrawberryConfig(scalar_map={Count: COUNT_SCALAR}),
)
