"""POST /metrics/query over raw metrics: exact on both paths and stores, percentiles within the
sketch's error, answered fresh after new data, and refusals that say why."""

import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import delete

from pulseboard.models import MetricPoint, MetricRollup
from pulseboard.pipeline.sketches import QUANTILES_RANK_ERROR
from tests.factories import Actor, create_actor
from tests.metrics.dataset import (
    AGGREGATE,
    LATENCY,
    ROUTES,
    Sample,
    Samples,
    answer,
    bucketed,
    exact_quantile,
    hours,
    latency_samples,
    parse_time,
    query,
    recent_day,
    send,
    values_of,
)

Project = dict[str, Any]


@pytest.fixture
async def samples(client: httpx.AsyncClient, project: Project) -> Samples:
    day = recent_day()
    found = Samples(day, latency_samples(day, 600))
    await send(client, project["write_key"], found.items)
    return found


def approx(values: list[float | None]) -> list[Any]:
    return [None if v is None else pytest.approx(v, rel=1e-9) for v in values]


@pytest.mark.parametrize("aggregation", ["count", "sum", "avg", "min", "max", "p50", "p99"])
@pytest.mark.parametrize("source", ["rollups", "raw"])
async def test_hourly_values_are_exact_on_both_paths(
    client: httpx.AsyncClient,
    owner: Actor,
    project: Project,
    samples: Samples,
    aggregation: str,
    source: str,
) -> None:
    body = await answer(
        client,
        owner,
        project,
        samples.body(aggregation=aggregation, interval="hour", source=source),
    )
    spans = hours(samples.day)
    per_hour = bucketed(samples.items, spans)[()]
    # Under 200 samples a bucket's KLL sketch holds them all, so percentiles are exact too.
    assert values_of(body) == approx([AGGREGATE[aggregation](v) for v in per_hour])
    assert [parse_time(p["timestamp"]) for p in body["data"]] == [s for s, _ in spans]
    assert (body["source"], body["aggregation"], body["interval"]) == (source, aggregation, "hour")


async def test_group_by_and_tag_filters_select_exact_series(
    client: httpx.AsyncClient, owner: Actor, project: Project, samples: Samples
) -> None:
    filters = [
        {"key": "status", "op": "gt", "value": 250},
        {"key": "canary", "op": "neq", "value": "true"},
    ]
    answers = {}
    for source in ("rollups", "raw"):
        body = await answer(
            client,
            owner,
            project,
            samples.body(
                aggregation="sum",
                interval="day",
                group_by=["route"],
                filters=filters,
                source=source,
            ),
        )
        kept = [s for s in samples.items if s.tags["status"] == 500 and "canary" not in s.tags]
        expected = bucketed(kept, [(samples.day, samples.end)], lambda s: s.tags["route"])
        assert {p["tags"]["route"] for p in body["data"]} == set(ROUTES)
        for route in ROUTES:
            assert values_of(body, route=route) == approx([sum(expected[route][0])])
        body.pop("source")
        answers[source] = body
    # The same points; sums may differ in the last bits, being added in another order.
    rolled, raw = answers["rollups"].pop("data"), answers["raw"].pop("data")
    assert answers["rollups"] == answers["raw"]
    assert [(p["timestamp"], p["tags"]) for p in rolled] == [
        (p["timestamp"], p["tags"]) for p in raw
    ]
    assert [p["value"] for p in rolled] == approx([p["value"] for p in raw])


async def test_percentiles_are_within_the_sketchs_rank_error(
    client: httpx.AsyncClient, owner: Actor, project: Project
) -> None:
    day = recent_day()
    items = latency_samples(day, 3000, seed=11)
    await send(client, project["write_key"], items)
    values = sorted(s.value for s in items)
    for q, name in ((0.5, "p50"), (0.95, "p95"), (0.99, "p99")):
        batch = Samples(day, items)
        raw = await answer(
            client, owner, project, batch.body(aggregation=name, interval="day", source="raw")
        )
        assert values_of(raw) == [exact_quantile(values, q)]
        rolled = await answer(client, owner, project, batch.body(aggregation=name, interval="day"))
        assert rolled["source"] == "rollups"
        [estimate] = values_of(rolled)
        assert estimate is not None
        rank = sum(v <= estimate for v in values) / len(values)
        assert abs(rank - q) <= QUANTILES_RANK_ERROR + 1 / len(values)


async def test_five_minute_intervals_come_from_minute_rollups(
    client: httpx.AsyncClient, owner: Actor, project: Project, samples: Samples
) -> None:
    start = samples.day + timedelta(hours=10)
    end = start + timedelta(hours=2)
    body = await answer(
        client,
        owner,
        project,
        {
            "metric_name": LATENCY,
            "time_range": {"start": start.isoformat(), "end": end.isoformat()},
            "aggregation": "count",
            "interval": "5m",
        },
    )
    spans = [
        (start + timedelta(minutes=m), start + timedelta(minutes=m + 5)) for m in range(0, 120, 5)
    ]
    assert body["source"] == "rollups"
    assert values_of(body) == [len(v) for v in bucketed(samples.items, spans)[()]]


