"""Every kind of bad ingest input gets its own 4xx with a reason, and stores nothing."""

import gzip
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from pulseboard.models import MetricPoint
from tests.factories import Actor, ingest, pageview
from tests.ingest.conftest import count_rows

URL = "/api/v1/events/ingest"


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"next": value}
    return value


def _now(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat()


INVALID_EVENTS: list[tuple[str, dict[str, Any], str, str]] = [
    ("name too long", pageview(event="x" * 201), "event", "201 characters"),
    ("blank name", pageview(event="   "), "event", "blank"),
    ("missing name", {"distinct_id": "a"}, "event", "required"),
    (
        "too many keys",
        pageview(properties={f"k{i}": i for i in range(65)}),
        "properties",
        "65 keys",
    ),
    ("too deep", pageview(properties=nested(4)), "properties", "4 levels"),
    ("too big", pageview(properties={"blob": "x" * 9000}), "properties", "bytes"),
    ("properties not an object", pageview(properties=[1, 2]), "properties", "dictionary"),
    ("too old", pageview(timestamp=_now(days=-8)), "timestamp", "older than 7 days"),
    ("too far ahead", pageview(timestamp=_now(hours=2)), "timestamp", "ahead"),
    ("bad timestamp", pageview(timestamp="yesterday-ish"), "timestamp", "datetime"),
    ("bad uuid", pageview(uuid="not-a-uuid"), "uuid", "UUID"),
    # Valid ISO 8601 with no UTC datetime: year 1 at +01:00 is in year 0.
    (
        "timestamp past datetime's range",
        pageview(timestamp="0001-01-01T00:00:00+01:00"),
        "timestamp",
        "out of range",
    ),
    ("NUL in the name", pageview(event="sign\x00up"), "event", "NUL"),
    ("NUL in the distinct id", pageview(distinct_id="u\x001"), "distinct_id", "NUL"),
    ("NUL in the page URL", pageview(page_url="https://a.example/\x00"), "page_url", "NUL"),
    ("NUL in a property", pageview(properties={"plan": "p\x00ro"}), "properties", "NUL"),
    ("NUL in a property key", pageview(properties={"pl\x00an": 1}), "properties", "NUL"),
    ("nested NUL", pageview(properties={"a": [{"b": "\x00"}]}), "properties", "NUL"),
]


@pytest.mark.parametrize(
    ("bad", "field", "reason"),
    [case[1:] for case in INVALID_EVENTS],
    ids=[case[0] for case in INVALID_EVENTS],
)
async def test_an_invalid_event_refuses_the_whole_batch_with_its_index(
    client: httpx.AsyncClient,
    app: FastAPI,
    project: dict[str, Any],
    bad: dict[str, Any],
    field: str,
    reason: str,
) -> None:
    response = await ingest(client, project["write_key"], [pageview(), pageview(), bad])
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "invalid_items"
    assert "nothing was stored" in body["detail"]
    assert [e["index"] for e in body["errors"]] == [2]
    assert body["errors"][0]["field"] == field
    assert reason in body["errors"][0]["reason"]
    assert await count_rows(app) == 0


async def test_several_bad_events_are_each_listed(
    client: httpx.AsyncClient, app: FastAPI, project: dict[str, Any]
) -> None:
    events = [pageview(event=""), pageview(), pageview(timestamp=_now(days=-30))]
    response = await ingest(client, project["write_key"], events)
    assert response.status_code == 422
    assert [e["index"] for e in response.json()["errors"]] == [0]
    # Timestamps are checked once the items themselves are valid.
    events[0] = pageview()
    response = await ingest(client, project["write_key"], events)
    assert [(e["index"], e["field"]) for e in response.json()["errors"]] == [(2, "timestamp")]
    assert await count_rows(app) == 0


async def test_batch_limits(
    client: httpx.AsyncClient, app: FastAPI, project: dict[str, Any]
) -> None:
    too_many = await ingest(client, project["write_key"], [pageview()] * 1001)
    assert too_many.status_code == 422
    assert "limit is 1000" in too_many.json()["detail"]
    empty = await ingest(client, project["write_key"], [])
    assert empty.status_code == 422
    not_a_list = await client.post(
        URL, json={"events": {"event": "x"}}, headers={"X-API-Key": project["write_key"]}
    )
    assert not_a_list.status_code == 422
    assert not_a_list.json()["errors"][0]["index"] is None
    assert await count_rows(app) == 0


@pytest.mark.parametrize(
    ("content", "headers", "status", "code"),
    [
        (b"{not json", {}, 400, "malformed_body"),
        (b'{"events": [{"event": "caf\xe9"}]}', {}, 400, "malformed_body"),
        (b"[1, 2]", {}, 422, "invalid_items"),
        (b"x" * 1_000_001, {}, 413, "payload_too_large"),
        (gzip.compress(b" " * 5_000_000), {"Content-Encoding": "gzip"}, 413, "payload_too_large"),
        (b"not gzip at all", {"Content-Encoding": "gzip"}, 400, "malformed_body"),
        (b'{"events": []}', {"Content-Encoding": "br"}, 415, "unsupported_media_type"),
        (
            b"events=1",
            {"Content-Type": "application/x-www-form-urlencoded"},
            415,
            "unsupported_media_type",
        ),
    ],
    ids=[
        "malformed json",
        "not utf-8",
        "not an object",
        "over 1 MB",
        "gzip bomb",
        "bad gzip",
        "unknown encoding",
        "form body",
    ],
)
async def test_unreadable_bodies(
    client: httpx.AsyncClient,
    app: FastAPI,
    project: dict[str, Any],
    content: bytes,
    headers: dict[str, str],
    status: int,
    code: str,
) -> None:
    response = await client.post(
        URL,
        content=content,
        headers={"Content-Type": "application/json", "X-API-Key": project["write_key"], **headers},
    )
    assert response.status_code == status, response.text
    assert response.json()["code"] == code
    assert await count_rows(app) == 0


async def test_keys_that_do_not_open_ingest(
    client: httpx.AsyncClient, app: FastAPI, owner: Actor, project: dict[str, Any]
) -> None:
    body = orjson.dumps({"events": [pageview()]})
    no_key = await client.post(URL, content=body, headers={"Content-Type": "application/json"})
    assert no_key.status_code == 401
    assert no_key.json()["code"] == "invalid_api_key"
    wrong = await ingest(client, "pb_not-a-real-key", [pageview()])
    assert wrong.status_code == 401
    user_token = await ingest(client, owner.access_token, [pageview()])
    assert user_token.status_code == 401

    old_key = project["write_key"]
    assert (await ingest(client, old_key, [pageview()])).status_code == 202
    rotated = await client.post(
        f"/api/v1/projects/{project['id']}/rotate-key", headers=owner.headers
    )
    assert (await ingest(client, old_key, [pageview()])).status_code == 401
    new_key = rotated.json()["write_key"]
    assert (await ingest(client, new_key, [pageview()])).status_code == 202

    sources = (
        await client.get(f"/api/v1/projects/{project['id']}/sources/", headers=owner.headers)
    ).json()
    await client.patch(
        f"/api/v1/projects/{project['id']}/sources/{sources[0]['id']}",
        json={"enabled": False},
        headers=owner.headers,
    )
    disabled = await ingest(client, new_key, [pageview()])
    assert disabled.status_code == 403
    assert disabled.json()["code"] == "source_disabled"

    await client.delete(f"/api/v1/projects/{project['id']}", headers=owner.headers)
    assert (await ingest(client, new_key, [pageview()])).status_code == 401
    assert await count_rows(app) == 0  # the project's two stored events went with it


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"name": "cpu", "value": "high"}, "value"),
        ({"name": "cpu"}, "value"),
        ({"name": "", "value": 1}, "name"),
        ({"name": "cpu", "value": 1, "tags": {"host": {"nested": 1}}}, "tags.host"),
        ({"name": "cpu", "value": 1, "timestamp": _now(days=-10)}, "timestamp"),
        ({"name": "c\x00pu", "value": 1}, "name"),
        ({"name": "cpu", "value": 1, "tags": {"host": "a\x00"}}, "tags"),
    ],
)
async def test_invalid_metrics_store_nothing(
    client: httpx.AsyncClient,
    app: FastAPI,
    project: dict[str, Any],
    bad: dict[str, Any],
    field: str,
) -> None:
    good = {"name": "cpu", "value": 0.5}
    response = await client.post(
        "/api/v1/metrics",
        content=orjson.dumps({"metrics": [good, bad]}),
        headers={"X-API-Key": project["write_key"], "Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert errors[0]["index"] == 1
    assert errors[0]["field"].startswith(field)
    assert await count_rows(app, MetricPoint) == 0


async def test_a_sent_at_that_moves_timestamps_out_of_range_is_refused(
    client: httpx.AsyncClient, app: FastAPI, project: dict[str, Any]
) -> None:
    # A clock some 8,000 years ahead: moved back by as much, the event would be before year 1.
    response = await client.post(
        URL,
        json={"events": [pageview(timestamp=_now())], "sent_at": "9999-12-31T00:00:00Z"},
        headers={"X-API-Key": project["write_key"]},
    )
    assert response.status_code == 422, response.text
    assert "sent_at" in response.json()["errors"][0]["reason"]
    assert await count_rows(app) == 0


async def test_a_literal_backslash_u0000_is_text_not_a_nul(
    client: httpx.AsyncClient, app: FastAPI, project: dict[str, Any]
) -> None:
    response = await ingest(client, project["write_key"], [pageview(properties={"p": "\\u0000"})])
    assert response.status_code == 202, response.text
    assert await count_rows(app) == 1


async def test_optional_fields_sent_as_null_are_taken(
    client: httpx.AsyncClient, app: FastAPI, project: dict[str, Any]
) -> None:
    event = pageview(distinct_id=None, session_id=None, referrer=None, timestamp=None)
    response = await ingest(client, project["write_key"], [event])
    assert response.status_code == 202, response.text
    assert await count_rows(app) == 1


async def test_a_key_in_the_body_with_a_nul_is_a_wrong_key(
    client: httpx.AsyncClient, app: FastAPI, project: dict[str, Any]
) -> None:
    body = {"events": [pageview()], "api_key": project["write_key"] + "\x00"}
    response = await client.post(URL, json=body)
    assert response.status_code == 401, response.text
    assert await count_rows(app) == 0
