"""Ingest over HTTP, in both storage modes: a 202 means stored, rolled up, and counted once."""

import gzip
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from pulseboard.models import DataSource, Event, EventRollup, MetricPoint
from tests.factories import Actor, ingest, pageview, read_session
from tests.ingest.conftest import count_rows, rollup_count

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


async def test_events_are_stored_and_rolled_up_exactly(
    client: httpx.AsyncClient, app: FastAPI, project: dict[str, Any]
) -> None:
    key = project["write_key"]
    for batch in range(3):
        events = [
            pageview(f"/page-{i % 4}", distinct_id=f"user-{i % 5}", session_id=f"s-{batch}")
            for i in range(20)
        ]
        response = await ingest(client, key, events)
        assert response.status_code == 202, response.text
        assert response.json() == {"accepted": 20}

    assert await count_rows(app) == 60
    for granularity in (60, 3600, 86400):
        assert await rollup_count(app, granularity) == 60
    assert await rollup_count(app, dimension="path", value="/page-0") == 15
    async with read_session(app) as session:
        rows = (
            (
                await session.execute(
                    select(EventRollup).where(
                        EventRollup.granularity == 86400, EventRollup.dimension == ""
                    )
                )
            )
            .scalars()
            .all()
        )
    from pulseboard.pipeline import sketches

    assert round(sketches.hll_estimate(sketches.hll_merge(r.users for r in rows))) == 5
    assert round(sketches.hll_estimate(sketches.hll_merge(r.sessions for r in rows))) == 3


async def test_a_repeated_batch_and_repeated_uuids_count_once(
    client: httpx.AsyncClient, app: FastAPI, project: dict[str, Any]
) -> None:
    moment = datetime.now(UTC).replace(microsecond=0).isoformat()
    ids = [str(uuid.uuid4()) for _ in range(5)]
    events = [pageview(uuid=i, timestamp=moment) for i in ids]
    events.append(pageview(uuid=ids[0], timestamp=moment))  # the same event twice in one batch
    for _ in range(2):
        response = await ingest(client, project["write_key"], events)
        assert response.status_code == 202

    assert await count_rows(app) == 5
    assert await rollup_count(app) == 5
    assert await rollup_count(app, 60) == 5


async def test_enrichment_is_stored_and_the_ip_is_not(
    client: httpx.AsyncClient, app: FastAPI, project: dict[str, Any]
) -> None:
    event = pageview(
        "/pricing?utm_source=Newsletter&utm_campaign=launch",
        referrer="https://www.google.com/search?q=pulseboard",
        properties={"plan": "pro", "cart": {"items": 2}},
    )
    response = await ingest(client, project["write_key"], [event], headers={"User-Agent": CHROME})
    assert response.status_code == 202
    async with read_session(app) as session:
        stored = (await session.execute(select(Event))).scalar_one()
    assert stored.path == "/pricing"
    assert stored.host == "shop.example.com"
    assert stored.referrer_domain == "google.com"
    assert (stored.utm_source, stored.utm_campaign) == ("newsletter", "launch")
    assert (stored.browser, stored.os, stored.device) == ("Chrome", "Windows", "desktop")
    assert stored.properties == {"plan": "pro", "cart": {"items": 2}}
    assert isinstance(stored.ip_hash, bytes)
    assert len(stored.ip_hash) == 32  # SHA-256, stored as bytes
    assert "127.0.0.1" not in repr(stored.__dict__)
    assert await rollup_count(app, dimension="utm_source", value="newsletter") == 1
    assert await rollup_count(app, dimension="browser", value="Chrome") == 1


async def test_bots_are_stored_flagged_and_left_out_of_counts(
    client: httpx.AsyncClient, app: FastAPI, project: dict[str, Any]
) -> None:
    bot = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
    response = await ingest(client, project["write_key"], [pageview()], headers={"User-Agent": bot})
    assert response.status_code == 202
    await ingest(client, project["write_key"], [pageview()], headers={"User-Agent": CHROME})
    async with read_session(app) as session:
        flags = sorted((await session.execute(select(Event.is_bot))).scalars().all())
    assert flags == [False, True]
    assert await rollup_count(app) == 1