async def test_a_range_off_minute_boundaries_is_answered_from_raw_points(
    client: httpx.AsyncClient, owner: Actor, project: Project, samples: Samples
) -> None:
    start = samples.day + timedelta(seconds=30)
    end = samples.day + timedelta(hours=5, seconds=10)
    body = await answer(
        client,
        owner,
        project,
        {
            "metric_name": LATENCY,
            "time_range": {"start": start.isoformat(), "end": end.isoformat()},
            "aggregation": "max",
            "interval": "hour",
        },
    )
    spans = [(max(s, start), min(e, end)) for s, e in hours(samples.day)[:6]]
    assert body["source"] == "raw"
    assert values_of(body) == [max(v, default=None) for v in bucketed(samples.items, spans)[()]]


async def test_answers_are_cached_until_new_data_lands_on_their_days(
    client: httpx.AsyncClient, app: FastAPI, owner: Actor, project: Project, samples: Samples
) -> None:
    body = samples.body(aggregation="count", interval="day")
    first = await answer(client, owner, project, body)
    assert values_of(first) == [len(samples.items)]
    # Rows removed behind the cache's back change no version: the cached answer is served...
    async with app.state.pulseboard.engine.begin() as connection:
        for model in (MetricPoint, MetricRollup):
            await connection.execute(
                delete(model).where(model.project_id == uuid.UUID(project["id"]))
            )
    assert await answer(client, owner, project, body) == first
    # ...until a sample lands on that day, and the next answer is computed afresh.
    late = Sample(LATENCY, samples.day + timedelta(hours=3), 1.0, {"route": "/a", "status": 200})
    await send(client, project["write_key"], [late])
    assert values_of(await answer(client, owner, project, body)) == [1]


async def test_an_empty_range_answers_zero_counts_and_null_averages(
    client: httpx.AsyncClient, owner: Actor, project: Project, samples: Samples
) -> None:
    earlier = samples.day - timedelta(days=1)
    for aggregation, empty in (("count", 0), ("sum", 0), ("avg", None), ("p95", None)):
        body = await answer(
            client,
            owner,
            project,
            {
                "metric_name": LATENCY,
                "time_range": {"start": earlier.isoformat(), "end": samples.day.isoformat()},
                "aggregation": aggregation,
                "interval": "hour",
            },
        )
        assert values_of(body) == [empty] * 24


BAD_QUERIES = [
    ({"interval": "fortnight"}, "Unknown interval"),
    (
        {
            "time_range": {"start": "2016-01-01T00:00:00Z", "end": "2026-01-01T00:00:00Z"},
            "interval": "minute",
        },
        "10,000 points",
    ),
    ({"metric_name": "nope"}, "Unknown metric"),
    ({"aggregation": "median"}, None),
    ({"time_range": {"start": "2026-01-02T00:00:00", "end": "2026-01-03T00:00:00Z"}}, "timezone"),
    ({"time_range": {"start": "2026-01-03T00:00:00Z", "end": "2026-01-02T00:00:00Z"}}, "after"),
    ({"filters": [{"key": "route", "op": "like", "value": "/a"}]}, "op must be"),
    ({"filters": [{"key": "status", "op": "gt", "value": "x"}]}, "number"),
    ({"group_by": ["a", "b", "c", "d", "e", "f"]}, None),
]


@pytest.mark.parametrize(("change", "reason"), BAD_QUERIES)
async def test_bad_queries_get_a_422_that_says_why(
    client: httpx.AsyncClient,
    owner: Actor,
    project: Project,
    samples: Samples,
    change: dict[str, Any],
    reason: str | None,
) -> None:
    response = await query(client, owner, project, {**samples.body(), **change})
    assert response.status_code == 422, response.text
    if reason is not None:
        assert reason in str(response.json()["detail"])


async def test_rollups_refuse_a_range_they_cannot_tile(
    client: httpx.AsyncClient, owner: Actor, project: Project, samples: Samples
) -> None:
    start = (samples.day + timedelta(seconds=30)).isoformat()
    body = samples.body(
        time_range={"start": start, "end": samples.end.isoformat()}, source="rollups"
    )
    response = await query(client, owner, project, body)
    assert response.status_code == 422
    assert "minute boundaries" in response.json()["detail"]


async def test_only_the_projects_organization_reads_its_metrics(
    client: httpx.AsyncClient, project: Project, samples: Samples
) -> None:
    stranger = await create_actor(client, "stranger")
    response = await query(client, stranger, project, samples.body())
    assert response.status_code == 404
    listed = await client.get(
        "/api/v1/metrics", params={"project_id": project["id"]}, headers=stranger.headers
    )
    assert listed.status_code == 404
    # A write key reads nothing.
    keyed = await client.post(
        "/api/v1/metrics/query",
        params={"project_id": project["id"]},
        json=samples.body(),
        headers={"X-API-Key": project["write_key"]},
    )
    assert keyed.status_code == 401
