"""Paths: the most common next and previous pages or events from a start, within sessions."""

from datetime import timedelta
from typing import Any

import httpx
import pytest

from tests.analytics.behaviour.helpers import Project, answer, around, event, recent_hour, send
from tests.factories import Actor

SESSIONS: dict[str, list[str]] = {
    "s1": ["/", "/pricing", "/signup", "/done"],
    "s2": ["/", "/pricing", "/pricing", "/docs"],  # a reload counts once
    "s3": ["/blog", "/pricing"],
    "s4": ["/pricing", "/signup", "/pricing", "/signup"],  # from the first visit of /pricing
    "s5": ["/docs"],
    "s6": ["/", "/pricing", "/signup", "/help", "/done"],
}


@pytest.fixture
async def span(client: httpx.AsyncClient, project: Project) -> dict[str, Any]:
    start = recent_hour()
    sent = [
        event("pageview", start + timedelta(seconds=10 * i), "u", session, path)
        for session, pages in SESSIONS.items()
        for i, path in enumerate(pages)
    ]
    # Events that are not pageviews count for kind=event only.
    sent += [
        event("signup", start + timedelta(seconds=21), "u", "s1"),
        event("signup", start + timedelta(seconds=21), "u", "s6"),
    ]
    await send(client, project, sent)
    crawl = [
        event("pageview", start + timedelta(seconds=i), "b", "bot", p)
        for i, p in enumerate(["/pricing", "/x"])
    ]
    await send(client, project, crawl, bot=True)
    return around(start)


def node(item: str, count: int, ended: int, *children: dict[str, Any]) -> dict[str, Any]:
    return {"item": item, "count": count, "ended": ended, "children": list(children)}


async def test_next_pages(
    client: httpx.AsyncClient, owner: Actor, project: Project, span: dict[str, Any]
) -> None:
    body = await answer(client, owner, project, "paths", start="/pricing", steps=2, limit=2, **span)
    assert body["root"] == node(
        "/pricing",
        5,
        1,  # s3 ends at /pricing
        # Three pages follow /signup once each: the first two by name are shown.
        node("/signup", 3, 0, node("/done", 1, 1), node("/help", 1, 0)),
        node("/docs", 1, 1),
    )


async def test_previous_pages(
    client: httpx.AsyncClient, owner: Actor, project: Project, span: dict[str, Any]
) -> None:
    body = await answer(
        client, owner, project, "paths", start="/pricing", direction="previous", steps=3, **span
    )
    assert body["direction"] == "previous"
    assert body["root"] == node("/pricing", 5, 1, node("/", 3, 3), node("/blog", 1, 1))


async def test_next_events(
    client: httpx.AsyncClient, owner: Actor, project: Project, span: dict[str, Any]
) -> None:
    body = await answer(
        client, owner, project, "paths", start="signup", kind="event", steps=1, **span
    )
    # The pageviews after a signup run together as one step, the last of each session.
    assert body["root"] == node("signup", 2, 0, node("pageview", 2, 2))


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"start": "/", "steps": 0},
        {"start": "/", "steps": 6},
        {"start": "/", "limit": 11},
        {"start": "/", "direction": "sideways"},
        {"start": "/", "kind": "session"},
        {"start": "/\x00"},
    ],
)
async def test_bad_paths_queries_are_refused(
    client: httpx.AsyncClient, owner: Actor, project: Project, params: dict[str, Any]
) -> None:
    await answer(client, owner, project, "paths", status=422, **params)
