"""All SQL of metric queries and definitions: rollup rows, raw points, raw events' properties.

The query methods return `{(bucket index, series): Stats}` whichever path answered, so that what
sits above them never knows which one did.
"""

import bisect
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import String, and_, column, func, literal, select, values
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from pulseboard.analytics.fields import EVENT, Field, Property
from pulseboard.analytics.filters import Filter, Op
from pulseboard.analytics.planner import RollupPlan, Span
from pulseboard.analytics.sql import EventSql
from pulseboard.core.repository import Repository
from pulseboard.metrics.aggregations import Stats
from pulseboard.metrics.tags import GroupKey, TagSelector
from pulseboard.models import Event, MetricDefinition, MetricPoint, MetricRollup
from pulseboard.models.base import UTCDateTime
from pulseboard.pipeline.rollups import DAY

Bucket = tuple[datetime, datetime]
Found = dict[tuple[int, GroupKey], Stats]
# Raw points are read from the database this many at a time when listed.
POINTS_CHUNK = 1000


def _buckets_cte(buckets: Sequence[Bucket]) -> Any:
    return (
        values(column("s", UTCDateTime()), column("e", UTCDateTime()), name="b")
        .data(list(buckets))
        .cte("b")
    )


class MetricsRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.sql = EventSql(session.get_bind().dialect.name)

    # Raw metrics from rollups ------------------------------------------------------------------

    async def rollup_stats(
        self,
        project_id: uuid.UUID,
        name: str,
        plan: RollupPlan,
        selector: TagSelector,
        *,
        sketches: bool,
    ) -> Found:
        by_granularity: dict[int, list[Span]] = defaultdict(list)
        for span in plan.spans:
            by_granularity[span.granularity].append(span)
        found: Found = defaultdict(Stats)
        rollups = MetricRollup.__table__.c
        for granularity, spans in by_granularity.items():
            spans.sort(key=lambda span: span.start)
            starts = [span.start for span in spans]
            columns = [rollups.bucket, rollups.tags, rollups.count.label("samples"), rollups.sum]
            columns += [rollups.min, rollups.max]
            if sketches:
                columns.append(rollups.quantiles)
            statement = select(*columns).where(
                rollups.project_id == project_id,
                rollups.granularity == granularity,
                rollups.name == name,
                rollups.bucket >= spans[0].start,
                rollups.bucket < max(span.end for span in spans),
            )
            for row in await self.session.execute(statement):
                position = bisect.bisect_right(starts, row.bucket) - 1
                if position < 0 or row.bucket >= spans[position].end:
                    continue
                group = selector.group_of(row.tags)
                if group is None:
                    continue
                stats = found[(spans[position].bucket, group)]
                stats.add(int(row.samples), float(row.sum), row.min, row.max)
                if sketches:
                    stats.sketches.append(row.quantiles)
        return dict(found)

    # Raw metrics from raw points -----------------------------------------------------------------

    async def raw_stats(
        self,
        project_id: uuid.UUID,
        name: str,
        buckets: Sequence[Bucket],
        selector: TagSelector,
        *,
        values_needed: bool,
    ) -> Found:
        points = MetricPoint.__table__.c
        cte = _buckets_cte(buckets)
        index = {start: position for position, (start, _end) in enumerate(buckets)}
        joined = cte.join(
            MetricPoint.__table__,
            and_(
                points.project_id == project_id,
                points.name == name,
                points.timestamp >= cte.c.s,
                points.timestamp < cte.c.e,
            ),
        )
        found: Found = defaultdict(Stats)
        if values_needed:
            # Percentiles are exact here: every value of the range is read.
            statement = select(cte.c.s, points.tags, points.value).select_from(joined)
            for row in await self.session.execute(statement):
                group = selector.group_of(row.tags)
                if group is not None:
                    stats = found[(index[row.s], group)]
                    stats.add(1, row.value, row.value, row.value)
                    stats.values.append(row.value)
            return dict(found)
        statement = (
            select(
                cte.c.s,
                points.tags,
                func.count().label("samples"),
                func.sum(points.value).label("sum"),
                func.min(points.value).label("min"),
                func.max(points.value).label("max"),
            )
            .select_from(joined)
            .group_by(cte.c.s, points.tags)
        )
        for row in await self.session.execute(statement):
            group = selector.group_of(row.tags)
            if group is not None:
                found[(index[row.s], group)].add(int(row.samples), float(row.sum), row.min, row.max)
        return dict(found)

    # Custom definitions over raw events ----------------------------------------------------------

    async def event_stats(
        self,
        project_id: uuid.UUID,
        event: str,
        prop: str,
        filters: tuple[Filter, ...],
        buckets: Sequence[Bucket],
        group_by: Field | None,
        *,
        values_needed: bool,
    ) -> Found:
        """A numeric property of an event aggregated per bucket; events without it are skipped."""
        events = Event.__table__.c
        cte = _buckets_cte(buckets)
        index = {start: position for position, (start, _end) in enumerate(buckets)}
        number = self.sql.number_of(Property(prop)).label("number")
        group: ColumnElement[Any] = (
            literal(None, String) if group_by is None else self.sql.text_of(group_by)
        ).label("group")
        conditions = [
            *self.sql.filters((Filter(EVENT, Op.EQ, event), *filters)),
            number.element.is_not(None),
        ]
        if group_by is not None:
            conditions.append(group.element.is_not(None))
        joined = cte.join(
            Event.__table__,
            and_(
                events.project_id == project_id,
                events.timestamp >= cte.c.s,
                events.timestamp < cte.c.e,
            ),
        )
        found: Found = defaultdict(Stats)
        if values_needed:
            rows = await self.session.execute(
                select(cte.c.s, group, number).select_from(joined).where(*conditions)
            )
            for row in rows:
                stats = found[(index[row.s], (row.group,) if group_by else ())]
                stats.add(1, row.number, row.number, row.number)
                stats.values.append(row.number)
            return dict(found)
        statement = (
            select(
                cte.c.s,
                group,
                func.count().label("samples"),
                func.sum(number.element).label("sum"),
                func.min(number.element).label("min"),
                func.max(number.element).label("max"),
            )
            .select_from(joined)
            .where(*conditions)
            .group_by(cte.c.s, *([] if group_by is None else [group.element]))
        )
        for row in await self.session.execute(statement):
            key = (index[row.s], (row.group,) if group_by else ())
            found[key].add(int(row.samples), float(row.sum), row.min, row.max)
        return dict(found)

    # Listing -------------------------------------------------------------------------------------

    async def names_and_tags(self, project_id: uuid.UUID, since: datetime) -> list[tuple[str, str]]:
        """Every (metric name, tag set) with a sample since `since`, read from day rollups."""
        rollups = MetricRollup.__table__.c
        statement = (
            select(rollups.name, rollups.tags)
            .where(
                rollups.project_id == project_id,
                rollups.granularity == DAY,
                rollups.bucket >= since,
            )
            .distinct()
            .order_by(rollups.name, rollups.tags)
        )
        return [(row.name, row.tags) for row in await self.session.execute(statement)]

    async def has_metric(self, project_id: uuid.UUID, name: str) -> bool:
        rollups = MetricRollup.__table__.c
        statement = (
            select(rollups.name)
            .where(
                rollups.project_id == project_id,
                rollups.granularity == DAY,
                rollups.name == name,
            )
            .limit(1)
        )
        return (await self.session.execute(statement)).first() is not None

    async def points(
        self, project_id: uuid.UUID, name: str, start: datetime, end: datetime
    ) -> AsyncIterator[Any]:
        """Raw points of a metric in [start, end), the newest first."""
        points = MetricPoint.__table__.c
        statement = (
            select(points.timestamp, points.value, points.tags)
            .where(
                points.project_id == project_id,
                points.name == name,
                points.timestamp >= start,
                points.timestamp < end,
            )
            .order_by(points.timestamp.desc(), points.id)
            .execution_options(yield_per=POINTS_CHUNK)
        )
        result = await self.session.stream(statement)
        async for row in result:
            yield row


class MetricDefinitionRepository(Repository[MetricDefinition]):
    model = MetricDefinition

    async def list_for_project(self, project_id: uuid.UUID) -> Sequence[MetricDefinition]:
        return await self.list(
            select(MetricDefinition)
            .where(MetricDefinition.project_id == project_id)
            .order_by(MetricDefinition.name)
        )

    async def get_in_project(
        self, project_id: uuid.UUID, definition_id: uuid.UUID
    ) -> MetricDefinition | None:
        return await self.get_one_or_none(
            select(MetricDefinition).where(
                MetricDefinition.project_id == project_id, MetricDefinition.id == definition_id
            )
        )
