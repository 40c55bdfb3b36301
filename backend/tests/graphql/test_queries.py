"""GraphQL answers equal the REST answers to the same questions, several in one request."""

from datetime import timedelta
from typing import Any

import httpx
import orjson
import pytest

from tests.analytics.dataset import Dataset, ingest_dataset
from tests.factories import Actor, add_member, create_actor, create_organization, create_project
from tests.graphql.client import as_rest, data
from tests.graphql.fragments import (
    BREAKDOWN,
    OVERVIEW,
    PROJECT,
    RANGE,
    SESSIONS,
    TIMESERIES,
)
from tests.metrics.dataset import Samples, latency_samples, recent_day, send

Project = dict[str, Any]


@pytest.fixture
async def dataset(client: httpx.AsyncClient, project: Project) -> Dataset:
    return await ingest_dataset(client, project["write_key"])


async def rest(
    client: httpx.AsyncClient, actor: Actor, project: Project, path: str, **params: Any
) -> Any:
    response = await client.get(
        f"/api/v1/analytics/{project['id']}/{path}", params=params, headers=actor.headers
    )
    assert response.status_code == 200, response.text
    return as_rest(response.json())


def scope(dataset: Dataset, **extra: Any) -> dict[str, Any]:
    return {"from": dataset.start.isoformat(), "to": dataset.end.isoformat(), **extra}


async def test_overview_and_timeseries_equal_rest(
    client: httpx.AsyncClient, owner: Actor, project: Project, dataset: Dataset
) -> None:
    query = f"""
    query Q($id: UUID!, $scope: ScopeInput, $raw: ScopeInput) {{
      project(id: $id) {{
        overview(scope: $scope) {{ ...OverviewFields }}
        hourly: timeseries(scope: $raw, metric: UNIQUE_USERS, interval: HOUR) {{
          ...TimeseriesFields
        }}
        byBrowser: timeseries(scope: $scope, interval: HOUR, breakdown: "browser", limit: 1) {{
          ...TimeseriesFields
        }}
      }}
    }}
    {RANGE} {OVERVIEW} {TIMESERIES}
    """
    answer = await data(
        client,
        owner,
        query,
        id=project["id"],
        scope=scope(dataset, compare="PREVIOUS_PERIOD"),
        raw=scope(dataset, source="RAW"),
    )
    found = answer["project"]
    params = dataset.params()
    assert as_rest(found["overview"]) == await rest(
        client, owner, project, "overview", **params, compare="previous_period"
    )
    assert found["overview"]["totalEvents"]["value"] == len(dataset.counted())
    hourly = await rest(
        client,
        owner,
        project,
        "timeseries",
        **params,
        source="raw",
        metric="unique_users",
        interval="hour",
    )
    assert as_rest(found["hourly"]) == hourly
    assert hourly["source"] == "raw"
    assert len(hourly["series"][0]["data"]) == 6
    by_browser = await rest(
        client,
        owner,
        project,
        "timeseries",
        **params,
        compare="previous_period",
        interval="hour",
        breakdown="browser",
        limit=1,
    )
    assert as_rest(found["byBrowser"]) == by_browser
    # Firefox first, then Chrome as "other": the breakdown really was limited.
    assert [s["key"] for s in found["byBrowser"]["series"]] == ["Firefox", "other"]


async def test_breakdowns_with_filters_and_sessions_equal_rest(
    client: httpx.AsyncClient, owner: Actor, project: Project, dataset: Dataset
) -> None:
    query = f"""
    query Q($id: UUID!, $scope: ScopeInput, $filtered: ScopeInput) {{
      project(id: $id) {{
        topEvents(scope: $scope, limit: 2) {{ ...BreakdownFields }}
        paths: breakdown(by: "path", scope: $filtered, metric: UNIQUE_USERS, limit: 3) {{
          ...BreakdownFields
        }}
        plans: breakdown(by: "plan", scope: $scope, events: ["purchase"]) {{
          ...BreakdownFields
        }}
        sessions(scope: $filtered) {{ ...SessionsFields }}
      }}
    }}
    {RANGE} {BREAKDOWN} {SESSIONS}
    """
    filters = [
        {"key": "browser", "op": "IN", "values": ["Firefox", "Chrome"]},
        {"key": "path", "op": "NEQ", "value": "/docs"},
        {"key": "utm_source", "op": "IS_SET"},
    ]
    rest_filters = orjson.dumps(
        [
            {"key": "browser", "op": "in", "value": ["Firefox", "Chrome"]},
            {"key": "path", "op": "neq", "value": "/docs"},
            {"key": "utm_source", "op": "is_set"},
        ]
    ).decode()
    answer = await data(
        client,
        owner,
        query,
        id=project["id"],
        scope=scope(dataset, compare="PREVIOUS_PERIOD"),
        filtered=scope(dataset, filters=filters),
    )
    found = answer["project"]
    params = dataset.params()
    assert as_rest(found["topEvents"]) == await rest(
        client, owner, project, "top-events", **params, compare="previous_period", limit=2
    )
    assert found["topEvents"]["other"]["values"] == 1
    paths = await rest(
        client,
        owner,
        project,
        "breakdown",
        **params,
        by="path",
        metric="unique_users",
        limit=3,
        filters=rest_filters,
    )
    assert as_rest(found["paths"]) == paths
    assert "/docs" not in {row["value"] for row in found["paths"]["rows"]}
    assert as_rest(found["plans"]) == await rest(
        client,
        owner,
        project,
        "breakdown",
        **params,
        compare="previous_period",
        by="plan",
        event="purchase",
    )
    assert as_rest(found["sessions"]) == await rest(
        client, owner, project, "sessions", **params, filters=rest_filters
    )


