"""The role matrix: what each role, and a stranger, may do to an organization and its projects."""

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.factories import Actor, add_member, create_actor, create_organization, create_project

ORGS = "/api/v1/organizations"
PROJECTS = "/api/v1/projects"
ROLES = ("owner", "admin", "editor", "viewer", "stranger")


@dataclass(frozen=True)
class Org:
    """An organization with one project, seen by `actor`, who holds the role under test."""

    id: str
    owner: Actor
    actor: Actor
    member: Actor  # a viewer, the one whose role is changed or who is removed
    project: dict[str, Any]


async def build_org(client: httpx.AsyncClient, role: str) -> Org:
    owner = await create_actor(client, "owner")
    organization_id = await create_organization(client, owner)
    project = await create_project(client, owner, organization_id)
    member = await create_actor(client, "member")
    await add_member(client, organization_id, owner, member, "viewer")
    if role == "owner":
        actor = owner
    else:
        # A stranger is a user of another organization: their own personal one.
        actor = await create_actor(client, role)
        if role != "stranger":
            await add_member(client, organization_id, owner, actor, role)
    return Org(id=organization_id, owner=owner, actor=actor, member=member, project=project)


Call = Callable[[httpx.AsyncClient, Org], Awaitable[httpx.Response]]
State = Callable[[httpx.AsyncClient, Org], Awaitable[object]]
Check = Callable[[Any, Org, str], None]


@dataclass(frozen=True)
class Action:
    name: str
    call: Call
    # The status each of ROLES gets, in that order: owner, admin, editor, viewer, stranger.
    expected: tuple[int, int, int, int, int]
    # For writes: what the owner sees of the thing written, which must move only on success.
    state: State | None = None
    # For reads: what a successful answer must hold.
    check: Check | None = None


READ = (200, 200, 200, 200, 404)


async def _org_state(client: httpx.AsyncClient, org: Org) -> tuple[int, str | None]:
    response = await client.get(f"{ORGS}/{org.id}", headers=org.owner.headers)
    return response.status_code, response.json().get("name")


async def _organization_and_project_exist(client: httpx.AsyncClient, org: Org) -> tuple[int, int]:
    found = await client.get(f"{ORGS}/{org.id}", headers=org.owner.headers)
    project = await client.get(f"{PROJECTS}/{org.project['id']}", headers=org.owner.headers)
    return found.status_code, project.status_code


async def _members(
    client: httpx.AsyncClient, org: Org, seen_by: Actor | None = None
) -> dict[str, str]:
    reader = seen_by or org.owner
    response = await client.get(f"{ORGS}/{org.id}/members", headers=reader.headers)
    assert response.status_code == 200, response.text
    return {member["email"]: member["role"] for member in response.json()}


async def _project_ids(client: httpx.AsyncClient, org: Org) -> list[str]:
    response = await client.get(
        f"{PROJECTS}/", params={"organization_id": org.id}, headers=org.owner.headers
    )
    assert response.status_code == 200, response.text
    return sorted(project["id"] for project in response.json())


async def _project(client: httpx.AsyncClient, org: Org) -> tuple[str, str] | int:
    response = await client.get(f"{PROJECTS}/{org.project['id']}", headers=org.owner.headers)
    if response.status_code != 200:
        return response.status_code
    body = response.json()
    return body["name"], body["write_key_prefix"]


def _is_the_organization(body: Any, org: Org, role: str) -> None:
    assert body["id"] == org.id
    assert body["role"] == role


def _lists_the_members(body: Any, org: Org, role: str) -> None:
    members = {member["email"]: member["role"] for member in body}
    assert members == {org.owner.email: "owner", org.member.email: "viewer", org.actor.email: role}


def _lists_the_project(body: Any, org: Org, role: str) -> None:
    expected = [] if role == "stranger" else [org.project["id"]]
    assert [project["id"] for project in body] == expected


def _is_the_project(body: Any, org: Org, role: str) -> None:
    assert body["id"] == org.project["id"]
    assert "write_key" not in body


