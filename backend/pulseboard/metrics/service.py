"""Metric answers: parse → plan → run (rollups or raw rows) → shape, cached by data version.

A query names a raw metric or a project's definition. A raw metric is planned like an event
query (the same tiling by day, hour and minute rollups, the same fallbacks to raw rows); an event
definition counts through the analytics path or aggregates a property from raw events; a formula
evaluates its operands' series point by point.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from pulseboard.analytics.fields import EVENT, Field, field_of
from pulseboard.analytics.filters import Filter, Op, parse_filter_items
from pulseboard.analytics.metrics import Needs
from pulseboard.analytics.planner import EventQuery, RollupPlan, Source, plan
from pulseboard.analytics.service import Analytics, Scope
from pulseboard.analytics.timerange import (
    Interval,
    InvalidQuery,
    TimeRange,
    auto_interval,
    buckets,
    resolve,
)
from pulseboard.core.cache import Cache
from pulseboard.core.settings import Settings
from pulseboard.metrics import formula
from pulseboard.metrics.aggregations import AGGREGATIONS, Aggregation, Stats, aggregation_of
from pulseboard.metrics.repository import Found, MetricDefinitionRepository, MetricsRepository
from pulseboard.metrics.schemas import MetricQueryCreate
from pulseboard.metrics.tags import GroupKey, TagSelector, matches, tag_text
from pulseboard.models import MetricDefinition, Project

# A grouped query may answer at most this many series.
MAX_SERIES = 100
DEFAULT_AGGREGATION = "avg"


@dataclass(frozen=True, slots=True)
class MetricQuery:
    metric_name: str
    time_range: TimeRange
    interval: Interval
    aggregation: Aggregation | None = None
    group_by: tuple[str, ...] = ()
    filters: tuple[Filter, ...] = ()
    source: Source = Source.AUTO

    @classmethod
    def of(cls, body: MetricQueryCreate, project: Project) -> "MetricQuery":
        """The query a request body asks for, its range in the project's timezone."""
        time_range = resolve(
            None, body.time_range.start, body.time_range.end, project.timezone, datetime.now(UTC)
        )
        return cls(
            metric_name=body.metric_name,
            time_range=time_range,
            interval=resolve_interval(body.interval, time_range),
            aggregation=aggregation_of(body.aggregation) if body.aggregation else None,
            group_by=tuple(dict.fromkeys(body.group_by)),
            filters=parse_filter_items(body.filters),
            source=body.source,
        )


@dataclass(frozen=True, slots=True)
class Series:
    """Values per bucket for each group; `empty` is the value of a bucket without samples."""

    values: dict[GroupKey, list[float | None]]
    empty: float | None


