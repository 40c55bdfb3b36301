"""Overview, timeseries, top events, breakdowns, sessions: exact on both paths and stores."""

import random
import statistics
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from sqlalchemy import delete

from pulseboard.analytics.repository import DURATION_BANDS
from pulseboard.models import Event, EventRollup
from tests.analytics.dataset import (
    Dataset,
    exact_top,
    grouped,
    hour_of,
    ingest_dataset,
    totals,
)
from tests.factories import Actor, add_member, create_actor, ingest, pageview

Project = dict[str, Any]


@pytest.fixture
async def dataset(client: httpx.AsyncClient, project: Project) -> Dataset:
    return await ingest_dataset(client, project["write_key"])


async def get(
    client: httpx.AsyncClient, actor: Actor, project: Project, path: str, **params: Any
) -> dict[str, Any]:
    response = await client.get(
        f"/api/v1/analytics/{project['id']}/{path}", params=params, headers=actor.headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def filters(*items: tuple[str, str, Any]) -> str:
    return orjson.dumps([{"key": k, "op": op, "value": v} for k, op, v in items]).decode()


async def test_overview_counts_every_number_exactly(
    client: httpx.AsyncClient, owner: Actor, project: Project, dataset: Dataset
) -> None:
    events = dataset.counted()
    body = await get(
        client, owner, project, "overview", **dataset.params(compare="previous_period")
    )
    exact = totals(events)
    assert body["total_events"]["value"] == exact["count"]
    assert body["unique_users"]["value"] == exact["unique_users"]
    assert body["unique_sessions"]["value"] == exact["unique_sessions"]
    assert body["pageviews"]["value"] == sum(e.event == "pageview" for e in events)
    # Session numbers count the sessions that started in the range, with all their events.
    sessions = dataset.sessions_started()
    bounces = sum(len(group) == 1 for group in sessions.values())
    assert body["bounce_rate"]["value"] == round(100 * bounces / len(sessions), 2)
    durations = [
        (max(e.timestamp for e in g) - min(e.timestamp for e in g)).total_seconds()
        for g in sessions.values()
    ]
    assert body["avg_session_duration"]["value"] == pytest.approx(
        statistics.mean(durations), abs=0.01
    )
    by_event = exact_top(events, "event")
    name, count = by_event.most_common(1)[0]
    assert body["top_event"]["value"] == {"name": name, "count": count}
    # The six hours before: only the events sent 6.2 to 6.8 hours ago.
    previous = dataset.counted(dataset.start - timedelta(hours=6), dataset.start)
    assert previous, "the dataset puts some events in the previous period"
    assert body["total_events"]["previous"] == len(previous)
    change = round(100 * (len(events) - len(previous)) / len(previous), 1)
    assert body["total_events"]["change"] == change
    assert body["compare"]["to"] == body["range"]["from"]


@pytest.mark.parametrize("source", ["rollups", "raw"])
async def test_hourly_timeseries_is_exact_with_gaps_filled(
    client: httpx.AsyncClient, owner: Actor, project: Project, dataset: Dataset, source: str
) -> None:
    body = await get(
        client,
        owner,
        project,
        "timeseries",
        **dataset.params(interval="hour", metric="unique_users", source=source),
    )
    assert body["source"] == source
    [series] = body["series"]
    assert len(series["data"]) == 6
    by_hour = grouped(dataset.counted(), lambda e: hour_of(e.timestamp))
    for point in series["data"]:
        hour = dataset.start + timedelta(hours=series["data"].index(point))
        assert point["timestamp"].startswith(hour.isoformat()[:13])
        assert point["value"] == totals(by_hour.get(hour, []))["unique_users"]


async def test_series_per_event_at_five_minutes_come_from_minute_rollups(
    client: httpx.AsyncClient, owner: Actor, project: Project, dataset: Dataset
) -> None:
    start = dataset.end - timedelta(hours=2)
    params = {"from": start.isoformat(), "to": dataset.end.isoformat(), "interval": "5m"}
    body = await get(client, owner, project, "timeseries", event=["signup", "purchase"], **params)
    assert body["source"] == "rollups"
    assert [s["key"] for s in body["series"]] == ["signup", "purchase"]
    for series in body["series"]:
        assert len(series["data"]) == 24
        total = sum(point["value"] for point in series["data"])
        assert total == sum(e.event == series["key"] for e in dataset.counted(start))


async def test_timeseries_breakdown_has_the_top_values_and_the_rest_as_other(
    client: httpx.AsyncClient, owner: Actor, project: Project, dataset: Dataset
) -> None:
    body = await get(
        client, owner, project, "timeseries", **dataset.params(breakdown="path", limit=2)
    )
    counts = exact_top(dataset.counted(), "path")
    top = [path for path, _ in sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:2]]
    assert [s["key"] for s in body["series"]] == [*top, "other"]
    sums = {s["key"]: sum(p["value"] for p in s["data"]) for s in body["series"]}
    assert sums[top[0]] == counts[top[0]]
    assert sums["other"] == sum(counts.values()) - counts[top[0]] - counts[top[1]]