async def test_beacon_text_plain_with_key_in_body_and_gzip(
    client: httpx.AsyncClient, app: FastAPI, project: dict[str, Any]
) -> None:
    body = orjson.dumps({"api_key": project["write_key"], "events": [pageview()]})
    beacon = await client.post(
        "/api/v1/events/ingest", content=body, headers={"Content-Type": "text/plain;charset=UTF-8"}
    )
    assert beacon.status_code == 202
    zipped = await client.post(
        "/api/v1/events/ingest",
        content=gzip.compress(body),
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert zipped.status_code == 202
    assert await count_rows(app) == 2


async def test_sent_at_corrects_the_clients_clock(
    client: httpx.AsyncClient, app: FastAPI, project: dict[str, Any]
) -> None:
    # The client's clock is two hours fast: its event happened 10 s before it sent the batch.
    skewed_now = datetime.now(UTC) + timedelta(hours=2)
    event = pageview(timestamp=(skewed_now - timedelta(seconds=10)).isoformat())
    response = await ingest(client, project["write_key"], [event], sent_at=skewed_now.isoformat())
    assert response.status_code == 202
    async with read_session(app) as session:
        stored = (await session.execute(select(Event.timestamp))).scalar_one()
    assert abs((datetime.now(UTC) - timedelta(seconds=10) - stored).total_seconds()) < 5


async def test_each_source_records_its_events(
    client: httpx.AsyncClient, app: FastAPI, owner: Actor, project: dict[str, Any]
) -> None:
    created = await client.post(
        f"/api/v1/projects/{project['id']}/sources/",
        json={"name": "Backend", "kind": "server"},
        headers=owner.headers,
    )
    assert created.status_code == 201
    server = created.json()
    assert (await ingest(client, server["write_key"], [pageview(), pageview()])).status_code == 202
    assert (await ingest(client, project["write_key"], [pageview()])).status_code == 202

    async with read_session(app) as session:
        by_source = {
            str(source_id)
            for source_id in (await session.execute(select(Event.source_id))).scalars()
        }
        sources = {s.name: s for s in (await session.execute(select(DataSource))).scalars()}
    assert by_source == {server["id"], str(sources["Default"].id)}
    assert sources["Backend"].events_count == 2
    assert sources["Default"].events_count == 1
    assert sources["Backend"].last_event_at is not None

    listed = await client.get(f"/api/v1/projects/{project['id']}/sources/", headers=owner.headers)
    assert [s["events_count"] for s in listed.json()] == [1, 2]


async def test_metrics_are_stored_and_rolled_up(
    client: httpx.AsyncClient, app: FastAPI, project: dict[str, Any]
) -> None:
    samples = [
        {"name": "api.latency_ms", "value": float(v), "tags": {"route": "/a", "status": 200}}
        for v in range(1, 101)
    ]
    response = await ingest(
        client, project["write_key"], samples, path="/api/v1/metrics", field="metrics"
    )
    assert response.status_code == 202
    assert response.json() == {"accepted": 100}
    assert await count_rows(app, MetricPoint) == 100

    from pulseboard.models import MetricRollup
    from pulseboard.pipeline import sketches

    async with read_session(app) as session:
        day = (
            await session.execute(select(MetricRollup).where(MetricRollup.granularity == 86400))
        ).scalar_one()
    assert day.tags == '{"route":"/a","status":200}'
    assert (day.count, day.sum, day.min, day.max) == (100, 5050.0, 1.0, 100.0)
    p50 = sketches.quantiles_get(day.quantiles, [0.5])[0]
    assert p50 is not None
    assert 49 <= p50 <= 52


async def test_cors_preflight_and_origin_allowlist(
    client: httpx.AsyncClient, app: FastAPI, owner: Actor, project: dict[str, Any]
) -> None:
    preflight = await client.options(
        "/api/v1/events/ingest",
        headers={"Origin": "https://anywhere.test", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "https://anywhere.test"
    assert "x-api-key" in preflight.headers["access-control-allow-headers"]

    # Without an allowlist every origin may send.
    open_send = await ingest(
        client, project["write_key"], [pageview()], headers={"Origin": "https://anywhere.test"}
    )
    assert open_send.status_code == 202
    assert open_send.headers["access-control-allow-origin"] == "https://anywhere.test"

    patched = await client.patch(
        f"/api/v1/projects/{project['id']}",
        json={"domains": ["shop.example.com"]},
        headers=owner.headers,
    )
    assert patched.status_code == 200
    allowed = await ingest(
        client, project["write_key"], [pageview()], headers={"Origin": "https://shop.example.com"}
    )
    assert allowed.status_code == 202
    refused = await ingest(
        client, project["write_key"], [pageview()], headers={"Origin": "https://evil.test"}
    )
    assert refused.status_code == 403
    assert refused.json()["code"] == "origin_not_allowed"
    assert await count_rows(app) == 2


@pytest.mark.parametrize("path", ["/api/v1/projects/", "/api/v1/metrics"])
async def test_the_rest_of_the_api_keeps_its_cors_rules(
    client: httpx.AsyncClient, path: str
) -> None:
    # GET /api/v1/metrics reads data: only POST on that path is open to every origin.
    headers = {"Origin": "https://evil.test", "Access-Control-Request-Method": "GET"}
    response = await client.options(path, headers=headers)
    assert "access-control-allow-origin" not in response.headers
    response = await client.get(path, headers={"Origin": "https://evil.test"})
    assert "access-control-allow-origin" not in response.headers


@pytest.mark.parametrize("path", ["/api/v1/events/ingest", "/api/v1/metrics"])
async def test_a_write_key_is_all_ingest_needs(
    client: httpx.AsyncClient, project: dict[str, Any], path: str
) -> None:
    field = "events" if "events" in path else "metrics"
    item = pageview() if field == "events" else {"name": "queue.depth", "value": 3}
    response = await ingest(client, project["write_key"], [item], path=path, field=field)
    assert response.status_code == 202


async def test_a_resend_with_a_later_sent_at_counts_once(
    client: httpx.AsyncClient, app: FastAPI, project: dict[str, Any]
) -> None:
    moment = datetime.now(UTC) - timedelta(seconds=30)
    event = pageview(uuid=str(uuid.uuid4()), timestamp=moment.isoformat())
    for delay in (0.0, 1.5):  # the retry leaves a little later
        sent_at = (datetime.now(UTC) + timedelta(seconds=delay)).isoformat()
        response = await ingest(client, project["write_key"], [event], sent_at=sent_at)
        assert response.status_code == 202
    async with read_session(app) as session:
        stored = (await session.execute(select(Event.timestamp))).scalars().all()
    assert stored == [moment]


async def test_a_repeated_uuid_counts_once_whatever_its_timestamp(
    client: httpx.AsyncClient, app: FastAPI, project: dict[str, Any]
) -> None:
    event_id = str(uuid.uuid4())
    first = datetime.now(UTC) - timedelta(minutes=5)
    for event in (
        pageview("/first", uuid=event_id, timestamp=first.isoformat()),
        pageview("/again", uuid=event_id),  # resent without its timestamp: stamped at arrival
        pageview("/later", uuid=event_id, timestamp=datetime.now(UTC).isoformat()),
    ):
        assert (await ingest(client, project["write_key"], [event])).status_code == 202
    async with read_session(app) as session:
        stored = (await session.execute(select(Event.path, Event.timestamp))).all()
    assert [(path, ts) for path, ts in stored] == [("/first", first)]
    assert await rollup_count(app) == 1
