"""Small builders for test data, through the public API as a user would make it."""

import itertools
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

PASSWORD = "correct horse battery"
_counter = itertools.count()


@dataclass(frozen=True)
class Actor:
    """A registered, logged-in user."""

    id: uuid.UUID
    email: str
    access_token: str
    refresh_token: str
    personal_organization_id: uuid.UUID

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


def unique_email(label: str = "user") -> str:
    return f"{label}-{next(_counter)}-{uuid.uuid4().hex[:6]}@example.com"


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/auth/token", data={"username": email, "password": password}
    )
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    return tokens


async def create_actor(client: httpx.AsyncClient, label: str = "user") -> Actor:
    email = unique_email(label)
    response = await client.post(
        "/api/v1/auth/register", json={"email": email, "password": PASSWORD, "name": label}
    )
    assert response.status_code == 201, response.text
    tokens = await login(client, email)
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    orgs = (await client.get("/api/v1/organizations/", headers=headers)).json()
    personal = next(org for org in orgs if org["is_personal"])
    return Actor(
        id=uuid.UUID(response.json()["id"]),
        email=email,
        access_token=tokens["access_token"],
        refresh_token=tokens["refresh_token"],
        personal_organization_id=uuid.UUID(personal["id"]),
    )


async def create_organization(client: httpx.AsyncClient, owner: Actor, name: str = "Acme") -> str:
    response = await client.post(
        "/api/v1/organizations/", json={"name": name}, headers=owner.headers
    )
    assert response.status_code == 201, response.text
    organization_id: str = response.json()["id"]
    return organization_id


async def add_member(
    client: httpx.AsyncClient, organization_id: str, admin: Actor, member: Actor, role: str
) -> None:
    response = await client.post(
        f"/api/v1/organizations/{organization_id}/members",
        json={"email": member.email, "role": role},
        headers=admin.headers,
    )
    assert response.status_code == 201, response.text


async def create_project(
    client: httpx.AsyncClient, actor: Actor, organization_id: str | None = None, **fields: Any
) -> dict[str, Any]:
    body = {"name": "Website", **fields}
    if organization_id is not None:
        body["organization_id"] = organization_id
    response = await client.post("/api/v1/projects/", json=body, headers=actor.headers)
    assert response.status_code == 201, response.text
    project: dict[str, Any] = response.json()
    return project


async def ingest(
    client: httpx.AsyncClient,
    key: str,
    events: list[dict[str, Any]],
    *,
    path: str = "/api/v1/events/ingest",
    field: str = "events",
    headers: dict[str, str] | None = None,
    **body: Any,
) -> httpx.Response:
    return await client.post(
        path, json={field: events, **body}, headers={"X-API-Key": key, **(headers or {})}
    )


def pageview(path: str = "/", **fields: Any) -> dict[str, Any]:
    return {
        "event": "pageview",
        "distinct_id": "visitor-1",
        "session_id": "session-1",
        "page_url": f"https://shop.example.com{path}",
        **fields,
    }


@asynccontextmanager
async def read_session(app: FastAPI) -> AsyncIterator[AsyncSession]:
    """A session on the app's database once the embedded worker rolled up all it stored, as
    the API's own reads get."""
    state = app.state.pulseboard
    await state.settle()
    async with state.sessions() as session:
        yield session
