"""`WS /api/v1/ws/events/{project_id}`: a project's events and numbers as they are stored."""

import uuid

from fastapi import APIRouter, WebSocket

from pulseboard.core.state import AppState
from pulseboard.live import service

router = APIRouter(tags=["live"])


@router.websocket("/ws/events/{project_id}")
async def live_events(
    websocket: WebSocket, project_id: uuid.UUID, token: str | None = None, since: str | None = None
) -> None:
    """Live events and numbers of one project; the protocol is in docs/LIVE.md."""
    state: AppState = websocket.app.state.pulseboard
    assert state.live is not None
    await service.serve(websocket, state, state.live, project_id, token=token, since=since)
