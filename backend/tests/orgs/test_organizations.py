"""Organizations and their members: lifecycle, adding by email, roles, and refused input."""

import uuid
from typing import Any

import httpx
import pytest

from tests.factories import (
    Actor,
    add_member,
    create_actor,
    create_organization,
    create_project,
    unique_email,
)

ORGS = "/api/v1/organizations"
PROJECTS = "/api/v1/projects"


async def list_organizations(client: httpx.AsyncClient, actor: Actor) -> list[dict[str, Any]]:
    response = await client.get(f"{ORGS}/", headers=actor.headers)
    assert response.status_code == 200, response.text
    organizations: list[dict[str, Any]] = response.json()
    return organizations


async def member_roles(
    client: httpx.AsyncClient, organization_id: str | uuid.UUID, actor: Actor
) -> dict[str, str]:
    response = await client.get(f"{ORGS}/{organization_id}/members", headers=actor.headers)
    assert response.status_code == 200, response.text
    return {member["email"]: member["role"] for member in response.json()}


# Organizations


async def test_registration_creates_one_personal_organization_owned_by_the_user(
    client: httpx.AsyncClient,
) -> None:
    actor = await create_actor(client, "ada")

    organizations = await list_organizations(client, actor)

    assert len(organizations) == 1
    [personal] = organizations
    assert personal["id"] == str(actor.personal_organization_id)
    assert personal["is_personal"] is True
    assert personal["role"] == "owner"
    assert personal["name"] == "ada's workspace"
    assert await member_roles(client, personal["id"], actor) == {actor.email: "owner"}


async def test_created_organization_is_listed_with_the_callers_role(
    client: httpx.AsyncClient,
) -> None:
    owner = await create_actor(client, "owner")
    viewer = await create_actor(client, "viewer")

    response = await client.post(f"{ORGS}/", json={"name": "  Acme  "}, headers=owner.headers)

    assert response.status_code == 201, response.text
    created = response.json()
    assert created["name"] == "Acme"
    assert created["is_personal"] is False
    assert created["role"] == "owner"
    await add_member(client, created["id"], owner, viewer, "viewer")
    # The personal organization comes first, then the others in creation order.
    assert [(org["id"], org["role"]) for org in await list_organizations(client, owner)] == [
        (str(owner.personal_organization_id), "owner"),
        (created["id"], "owner"),
    ]
    assert [(org["id"], org["role"]) for org in await list_organizations(client, viewer)] == [
        (str(viewer.personal_organization_id), "owner"),
        (created["id"], "viewer"),
    ]


async def test_owner_renames_an_organization(client: httpx.AsyncClient) -> None:
    owner = await create_actor(client, "owner")
    organization_id = await create_organization(client, owner)

    renamed = await client.patch(
        f"{ORGS}/{organization_id}", json={"name": " Acme Ltd "}, headers=owner.headers
    )

    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["name"] == "Acme Ltd"
    found = await client.get(f"{ORGS}/{organization_id}", headers=owner.headers)
    assert found.json()["name"] == "Acme Ltd"


async def test_personal_organization_cannot_be_deleted(client: httpx.AsyncClient) -> None:
    actor = await create_actor(client)
    project = await create_project(client, actor)

    response = await client.delete(
        f"{ORGS}/{actor.personal_organization_id}", headers=actor.headers
    )

    assert response.status_code == 409
    assert response.json()["code"] == "personal_organization"
    found = await client.get(f"{ORGS}/{actor.personal_organization_id}", headers=actor.headers)
    assert found.status_code == 200
    kept = await client.get(f"{PROJECTS}/{project['id']}", headers=actor.headers)
    assert kept.status_code == 200


async def test_deleting_an_organization_removes_its_projects_and_memberships(
    client: httpx.AsyncClient,
) -> None:
    owner = await create_actor(client, "owner")
    admin = await create_actor(client, "admin")
    organization_id = await create_organization(client, owner)
    await add_member(client, organization_id, owner, admin, "admin")
    projects = [
        await create_project(client, owner, organization_id, name=name) for name in ("Web", "App")
    ]
    elsewhere = await create_project(client, owner)

    response = await client.delete(f"{ORGS}/{organization_id}", headers=owner.headers)

    assert response.status_code == 204, response.text
    for project in projects:
        gone = await client.get(f"{PROJECTS}/{project['id']}", headers=owner.headers)
        assert gone.status_code == 404
    listed = await client.get(
        f"{PROJECTS}/", params={"organization_id": organization_id}, headers=owner.headers
    )
    assert listed.json() == []
    for actor in (owner, admin):
        found = await client.get(f"{ORGS}/{organization_id}", headers=actor.headers)
        assert found.status_code == 404
        remaining = {org["id"] for org in await list_organizations(client, actor)}
        assert remaining == {str(actor.personal_organization_id)}
    # Another organization's projects are untouched.
    kept = await client.get(f"{PROJECTS}/{elsewhere['id']}", headers=owner.headers)
    assert kept.status_code == 200


