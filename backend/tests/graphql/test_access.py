"""The same permissions as REST: members read, strangers get NOT_FOUND, no token UNAUTHENTICATED."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.factories import Actor, add_member, create_actor, create_organization, create_project
from tests.graphql.client import data, error_codes, post

PROJECT_OVERVIEW = """
query Q($id: UUID!) {
  project(id: $id) { name overview { totalEvents { value } } }
}
"""
METRICS = """
query Q($id: UUID!, $input: MetricQueryInput!) {
  metricsQuery(projectId: $id, input: $input) { metricName }
}
"""


def metric_input() -> dict[str, Any]:
    end = datetime.now(UTC)
    return {
        "metricName": "api.latency_ms",
        "timeRange": {"start": (end - timedelta(hours=1)).isoformat(), "end": end.isoformat()},
    }


async def test_a_viewer_reads_the_organizations_projects(
    client: httpx.AsyncClient, owner: Actor
) -> None:
    organization = await create_organization(client, owner, "Team")
    project = await create_project(client, owner, organization, name="Team site")
    viewer = await create_actor(client, "viewer")
    await add_member(client, organization, owner, viewer, "viewer")

    found = await data(client, viewer, PROJECT_OVERVIEW, id=project["id"])
    assert found["project"]["name"] == "Team site"
    assert found["project"]["overview"]["totalEvents"]["value"] == 0


async def test_a_stranger_gets_not_found_and_no_data(
    client: httpx.AsyncClient, project: dict[str, Any]
) -> None:
    stranger = await create_actor(client, "stranger")
    for query, variables in (
        (PROJECT_OVERVIEW, {"id": project["id"]}),
        (METRICS, {"id": project["id"], "input": metric_input()}),
    ):
        body = await post(client, stranger, query, **variables)
        assert body["data"] is None
        assert error_codes(body) == ["NOT_FOUND"]
        assert body["errors"][0]["message"] == "Project not found"
    # The same answer as for a project that does not exist: nothing tells them apart.
    missing = await post(client, stranger, PROJECT_OVERVIEW, id=str(uuid.uuid4()))
    assert missing["errors"][0]["message"] == "Project not found"
    listed = await data(client, stranger, "{ projects { id } }")
    assert listed["projects"] == []


async def test_without_a_valid_token_everything_is_unauthenticated(
    client: httpx.AsyncClient, owner: Actor, project: dict[str, Any]
) -> None:
    anonymous = await post(client, None, PROJECT_OVERVIEW, id=project["id"])
    assert anonymous["data"] is None
    assert error_codes(anonymous) == ["UNAUTHENTICATED"]
    assert anonymous["errors"][0]["message"] == "Not authenticated"

    forged = Actor(
        id=owner.id,
        email=owner.email,
        access_token=owner.access_token[:-4] + "AAAA",
        refresh_token=owner.refresh_token,
        personal_organization_id=owner.personal_organization_id,
    )
    for query in ("{ projects { id } }", METRICS):
        body = await post(client, forged, query, id=project["id"], input=metric_input())
        assert body["data"] is None
        assert error_codes(body) == ["UNAUTHENTICATED"]

    # A write key reads nothing either.
    keyed = await client.post(
        "/api/graphql",
        json={"query": "{ projects { id } }"},
        headers={"X-API-Key": project["write_key"]},
    )
    assert keyed.status_code == 200
    assert error_codes(keyed.json()) == ["UNAUTHENTICATED"]


async def test_after_logout_the_token_reads_nothing(
    client: httpx.AsyncClient, owner: Actor, project: dict[str, Any]
) -> None:
    assert (await data(client, owner, "{ projects { id } }"))["projects"]
    response = await client.post(
        "/api/v1/auth/logout", json={"refresh_token": owner.refresh_token}, headers=owner.headers
    )
    assert response.status_code == 204, response.text
    body = await post(client, owner, "{ projects { id } }")
    assert error_codes(body) == ["UNAUTHENTICATED"]