async def test_a_number_filter_matches_rest(
    client: httpx.AsyncClient, owner: Actor, project: Project, dataset: Dataset
) -> None:
    query = f"""
    query Q($id: UUID!, $scope: ScopeInput) {{
      project(id: $id) {{ overview(scope: $scope) {{ ...OverviewFields }} }}
    }}
    {RANGE} {OVERVIEW}
    """
    filters = [{"key": "amount", "op": "GT", "number": 50}]
    found = await data(
        client, owner, query, id=project["id"], scope=scope(dataset, filters=filters)
    )
    expected = sum(1 for e in dataset.counted() if e.amount is not None and e.amount > 50)
    assert found["project"]["overview"]["totalEvents"]["value"] == expected
    rest_filters = orjson.dumps([{"key": "amount", "op": "gt", "value": 50}]).decode()
    assert as_rest(found["project"]["overview"]) == await rest(
        client, owner, project, "overview", **dataset.params(), filters=rest_filters
    )


async def test_projects_list_what_each_caller_can_read(
    client: httpx.AsyncClient, owner: Actor, project: Project
) -> None:
    viewer = await create_actor(client, "viewer")
    organization = await create_organization(client, owner, "Team")
    shared = await create_project(client, owner, organization, name="Shared")
    await add_member(client, organization, owner, viewer, "viewer")
    query = "query Q($org: UUID) { projects(organizationId: $org) { ...ProjectFields } }" + PROJECT

    mine = (await data(client, owner, query))["projects"]
    assert [p["name"] for p in mine] == ["Shop", "Shared"]
    theirs = (await data(client, viewer, query))["projects"]
    assert [p["id"] for p in theirs] == [shared["id"]]
    response = await client.get(f"/api/v1/projects/{shared['id']}", headers=viewer.headers)
    assert as_rest(theirs[0]) == as_rest(response.json())
    in_team = (await data(client, owner, query, org=organization))["projects"]
    assert [p["id"] for p in in_team] == [shared["id"]]


async def test_metrics_query_equals_rest(
    client: httpx.AsyncClient, owner: Actor, project: Project
) -> None:
    samples = Samples(day=recent_day())
    samples.items = latency_samples(samples.day, 300)
    await send(client, project["write_key"], samples.items)
    start, end = samples.day, samples.day + timedelta(hours=6)
    query = """
    query Q($id: UUID!, $input: MetricQueryInput!) {
      metricsQuery(projectId: $id, input: $input) {
        metricName aggregation interval source data { timestamp value tags { key value } }
      }
    }
    """
    graphql_input = {
        "metricName": "api.latency_ms",
        "timeRange": {"start": start.isoformat(), "end": end.isoformat()},
        "aggregation": "P95",
        "interval": "HOUR",
        "groupBy": ["route"],
        "filters": [{"key": "status", "op": "EQ", "value": "200"}],
    }
    found = (await data(client, owner, query, id=project["id"], input=graphql_input))[
        "metricsQuery"
    ]
    response = await client.post(
        "/api/v1/metrics/query",
        params={"project_id": project["id"]},
        json={
            "metric_name": "api.latency_ms",
            "time_range": {"start": start.isoformat(), "end": end.isoformat()},
            "aggregation": "p95",
            "interval": "hour",
            "group_by": ["route"],
            "filters": [{"key": "status", "op": "eq", "value": "200"}],
        },
        headers=owner.headers,
    )
    assert response.status_code == 200, response.text
    expected = response.json()
    for point in expected["data"]:
        point["tags"] = [{"key": k, "value": v} for k, v in point["tags"].items()]
    assert as_rest(found) == as_rest(expected)
    # Three routes, six hours each.
    assert len(found["data"]) == 18
    assert found["interval"] == "HOUR"
