"""The live socket as a dashboard uses it: who may open it, what it sends, how it answers."""

import asyncio
import time
import uuid
from typing import Any

import orjson
import pytest
from starlette.websockets import WebSocketDisconnect

from pulseboard.core.settings import Settings
from pulseboard.live.service import ClientGone, _first_message_token
from tests.factories import (
    add_member,
    create_actor,
    create_organization,
    create_project,
    ingest,
    login,
    pageview,
)
from tests.live.conftest import (
    LiveServer,
    open_socket,
    receive,
    receive_events,
    receive_type,
    serving,
    until_closed,
)


async def close_code(server: LiveServer, project_id: str, *first: str, **query: str) -> int:
    """Open a socket, send `first` messages, and return the code the server closed it with."""
    async with open_socket(server, project_id, **query) as ws:
        for message in first:
            await ws.send(message)
        closed = await until_closed(ws)
    assert closed.rcvd is not None
    return closed.rcvd.code


async def test_events_ingested_reach_a_connected_client(live: LiveServer) -> None:
    owner = await create_actor(live.http, "owner")
    project = await create_project(live.http, owner, name="Shop")
    async with open_socket(live, project["id"], token=owner.access_token) as ws:
        snapshot = await receive(ws)
        assert snapshot["type"] == "snapshot"
        assert snapshot["events"] == []
        assert snapshot["counters"]["events"] == 0

        response = await ingest(live.http, project["write_key"], [pageview("/a"), pageview("/b")])
        assert response.status_code == 202
        frame = await receive_type(ws, "events")
        assert [event["path"] for event in frame["data"]] == ["/a", "/b"]
        assert frame["cursor"] > snapshot["cursor"]


async def _well_inside_a_minute(margin: float = 10.0) -> None:
    """Wait out the end of a minute: a snapshot's counters are this minute's, so an ingest at
    xx:59.9 read at xx+1:00.1 would count nothing (seen on a loaded machine)."""
    seconds = time.time() % 60
    if seconds > 60 - margin:
        await asyncio.sleep(60.2 - seconds)


async def test_snapshot_holds_recent_events_and_this_minutes_counters(live: LiveServer) -> None:
    owner = await create_actor(live.http, "owner")
    project = await create_project(live.http, owner, name="Shop")
    await _well_inside_a_minute()
    events = [
        pageview("/a", distinct_id="u1"),
        pageview("/b", distinct_id="u2"),
        {"event": "signup", "distinct_id": "u2", "session_id": "s2"},
    ]
    assert (await ingest(live.http, project["write_key"], events)).status_code == 202

    async with open_socket(live, project["id"], token=owner.access_token) as ws:
        snapshot = await receive(ws)
    assert [event["event_name"] for event in snapshot["events"]] == ["pageview"] * 2 + ["signup"]
    assert snapshot["complete"] is True
    counters = snapshot["counters"]
    assert counters["events"] == 3
    assert counters["users"] == 2
    assert counters["by_event"] == {"pageview": 2, "signup": 1}


async def test_token_may_come_in_the_first_message(live: LiveServer) -> None:
    owner = await create_actor(live.http, "owner")
    project = await create_project(live.http, owner, name="Shop")
    async with open_socket(live, project["id"]) as ws:
        await ws.send(orjson.dumps({"type": "auth", "token": owner.access_token}).decode())
        assert (await receive(ws))["type"] == "snapshot"


