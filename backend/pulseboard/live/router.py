"""`WS /api/v1/ws/events/{project_id}`: a project's events and numbers as they are stored."""

from fastapi import APIRouter, WebSocket

from pulseboard.core.state import AppState
from pulseboard.live import service

router = APIRouter(tags=["live"])


@router.websocket("/ws/events/{project_id}")
async def live_events(
    websocket: WebSocket, project_id: str, token: str | None = None, since: str | None = None
) -> None:
    """Live events and numbers of one project; the protocol is in docs/LIVE.md."""
    # A str, not a UUID: FastAPI would refuse a bad id before the handshake (an HTTP 403, which
    # a browser reports as 1006); the service accepts and closes with 1008 and the reason.
    state: AppState = websocket.app.state.pulseboard
    assert state.live is not None
    await service.serve(websocket, state, state.live, project_id, token=token, since=since)