@pytest.mark.parametrize("by", ["path", "browser", "referrer", "utm_source", "plan"])
async def test_breakdown_by_a_dimension_or_a_property(
    client: httpx.AsyncClient, owner: Actor, project: Project, dataset: Dataset, by: str
) -> None:
    body = await get(
        client, owner, project, "breakdown", **dataset.params(by=by, limit=2, metric="count")
    )
    assert body["source"] == ("raw" if by == "plan" else "rollups")
    events = dataset.counted()
    groups = grouped((e for e in events if e.value(by) is not None), lambda e: e.value(by))
    ranked = sorted(groups.items(), key=lambda item: (-len(item[1]), item[0]))
    assert [row["value"] for row in body["rows"]] == [value for value, _ in ranked[:2]]
    for row, (_value, group) in zip(body["rows"], ranked, strict=False):
        assert {k: row[k] for k in ("count", "unique_users", "unique_sessions")} == totals(group)
    rest = [e for _, group in ranked[2:] for e in group]
    if rest:
        assert body["other"]["values"] == len(ranked) - 2
        assert body["other"]["count"] == len(rest)
    else:
        assert body["other"] is None


async def test_top_events_rank_events_by_the_metric(
    client: httpx.AsyncClient, owner: Actor, project: Project, dataset: Dataset
) -> None:
    body = await get(client, owner, project, "top-events", **dataset.params(metric="unique_users"))
    groups = grouped(dataset.counted(), lambda e: e.event)
    expected = sorted(
        ((name, totals(group)["unique_users"]) for name, group in groups.items()),
        key=lambda item: (-item[1], item[0]),
    )
    assert [(row["value"], row["unique_users"]) for row in body["rows"]] == expected


FILTER_CASES = [
    (("path", "eq", "/pricing"), lambda e: e.path == "/pricing", "rollups"),
    (("path", "in", ["/", "/docs"]), lambda e: e.path in ("/", "/docs"), "rollups"),
    (("path", "contains", "BLOG"), lambda e: "blog" in e.path, "rollups"),
    (("utm_source", "is_set", None), lambda e: e.utm_source is not None, "rollups"),
    (("utm_source", "neq", "twitter"), lambda e: e.utm_source != "twitter", "raw"),
    (("event", "neq", "pageview"), lambda e: e.event != "pageview", "rollups"),
    (("plan", "eq", "pro"), lambda e: e.plan == "pro", "raw"),
    (("amount", "gt", 50), lambda e: e.amount is not None and e.amount > 50, "raw"),
    (("properties.amount", "lt", 20), lambda e: e.amount is not None and e.amount < 20, "raw"),
]


@pytest.mark.parametrize(("item", "keep", "source"), FILTER_CASES)
async def test_filters_select_exactly_the_matching_events(
    client: httpx.AsyncClient,
    owner: Actor,
    project: Project,
    dataset: Dataset,
    item: tuple[str, str, Any],
    keep: Any,
    source: str,
) -> None:
    body = await get(client, owner, project, "overview", **dataset.params(filters=filters(item)))
    matching = [e for e in dataset.counted() if keep(e)]
    assert body["total_events"]["value"] == len(matching)
    assert body["unique_users"]["value"] == totals(matching)["unique_users"]
    assert body["source"] == ("raw" if source == "raw" else "raw+rollups")


async def test_a_dimension_filter_and_an_event_breakdown_come_from_rollups(
    client: httpx.AsyncClient, owner: Actor, project: Project, dataset: Dataset
) -> None:
    params = dataset.params(filters=filters(("browser", "eq", "Chrome")))
    body = await get(client, owner, project, "top-events", **params)
    assert body["source"] == "rollups"
    expected = exact_top([e for e in dataset.counted() if e.browser == "Chrome"], "event")
    assert {row["value"]: row["count"] for row in body["rows"]} == dict(expected)


QUERIES = [
    ("overview", {}),
    ("timeseries", {"interval": "hour", "metric": "unique_sessions"}),
    ("timeseries", {"interval": "15m", "event": "pageview"}),
    ("timeseries", {"interval": "hour", "breakdown": "browser", "metric": "unique_users"}),
    ("breakdown", {"by": "referrer", "metric": "unique_users"}),
    ("breakdown", {"by": "event", "filters": filters(("path", "in", ["/", "/pricing"]))}),
    ("top-events", {"filters": filters(("device", "eq", "desktop"))}),
]


