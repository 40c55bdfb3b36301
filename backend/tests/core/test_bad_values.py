"""Values no column can hold, and times no datetime can: a 4xx that says why, never a 500.

Found by fuzzing every route: NUL characters (PostgreSQL's text and jsonb refuse them), ISO 8601
times whose offset takes them past year 1 or 9999, numbers past 64 bits or a double.
"""

import base64
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import orjson
import pytest

from pulseboard.core.nul import has_escaped_nul
from tests.factories import Actor

YEAR_ONE = "0001-01-01T00:00:00+01:00"  # valid ISO 8601, and before year 1 in UTC


@pytest.mark.parametrize(
    ("text", "found"),
    [
        (b'{"a": "x\\u0000"}', True),
        (b'{"a": "x\\\\u0000"}', False),  # a backslash, then the text u0000
        (b'{"a": "x\\\\\\u0000"}', True),  # a backslash, then a NUL
        (b'{"a": "\\u00001"}', True),
        (b'{"a": "plain"}', False),
    ],
)
def test_escaped_nuls_are_told_from_escaped_backslashes(text: bytes, found: bool) -> None:
    assert has_escaped_nul(text) is found


async def test_a_nul_in_the_url_is_refused(
    client: httpx.AsyncClient, owner: Actor, project: dict[str, Any]
) -> None:
    base = f"/api/v1/analytics/{project['id']}"
    for url in (f"{base}/breakdown?by=a%00b", f"{base}/timeseries?event=sign%00up"):
        response = await client.get(url, headers=owner.headers)
        assert response.status_code == 422, response.text
        assert response.json()["code"] == "invalid_characters"


async def test_a_nul_in_a_json_or_form_body_is_refused_and_nothing_is_stored(
    client: httpx.AsyncClient, owner: Actor, project: dict[str, Any]
) -> None:
    response = await client.post(
        "/api/v1/organizations/", json={"name": "Ac\x00me"}, headers=owner.headers
    )
    assert response.status_code == 422, response.text
    assert "NUL" in response.json()["detail"]
    names = [
        o["name"]
        for o in (await client.get("/api/v1/organizations/", headers=owner.headers)).json()
    ]
    assert not any("\x00" in name for name in names)
    # A backslash followed by the text u0000 is no NUL: stored as it is.
    literal = await client.post(
        "/api/v1/organizations/", json={"name": "Ac\\u0000me"}, headers=owner.headers
    )
    assert literal.status_code == 201, literal.text
    assert literal.json()["name"] == "Ac\\u0000me"
    token = await client.post(
        "/api/v1/auth/token", data={"username": "a\x00b@example.com", "password": "x" * 12}
    )
    assert token.status_code == 422, token.text


async def test_times_past_the_range_of_a_datetime_are_refused(
    client: httpx.AsyncClient, owner: Actor, project: dict[str, Any]
) -> None:
    base = f"/api/v1/analytics/{project['id']}"
    response = await client.get(
        f"{base}/overview", params={"from": YEAR_ONE}, headers=owner.headers
    )
    assert response.status_code == 422, response.text
    assert "out of range" in response.json()["detail"]
    # A cursor is base64 of JSON [time, tie]: one made by hand with such a time.
    cursor = base64.urlsafe_b64encode(orjson.dumps([YEAR_ONE, "x"])).decode().rstrip("=")
    for page in ("events", "users"):
        response = await client.get(
            f"{base}/{page}", params={"cursor": cursor}, headers=owner.headers
        )
        assert response.status_code == 422, response.text


async def test_a_csv_named_after_any_property_key_downloads(
    client: httpx.AsyncClient, owner: Actor, project: dict[str, Any]
) -> None:
    key = 'prix "€"'
    response = await client.get(
        f"/api/v1/analytics/{project['id']}/export/breakdown.csv",
        params={"by": key},
        headers=owner.headers,
    )
    assert response.status_code == 200, response.text
    disposition = response.headers["content-disposition"]
    assert 'filename="breakdown-properties.prix____.csv"' in disposition
    assert f"filename*=UTF-8''breakdown-properties.{quote(key)}.csv" in disposition


async def test_a_sum_past_the_range_of_a_double_is_no_number_or_a_422(
    client: httpx.AsyncClient, owner: Actor, project: dict[str, Any]
) -> None:
    now = datetime.now(UTC)
    samples = [{"name": "huge", "value": 1.7e308, "timestamp": now.isoformat()}] * 2
    sent = await client.post(
        "/api/v1/metrics", json={"metrics": samples}, headers={"X-API-Key": project["write_key"]}
    )
    assert sent.status_code == 202, sent.text
    body = {
        "metric_name": "huge",
        "aggregation": "sum",
        "time_range": {
            "start": (now - timedelta(hours=1)).isoformat(),
            "end": (now + timedelta(minutes=5)).isoformat(),
        },
    }
    response = await client.post(
        "/api/v1/metrics/query",
        params={"project_id": project["id"]},
        json=body,
        headers=owner.headers,
    )
    # SQLite sums to infinity, shown as no number; PostgreSQL refuses to, a 422 that says so.
    if response.status_code == 422:
        assert response.json()["code"] == "value_refused"
    else:
        assert response.status_code == 200, response.text
        values = [point["value"] for point in response.json()["data"]]
        # The minute holding the samples has no number; the other minutes sum to nothing.
        assert values.count(None) == 1, values
        assert set(values) == {None, 0}