async def test_refused_connections_close_with_distinct_codes(live: LiveServer) -> None:
    owner = await create_actor(live.http, "owner")
    stranger = await create_actor(live.http, "stranger")
    project = await create_project(live.http, owner, name="Shop")
    pid = project["id"]

    assert await close_code(live, pid, '{"type": "ping"}') == 4401  # no token first
    assert await close_code(live, pid, "not json") == 4401
    assert await close_code(live, pid, token="not-a-jwt") == 4401
    assert await close_code(live, pid, token=stranger.access_token) == 4404
    assert await close_code(live, str(uuid.uuid4()), token=owner.access_token) == 4404
    assert await close_code(live, pid, token=owner.access_token, since="yesterday") == 4400
    # Accepted, then closed with the reason (refused at the handshake, a browser sees only 1006).
    assert await close_code(live, "not-a-uuid", token=owner.access_token) == 1008
    assert await close_code(live, pid[:-1] + "g", token=owner.access_token) == 1008

    # Logged out: the session is revoked, and its access token with it.
    refresh = {"refresh_token": owner.refresh_token}
    logout = await live.http.post("/api/v1/auth/logout", json=refresh, headers=owner.headers)
    assert logout.status_code in (200, 204)
    assert await close_code(live, pid, token=owner.access_token) == 4401


async def test_viewer_of_the_organization_reads_and_a_viewer_of_another_is_refused(
    live: LiveServer,
) -> None:
    owner = await create_actor(live.http, "owner")
    organization = await create_organization(live.http, owner, "Acme")
    project = await create_project(live.http, owner, organization, name="Acme site")
    viewer = await create_actor(live.http, "viewer")
    await add_member(live.http, organization, owner, viewer, "viewer")
    other_owner = await create_actor(live.http, "other")
    other_organization = await create_organization(live.http, other_owner, "Other")
    outsider = await create_actor(live.http, "outsider")
    await add_member(live.http, other_organization, other_owner, outsider, "viewer")

    async with open_socket(live, project["id"], token=viewer.access_token) as ws:
        assert (await receive(ws))["type"] == "snapshot"
    assert await close_code(live, project["id"], token=outsider.access_token) == 4404


async def test_bad_messages_get_an_error_and_the_socket_stays_open(live: LiveServer) -> None:
    owner = await create_actor(live.http, "owner")
    project = await create_project(live.http, owner, name="Shop")
    async with open_socket(live, project["id"], token=owner.access_token) as ws:
        await receive(ws)
        answers: dict[str, dict[str, Any]] = {}
        for name, message in {
            "not_json": "{oops",
            "unknown_type": '{"type": "dance"}',
            "bad_interval": '{"type": "subscribe", "interval": 7, "numbers": ["events"]}',
            "bad_number": '{"type": "subscribe", "interval": 5, "numbers": ["revenue"]}',
            "too_large": '{"type": "ping", "pad": "' + "x" * 5000 + '"}',
        }.items():
            await ws.send(message)
            answers[name] = await receive_type(ws, "error")
        await ws.send('{"type": "ping"}')
        assert (await receive_type(ws, "pong"))["type"] == "pong"

    assert answers["not_json"]["code"] == "malformed_message"
    assert "dance" in answers["unknown_type"]["detail"]
    assert "1, 5, 30 or 60" in answers["bad_interval"]["detail"]
    assert "unknown number 'revenue'" in answers["bad_number"]["detail"]
    assert answers["too_large"]["code"] == "message_too_large"


