"""A real server for live tests: the app under uvicorn on a loopback port, in the test's loop."""

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest
import uvicorn
from fastapi import FastAPI
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from pulseboard.core.settings import Settings
from pulseboard.live.hub import LiveHub
from pulseboard.main import create_app


@dataclass
class LiveServer:
    app: FastAPI
    http: httpx.AsyncClient
    ws_base: str

    @property
    def hub(self) -> LiveHub:
        hub: LiveHub = self.app.state.pulseboard.live
        return hub

    def url(self, project_id: str, **query: str) -> str:
        params = "&".join(f"{name}={value}" for name, value in query.items())
        return f"{self.ws_base}/api/v1/ws/events/{project_id}" + (f"?{params}" if params else "")


@asynccontextmanager
async def serving(
    settings: Settings, *, send_buffer: int | None = None, **overrides: Any
) -> AsyncIterator[LiveServer]:
    """The app with these settings changed, served over real sockets (HTTP through ASGI).

    `send_buffer` shrinks the kernel's send buffer of accepted sockets (they inherit the
    listener's), so that a client that stops reading stalls the server's sends early.
    """
    app = create_app(settings.model_copy(update=overrides))
    async with app.router.lifespan_context(app):
        listener = socket.socket()
        if send_buffer is not None:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
        listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        config = uvicorn.Config(app, lifespan="off", log_level="warning", ws_ping_interval=None)
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve(sockets=[listener]))
        while not server.started:  # noqa: ASYNC110 (uvicorn offers no event for this)
            await asyncio.sleep(0.01)
        transport = httpx.ASGITransport(app=app)
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
                yield LiveServer(app, http, f"ws://127.0.0.1:{port}")
        finally:
            server.should_exit = True
            await task
            listener.close()


@pytest.fixture
async def live(settings: Settings) -> AsyncIterator[LiveServer]:
    async with serving(settings) as server:
        yield server


async def receive(ws: ClientConnection) -> dict[str, Any]:
    # Generous: a bound on a hang, not a speed check.
    message: dict[str, Any] = orjson.loads(await asyncio.wait_for(ws.recv(), 20))
    return message


async def receive_type(ws: ClientConnection, kind: str) -> dict[str, Any]:
    """The next message of this type, skipping others (heartbeats, numbers)."""
    while True:
        message = await receive(ws)
        if message["type"] == kind:
            return message


async def until_closed(ws: ClientConnection) -> ConnectionClosed:
    """Read on until the connection ends; return how it ended."""
    try:
        while True:
            await receive(ws)
    except ConnectionClosed as closed:
        return closed


async def receive_events(ws: ClientConnection, count: int) -> list[dict[str, Any]]:
    """Events from `events` frames until `count` have come."""
    events: list[dict[str, Any]] = []
    while len(events) < count:
        events += (await receive_type(ws, "events"))["data"]
    return events


def open_socket(server: LiveServer, project_id: str, **query: str) -> Any:
    return connect(server.url(project_id, **query), open_timeout=10)
