"""Custom metric definitions: who may change them, what is refused and why, and their values
(aggregates of events, formulas of other definitions) checked against the events sent."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.factories import (
    Actor,
    add_member,
    create_actor,
    create_organization,
    create_project,
    ingest,
)
from tests.metrics.dataset import AGGREGATE, answer, query, recent_day, values_of

Project = dict[str, Any]


@dataclass(frozen=True)
class Sent:
    event: str
    timestamp: datetime
    plan: str
    amount: Any  # a number, or text that no numeric aggregate may read


@pytest.fixture
async def events(client: httpx.AsyncClient, project: Project) -> list[Sent]:
    day = recent_day()
    sent = []
    for i in range(120):
        amount: Any = "12" if i % 11 == 0 else round((i % 17 + 1) * 3.5, 2)
        plan = "pro" if i % 3 == 0 else "free"
        sent.append(Sent("purchase", day + timedelta(hours=i % 20, minutes=i % 60), plan, amount))
    sent += [
        Sent("signup", day + timedelta(hours=i % 12, seconds=i), "free", None) for i in range(30)
    ]
    sent += [
        Sent("pageview", day + timedelta(hours=(i % 8) * 2, minutes=i), "free", None)
        for i in range(60)
    ]
    items = [
        {
            "event": e.event,
            "distinct_id": f"user-{n % 10}",
            "timestamp": e.timestamp.isoformat(),
            "properties": {
                "plan": e.plan,
                **({"amount": e.amount} if e.amount is not None else {}),
            },
        }
        for n, e in enumerate(sent)
    ]
    response = await ingest(client, project["write_key"], items)
    assert response.status_code == 202, response.text
    return sent


def path(project: Project, suffix: str = "") -> str:
    return f"/api/v1/projects/{project['id']}/metric-definitions/{suffix}"


async def define(
    client: httpx.AsyncClient, actor: Actor, project: Project, **fields: Any
) -> dict[str, Any]:
    response = await client.post(path(project), json=fields, headers=actor.headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def day_body(name: str, **extra: Any) -> dict[str, Any]:
    day = recent_day()
    end = day + timedelta(days=1)
    return {
        "metric_name": name,
        "time_range": {"start": day.isoformat(), "end": end.isoformat()},
        **extra,
    }


def per_hour(
    sent: list[Sent], event: str, read: Any = lambda e: 1.0, keep: Any = lambda e: True
) -> list[list[float]]:
    found: list[list[float]] = [[] for _ in range(24)]
    for e in sent:
        if e.event == event and keep(e):
            value = read(e)
            if value is not None:
                found[e.timestamp.hour].append(value)
    return found


def amount(e: Sent) -> float | None:
    return e.amount if isinstance(e.amount, float) else None


async def test_event_aggregates_are_exact(
    client: httpx.AsyncClient, owner: Actor, project: Project, events: list[Sent]
) -> None:
    await define(
        client,
        owner,
        project,
        name="revenue",
        event="purchase",
        aggregation="sum",
        property="amount",
    )
    await define(
        client,
        owner,
        project,
        name="pro_order_p95",
        event="purchase",
        aggregation="p95",
        property="amount",
        filters=[{"key": "plan", "op": "eq", "value": "pro"}],
    )
    await define(client, owner, project, name="signups", event="signup")
    revenue = await answer(client, owner, project, day_body("revenue", interval="hour"))
    assert revenue["aggregation"] == "sum"
    expected = [sum(v) for v in per_hour(events, "purchase", amount)]
    assert values_of(revenue) == [pytest.approx(v) for v in expected]

    p95 = await answer(client, owner, project, day_body("pro_order_p95", interval="day"))
    pro = [a for e in events if e.event == "purchase" and e.plan == "pro" and (a := amount(e))]
    assert values_of(p95) == [AGGREGATE["p95"](pro)]
    assert p95["source"] == "raw"

    # A plain count comes from event rollups, and the raw rows agree.
    signups = await answer(client, owner, project, day_body("signups", interval="hour"))
    assert signups["source"] == "rollups"
    assert values_of(signups) == [len(v) for v in per_hour(events, "signup")]
    raw = await answer(client, owner, project, day_body("signups", interval="hour", source="raw"))
    assert raw["data"] == signups["data"]


async def test_grouped_and_filtered_event_aggregates(
    client: httpx.AsyncClient, owner: Actor, project: Project, events: list[Sent]
) -> None:
    await define(
        client,
        owner,
        project,
        name="avg_order",
        event="purchase",
        aggregation="avg",
        property="amount",
    )
    body = await answer(
        client,
        owner,
        project,
        day_body(
            "avg_order",
            interval="day",
            group_by=["plan"],
            filters=[{"key": "amount", "op": "gt", "value": 20}],
        ),
    )
    for plan in ("pro", "free"):
        kept = [
            a
            for e in events
            if e.event == "purchase" and e.plan == plan and (a := amount(e)) and a > 20
        ]
        assert values_of(body, plan=plan) == [pytest.approx(sum(kept) / len(kept))]


async def test_formulas_evaluate_point_by_point(
    client: httpx.AsyncClient, owner: Actor, project: Project, events: list[Sent]
) -> None:
    await define(client, owner, project, name="signups", event="signup")
    await define(client, owner, project, name="pageviews", event="pageview")
    await define(client, owner, project, name="conversion", formula="signups / pageviews * 100")
    body = await answer(client, owner, project, day_body("conversion", interval="hour"))
    assert body["aggregation"] == "formula"
    signups = [len(v) for v in per_hour(events, "signup")]
    views = [len(v) for v in per_hour(events, "pageview")]
    # Hours without page views divide by zero: null, not an error and not infinity.
    expected = [s / v * 100 if v else None for s, v in zip(signups, views, strict=True)]
    assert values_of(body) == [None if v is None else pytest.approx(v) for v in expected]
    assert None in expected
    assert 0 in expected

    await define(client, owner, project, name="orders", event="purchase")
    await define(
        client,
        owner,
        project,
        name="revenue",
        event="purchase",
        aggregation="sum",
        property="amount",
    )
    await define(client, owner, project, name="per_order", formula="(revenue) / orders")
    grouped = await answer(
        client, owner, project, day_body("per_order", interval="day", group_by=["plan"])
    )
    for plan in ("pro", "free"):
        bought = [e for e in events if e.event == "purchase" and e.plan == plan]
        total = sum(a for e in bought if (a := amount(e)))
        assert values_of(grouped, plan=plan) == [pytest.approx(total / len(bought))]


async def test_a_changed_definition_is_never_answered_from_the_cache(
    client: httpx.AsyncClient, owner: Actor, project: Project, events: list[Sent]
) -> None:
    created = await define(
        client,
        owner,
        project,
        name="revenue",
        event="purchase",
        aggregation="sum",
        property="amount",
    )
    before = await answer(client, owner, project, day_body("revenue", interval="day"))
    response = await client.patch(
        path(project, created["id"]), json={"aggregation": "max"}, headers=owner.headers
    )
    assert response.status_code == 200, response.text
    after = await answer(client, owner, project, day_body("revenue", interval="day"))
    assert values_of(after) == [max(a for e in events if (a := amount(e)))]
    assert values_of(after) != values_of(before)


BAD_DEFINITIONS = [
    ({"name": "x"}, "either `event`"),
    ({"name": "x", "event": "purchase", "formula": "a"}, "either `event`"),
    ({"name": "x", "event": "purchase", "aggregation": "sum"}, "needs `property`"),
    ({"name": "x", "event": "purchase", "property": "amount"}, "drop `property`"),
    ({"name": "x", "event": "purchase", "aggregation": "median", "property": "amount"}, None),
    ({"name": "x y", "event": "purchase"}, None),
    ({"name": "x", "formula": "signups", "aggregation": "sum"}, "takes no aggregation"),
    ({"name": "x", "event": "purchase", "filters": [{"key": "plan", "op": "like"}]}, "Bad filters"),
    ({"name": "x", "formula": "signups /"}, "Bad formula"),
    ({"name": "x", "formula": "signups $ 2"}, "Unexpected character '$' at position 9"),
    ({"name": "x", "formula": "(signups"}, "never closed"),
    ({"name": "x", "formula": "__import__('os')"}, "Bad formula"),
    (
        {"name": "x", "formula": "signups / visitors"},
        "'visitors', which the project does not define",
    ),
    ({"name": "x", "formula": "x + 1"}, "refers to itself: x → x"),
    ({"name": "x", "formula": "signups * 1e999"}, "too large"),
    ({"name": "x", "event": "sign\x00up"}, "NUL"),
    (
        {"name": "x", "event": "purchase", "filters": [{"key": "n", "op": "eq", "value": 2**64}]},
        "within 64 bits",
    ),
]


@pytest.mark.parametrize(("fields", "reason"), BAD_DEFINITIONS)
async def test_bad_definitions_get_a_422_that_says_why(
    client: httpx.AsyncClient,
    owner: Actor,
    project: Project,
    fields: dict[str, Any],
    reason: str | None,
) -> None:
    await define(client, owner, project, name="signups", event="signup")
    response = await client.post(path(project), json=fields, headers=owner.headers)
    assert response.status_code == 422, response.text
    if reason is not None:
        assert reason in str(response.json()["detail"])
    listed = await client.get(path(project), headers=owner.headers)
    assert [d["name"] for d in listed.json()] == ["signups"]


async def test_a_filter_value_of_nan_is_refused(
    client: httpx.AsyncClient, owner: Actor, project: Project
) -> None:
    # Python's JSON reads NaN and Infinity (no JSON allows them), and could not store them back.
    for value in (b"NaN", b"Infinity"):
        response = await client.post(
            path(project),
            content=b'{"name": "x", "event": "e", "filters": [{"key": "n", "op": "gt", "value": '
            + value
            + b"}]}",
            headers={**owner.headers, "Content-Type": "application/json"},
        )
        assert response.status_code == 422, response.text
        assert "no NaN or Infinity" in response.json()["detail"]


async def test_cycles_renames_and_deletes_that_would_break_a_formula_are_refused(
    client: httpx.AsyncClient, owner: Actor, project: Project
) -> None:
    base = await define(client, owner, project, name="base", event="signup")
    double = await define(client, owner, project, name="double", formula="base * 2")
    cycle = await client.patch(
        path(project, base["id"]), json={"formula": "double + 1"}, headers=owner.headers
    )
    assert cycle.status_code == 422
    assert "refers to itself: base → double → base" in cycle.json()["detail"]
    # A change that leaves the definition incomplete is refused as a whole.
    half = await client.patch(
        path(project, base["id"]), json={"aggregation": "sum"}, headers=owner.headers
    )
    assert (half.status_code, half.json()["code"]) == (422, "invalid_definition")
    assert "`sum` needs `property`" in half.json()["detail"]
    renamed = await client.patch(
        path(project, base["id"]), json={"name": "other"}, headers=owner.headers
    )
    assert renamed.status_code == 409
    deleted = await client.delete(path(project, base["id"]), headers=owner.headers)
    assert (deleted.status_code, deleted.json()["code"]) == (409, "definition_in_use")
    duplicate = await client.post(
        path(project), json={"name": "double", "event": "x"}, headers=owner.headers
    )
    assert duplicate.status_code == 409

    assert (
        await client.delete(path(project, double["id"]), headers=owner.headers)
    ).status_code == 204
    assert (
        await client.delete(path(project, base["id"]), headers=owner.headers)
    ).status_code == 204
    assert (await client.get(path(project), headers=owner.headers)).json() == []


async def test_viewers_read_editors_change_strangers_see_nothing(
    client: httpx.AsyncClient, owner: Actor
) -> None:
    organization_id = await create_organization(client, owner)
    project = await create_project(client, owner, organization_id)
    viewer = await create_actor(client, "viewer")
    editor = await create_actor(client, "editor")
    stranger = await create_actor(client, "stranger")
    await add_member(client, organization_id, owner, viewer, "viewer")
    await add_member(client, organization_id, owner, editor, "editor")

    created = await define(client, editor, project, name="signups", event="signup")
    refused = await client.post(
        path(project), json={"name": "b", "event": "x"}, headers=viewer.headers
    )
    assert refused.status_code == 403
    assert (
        await client.get(path(project, created["id"]), headers=viewer.headers)
    ).status_code == 200
    assert (
        await client.post(
            "/api/v1/metrics/query",
            params={"project_id": project["id"]},
            json=day_body("signups"),
            headers=viewer.headers,
        )
    ).status_code == 200
    patched = await client.patch(
        path(project, created["id"]), json={"description": "Sign-ups"}, headers=viewer.headers
    )
    assert patched.status_code == 403
    for method in ("get", "delete"):
        response = await client.request(
            method, path(project, created["id"]), headers=stranger.headers
        )
        assert response.status_code == 404
    assert (await query(client, stranger, project, day_body("signups"))).status_code == 404
    assert (
        await client.delete(path(project, created["id"]), headers=editor.headers)
    ).status_code == 204