async def _add_member(client: httpx.AsyncClient, org: Org) -> httpx.Response:
    newcomer = await create_actor(client, "newcomer")
    return await client.post(
        f"{ORGS}/{org.id}/members",
        json={"email": newcomer.email, "role": "editor"},
        headers=org.actor.headers,
    )


ACTIONS = [
    Action(
        "read_organization",
        lambda client, org: client.get(f"{ORGS}/{org.id}", headers=org.actor.headers),
        READ,
        check=_is_the_organization,
    ),
    Action(
        "rename_organization",
        lambda client, org: client.patch(
            f"{ORGS}/{org.id}", json={"name": "Renamed"}, headers=org.actor.headers
        ),
        (200, 403, 403, 403, 404),
        _org_state,
    ),
    Action(
        "delete_organization",
        lambda client, org: client.delete(f"{ORGS}/{org.id}", headers=org.actor.headers),
        (204, 403, 403, 403, 404),
        _organization_and_project_exist,
    ),
    Action(
        "list_members",
        lambda client, org: client.get(f"{ORGS}/{org.id}/members", headers=org.actor.headers),
        READ,
        check=_lists_the_members,
    ),
    Action("add_member", _add_member, (201, 201, 403, 403, 404), _members),
    Action(
        "change_member_role",
        lambda client, org: client.patch(
            f"{ORGS}/{org.id}/members/{org.member.id}",
            json={"role": "editor"},
            headers=org.actor.headers,
        ),
        (200, 200, 403, 403, 404),
        _members,
    ),
    Action(
        "remove_member",
        lambda client, org: client.delete(
            f"{ORGS}/{org.id}/members/{org.member.id}", headers=org.actor.headers
        ),
        (204, 204, 403, 403, 404),
        _members,
    ),
    Action(
        "list_projects",
        lambda client, org: client.get(
            f"{PROJECTS}/", params={"organization_id": org.id}, headers=org.actor.headers
        ),
        # Listing is filtered rather than refused: a stranger sees an empty list.
        (200, 200, 200, 200, 200),
        check=_lists_the_project,
    ),
    Action(
        "get_project",
        lambda client, org: client.get(
            f"{PROJECTS}/{org.project['id']}", headers=org.actor.headers
        ),
        READ,
        check=_is_the_project,
    ),
    Action(
        "create_project",
        lambda client, org: client.post(
            f"{PROJECTS}/",
            json={"name": "Shop", "organization_id": org.id},
            headers=org.actor.headers,
        ),
        (201, 201, 403, 403, 404),
        _project_ids,
    ),
    Action(
        "patch_project",
        lambda client, org: client.patch(
            f"{PROJECTS}/{org.project['id']}", json={"name": "Blog"}, headers=org.actor.headers
        ),
        (200, 200, 403, 403, 404),
        _project,
    ),
    Action(
        "rotate_key",
        lambda client, org: client.post(
            f"{PROJECTS}/{org.project['id']}/rotate-key", headers=org.actor.headers
        ),
        (200, 200, 403, 403, 404),
        _project,
    ),
    Action(
        "delete_project",
        lambda client, org: client.delete(
            f"{PROJECTS}/{org.project['id']}", headers=org.actor.headers
        ),
        (204, 204, 403, 403, 404),
        _project,
    ),
]


@pytest.mark.parametrize(
    ("action", "role"),
    [
        pytest.param(action, role, id=f"{action.name}-{role}")
        for action in ACTIONS
        for role in ROLES
    ],
)
async def test_role_matrix(client: httpx.AsyncClient, action: Action, role: str) -> None:
    org = await build_org(client, role)
    before = await action.state(client, org) if action.state else None

    response = await action.call(client, org)

    expected = action.expected[ROLES.index(role)]
    assert response.status_code == expected, response.text
    if expected == 403:
        assert response.json()["code"] == "forbidden"
    elif expected == 404:
        assert response.json()["code"] == "not_found"
    elif action.check is not None:
        action.check(response.json(), org, role)
    if action.state is not None:
        after = await action.state(client, org)
        if expected < 300:
            assert after != before
        else:
            assert after == before


