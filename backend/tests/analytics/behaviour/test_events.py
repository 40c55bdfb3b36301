"""Raw events: newest first, every page joined gives every counted event once, filters hold."""

import uuid
from datetime import timedelta
from typing import Any

import httpx

from tests.analytics.behaviour.helpers import (
    Project,
    answer,
    around,
    event,
    filters,
    parse_time,
    recent_hour,
    send,
)
from tests.factories import Actor, create_actor


async def _sent(client: httpx.AsyncClient, project: Project) -> tuple[list[dict[str, Any]], Any]:
    base = recent_hour()
    sent = []
    for index in range(23):
        # Every third pair shares a timestamp, so the id breaks ties between pages.
        at = base + timedelta(minutes=index - index % 3)
        plan = "pro" if index % 4 == 0 else "free"
        sent.append(
            event("pageview", at, f"user-{index % 5}", f"s-{index % 7}", f"/p/{index}", plan=plan)
        )
    await send(client, project, sent)
    await send(
        client, project, [event("pageview", base + timedelta(minutes=5), "crawler")], bot=True
    )
    # Outside the range asked for.
    await send(client, project, [event("pageview", base - timedelta(hours=2), "user-0")])
    return sent, base


def _newest_first(events: list[dict[str, Any]]) -> list[str]:
    ordered = sorted(
        events,
        key=lambda e: (parse_time(e["timestamp"]), uuid.UUID(e["uuid"]).int),
        reverse=True,
    )
    return [e["uuid"] for e in ordered]


async def _walk(
    client: httpx.AsyncClient, owner: Actor, project: Project, **params: Any
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    cursor = None
    while True:
        extra: dict[str, Any] = {"cursor": cursor} if cursor else {}
        page = await answer(client, owner, project, "events", **params, **extra)
        assert len(page["events"]) <= params["limit"]
        rows += page["events"]
        cursor = page["next_cursor"]
        if cursor is None:
            return rows


async def test_pages_hold_every_counted_event_newest_first(
    client: httpx.AsyncClient, owner: Actor, project: Project
) -> None:
    sent, base = await _sent(client, project)
    span = around(base)
    rows = await _walk(client, owner, project, limit=4, **span)
    assert [row["id"] for row in rows] == _newest_first(sent)
    first = next(row for row in rows if row["id"] == sent[7]["uuid"])
    assert first["event"] == "pageview"
    assert first["distinct_id"] == "user-2"
    assert first["session_id"] == "s-0"
    assert first["path"] == "/p/7"
    assert first["properties"] == {"plan": "free"}
    assert first["browser"] == "Firefox"


async def test_filters_choose_the_rows(
    client: httpx.AsyncClient, owner: Actor, project: Project
) -> None:
    sent, base = await _sent(client, project)
    span = around(base)
    chosen = filters(("plan", "eq", "pro"), ("distinct_id", "in", ["user-0", "user-4"]))
    rows = await _walk(client, owner, project, limit=2, filters=chosen, **span)
    expected = [
        e
        for e in sent
        if e["properties"]["plan"] == "pro" and e["distinct_id"] in ("user-0", "user-4")
    ]
    assert expected, "the data has rows that pass both filters"
    assert [row["id"] for row in rows] == _newest_first(expected)


async def test_refusals_are_clear(
    client: httpx.AsyncClient, owner: Actor, project: Project
) -> None:
    for params, code in (
        ({"cursor": "not-a-cursor"}, "invalid_query"),
        ({"cursor": "WyJ4IiwieSJd"}, "invalid_query"),  # ["x","y"]
        ({"limit": 0}, "validation_error"),
        ({"limit": 1001}, "validation_error"),
        ({"compare": "previous_period"}, "invalid_query"),
        ({"source": "rollups"}, "invalid_query"),
        ({"filters": "[{"}, "invalid_query"),
        ({"range": "last_7d", "from": "2026-01-01T00:00:00Z"}, "invalid_query"),
        ({"from": "0001-01-01T00:00:00Z", "to": "9999-12-31T23:59:59Z"}, "invalid_query"),
    ):
        body = await answer(client, owner, project, "events", status=422, **params)
        assert body["code"] == code, params


async def test_another_organization_sees_nothing(
    client: httpx.AsyncClient, project: Project
) -> None:
    stranger = await create_actor(client, "stranger")
    for endpoint in (
        "events",
        "users",
        "users/someone/events",
        "funnels?steps=a&steps=b",
        "retention?start_event=a",
        "paths?start=/",
    ):
        response = await client.get(
            f"/api/v1/analytics/{project['id']}/{endpoint}", headers=stranger.headers
        )
        assert response.status_code == 404, endpoint


async def test_a_new_event_shows_at_once(
    client: httpx.AsyncClient, owner: Actor, project: Project
) -> None:
    sent, base = await _sent(client, project)
    before = await answer(client, owner, project, "events", limit=1, **around(base))
    assert before["events"][0]["id"] == _newest_first(sent)[0]
    latest = event("signup", base + timedelta(hours=3), "user-9")
    await send(client, project, [latest])
    after = await answer(client, owner, project, "events", limit=1, **around(base))
    assert after["events"][0]["id"] == latest["uuid"]
