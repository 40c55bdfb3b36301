"""CSV exports carry the same numbers as the JSON answers, and raw events row for row."""

import csv
import io
from typing import Any

import httpx
import orjson

from tests.analytics.dataset import ingest_dataset
from tests.factories import Actor, create_actor

Project = dict[str, Any]


async def fetch(
    client: httpx.AsyncClient, actor: Actor, project: Project, path: str, **params: Any
) -> httpx.Response:
    return await client.get(
        f"/api/v1/analytics/{project['id']}/{path}", params=params, headers=actor.headers
    )


def rows_of(response: httpx.Response) -> list[list[str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    return list(csv.reader(io.StringIO(response.text)))


async def test_timeseries_and_breakdown_exports_match_their_json(
    client: httpx.AsyncClient, owner: Actor, project: Project
) -> None:
    dataset = await ingest_dataset(client, project["write_key"])
    params = dataset.params(interval="hour", breakdown="browser", compare="previous_period")
    answer = (await fetch(client, owner, project, "timeseries", **params)).json()
    rows = rows_of(await fetch(client, owner, project, "export/timeseries.csv", **params))
    assert rows[0] == ["timestamp", "series", "value", "previous"]
    expected = [
        [point["timestamp"], series["key"], point["value"]]
        for series in answer["series"]
        for point in series["data"]
    ]
    assert [[r[0], r[1], float(r[2])] for r in rows[1:]] == [
        [t.replace("Z", "+00:00"), k, v] for t, k, v in expected
    ]

    params = dataset.params(by="path", limit=2)
    answer = (await fetch(client, owner, project, "breakdown", **params)).json()
    rows = rows_of(await fetch(client, owner, project, "export/breakdown.csv", **params))
    assert rows[0] == ["path", "count", "unique_users", "unique_sessions"]
    assert rows[1:3] == [
        [row["value"], str(row["count"]), str(row["unique_users"]), str(row["unique_sessions"])]
        for row in answer["rows"]
    ]
    assert rows[3][0] == f"other ({answer['other']['values']} values)"


async def test_raw_event_export_streams_every_matching_row(
    client: httpx.AsyncClient, owner: Actor, project: Project
) -> None:
    dataset = await ingest_dataset(client, project["write_key"], size=600)
    only = orjson.dumps([{"key": "plan", "op": "eq", "value": "pro"}]).decode()
    rows = rows_of(
        await fetch(client, owner, project, "export/events.csv", **dataset.params(filters=only))
    )
    header, body = rows[0], rows[1:]
    assert header[:3] == ["timestamp", "id", "event"]
    expected = sorted(e.timestamp for e in dataset.counted() if e.plan == "pro")
    assert len(body) == len(expected)
    assert [r[0] for r in body] == [t.isoformat() for t in expected]
    properties = [orjson.loads(r[header.index("properties")]) for r in body]
    assert all(p["plan"] == "pro" for p in properties)

    limited = rows_of(
        await fetch(client, owner, project, "export/events.csv", **dataset.params(limit=5))
    )
    assert len(limited) == 6


async def test_exports_are_read_with_the_same_permissions(
    client: httpx.AsyncClient, project: Project
) -> None:
    stranger = await create_actor(client, "stranger")
    response = await fetch(client, stranger, project, "export/events.csv")
    assert response.status_code == 404
    response = await fetch(client, stranger, project, "export/timeseries.csv", interval="year")
    assert response.status_code == 404