async def test_subscribed_numbers_come_as_deltas(live: LiveServer) -> None:
    owner = await create_actor(live.http, "owner")
    project = await create_project(live.http, owner, name="Shop")
    async with open_socket(live, project["id"], token=owner.access_token) as ws:
        await receive(ws)
        numbers = ["events", "event:signup", "metric:cpu"]
        await ws.send(orjson.dumps({"type": "subscribe", "interval": 1, "numbers": numbers}))
        assert (await receive_type(ws, "subscribed"))["numbers"] == numbers

        # The first update carries every number; later ones only those that changed.
        first = await receive_type(ws, "metrics_update")
        assert set(first["values"]) == set(numbers)
        key = project["write_key"]
        assert (await ingest(live.http, key, [pageview("/a"), pageview("/b")])).status_code == 202
        points = [{"name": "cpu", "value": 1.0}, {"name": "cpu", "value": 3.0}]
        response = await ingest(live.http, key, points, path="/api/v1/metrics", field="metrics")
        assert response.status_code == 202

        updates = [first]
        seen_events = first["values"]["events"]
        cpu: dict[str, Any] | None = None
        while seen_events < 2 or cpu is None:
            update = await receive_type(ws, "metrics_update")
            assert update["interval"] == 1
            assert "event:signup" not in update["values"]  # still 0: not sent again
            seen_events += update["values"].get("events", 0)
            cpu = update["values"].get("metric:cpu", cpu)
            updates.append(update)
        assert seen_events == 2
        assert cpu == {"count": 2, "sum": 4.0, "min": 1.0, "max": 3.0}

        # Unsubscribing stops the updates; a ping's answer comes with none after it.
        await ws.send('{"type": "subscribe", "interval": 1, "numbers": []}')
        await receive_type(ws, "subscribed")
        assert live.hub.feeds[uuid.UUID(project["id"])].windows == {}


async def test_reconnecting_with_since_gets_what_was_missed(live: LiveServer) -> None:
    owner = await create_actor(live.http, "owner")
    project = await create_project(live.http, owner, name="Shop")
    key = project["write_key"]
    async with open_socket(live, project["id"], token=owner.access_token) as ws:
        await receive(ws)
        assert (await ingest(live.http, key, [pageview("/seen")])).status_code == 202
        cursor = (await receive_type(ws, "events"))["cursor"]

    for path in ("/missed-1", "/missed-2"):
        assert (await ingest(live.http, key, [pageview(path)])).status_code == 202

    async with open_socket(live, project["id"], token=owner.access_token, since=cursor) as ws:
        snapshot = await receive(ws)
        assert [event["path"] for event in snapshot["events"]] == ["/missed-1", "/missed-2"]
        assert snapshot["complete"] is True
        assert (await ingest(live.http, key, [pageview("/live")])).status_code == 202
        assert [event["path"] for event in await receive_events(ws, 1)] == ["/live"]


async def test_an_idle_socket_gets_heartbeats(settings: Settings) -> None:
    async with serving(settings, live_heartbeat_seconds=0.2) as live:
        owner = await create_actor(live.http, "owner")
        project = await create_project(live.http, owner, name="Shop")
        async with open_socket(live, project["id"], token=owner.access_token) as ws:
            await receive(ws)
            assert (await receive(ws))["type"] == "heartbeat"


async def test_a_new_token_is_checked_at_once_and_a_bad_one_closes(live: LiveServer) -> None:
    owner = await create_actor(live.http, "owner")
    project = await create_project(live.http, owner, name="Shop")
    fresh = await login(live.http, owner.email)
    async with open_socket(live, project["id"], token=owner.access_token) as ws:
        await receive(ws)
        await ws.send(orjson.dumps({"type": "auth", "token": fresh["access_token"]}).decode())
        await ws.send('{"type": "ping"}')
        assert (await receive_type(ws, "pong"))["type"] == "pong"
        await ws.send('{"type": "auth", "token": "forged"}')
        closed = await until_closed(ws)
    assert closed.rcvd is not None
    assert closed.rcvd.code == 4401


class _GoneAfterSending:
    """A socket whose client sent one message and went away before the answer: what a real
    client does at random (a fuzz run saw it), made certain here."""

    def __init__(self, text: str) -> None:
        self.text = text

    async def receive(self) -> dict[str, Any]:
        return {"type": "websocket.receive", "text": self.text}

    async def send_text(self, _data: str) -> None:
        raise WebSocketDisconnect(1006)


@pytest.mark.parametrize("first", ["not json", '{"type": "auth"}'])
async def test_a_client_gone_before_its_bad_first_message_is_answered_ends_quietly(
    first: str,
) -> None:
    with pytest.raises(ClientGone):
        await _first_message_token(_GoneAfterSending(first))  # type: ignore[arg-type]