@pytest.mark.parametrize(("path", "params"), QUERIES)
async def test_rollups_and_raw_rows_give_the_same_answers(
    client: httpx.AsyncClient,
    owner: Actor,
    project: Project,
    dataset: Dataset,
    path: str,
    params: dict[str, Any],
) -> None:
    answers = {}
    for source in ("rollups", "raw"):
        body = await get(client, owner, project, path, **dataset.params(source=source, **params))
        body.pop("source")
        answers[source] = body
    assert answers["rollups"] == answers["raw"]


async def test_raw_daily_series_over_several_days_are_exact(
    client: httpx.AsyncClient, owner: Actor, project: Project
) -> None:
    """Days from raw rows (in PostgreSQL each bucket of whole days is counted on its own) are
    exact, with a range of whole days and one that starts and ends within a day."""
    rng = random.Random(11)
    now = datetime.now(UTC).replace(microsecond=0)
    sent = []
    for _ in range(400):
        user = f"user-{rng.randrange(50)}"
        sent.append(
            pageview(
                distinct_id=user,
                session_id=f"{user}-{rng.randrange(2)}",
                timestamp=(now - timedelta(seconds=rng.uniform(60, 5 * 86400))).isoformat(),
                uuid=str(uuid.uuid4()),
                properties={"plan": rng.choice(["free", "pro"])},
            )
        )
    for i in range(0, len(sent), 100):
        assert (await ingest(client, project["write_key"], sent[i : i + 100])).status_code == 202
    pro = [
        (e["distinct_id"], datetime.fromisoformat(e["timestamp"]))
        for e in sent
        if e["properties"]["plan"] == "pro"
    ]
    midnight = now.replace(hour=0, minute=0, second=0)
    for start, end in [
        (midnight - timedelta(days=5), midnight + timedelta(days=1)),
        (now - timedelta(days=4, hours=7), now - timedelta(hours=3)),
    ]:
        body = await get(
            client,
            owner,
            project,
            "timeseries",
            **{"from": start.isoformat(), "to": end.isoformat()},
            interval="day",
            metric="unique_users",
            filters=filters(("plan", "eq", "pro")),
        )
        assert body["source"] == "raw"
        expected = []
        day = start.replace(hour=0, minute=0, second=0)
        while day < end:
            low, high = max(day, start), min(day + timedelta(days=1), end)
            expected.append(len({user for user, at in pro if low <= at < high}))
            day += timedelta(days=1)
        [series] = body["series"]
        assert [point["value"] for point in series["data"]] == expected


async def test_sessions_give_the_duration_and_pages_distributions(
    client: httpx.AsyncClient, owner: Actor, project: Project, dataset: Dataset
) -> None:
    body = await get(client, owner, project, "sessions", **dataset.params())
    sessions = dataset.sessions_started()
    assert body["sessions"] == len(sessions)
    assert sum(band["sessions"] for band in body["duration_distribution"]) == len(sessions)
    assert [band["band"] for band in body["duration_distribution"]] == [
        label for label, _ in DURATION_BANDS
    ]
    pageviews = [sum(e.event == "pageview" for e in g) for g in sessions.values()]
    expected_pages: dict[int, int] = {}
    for count in pageviews:
        expected_pages[min(count, 10)] = expected_pages.get(min(count, 10), 0) + 1
    assert {p["pages"]: p["sessions"] for p in body["pages_distribution"]} == expected_pages
    assert body["pages_per_session"] == round(sum(pageviews) / len(sessions), 2)


async def test_new_data_is_answered_at_once_and_unchanged_days_stay_cached(
    client: httpx.AsyncClient, app: FastAPI, owner: Actor, project: Project
) -> None:
    first = await get(client, owner, project, "overview", range="today")
    assert first["total_events"]["value"] == 0
    assert (await ingest(client, project["write_key"], [pageview("/x")])).status_code == 202
    second = await get(client, owner, project, "overview", range="today")
    assert second["total_events"]["value"] == 1

    yesterday = (datetime.now(UTC) - timedelta(days=1)).replace(hour=12).isoformat()
    sent = [pageview("/y", timestamp=yesterday)]
    assert (await ingest(client, project["write_key"], sent)).status_code == 202
    assert (await get(client, owner, project, "overview", range="yesterday"))["total_events"][
        "value"
    ] == 1
    # Rows removed behind the cache's back change no version: the cached answer is served...
    async with app.state.pulseboard.engine.begin() as connection:
        for model in (Event, EventRollup):
            await connection.execute(
                delete(model).where(model.project_id == uuid.UUID(project["id"]))
            )
    cached = await get(client, owner, project, "overview", range="yesterday")
    assert cached["total_events"]["value"] == 1
    # ...until a batch lands on that day and bumps its version.
    more = [pageview("/z", timestamp=yesterday), pageview("/w", timestamp=yesterday)]
    assert (await ingest(client, project["write_key"], more)).status_code == 202
    fresh = await get(client, owner, project, "overview", range="yesterday")
    assert fresh["total_events"]["value"] == 2


