"""A slow client never slows another: its oldest events go, and a client that stops is closed."""

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator

import pytest
from websockets.asyncio.client import connect

from pulseboard.core.settings import Settings
from tests.factories import create_actor, create_project, ingest, pageview
from tests.live.conftest import (
    LiveServer,
    open_socket,
    receive,
    receive_events,
    serving,
    until_closed,
)


@pytest.fixture
async def live_small_queue(settings: Settings) -> AsyncIterator[LiveServer]:
    async with serving(
        settings, send_buffer=8192, live_max_queued_events=100, live_send_timeout_seconds=60
    ) as s:
        yield s


@pytest.fixture
async def live_quick_timeout(settings: Settings) -> AsyncIterator[LiveServer]:
    async with serving(
        settings, send_buffer=8192, live_max_queued_events=100, live_send_timeout_seconds=0.5
    ) as s:
        yield s


def stalled_client(live: LiveServer, project_id: str, token: str) -> connect:
    """A client that reads nothing until it calls recv: a tiny buffer, one queued frame, and no
    compression (which would let the whole flood fit in the buffers)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    host, port = live.ws_base.removeprefix("ws://").split(":")
    sock.connect((host, int(port)))
    sock.setblocking(False)
    return connect(
        live.url(project_id, token=token), sock=sock, max_queue=1, compression=None, open_timeout=10
    )


async def flood(live: LiveServer, key: str, until_dropped: bool = False) -> list[str]:
    """Ingest batches of 200 events (20, or until some socket dropped some); return their ids."""
    ids: list[str] = []
    for _ in range(20 if not until_dropped else 100):
        batch = [pageview("/flood", uuid=str(uuid.uuid4())) for _ in range(200)]
        ids += [event["uuid"] for event in batch]
        assert (await ingest(live.http, key, batch)).status_code == 202
        if until_dropped and _some_dropped(live):
            break
    return ids


def _some_dropped(live: LiveServer) -> bool:
    # How much the kernel and the client library buffer varies; stop once the outbox overflowed.
    feeds = live.hub.feeds.values()
    return any(connection.dropped for feed in feeds for connection in feed.connections)


async def test_a_slow_client_loses_its_oldest_events_and_is_told(
    live_small_queue: LiveServer,
) -> None:
    live = live_small_queue
    owner = await create_actor(live.http, "owner")
    project = await create_project(live.http, owner, name="Shop")
    async with (
        stalled_client(live, project["id"], owner.access_token) as slow,
        open_socket(live, project["id"], token=owner.access_token) as fast,
    ):
        await receive(fast)
        sent = await flood(live, project["write_key"], until_dropped=True)
        # The client that reads gets everything while the other reads nothing.
        assert [event["id"] for event in await receive_events(fast, len(sent))] == sent

        received: list[str] = []
        dropped = 0
        assert (await receive(slow))["type"] == "snapshot"
        while len(received) + dropped < len(sent):
            message = await receive(slow)
            if message["type"] == "dropped":
                dropped += message["count"]
            elif message["type"] == "events":
                received += [event["id"] for event in message["data"]]
    assert dropped > 0
    assert len(received) + dropped == len(sent)
    # What arrives is in order, without gaps after the drop: the newest events are kept.
    assert received == [i for i in sent if i in set(received)]
    assert received[-1] == sent[-1]


async def test_a_client_that_stops_reading_is_closed(live_quick_timeout: LiveServer) -> None:
    live = live_quick_timeout
    owner = await create_actor(live.http, "owner")
    project = await create_project(live.http, owner, name="Shop")
    async with stalled_client(live, project["id"], owner.access_token) as stalled:
        assert (await receive(stalled))["type"] == "snapshot"
        assert live.hub.connection_count == 1
        await flood(live, project["write_key"])
        for _ in range(100):
            if live.hub.connection_count == 0:
                break
            await asyncio.sleep(0.1)
        assert live.hub.connection_count == 0
        closed = await until_closed(stalled)
    assert closed.rcvd is None  # no close frame: the server could not send one