async def test_unknown_organization_is_404(client: httpx.AsyncClient) -> None:
    actor = await create_actor(client)

    response = await client.get(f"{ORGS}/{uuid.uuid4()}", headers=actor.headers)

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


async def test_organizations_need_a_token(client: httpx.AsyncClient) -> None:
    organization_id = uuid.uuid4()
    for method, path in [
        ("GET", f"{ORGS}/"),
        ("POST", f"{ORGS}/"),
        ("GET", f"{ORGS}/{organization_id}"),
        ("DELETE", f"{ORGS}/{organization_id}"),
        ("GET", f"{ORGS}/{organization_id}/members"),
    ]:
        response = await client.request(method, path, json={"name": "Acme"})
        assert response.status_code == 401, (method, path)
        assert response.json()["code"] == "not_authenticated"


# Members


async def test_admin_adds_an_existing_user_by_email(client: httpx.AsyncClient) -> None:
    owner = await create_actor(client, "owner")
    admin = await create_actor(client, "admin")
    newcomer = await create_actor(client, "newcomer")
    organization_id = await create_organization(client, owner)
    await add_member(client, organization_id, owner, admin, "admin")

    response = await client.post(
        f"{ORGS}/{organization_id}/members",
        json={"email": newcomer.email.upper(), "role": "editor"},
        headers=admin.headers,
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["user_id"] == str(newcomer.id)
    assert body["email"] == newcomer.email
    assert body["role"] == "editor"
    assert await member_roles(client, organization_id, admin) == {
        owner.email: "owner",
        admin.email: "admin",
        newcomer.email: "editor",
    }
    found = await client.get(f"{ORGS}/{organization_id}", headers=newcomer.headers)
    assert found.status_code == 200
    assert found.json()["role"] == "editor"


async def test_added_member_is_a_viewer_unless_told_otherwise(client: httpx.AsyncClient) -> None:
    owner = await create_actor(client, "owner")
    newcomer = await create_actor(client, "newcomer")
    organization_id = await create_organization(client, owner)

    response = await client.post(
        f"{ORGS}/{organization_id}/members", json={"email": newcomer.email}, headers=owner.headers
    )

    assert response.status_code == 201, response.text
    assert response.json()["role"] == "viewer"


async def test_adding_an_unknown_email_is_404_user_not_found(client: httpx.AsyncClient) -> None:
    owner = await create_actor(client, "owner")
    organization_id = await create_organization(client, owner)

    response = await client.post(
        f"{ORGS}/{organization_id}/members",
        json={"email": unique_email("nobody"), "role": "viewer"},
        headers=owner.headers,
    )

    assert response.status_code == 404
    assert response.json()["code"] == "user_not_found"
    assert await member_roles(client, organization_id, owner) == {owner.email: "owner"}


async def test_adding_a_member_twice_is_409_already_member(client: httpx.AsyncClient) -> None:
    owner = await create_actor(client, "owner")
    member = await create_actor(client, "member")
    organization_id = await create_organization(client, owner)
    await add_member(client, organization_id, owner, member, "viewer")

    response = await client.post(
        f"{ORGS}/{organization_id}/members",
        json={"email": member.email, "role": "admin"},
        headers=owner.headers,
    )

    assert response.status_code == 409
    assert response.json()["code"] == "already_member"
    assert (await member_roles(client, organization_id, owner))[member.email] == "viewer"


async def test_owner_changes_a_members_role(client: httpx.AsyncClient) -> None:
    owner = await create_actor(client, "owner")
    member = await create_actor(client, "member")
    organization_id = await create_organization(client, owner)
    await add_member(client, organization_id, owner, member, "viewer")

    response = await client.patch(
        f"{ORGS}/{organization_id}/members/{member.id}",
        json={"role": "admin"},
        headers=owner.headers,
    )

    assert response.status_code == 200, response.text
    assert response.json()["role"] == "admin"
    # The new role takes effect at once: the member can now manage projects.
    created = await client.post(
        f"{PROJECTS}/",
        json={"name": "Shop", "organization_id": organization_id},
        headers=member.headers,
    )
    assert created.status_code == 201, created.text


@pytest.mark.parametrize("method", ["PATCH", "DELETE"])
async def test_touching_a_user_who_is_not_a_member_is_404(
    client: httpx.AsyncClient, method: str
) -> None:
    owner = await create_actor(client, "owner")
    outsider = await create_actor(client, "outsider")
    organization_id = await create_organization(client, owner)

    for user_id in (outsider.id, uuid.uuid4()):
        response = await client.request(
            method,
            f"{ORGS}/{organization_id}/members/{user_id}",
            json={"role": "viewer"},
            headers=owner.headers,
        )
        assert response.status_code == 404, response.text
        assert response.json()["code"] == "not_found"
    assert await member_roles(client, organization_id, owner) == {owner.email: "owner"}


async def test_invalid_role_is_422(client: httpx.AsyncClient) -> None:
    owner = await create_actor(client, "owner")
    member = await create_actor(client, "member")
    newcomer = await create_actor(client, "newcomer")
    organization_id = await create_organization(client, owner)
    await add_member(client, organization_id, owner, member, "viewer")
    before = await member_roles(client, organization_id, owner)

    for role in ("superuser", "OWNER", "", None, 3):
        added = await client.post(
            f"{ORGS}/{organization_id}/members",
            json={"email": newcomer.email, "role": role},
            headers=owner.headers,
        )
        changed = await client.patch(
            f"{ORGS}/{organization_id}/members/{member.id}",
            json={"role": role},
            headers=owner.headers,
        )
        for response in (added, changed):
            assert response.status_code == 422, (role, response.text)
            assert response.json()["code"] == "validation_error"
    assert await member_roles(client, organization_id, owner) == before


MALFORMED: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "{orgs}/", {"json": {}}),
    ("POST", "{orgs}/", {"json": {"name": ""}}),
    ("POST", "{orgs}/", {"json": {"name": "   "}}),
    ("POST", "{orgs}/", {"json": {"name": "x" * 201}}),
    ("POST", "{orgs}/", {"json": {"name": 42}}),
    ("POST", "{orgs}/", {"json": ["Acme"]}),
    ("POST", "{orgs}/", {"json": None}),
    ("POST", "{orgs}/", {"content": b"{not json", "headers": {"Content-Type": "application/json"}}),
    ("PATCH", "{org}", {"json": {"name": None}}),
    ("PATCH", "{org}", {"json": {"name": "  "}}),
    ("POST", "{org}/members", {"json": {}}),
    ("POST", "{org}/members", {"json": {"email": "not-an-email"}}),
    ("POST", "{org}/members", {"json": {"email": ["a@example.com"]}}),
    ("POST", "{org}/members", {"content": b"email=a@example.com"}),
    ("PATCH", "{org}/members/{member}", {"json": {}}),
    ("PATCH", "{org}/members/{member}", {"json": "owner"}),
    ("GET", "{orgs}/not-a-uuid", {}),
    ("PATCH", "{orgs}/not-a-uuid", {"json": {"name": "Acme"}}),
    ("DELETE", "{orgs}/123", {}),
    ("GET", "{orgs}/not-a-uuid/members", {}),
    ("PATCH", "{org}/members/not-a-uuid", {"json": {"role": "viewer"}}),
    ("DELETE", "{org}/members/not-a-uuid", {}),
    ("GET", "{projects}/", {"params": {"organization_id": "not-a-uuid"}}),
]


async def test_malformed_requests_are_422_and_change_nothing(client: httpx.AsyncClient) -> None:
    owner = await create_actor(client, "owner")
    member = await create_actor(client, "member")
    organization_id = await create_organization(client, owner)
    await add_member(client, organization_id, owner, member, "viewer")

    for method, path, kwargs in MALFORMED:
        url = path.format(
            orgs=ORGS, projects=PROJECTS, org=f"{ORGS}/{organization_id}", member=member.id
        )
        headers = {**kwargs.get("headers", {}), **owner.headers}
        options = {key: value for key, value in kwargs.items() if key != "headers"}
        response = await client.request(method, url, headers=headers, **options)
        assert response.status_code == 422, (method, path, kwargs, response.text)
        assert response.json()["code"] == "validation_error", (method, path, kwargs)

    assert await member_roles(client, organization_id, owner) == {
        owner.email: "owner",
        member.email: "viewer",
    }
    organizations = await list_organizations(client, owner)
    assert {org["name"] for org in organizations} == {"owner's workspace", "Acme"}