async def test_the_cache_key_holds_every_parameter(
    client: httpx.AsyncClient, owner: Actor, project: Project, dataset: Dataset
) -> None:
    pricing = await get(
        client, owner, project, "overview", **dataset.params(filters=filters(("path", "eq", "/")))
    )
    docs = await get(
        client,
        owner,
        project,
        "overview",
        **dataset.params(filters=filters(("path", "eq", "/docs"))),
    )
    assert pricing["total_events"]["value"] == sum(e.path == "/" for e in dataset.counted())
    assert docs["total_events"]["value"] == sum(e.path == "/docs" for e in dataset.counted())


BAD_REQUESTS = [
    ("timeseries", {"interval": "fortnight"}, "Unknown interval"),
    ("timeseries", {"from": "2019-01-01T00:00:00Z", "interval": "minute"}, "10,000 points"),
    ("timeseries", {"metric": "revenue"}, "Unknown metric"),
    ("overview", {"range": "last_century"}, None),
    ("overview", {"range": "today", "from": "2026-01-01T00:00:00Z"}, "either"),
    ("overview", {"from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "after"),
    ("overview", {"filters": "not json"}, "JSON array"),
    ("overview", {"filters": '[{"key": "path", "op": "like", "value": "/"}]'}, "op must be"),
    ("overview", {"filters": '[{"key": "amount", "op": "gt", "value": "x"}]'}, "number"),
    ("overview", {"filters": '[{"key": "", "op": "eq", "value": "x"}]'}, "key"),
    ("breakdown", {"by": "plan", "source": "rollups"}, "Rollups cannot answer"),
    ("breakdown", {}, None),
    ("timeseries", {"breakdown": "path", "event": ["a", "b"]}, "at most one event"),
    ("overview", {"compare": "last_decade"}, None),
]


@pytest.mark.parametrize(("path", "params", "reason"), BAD_REQUESTS)
async def test_bad_parameters_get_a_422_that_says_why(
    client: httpx.AsyncClient,
    owner: Actor,
    project: Project,
    path: str,
    params: dict[str, Any],
    reason: str | None,
) -> None:
    response = await client.get(
        f"/api/v1/analytics/{project['id']}/{path}", params=params, headers=owner.headers
    )
    assert response.status_code == 422, response.text
    if reason is not None:
        assert reason in str(response.json()["detail"])


async def test_only_members_read_a_projects_analytics(
    client: httpx.AsyncClient, owner: Actor, project: Project
) -> None:
    path = f"/api/v1/analytics/{project['id']}/overview"
    stranger = await create_actor(client, "stranger")
    assert (await client.get(path, headers=stranger.headers)).status_code == 404
    assert (await client.get(path)).status_code == 401
    viewer = await create_actor(client, "viewer")
    await add_member(client, str(owner.personal_organization_id), owner, viewer, "viewer")
    assert (await client.get(path, headers=viewer.headers)).status_code == 200
    missing = "/api/v1/analytics/00000000-0000-0000-0000-000000000000/overview"
    assert (await client.get(missing, headers=owner.headers)).status_code == 404


@pytest.mark.parametrize(
    "params",
    [
        {"from": "0001-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"},
        {"from": "2026-01-01T00:00:00Z", "to": "9999-12-31T23:59:59Z"},
        {"from": "2001-01-01T00:00:00Z", "to": "2020-01-01T00:00:00Z"},
        {"filters": '[{"key": "path", "op": "eq", "value": "/\\u0000"}]'},
    ],
)
async def test_ranges_out_of_bounds_and_nul_characters_are_refused(
    client: httpx.AsyncClient, owner: Actor, project: Project, params: dict[str, Any]
) -> None:
    for path in ("overview", "timeseries", "breakdown?by=path"):
        response = await client.get(
            f"/api/v1/analytics/{project['id']}/{path}", params=params, headers=owner.headers
        )
        assert response.status_code == 422, response.text
        assert response.json()["code"] == "invalid_query"
