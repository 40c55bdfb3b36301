"""A live socket's life: authenticate, send a snapshot, then events, numbers and heartbeats."""

import asyncio
import contextlib
import time
import uuid
from datetime import datetime

import orjson
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.websockets import WebSocket, WebSocketDisconnect

from pulseboard.auth.repository import UserRepository
from pulseboard.core.db import session_scope
from pulseboard.core.errors import Forbidden, InvalidToken, NotFound
from pulseboard.core.pubsub import HISTORY_MESSAGES, cursor_order, live_channel
from pulseboard.core.security import decode_access_token, utcnow
from pulseboard.core.state import AppState
from pulseboard.live.hub import Connection, LiveHub
from pulseboard.live.repository import LiveRepository
from pulseboard.live.schemas import (
    AuthMessage,
    CloseCode,
    ErrorMessage,
    Heartbeat,
    MinuteCounters,
    PingMessage,
    Pong,
    Snapshot,
    Subscribed,
    SubscribeMessage,
    client_message,
)
from pulseboard.orgs.permissions import Action
from pulseboard.pipeline.sketches import hll_count_union
from pulseboard.projects.service import authorize_project

AUTH_TIMEOUT_SECONDS = 10.0
# A token expired, a session logged out or a membership removed ends the socket within this.
REAUTHORIZE_SECONDS = 60.0
SNAPSHOT_EVENTS = 100
MAX_CLIENT_MESSAGE_BYTES = 4096


