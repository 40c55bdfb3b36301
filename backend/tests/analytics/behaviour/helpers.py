"""Sending known events and reading the behaviour answers, for the tests of this package."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson

from tests.factories import Actor, ingest

BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
BOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
Project = dict[str, Any]


def event(
    name: str,
    at: datetime,
    user: str | None,
    session: str | None = None,
    path: str | None = None,
    **properties: Any,
) -> dict[str, Any]:
    """One event as the ingest API takes it, with its own uuid so that it can be found again."""
    body: dict[str, Any] = {
        "event": name,
        "timestamp": at.isoformat(),
        "uuid": str(uuid.uuid4()),
        "properties": properties,
    }
    if user is not None:
        body["distinct_id"] = user
    if session is not None:
        body["session_id"] = session
    if path is not None:
        body["page_url"] = f"https://shop.example.com{path}"
    return body


async def send(
    client: httpx.AsyncClient, project: Project, events: list[dict[str, Any]], *, bot: bool = False
) -> None:
    agent = BOT if bot else BROWSER
    response = await ingest(client, project["write_key"], events, headers={"User-Agent": agent})
    assert response.status_code == 202, response.text


async def answer(
    client: httpx.AsyncClient,
    actor: Actor,
    project: Project,
    endpoint: str,
    *,
    status: int = 200,
    **params: Any,
) -> dict[str, Any]:
    response = await client.get(
        f"/api/v1/analytics/{project['id']}/{endpoint}", params=params, headers=actor.headers
    )
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


def filters(*items: tuple[str, str, Any]) -> str:
    return orjson.dumps([{"key": k, "op": op, "value": v} for k, op, v in items]).decode()


def recent_hour() -> datetime:
    """A whole UTC hour two days ago: late enough for ingest, early enough to build on."""
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    return now - timedelta(days=2)


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def around(start: datetime) -> dict[str, Any]:
    """`from`/`to` parameters of a range from an hour before `start` to a day after it."""
    return {
        "from": (start - timedelta(hours=1)).isoformat(),
        "to": (start + timedelta(days=1)).isoformat(),
    }