async def test_admin_cannot_grant_owner(client: httpx.AsyncClient) -> None:
    org = await build_org(client, "admin")
    newcomer = await create_actor(client, "newcomer")
    before = await _members(client, org)

    added = await client.post(
        f"{ORGS}/{org.id}/members",
        json={"email": newcomer.email, "role": "owner"},
        headers=org.actor.headers,
    )
    promoted = await client.patch(
        f"{ORGS}/{org.id}/members/{org.member.id}",
        json={"role": "owner"},
        headers=org.actor.headers,
    )
    promoted_self = await client.patch(
        f"{ORGS}/{org.id}/members/{org.actor.id}", json={"role": "owner"}, headers=org.actor.headers
    )

    for response in (added, promoted, promoted_self):
        assert response.status_code == 403, response.text
        assert response.json()["code"] == "forbidden"
    assert await _members(client, org) == before


async def test_admin_cannot_change_or_remove_an_owner(client: httpx.AsyncClient) -> None:
    org = await build_org(client, "admin")
    second_owner = await create_actor(client, "second-owner")
    await add_member(client, org.id, org.owner, second_owner, "owner")
    before = await _members(client, org)

    for owner in (org.owner, second_owner):
        demoted = await client.patch(
            f"{ORGS}/{org.id}/members/{owner.id}",
            json={"role": "viewer"},
            headers=org.actor.headers,
        )
        removed = await client.delete(
            f"{ORGS}/{org.id}/members/{owner.id}", headers=org.actor.headers
        )
        for response in (demoted, removed):
            assert response.status_code == 403, response.text
            assert response.json()["code"] == "forbidden"
    assert await _members(client, org) == before


async def test_owner_can_grant_owner(client: httpx.AsyncClient) -> None:
    org = await build_org(client, "owner")
    newcomer = await create_actor(client, "newcomer")

    added = await client.post(
        f"{ORGS}/{org.id}/members",
        json={"email": newcomer.email, "role": "owner"},
        headers=org.owner.headers,
    )
    promoted = await client.patch(
        f"{ORGS}/{org.id}/members/{org.member.id}",
        json={"role": "owner"},
        headers=org.owner.headers,
    )

    assert added.status_code == 201, added.text
    assert promoted.status_code == 200, promoted.text
    roles = await _members(client, org)
    assert roles[newcomer.email] == roles[org.member.email] == "owner"
    renamed = await client.patch(
        f"{ORGS}/{org.id}", json={"name": "Theirs too"}, headers=newcomer.headers
    )
    assert renamed.status_code == 200


async def test_last_owner_cannot_be_demoted_or_removed(client: httpx.AsyncClient) -> None:
    org = await build_org(client, "owner")
    before = await _members(client, org)

    demoted = await client.patch(
        f"{ORGS}/{org.id}/members/{org.owner.id}", json={"role": "admin"}, headers=org.owner.headers
    )
    left = await client.delete(f"{ORGS}/{org.id}/members/{org.owner.id}", headers=org.owner.headers)

    for response in (demoted, left):
        assert response.status_code == 409, response.text
        assert response.json()["code"] == "last_owner"
    assert await _members(client, org) == before


async def test_last_owner_can_stay_owner(client: httpx.AsyncClient) -> None:
    """Setting the sole owner's role to owner again is not a demotion."""
    org = await build_org(client, "owner")

    response = await client.patch(
        f"{ORGS}/{org.id}/members/{org.owner.id}", json={"role": "owner"}, headers=org.owner.headers
    )

    assert response.status_code == 200, response.text
    assert response.json()["role"] == "owner"


async def test_an_owner_can_step_down_once_there_is_a_second_owner(
    client: httpx.AsyncClient,
) -> None:
    org = await build_org(client, "owner")
    second_owner = await create_actor(client, "second-owner")
    await add_member(client, org.id, org.owner, second_owner, "owner")

    demoted = await client.patch(
        f"{ORGS}/{org.id}/members/{org.owner.id}", json={"role": "admin"}, headers=org.owner.headers
    )
    assert demoted.status_code == 200, demoted.text
    assert demoted.json()["role"] == "admin"

    # Now the second owner is the last one, and the rule holds for them in turn.
    last = await client.patch(
        f"{ORGS}/{org.id}/members/{second_owner.id}",
        json={"role": "admin"},
        headers=second_owner.headers,
    )
    assert last.status_code == 409
    assert last.json()["code"] == "last_owner"
    renamed = await client.patch(
        f"{ORGS}/{org.id}", json={"name": "Renamed"}, headers=org.owner.headers
    )
    assert renamed.status_code == 403


