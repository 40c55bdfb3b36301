"""Analytics answers: parse → plan → run (rollups or raw rows) → shape, cached by data version."""

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from pulseboard.analytics.fields import EVENT, Field
from pulseboard.analytics.filters import Filter, Op
from pulseboard.analytics.metrics import (
    EVENT_METRICS,
    PAGEVIEW,
    Aggregate,
    EventMetric,
    Needs,
    SessionStats,
)
from pulseboard.analytics.planner import EventQuery, RollupPlan, Source, plan
from pulseboard.analytics.repository import Aggregates, AnalyticsRepository
from pulseboard.analytics.timerange import (
    Compare,
    Interval,
    InvalidQuery,
    TimeRange,
    auto_interval,
    buckets,
    comparison,
    iter_local_days,
)
from pulseboard.core.cache import Cache
from pulseboard.core.settings import Settings
from pulseboard.models import Project

# Bump when the shape of a cached answer changes, so that old entries are never read.
CACHE_FORMAT = 1


@dataclass(frozen=True, slots=True)
class Scope:
    """What every analytics request shares: the range, its comparison, filters, path choice."""

    time_range: TimeRange
    filters: tuple[Filter, ...] = ()
    compare: Compare | None = None
    source: Source = Source.AUTO

    @property
    def previous(self) -> TimeRange | None:
        return comparison(self.time_range, self.compare) if self.compare else None

    def normalised(self) -> dict[str, Any]:
        return {
            "range": range_json(self.time_range),
            "filters": sorted((f.normalised() for f in self.filters), key=orjson.dumps),
            "compare": self.compare,
            "source": self.source,
        }


