"""Production shape: two `pulseboard serve` processes and a `pulseboard worker` over Redis."""

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import connect

from tests.factories import create_actor, create_project, ingest, pageview
from tests.live.conftest import receive, receive_events, receive_type, until_closed
from tests.test_cli import PULSEBOARD, _environment, _serving


@pytest.fixture
def two_servers(tmp_path: Path, postgres_url: str, redis_url: str) -> Iterator[tuple[str, str]]:
    env = {**_environment(tmp_path, postgres_url), "PULSEBOARD_REDIS_URL": redis_url}
    subprocess.run(["redis-cli", "-u", redis_url, "flushdb"], check=True, capture_output=True)
    worker = subprocess.Popen(
        [PULSEBOARD, "worker", "--name", "live-test-worker"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        with _serving(tmp_path, env) as first, _serving(tmp_path, env) as second:
            yield first, second
    finally:
        worker.terminate()
        worker.wait(timeout=10)


def ws_url(base: str, project_id: str, **query: str) -> str:
    params = "&".join(f"{name}={value}" for name, value in query.items())
    return f"{base.replace('http://', 'ws://')}/api/v1/ws/events/{project_id}?{params}"


async def test_events_ingested_through_one_process_reach_clients_of_both(
    two_servers: tuple[str, str],
) -> None:
    first, second = two_servers
    async with httpx.AsyncClient(base_url=first, timeout=10) as http:
        owner = await create_actor(http, "owner")
        project = await create_project(http, owner, name="Site")
        token, key = owner.access_token, project["write_key"]

        async with (
            connect(ws_url(second, project["id"], token=token)) as on_second,
            connect(ws_url(first, project["id"], token=token)) as on_first,
        ):
            assert (await receive(on_second))["type"] == "snapshot"
            assert (await receive(on_first))["type"] == "snapshot"
            events = [pageview("/a"), pageview("/b"), pageview("/c")]
            assert (await ingest(http, key, events)).status_code == 202
            paths = ["/a", "/b", "/c"]
            assert [event["path"] for event in await receive_events(on_first, 3)] == paths
            received: list[dict[str, Any]] = []
            while len(received) < 3:
                frame = await receive_type(on_second, "events")
                received += frame["data"]
            assert [event["path"] for event in received] == paths

        # Missed while away; caught up on the other process from the worker's Redis history.
        assert (await ingest(http, key, [pageview("/missed")])).status_code == 202
        for _ in range(100):  # until the worker has stored it
            snapshot = await _reconnect(first, project["id"], token, frame["cursor"])
            if snapshot["events"]:
                break
            await asyncio.sleep(0.1)
        assert [event["path"] for event in snapshot["events"]] == ["/missed"]
        assert snapshot["complete"] is True


async def _reconnect(base: str, project_id: str, token: str, since: str) -> dict[str, Any]:
    async with connect(ws_url(base, project_id, token=token, since=since)) as ws:
        return await receive(ws)


async def test_a_viewer_of_another_organization_is_refused_on_any_process(
    two_servers: tuple[str, str],
) -> None:
    first, second = two_servers
    async with httpx.AsyncClient(base_url=first, timeout=10) as http:
        project = await create_project(http, await create_actor(http, "owner"), name="Site")
    async with httpx.AsyncClient(base_url=second, timeout=10) as http:
        stranger = (await create_actor(http, "stranger")).access_token
    for base in (first, second):
        async with connect(ws_url(base, project["id"], token=stranger)) as ws:
            closed = await until_closed(ws)
        assert closed.rcvd is not None
        assert closed.rcvd.code == 4404
        async with connect(ws_url(base, project["id"])) as ws:
            await ws.send(orjson.dumps({"type": "auth", "token": "forged"}).decode())
            closed = await until_closed(ws)
        assert closed.rcvd is not None
        assert closed.rcvd.code == 4401