async def test_an_owner_can_leave_once_there_is_a_second_owner(client: httpx.AsyncClient) -> None:
    org = await build_org(client, "owner")
    second_owner = await create_actor(client, "second-owner")
    await add_member(client, org.id, org.owner, second_owner, "owner")

    left = await client.delete(f"{ORGS}/{org.id}/members/{org.owner.id}", headers=org.owner.headers)

    assert left.status_code == 204, left.text
    assert (await client.get(f"{ORGS}/{org.id}", headers=org.owner.headers)).status_code == 404
    removed = await client.delete(
        f"{ORGS}/{org.id}/members/{second_owner.id}", headers=second_owner.headers
    )
    assert removed.status_code == 409
    assert removed.json()["code"] == "last_owner"


async def test_an_owner_can_remove_another_owner(client: httpx.AsyncClient) -> None:
    org = await build_org(client, "owner")
    second_owner = await create_actor(client, "second-owner")
    await add_member(client, org.id, org.owner, second_owner, "owner")

    removed = await client.delete(
        f"{ORGS}/{org.id}/members/{second_owner.id}", headers=org.owner.headers
    )

    assert removed.status_code == 204, removed.text
    assert (await client.get(f"{ORGS}/{org.id}", headers=second_owner.headers)).status_code == 404


RACE_ATTEMPTS = 10


def _step_down(
    client: httpx.AsyncClient, org: Org, how: str, me: Actor, other: Actor
) -> Awaitable[httpx.Response]:
    if how == "both_leave":
        return client.delete(f"{ORGS}/{org.id}/members/{me.id}", headers=me.headers)
    return client.patch(
        f"{ORGS}/{org.id}/members/{other.id}", json={"role": "admin"}, headers=me.headers
    )


@pytest.mark.parametrize("step_down", ["demote_each_other", "both_leave"])
async def test_two_owners_stepping_down_at_once_leave_one_owner(
    client: httpx.AsyncClient, step_down: str
) -> None:
    """Concurrent requests each see two owners; only one of them may act on it."""
    for _ in range(RACE_ATTEMPTS):
        org = await build_org(client, "owner")
        second_owner = await create_actor(client, "second-owner")
        await add_member(client, org.id, org.owner, second_owner, "owner")

        responses = await asyncio.gather(
            _step_down(client, org, step_down, org.owner, second_owner),
            _step_down(client, org, step_down, second_owner, org.owner),
        )

        statuses = sorted(response.status_code for response in responses)
        # The loser sees the last owner (409) or, demoted first, lacks the role to act (403).
        assert statuses in ([200, 403], [200, 409], [204, 409]), statuses
        # Read as the viewer, who stays a member whoever of the owners left.
        roles = await _members(client, org, seen_by=org.member)
        assert list(roles.values()).count("owner") == 1, roles


@pytest.mark.parametrize("role", ["admin", "editor", "viewer"])
async def test_any_member_can_leave(client: httpx.AsyncClient, role: str) -> None:
    org = await build_org(client, role)

    left = await client.delete(f"{ORGS}/{org.id}/members/{org.actor.id}", headers=org.actor.headers)

    assert left.status_code == 204, left.text
    gone = await client.get(f"{ORGS}/{org.id}", headers=org.actor.headers)
    assert gone.status_code == 404
    assert gone.json()["code"] == "not_found"
    project = await client.get(f"{PROJECTS}/{org.project['id']}", headers=org.actor.headers)
    assert project.status_code == 404
    listed = await client.get(f"{ORGS}/", headers=org.actor.headers)
    assert org.id not in {organization["id"] for organization in listed.json()}
    assert org.actor.email not in await _members(client, org)
