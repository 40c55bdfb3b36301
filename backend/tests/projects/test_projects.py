import httpx
import pytest
from fastapi import FastAPI

from pulseboard.sources import service
from tests.factories import Actor, create_actor, create_project, read_session


async def lookup_key(app: FastAPI, key: str) -> str | None:
    async with read_session(app) as session:
        target = await service.resolve_write_key(session, key)
        return None if target is None else str(target.project_id)


async def test_create_shows_the_key_once_and_stores_only_its_hash(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    actor = await create_actor(client)
    created = await create_project(
        client,
        actor,
        name="Shop",
        domains=["https://Shop.example.com/", "*.example.org"],
        timezone="Europe/Paris",
        retention_days=30,
    )
    key = created["write_key"]
    assert key.startswith("pb_")
    assert len(key) >= 32
    assert created["write_key_prefix"] == key[:12]
    assert created["domains"] == ["shop.example.com", "*.example.org"]
    assert created["organization_id"] == str(actor.personal_organization_id)

    read = await client.get(f"/api/v1/projects/{created['id']}", headers=actor.headers)
    assert read.status_code == 200
    assert "write_key" not in read.json()
    assert read.json()["timezone"] == "Europe/Paris"
    listed = await client.get("/api/v1/projects/", headers=actor.headers)
    assert [p["id"] for p in listed.json()] == [created["id"]]
    assert key not in listed.text

    assert await lookup_key(app, key) == created["id"]
    async with app.state.pulseboard.engine.connect() as connection:
        from sqlalchemy import text

        dump = [
            (await connection.execute(text(f"SELECT * FROM {table}"))).all()
            for table in ("projects", "data_sources")
        ]
    assert key not in repr(dump)


async def test_patch_changes_only_the_given_fields(client: httpx.AsyncClient) -> None:
    actor = await create_actor(client)
    project = await create_project(client, actor, domains=["example.com"])
    response = await client.patch(
        f"/api/v1/projects/{project['id']}", json={"name": "Renamed"}, headers=actor.headers
    )
    assert response.status_code == 200
    assert response.json()["name"] == "Renamed"
    assert response.json()["domains"] == ["example.com"]
    assert response.json()["retention_days"] == 90


async def test_rotate_key_replaces_it_and_the_old_key_stops_working(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    actor = await create_actor(client)
    project = await create_project(client, actor)
    response = await client.post(
        f"/api/v1/projects/{project['id']}/rotate-key", headers=actor.headers
    )
    assert response.status_code == 200
    new_key = response.json()["write_key"]
    assert new_key != project["write_key"]
    assert await lookup_key(app, project["write_key"]) is None
    assert await lookup_key(app, new_key) == project["id"]


async def test_a_deleted_projects_key_no_longer_works(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    actor = await create_actor(client)
    project = await create_project(client, actor)
    response = await client.delete(f"/api/v1/projects/{project['id']}", headers=actor.headers)
    assert response.status_code == 204
    assert await lookup_key(app, project["write_key"]) is None
    gone = await client.get(f"/api/v1/projects/{project['id']}", headers=actor.headers)
    assert gone.status_code == 404
    again = await client.delete(f"/api/v1/projects/{project['id']}", headers=actor.headers)
    assert again.status_code == 404


async def test_another_users_project_is_404(client: httpx.AsyncClient) -> None:
    owner = await create_actor(client, "owner")
    stranger = await create_actor(client, "stranger")
    project = await create_project(client, owner)
    for method, suffix in (("GET", ""), ("PATCH", ""), ("DELETE", ""), ("POST", "/rotate-key")):
        response = await client.request(
            method, f"/api/v1/projects/{project['id']}{suffix}", json={}, headers=stranger.headers
        )
        assert response.status_code == 404, method
    assert (await client.get("/api/v1/projects/", headers=stranger.headers)).json() == []
    into_their_org = await client.post(
        "/api/v1/projects/",
        json={"name": "Sneaky", "organization_id": str(owner.personal_organization_id)},
        headers=stranger.headers,
    )
    assert into_their_org.status_code == 404


async def _project_names(client: httpx.AsyncClient, actor: Actor) -> list[str]:
    return [
        p["name"] for p in (await client.get("/api/v1/projects/", headers=actor.headers)).json()
    ]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": ""},
        {"name": "   "},
        {"name": "x" * 201},
        {"name": "Site", "timezone": "Mars/Olympus"},
        {"name": "Site", "domains": ["not a domain"]},
        {"name": "Site", "domains": "example.com"},
        {"name": "Site", "retention_days": 0},
        {"name": "Site", "retention_days": 100000},
        {"name": "Site", "organization_id": "not-a-uuid"},
    ],
)
async def test_invalid_project_bodies_are_422_and_store_nothing(
    client: httpx.AsyncClient, body: dict[str, object]
) -> None:
    actor = await create_actor(client)
    response = await client.post("/api/v1/projects/", json=body, headers=actor.headers)
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"
    assert await _project_names(client, actor) == []


async def test_invalid_patch_is_422_and_changes_nothing(client: httpx.AsyncClient) -> None:
    actor = await create_actor(client)
    project = await create_project(client, actor, name="Keep")
    for body in ({"timezone": "Nowhere/City"}, {"name": ""}, {"retention_days": -1}):
        response = await client.patch(
            f"/api/v1/projects/{project['id']}", json=body, headers=actor.headers
        )
        assert response.status_code == 422
    read = (await client.get(f"/api/v1/projects/{project['id']}", headers=actor.headers)).json()
    assert (read["name"], read["timezone"], read["retention_days"]) == ("Keep", "UTC", 90)


async def test_malformed_project_id_is_422(client: httpx.AsyncClient) -> None:
    actor = await create_actor(client)
    response = await client.get("/api/v1/projects/not-a-uuid", headers=actor.headers)
    assert response.status_code == 422