class Refused(Exception):
    """The socket must close with this code."""

    def __init__(self, code: CloseCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class ClientGone(Exception):
    """The client left, or stopped reading: nothing more can be sent."""


async def authorize(state: AppState, token: str, project_id: uuid.UUID) -> None:
    """The REST API's check: a valid access token of an active session, allowed to read."""
    try:
        claims = decode_access_token(state.settings, token)
        async with session_scope(state.sessions) as session:
            user = await UserRepository(session).get_active_in_session(
                claims.user_id, claims.session_id, utcnow()
            )
            if user is None:
                raise InvalidToken()
            await authorize_project(session, user, project_id, Action.READ)
    except InvalidToken as exc:
        raise Refused(CloseCode.UNAUTHENTICATED, exc.detail) from exc
    except NotFound as exc:
        raise Refused(CloseCode.NOT_FOUND, exc.detail) from exc
    except Forbidden as exc:
        raise Refused(CloseCode.FORBIDDEN, exc.detail) from exc


async def read_snapshot(state: AppState, project_id: uuid.UUID, since: str | None) -> Snapshot:
    """The recent events (all those after `since` that are kept) and this minute's totals."""
    channel = live_channel(str(project_id))
    limit = HISTORY_MESSAGES if since is not None else SNAPSHOT_EVENTS
    history = await state.pubsub.history(channel, since, limit)
    events = [event for _, data in history.entries for event in orjson.loads(data)]
    if since is None:
        events = events[-SNAPSHOT_EVENTS:]
    # Every event published before the cursor is then counted in the totals, as it is when
    # rows are rolled up in the transaction that stores them.
    await state.settle()
    counters = await minute_counters(state.sessions, project_id, utcnow())
    return Snapshot(
        cursor=history.cursor, complete=history.complete, events=events, counters=counters
    )


async def minute_counters(
    sessions: async_sessionmaker[AsyncSession], project_id: uuid.UUID, now: datetime
) -> MinuteCounters:
    bucket = now.replace(second=0, microsecond=0)
    async with session_scope(sessions) as session:
        rows = await LiveRepository(session).minute_totals(project_id, bucket)
    return MinuteCounters(
        bucket=bucket,
        events=sum(row.count for row in rows),
        users=round(hll_count_union(row.users for row in rows)) if rows else 0,
        sessions=round(hll_count_union(row.sessions for row in rows)) if rows else 0,
        by_event={row.event_name: row.count for row in rows},
    )


async def serve(
    websocket: WebSocket,
    state: AppState,
    hub: LiveHub,
    project_path: str,
    token: str | None,
    since: str | None,
) -> None:
    """Run one socket from handshake to close; it never raises for what the client sent."""
    await websocket.accept()
    try:
        project_id = _project_id(project_path)
        if since is not None:
            _check_cursor(since)
        token = token or await _first_message_token(websocket)
        await authorize(state, token, project_id)
    except Refused as refusal:
        await _close(websocket, refusal)
        return
    except ClientGone:
        return
    async with hub.connect(project_id) as connection:
        snapshot = await read_snapshot(state, project_id, since)
        connection.start_after(snapshot.cursor)
        socket = LiveSocket(websocket, state, hub, connection, token)
        with contextlib.suppress(WebSocketDisconnect, ClientGone):
            await socket.send(snapshot.model_dump_json())
            await socket.run()


class LiveSocket:
    """An authenticated socket: a sender and a receiver, each ending the other when done."""

    def __init__(
        self,
        websocket: WebSocket,
        state: AppState,
        hub: LiveHub,
        connection: Connection,
        token: str,
    ) -> None:
        self.websocket = websocket
        self.state = state
        self.hub = hub
        self.connection = connection
        self.token = token
        self.reauthorize_at = time.monotonic() + REAUTHORIZE_SECONDS

    async def run(self) -> None:
        tasks = {asyncio.create_task(self._send()), asyncio.create_task(self._receive())}
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        error = next(iter(done)).exception()
        if isinstance(error, Refused):
            await _close(self.websocket, error)
        elif error is not None and not isinstance(error, ClientGone | WebSocketDisconnect):
            raise error
        # A client that stopped reading is left without a close frame: it could not read one.
        # Returning lets the server drop the socket and everything queued for it.

    async def _send(self) -> None:
        settings = self.state.settings
        connection = self.connection
        while True:
            try:
                async with asyncio.timeout(settings.live_heartbeat_seconds):
                    await connection.ready.wait()
            except TimeoutError:
                connection.push(Heartbeat(at=utcnow()).model_dump_json())
            if time.monotonic() >= self.reauthorize_at:
                await authorize(self.state, self.token, connection.project_id)
                self.reauthorize_at = time.monotonic() + REAUTHORIZE_SECONDS
            while (message := connection.next_message()) is not None:
                await self.send(message)

    async def send(self, message: str) -> None:
        try:
            async with asyncio.timeout(self.state.settings.live_send_timeout_seconds):
                await self.websocket.send_text(message)
        except TimeoutError as exc:
            raise ClientGone("the client stopped reading") from exc

    async def _receive(self) -> None:
        while True:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            raw = message.get("text")
            if raw is None:
                raw = message.get("bytes") or b""
            reply = self._handle(raw)
            if reply is not None:
                self.connection.push(reply)

    def _handle(self, raw: str | bytes) -> str | None:
        if len(raw) > MAX_CLIENT_MESSAGE_BYTES:
            limit = f"Messages are limited to {MAX_CLIENT_MESSAGE_BYTES} bytes"
            return _error("message_too_large", limit)
        try:
            message = client_message.validate_json(raw)
        except ValidationError as exc:
            return _invalid(exc)
        if isinstance(message, SubscribeMessage):
            self.hub.subscribe(self.connection, message.interval, message.numbers)
            return Subscribed(interval=message.interval, numbers=message.numbers).model_dump_json()
        if isinstance(message, AuthMessage):
            # A fresh token (after a refresh) keeps the socket past the old one's expiry.
            self.token = message.token
            self.reauthorize_at = 0.0
            self.connection.ready.set()
            return None
        assert isinstance(message, PingMessage)
        return Pong().model_dump_json()


async def _first_message_token(websocket: WebSocket) -> str:
    """Without `?token=`, the first message must be `{"type": "auth", "token": ...}`."""
    try:
        async with asyncio.timeout(AUTH_TIMEOUT_SECONDS):
            message = await websocket.receive()
    except TimeoutError as exc:
        raise Refused(CloseCode.UNAUTHENTICATED, "No auth message within 10 s") from exc
    if message["type"] == "websocket.disconnect":
        raise ClientGone()
    raw = message.get("text") or message.get("bytes") or b""
    try:
        first = client_message.validate_json(raw)
    except ValidationError as exc:
        try:
            await websocket.send_text(_invalid(exc))
        except (WebSocketDisconnect, RuntimeError) as gone:  # it sent, then went away
            raise ClientGone() from gone
        raise Refused(CloseCode.UNAUTHENTICATED, "Not authenticated") from exc
    if not isinstance(first, AuthMessage):
        raise Refused(CloseCode.UNAUTHENTICATED, "The first message must be an auth message")
    return first.token


def _check_cursor(since: str) -> None:
    try:
        cursor_order(since)
    except ValueError as exc:
        detail = "since must be a cursor from an earlier message"
        raise Refused(CloseCode.BAD_REQUEST, detail) from exc


def _project_id(path: str) -> uuid.UUID:
    try:
        return uuid.UUID(path)
    except ValueError as exc:
        raise Refused(CloseCode.POLICY_VIOLATION, "The project id is not a UUID") from exc


async def _close(websocket: WebSocket, refusal: Refused) -> None:
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        await websocket.close(refusal.code, refusal.reason[:120])


def _error(code: str, detail: str) -> str:
    return ErrorMessage(code=code, detail=detail).model_dump_json()


def _invalid(exc: ValidationError) -> str:
    problems = exc.errors(include_url=False)
    if any(problem["type"] == "json_invalid" for problem in problems):
        return _error("malformed_message", "Messages must be JSON objects")
    detail = "; ".join(
        f"{'.'.join(str(part) for part in problem['loc']) or 'message'}: {problem['msg']}"
        for problem in problems
    )
    return _error("invalid_message", detail)