class Analytics:
    def __init__(
        self, session: AsyncSession, settings: Settings, cache: Cache, project: Project
    ) -> None:
        self.repository = AnalyticsRepository(session)
        self.settings = settings
        self.cache = cache
        self.project = project
        self.sources: set[str] = set()

    # Running queries -----------------------------------------------------------------------------

    async def aggregates(self, query: EventQuery) -> Aggregates:
        chosen = plan(query, datetime.now(UTC), self.settings)
        if isinstance(chosen, RollupPlan):
            self.sources.add("rollups")
            return await self.repository.rollup_aggregates(query, chosen)
        self.sources.add("raw")
        return await self.repository.raw_aggregates(query)

    def query(
        self,
        scope: Scope,
        time_range: TimeRange,
        spans: list[tuple[datetime, datetime]] | None = None,
        *,
        needs: Needs = Needs.COUNT,
        extra: tuple[Filter, ...] = (),
        group_by: Field | None = None,
        group_values: tuple[str, ...] | None = None,
    ) -> EventQuery:
        return EventQuery(
            project_id=self.project.id,
            time_range=time_range,
            buckets=tuple(spans or [(time_range.start, time_range.end)]),
            filters=scope.filters + extra,
            group_by=group_by,
            needs=needs,
            group_values=group_values,
            source=scope.source,
        )

    async def cached(
        self, name: str, scope: Scope, params: dict[str, Any], compute: Callable[[], Awaitable[Any]]
    ) -> Any:
        """The answer for this request, from the cache while no day it reads has changed."""
        ranges = [scope.time_range] + ([scope.previous] if scope.previous else [])
        days = sorted({day for r in ranges for day in _utc_days(r)})
        # Versions first, data second: a batch landing in between makes a newer key, not a
        # stale entry under the current one.
        versions = await self.cache.versions(self.project.id, days)
        try:
            identity = orjson.dumps(
                [CACHE_FORMAT, name, str(self.project.id), scope.normalised(), params, versions],
                option=orjson.OPT_SORT_KEYS,
            )
        except TypeError as exc:  # a lone surrogate that a parameter's own check let through
            raise InvalidQuery("A parameter holds text that is not valid UTF-8") from exc
        key = f"{self.project.id}:{hashlib.sha256(identity).hexdigest()}"
        hit = await self.cache.get(key)
        if hit is not None:
            return orjson.loads(hit)
        answer = await compute()
        await self.cache.put(key, orjson.dumps(answer))
        return answer

    # Answers -------------------------------------------------------------------------------------

    async def overview(self, scope: Scope) -> dict[str, Any]:
        async def compute() -> dict[str, Any]:
            current = await self._overview_numbers(scope, scope.time_range)
            previous = (
                await self._overview_numbers(scope, scope.previous) if scope.previous else None
            )
            answer: dict[str, Any] = {
                "range": range_json(scope.time_range),
                "compare": range_json(scope.previous) if scope.previous else None,
            }
            for name, value in current.items():
                before = previous[name] if previous is not None else None
                if name == "top_event":
                    answer[name] = {"value": value, "previous": before}
                    continue
                answer[name] = {"value": value, "previous": before, "change": change(value, before)}
            answer["source"] = self.source_label()
            return answer

        result: dict[str, Any] = await self.cached("overview", scope, {}, compute)
        return result

    async def _overview_numbers(self, scope: Scope, time_range: TimeRange) -> dict[str, Any]:
        totals = await self.aggregates(self.query(scope, time_range, needs=Needs.SKETCHES))
        total = totals.get((0, None), Aggregate())
        pageviews = await self.aggregates(
            self.query(scope, time_range, extra=(Filter(EVENT, Op.EQ, PAGEVIEW),))
        )
        by_event = await self.aggregates(self.query(scope, time_range, group_by=EVENT))
        top = max(
            by_event.items(), key=lambda item: (item[1].count, item[0][1] or ""), default=None
        )
        stats = await self.session_totals(scope, time_range)
        return {
            "total_events": total.count,
            "unique_users": round(total.users),
            "unique_sessions": round(total.sessions),
            "pageviews": pageviews.get((0, None), Aggregate()).count,
            "bounce_rate": stats.bounce_rate,
            "avg_session_duration": stats.avg_duration,
            "top_event": {"name": top[0][1], "count": top[1].count} if top else None,
        }

    async def timeseries(
        self,
        scope: Scope,
        *,
        metric: EventMetric,
        interval: Interval | None,
        events: tuple[str, ...],
        breakdown: Field | None,
        limit: int,
    ) -> dict[str, Any]:
        interval = interval or auto_interval(scope.time_range)
        params = {
            "metric": metric.name,
            "interval": interval,
            "events": events,
            "breakdown": breakdown.name if breakdown else None,
            "limit": limit,
        }

        async def compute() -> dict[str, Any]:
            series = await self._series(
                scope, scope.time_range, metric, interval, events, breakdown, limit
            )
            previous = None
            if scope.previous is not None:
                previous = await self._series(
                    scope, scope.previous, metric, interval, events, breakdown, limit
                )
            return {
                "range": range_json(scope.time_range),
                "compare": range_json(scope.previous) if scope.previous else None,
                "interval": interval,
                "metric": metric.name,
                "series": series,
                "previous": previous,
                "source": self.source_label(),
            }

        result: dict[str, Any] = await self.cached("timeseries", scope, params, compute)
        return result

    async def _series(
        self,
        scope: Scope,
        time_range: TimeRange,
        metric: EventMetric,
        interval: Interval,
        events: tuple[str, ...],
        breakdown: Field | None,
        limit: int,
    ) -> list[dict[str, Any]]:
        spans = buckets(time_range, interval)
        event_filter = (Filter(EVENT, Op.IN, events),) if events else ()
        if breakdown is None and len(events) > 1:
            found = await self.aggregates(
                self.query(
                    scope,
                    time_range,
                    spans,
                    needs=metric.needs,
                    extra=event_filter,
                    group_by=EVENT,
                    group_values=events,
                )
            )
            return [_series_of(name, spans, found, name, metric) for name in events]
        if breakdown is None:
            found = await self.aggregates(
                self.query(scope, time_range, spans, needs=metric.needs, extra=event_filter)
            )
            return [_series_of(events[0] if events else None, spans, found, None, metric)]
        ranked = await self._ranked(scope, time_range, metric, breakdown, event_filter)
        top = tuple(value for value, _ in ranked[:limit])
        found = await self.aggregates(
            self.query(
                scope,
                time_range,
                spans,
                needs=metric.needs,
                extra=event_filter,
                group_by=breakdown,
                group_values=top,
            )
        )
        series = [_series_of(value, spans, found, value, metric) for value in top]
        if len(ranked) > limit:
            others = await self.aggregates(
                self.query(
                    scope,
                    time_range,
                    spans,
                    needs=metric.needs,
                    extra=(*event_filter, Filter(breakdown, Op.SET_BUT_NOT_IN, top)),
                )
            )
            series.append(_series_of("other", spans, others, None, metric, other=True))
        return series

    async def session_totals(self, scope: Scope, time_range: TimeRange) -> SessionStats:
        """Sessions that started in the range: from session rollups unless filters need raw rows."""
        query = self.query(scope, time_range)
        chosen = plan(query, datetime.now(UTC), self.settings)
        if isinstance(chosen, RollupPlan) and not scope.filters:
            self.sources.add("rollups")
            return await self.repository.session_rollup_stats(self.project.id, chosen)
        self.sources.add("raw")
        stats, _, _ = await self.repository.session_stats(query)
        return stats

    async def _ranked(
        self,
        scope: Scope,
        time_range: TimeRange,
        metric: EventMetric,
        field: Field,
        extra: tuple[Filter, ...] = (),
    ) -> list[tuple[str, Aggregate]]:
        """Every value of a field over the range, the largest by the metric first."""
        found = await self.aggregates(
            self.query(scope, time_range, needs=metric.needs, extra=extra, group_by=field)
        )
        ranked = [
            (group, aggregate) for (_, group), aggregate in found.items() if group is not None
        ]
        ranked.sort(key=lambda item: (-metric.read(item[1]), item[0]))
        return ranked

    async def breakdown(
        self,
        scope: Scope,
        *,
        field: Field,
        metric: EventMetric,
        limit: int,
        events: tuple[str, ...],
    ) -> dict[str, Any]:
        params = {"by": field.name, "metric": metric.name, "limit": limit, "events": events}

        async def compute() -> dict[str, Any]:
            event_filter = (Filter(EVENT, Op.IN, events),) if events else ()
            rows, other = await self._breakdown_rows(
                scope, scope.time_range, field, metric, limit, event_filter
            )
            if scope.previous is not None:
                before, _ = await self._breakdown_rows(
                    scope,
                    scope.previous,
                    field,
                    metric,
                    None,
                    event_filter,
                    values=tuple(row["value"] for row in rows),
                )
                earlier = {row["value"]: row for row in before}
                for row in rows:
                    previous = earlier.get(row["value"])
                    row["previous"] = previous[metric.name] if previous else 0
                    row["change"] = change(row[metric.name], row["previous"])
            return {
                "range": range_json(scope.time_range),
                "compare": range_json(scope.previous) if scope.previous else None,
                "by": field.name,
                "metric": metric.name,
                "rows": rows,
                "other": other,
                "source": self.source_label(),
            }

        result: dict[str, Any] = await self.cached("breakdown", scope, params, compute)
        return result

    async def _breakdown_rows(
        self,
        scope: Scope,
        time_range: TimeRange,
        field: Field,
        metric: EventMetric,
        limit: int | None,
        extra: tuple[Filter, ...],
        values: tuple[str, ...] | None = None,
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        # Ranked by the metric over every value; unique counts are then merged for the top
        # values only (a value's sketches per day add up to thousands over a month of paths).
        found = await self.aggregates(
            self.query(
                scope,
                time_range,
                needs=metric.needs,
                extra=extra,
                group_by=field,
                group_values=values,
            )
        )
        ranked = sorted(
            ((group, aggregate) for (_, group), aggregate in found.items() if group is not None),
            key=lambda item: (-metric.read(item[1]), item[0]),
        )
        chosen = ranked if limit is None else ranked[:limit]
        top = tuple(value for value, _ in chosen)
        if metric.needs is Needs.COUNT and top:
            found = await self.aggregates(
                self.query(
                    scope,
                    time_range,
                    needs=Needs.SKETCHES,
                    extra=extra,
                    group_by=field,
                    group_values=top,
                )
            )
        rows = [{"value": value, **_numbers(found.get((0, value), Aggregate()))} for value in top]
        rest = ranked[len(chosen) :]
        other = None
        if rest:
            # Counts of the rest add up; their unique counts would need every sketch merged.
            other = {"values": len(rest), "count": sum(a.count for _, a in rest)}
        return rows, other

    async def sessions(self, scope: Scope) -> dict[str, Any]:
        async def compute() -> dict[str, Any]:
            stats, durations, pages = await self.repository.session_stats(
                self.query(scope, scope.time_range)
            )
            previous: SessionStats | None = None
            if scope.previous is not None:
                previous, _, _ = await self.repository.session_stats(
                    self.query(scope, scope.previous)
                )
            return {
                "range": range_json(scope.time_range),
                "compare": range_json(scope.previous) if scope.previous else None,
                "sessions": stats.sessions,
                "bounce_rate": stats.bounce_rate,
                "avg_duration": stats.avg_duration,
                "pages_per_session": stats.pages_per_session,
                "duration_distribution": [
                    {"band": band, "sessions": count} for band, count in durations.items()
                ],
                "pages_distribution": [
                    {"pages": pages_seen, "sessions": count} for pages_seen, count in pages.items()
                ],
                "previous": None
                if previous is None
                else {
                    "sessions": previous.sessions,
                    "bounce_rate": previous.bounce_rate,
                    "avg_duration": previous.avg_duration,
                    "pages_per_session": previous.pages_per_session,
                },
                "source": "raw",
            }

        result: dict[str, Any] = await self.cached("sessions", scope, {}, compute)
        return result

    def source_label(self) -> str:
        return "+".join(sorted(self.sources)) or "rollups"


def _numbers(aggregate: Aggregate) -> dict[str, Any]:
    return {
        name: EVENT_METRICS[name].read(aggregate)
        for name in ("count", "unique_users", "unique_sessions")
    }


def _series_of(
    key: str | None,
    spans: list[tuple[datetime, datetime]],
    found: Aggregates,
    group: str | None,
    metric: EventMetric,
    *,
    other: bool = False,
) -> dict[str, Any]:
    data = [
        {"timestamp": start, "value": metric.read(found.get((index, group), Aggregate()))}
        for index, (start, _end) in enumerate(spans)
    ]
    return {"key": key, "other": other, "data": data}


def change(value: float | None, previous: float | None) -> float | None:
    """The change from `previous` to `value` in percent; None when there is nothing to compare."""
    if value is None or previous is None or previous == 0:
        return None
    return round(100 * (value - previous) / previous, 1)


def range_json(time_range: TimeRange) -> dict[str, Any]:
    return {
        "from": time_range.start.isoformat(),
        "to": time_range.end.isoformat(),
        "timezone": time_range.timezone,
    }


def _utc_days(time_range: TimeRange) -> list[Any]:
    return list(iter_local_days(replace(time_range, timezone="UTC")))
