"""GET /metrics: metric names with their tags, and a metric's raw points with filters."""

from datetime import timedelta
from typing import Any

import httpx
import orjson

from tests.factories import Actor, create_actor
from tests.metrics.dataset import LATENCY, Sample, latency_samples, parse_time, recent_day, send

Project = dict[str, Any]


async def test_names_come_with_each_tags_values_and_the_definitions(
    client: httpx.AsyncClient, owner: Actor, project: Project
) -> None:
    day = recent_day()
    samples = latency_samples(day, 200)
    samples.append(Sample("queue.depth", day + timedelta(hours=1), 3, {}))
    await send(client, project["write_key"], samples)
    definition = {"name": "signups", "event": "signup"}
    created = await client.post(
        f"/api/v1/projects/{project['id']}/metric-definitions/",
        json=definition,
        headers=owner.headers,
    )
    assert created.status_code == 201

    response = await client.get(
        "/api/v1/metrics", params={"project_id": project["id"]}, headers=owner.headers
    )
    assert response.status_code == 200, response.text
    listed = response.json()["metrics"]
    assert [(m["name"], m["kind"]) for m in listed] == [
        (LATENCY, "raw"),
        ("queue.depth", "raw"),
        ("signups", "events"),
    ]
    assert listed[0]["tags"] == {
        "canary": ["true"],
        "route": sorted({s.tags["route"] for s in samples if s.name == LATENCY}),
        "status": sorted({str(s.tags["status"]) for s in samples if s.name == LATENCY}),
    }
    assert listed[1]["tags"] == {}
    # The listing looks back `days`: two days ago is outside one day.
    recent = await client.get(
        "/api/v1/metrics", params={"project_id": project["id"], "days": 1}, headers=owner.headers
    )
    assert [m["name"] for m in recent.json()["metrics"]] == ["signups"]


async def test_raw_points_are_listed_newest_first_with_filters(
    client: httpx.AsyncClient, owner: Actor, project: Project
) -> None:
    day = recent_day()
    samples = latency_samples(day, 300)
    await send(client, project["write_key"], samples)
    filters = [
        {"key": "route", "op": "in", "value": ["/a", "/b"]},
        {"key": "status", "op": "eq", "value": 500},
    ]
    params = {
        "project_id": project["id"],
        "name": LATENCY,
        "from": day.isoformat(),
        "to": (day + timedelta(days=1)).isoformat(),
        "filters": orjson.dumps(filters).decode(),
        "limit": 20,
    }
    response = await client.get("/api/v1/metrics/points", params=params, headers=owner.headers)
    assert response.status_code == 200, response.text
    points = response.json()["points"]
    kept = sorted(
        (s for s in samples if s.tags["route"] in ("/a", "/b") and s.tags["status"] == 500),
        key=lambda s: s.timestamp,
        reverse=True,
    )[:20]
    assert [(parse_time(p["timestamp"]), p["value"], p["tags"]) for p in points] == [
        (s.timestamp, s.value, s.tags) for s in kept
    ]

    stranger = await create_actor(client, "stranger")
    refused = await client.get("/api/v1/metrics/points", params=params, headers=stranger.headers)
    assert refused.status_code == 404
    bad = await client.get(
        "/api/v1/metrics/points", params={**params, "filters": "[1]"}, headers=owner.headers
    )
    assert bad.status_code == 422