class MetricQueries:
    def __init__(
        self, session: AsyncSession, settings: Settings, cache: Cache, project: Project
    ) -> None:
        self.repository = MetricsRepository(session)
        self.definitions = MetricDefinitionRepository(session)
        self.analytics = Analytics(session, settings, cache, project)
        self.settings = settings
        self.project = project

    async def query(self, query: MetricQuery) -> dict[str, Any]:
        """The answer: one point per bucket for each series, several series when grouped."""
        definitions = {d.name: d for d in await self.definitions.list_for_project(self.project.id)}
        definition = definitions.get(query.metric_name)
        spans = buckets(query.time_range, query.interval)
        aggregation = _aggregation_label(query, definition)
        params = {
            "metric": query.metric_name,
            "aggregation": aggregation,
            "interval": query.interval,
            "group_by": query.group_by,
            # A changed definition must never be answered from the cache.
            "definitions": sorted(_fingerprint(d) for d in definitions.values()),
        }
        scope = Scope(query.time_range, query.filters, None, query.source)

        async def compute() -> dict[str, Any]:
            # Checked on a cache miss only: a cached answer is one for a metric that exists.
            if definition is None and not await self.repository.has_metric(
                self.project.id, query.metric_name
            ):
                raise InvalidQuery(
                    f"Unknown metric {query.metric_name!r}: no samples were received under that "
                    "name and no definition has it"
                )
            series = await self._series(query, query.metric_name, spans, definitions, ())
            data = [
                {
                    "timestamp": start,
                    "value": values[index],
                    "tags": dict(zip(query.group_by, group, strict=True)),
                }
                for group, values in sorted(series.values.items(), key=_group_order)
                for index, (start, _end) in enumerate(spans)
            ]
            return {
                "metric_name": query.metric_name,
                "aggregation": aggregation,
                "interval": query.interval,
                "source": self.analytics.source_label(),
                "data": data,
            }

        answer: dict[str, Any] = await self.analytics.cached("metrics", scope, params, compute)
        return answer

    async def _series(
        self,
        query: MetricQuery,
        name: str,
        spans: list[tuple[datetime, datetime]],
        definitions: dict[str, MetricDefinition],
        path: tuple[str, ...],
    ) -> Series:
        if name in path:  # refused when defined; kept here so a bad row cannot recurse forever
            raise InvalidQuery(f"Metric {name!r} refers to itself through {' → '.join(path)}")
        definition = definitions.get(name)
        if definition is None:
            aggregation = query.aggregation or AGGREGATIONS[DEFAULT_AGGREGATION]
            found = await self._raw_metric(query, name, spans, aggregation)
            return _series_of(found, aggregation, spans, query.group_by)
        if definition.formula is not None:
            return await self._formula(query, definition.formula, spans, definitions, (*path, name))
        return await self._event_definition(query, definition, spans)

    async def _raw_metric(
        self,
        query: MetricQuery,
        name: str,
        spans: list[tuple[datetime, datetime]],
        aggregation: Aggregation,
    ) -> Found:
        selector = TagSelector(query.filters, query.group_by)
        chosen = plan(
            EventQuery(self.project.id, query.time_range, tuple(spans), source=query.source),
            datetime.now(UTC),
            self.settings,
        )
        needs_sketches = aggregation.quantile is not None
        if isinstance(chosen, RollupPlan):
            self.analytics.sources.add("rollups")
            return await self.repository.rollup_stats(
                self.project.id, name, chosen, selector, sketches=needs_sketches
            )
        self.analytics.sources.add("raw")
        return await self.repository.raw_stats(
            self.project.id, name, spans, selector, values_needed=needs_sketches
        )

    async def _event_definition(
        self,
        query: MetricQuery,
        definition: MetricDefinition,
        spans: list[tuple[datetime, datetime]],
    ) -> Series:
        if len(query.group_by) > 1:
            raise InvalidQuery("A metric defined from events groups by at most one field")
        group_by = _field(query.group_by[0]) if query.group_by else None
        filters = (*parse_filter_items(definition.filters), *query.filters)
        aggregation = aggregation_of(definition.aggregation or "count")
        assert definition.event is not None
        if aggregation.name == "count":
            # Counts go through the analytics planner: event rollups unless a filter needs rows.
            counted = await self.analytics.aggregates(
                EventQuery(
                    project_id=self.project.id,
                    time_range=query.time_range,
                    buckets=tuple(spans),
                    filters=(Filter(EVENT, Op.EQ, definition.event), *filters),
                    group_by=group_by,
                    needs=Needs.COUNT,
                    source=query.source,
                )
            )
            found: Found = {
                (index, (group,) if group_by else ()): Stats(count=aggregate.count)
                for (index, group), aggregate in counted.items()
            }
        else:
            assert definition.property is not None
            if query.source is Source.ROLLUPS:
                raise InvalidQuery("Rollups cannot answer this query: properties are not rolled up")
            self.analytics.sources.add("raw")
            found = await self.repository.event_stats(
                self.project.id,
                definition.event,
                definition.property,
                filters,
                spans,
                group_by,
                values_needed=aggregation.quantile is not None,
            )
        return _series_of(found, aggregation, spans, query.group_by)

    async def _formula(
        self,
        query: MetricQuery,
        text: str,
        spans: list[tuple[datetime, datetime]],
        definitions: dict[str, MetricDefinition],
        path: tuple[str, ...],
    ) -> Series:
        tree = formula.parse(text)
        operands = {
            name: await self._series(query, name, spans, definitions, path)
            for name in sorted(formula.names(tree))
        }
        groups = {group for series in operands.values() for group in series.values}
        values: dict[GroupKey, list[float | None]] = {}
        for group in groups:
            # An operand without this group has no samples in it: its empty value everywhere.
            rows = {
                name: series.values.get(group, [series.empty] * len(spans))
                for name, series in operands.items()
            }
            values[group] = [
                formula.evaluate(tree, {name: row[index] for name, row in rows.items()})
                for index in range(len(spans))
            ]
        empty = formula.evaluate(tree, {name: s.empty for name, s in operands.items()})
        if not query.group_by and () not in values:
            values[()] = [empty] * len(spans)
        return Series(values, empty)

    # Listing -------------------------------------------------------------------------------------

    async def catalogue(self, days: int) -> list[dict[str, Any]]:
        """Metric names with each tag's values seen in the last `days`, then the definitions."""
        since = datetime.now(UTC) - timedelta(days=days)
        tags_by_name: dict[str, dict[str, set[str]]] = {}
        for name, tags_text in await self.repository.names_and_tags(self.project.id, since):
            tags = tags_by_name.setdefault(name, {})
            for key, value in orjson.loads(tags_text).items():
                text = tag_text(value)
                if text is not None:
                    tags.setdefault(key, set()).add(text)
        listed = [
            {
                "name": name,
                "kind": "raw",
                "tags": {key: sorted(found) for key, found in sorted(tags.items())},
            }
            for name, tags in sorted(tags_by_name.items())
        ]
        for definition in await self.definitions.list_for_project(self.project.id):
            kind = "formula" if definition.formula is not None else "events"
            listed.append({"name": definition.name, "kind": kind, "tags": {}})
        return listed

    async def points(
        self, name: str, time_range: TimeRange, filters: tuple[Filter, ...], limit: int
    ) -> list[dict[str, Any]]:
        """Raw points of one metric in the range, the newest first, those whose tags match."""
        found: list[dict[str, Any]] = []
        async for row in self.repository.points(
            self.project.id, name, time_range.start, time_range.end
        ):
            if all(matches(row.tags, item) for item in filters):
                found.append({"timestamp": row.timestamp, "value": row.value, "tags": row.tags})
                if len(found) >= limit:
                    break
        return found


