"""Identified users with first/last seen and counts, and one user's timeline."""

from collections import defaultdict
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
from tests.factories import Actor


async def _sent(client: httpx.AsyncClient, project: Project) -> tuple[list[dict[str, Any]], Any]:
    base = recent_hour()
    plan = [
        # (user, minutes after base, session)
        ("alice", 0, "a1"),
        ("alice", 10, "a1"),
        ("alice", 300, "a2"),
        ("bob", 5, "b1"),
        ("bob", 300, "b1"),  # the same last seen as alice: the id breaks the tie
        ("carol", 50, None),
        ("team/dave", 20, "d1"),
        ("team/dave", 400, "d2"),
        ("team/dave", 401, "d2"),
        ("erin", 200, "e1"),
    ]
    sent = [
        event(
            "click",
            base + timedelta(minutes=m),
            user,
            session,
            "/",
            plan="pro" if m < 100 else "free",
        )
        for user, m, session in plan
    ]
    await send(client, project, sent)
    # Without a distinct id: an anonymous visitor, listed only when asked for.
    await send(client, project, [event("pageview", base + timedelta(minutes=500), None, "x1", "/")])
    await send(
        client, project, [event("pageview", base + timedelta(minutes=600), "robot")], bot=True
    )
    return sent, base


def _exact(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_user: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item in events:
        by_user[item["distinct_id"]].append(item)
    users: list[dict[str, Any]] = [
        {
            "distinct_id": user,
            "first_seen": min(parse_time(e["timestamp"]) for e in items),
            "last_seen": max(parse_time(e["timestamp"]) for e in items),
            "events": len(items),
            "sessions": len({e["session_id"] for e in items if "session_id" in e}),
        }
        for user, items in by_user.items()
    ]
    users.sort(key=lambda u: u["distinct_id"])
    users.sort(key=lambda u: u["last_seen"], reverse=True)
    return users


def _read(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            **row,
            "first_seen": parse_time(row["first_seen"]),
            "last_seen": parse_time(row["last_seen"]),
        }
        for row in rows
    ]


async def test_users_page_by_page_with_exact_counts(
    client: httpx.AsyncClient, owner: Actor, project: Project
) -> None:
    sent, base = await _sent(client, project)
    span = around(base)
    rows: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = await answer(
            client,
            owner,
            project,
            "users",
            limit=2,
            **span,
            **({"cursor": cursor} if cursor else {}),
        )
        assert page["total"] == 5
        rows += page["users"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert _read(rows) == _exact(sent)


async def test_users_search_filters_and_anonymous(
    client: httpx.AsyncClient, owner: Actor, project: Project
) -> None:
    sent, base = await _sent(client, project)
    span = around(base)
    found = await answer(client, owner, project, "users", search="TEAM/", **span)
    assert _read(found["users"]) == _exact([e for e in sent if e["distinct_id"] == "team/dave"])
    pro = await answer(
        client, owner, project, "users", filters=filters(("plan", "eq", "pro")), **span
    )
    assert _read(pro["users"]) == _exact([e for e in sent if e["properties"]["plan"] == "pro"])
    everyone = await answer(client, owner, project, "users", anonymous="true", **span)
    assert everyone["total"] == 6
    anonymous = [u for u in everyone["users"] if u["distinct_id"].startswith("anon:")]
    assert [(u["events"], u["sessions"]) for u in anonymous] == [(1, 1)]


async def test_timeline_of_one_user(
    client: httpx.AsyncClient, owner: Actor, project: Project
) -> None:
    sent, base = await _sent(client, project)
    span = around(base)
    mine = [e for e in sent if e["distinct_id"] == "team/dave"]
    first = await answer(client, owner, project, "users/team/dave/events", limit=2, **span)
    assert _read([first["user"]]) == _exact(mine)
    rest = await answer(
        client,
        owner,
        project,
        "users/team/dave/events",
        limit=2,
        cursor=first["next_cursor"],
        **span,
    )
    assert rest["next_cursor"] is None
    newest_first = sorted(mine, key=lambda e: e["timestamp"], reverse=True)
    assert [e["id"] for e in first["events"] + rest["events"]] == [e["uuid"] for e in newest_first]
    nul = await answer(client, owner, project, "users", status=422, search="a\x00", **span)
    assert nul["code"] == "invalid_characters"
    nul = await answer(client, owner, project, "users/a%00/events", status=422, **span)
    assert nul["code"] == "invalid_characters"
    missing = await answer(client, owner, project, "users/nobody/events", status=404, **span)
    assert missing["code"] == "user_not_found"
    bot = await answer(client, owner, project, "users/robot/events", status=404, **span)
    assert bot["code"] == "user_not_found"