def _series_of(
    found: Found,
    aggregation: Aggregation,
    spans: Sequence[tuple[datetime, datetime]],
    group_by: tuple[str, ...],
) -> Series:
    groups = {group for _, group in found}
    if not group_by:
        groups.add(())
    if len(groups) > MAX_SERIES:
        raise InvalidQuery(
            f"The query makes {len(groups)} series, more than {MAX_SERIES}; "
            "filter it or group by fewer tags"
        )
    empty = aggregation.read(Stats())
    values = {
        group: [
            # SQLite sums huge values to infinity (PostgreSQL refuses the query, a 422).
            formula.finite(aggregation.read(stats))
            if (stats := found.get((index, group)))
            else empty
            for index in range(len(spans))
        ]
        for group in groups
    }
    return Series(values, empty)


def _field(key: str) -> Field:
    field = field_of(key)
    if field is None:
        raise InvalidQuery(f"`group_by` must name a dimension or property, not {key!r}")
    return field


def _aggregation_label(query: MetricQuery, definition: MetricDefinition | None) -> str:
    if definition is None:
        return (query.aggregation or AGGREGATIONS[DEFAULT_AGGREGATION]).name
    if definition.formula is not None:
        return "formula"
    return definition.aggregation or "count"


def _fingerprint(definition: MetricDefinition) -> list[Any]:
    return [
        definition.name,
        definition.event,
        definition.aggregation,
        definition.property,
        definition.filters,
        definition.formula,
    ]


def _group_order(item: tuple[GroupKey, Any]) -> tuple[tuple[bool, str], ...]:
    # None (a sample without the tag) sorts first.
    return tuple((value is not None, value or "") for value in item[0])


def resolve_interval(value: str, time_range: TimeRange) -> Interval:
    """The interval a request names; `auto` picks one from the range's length."""
    return Interval.parse(value) or auto_interval(time_range)
