from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, status

from pulseboard.core.deps import StateDep
from pulseboard.core.state import AppState
from pulseboard.ingest import service
from pulseboard.ingest.body import JsonBody, read_json
from pulseboard.ingest.enrich import client_ip
from pulseboard.ingest.schemas import Accepted, BatchRejected
from pulseboard.sources.service import IngestTarget

router = APIRouter(tags=["ingest"])

RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "The body is not UTF-8 JSON, or not valid gzip"},
    401: {"description": "The write key is missing, wrong or rotated"},
    403: {"description": "The source is switched off, or the Origin is not allowed"},
    413: {"description": "The body (or its gzip content) is over the size limit"},
    415: {"description": "Neither JSON nor text/plain, or an unknown Content-Encoding"},
    422: {"model": BatchRejected, "description": "Some items are invalid: nothing was stored"},
    503: {"description": "Ingest cannot take the batch now; retry"},
}

ApiKeyHeader = Annotated[str | None, Header(alias="X-API-Key")]


def _client(request: Request, trust_proxy: bool) -> service.Client:
    peer = request.client.host if request.client else None
    return service.Client(
        user_agent=request.headers.get("user-agent"),
        ip=client_ip(request.headers, peer, trust_proxy),
        origin=request.headers.get("origin"),
    )


async def _open(
    request: Request, state: AppState, api_key: str | None, origin: str | None
) -> tuple[JsonBody, IngestTarget]:
    """The body (size-capped, decoded) and the source its write key opens."""
    body = await read_json(request, state.settings.ingest_max_body_bytes)
    target = await service.authenticate(state, service.api_key_of(body.value, api_key), origin)
    return body, target


@router.post(
    "/events/ingest",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    responses=RESPONSES,
)
async def ingest_events(
    request: Request, state: StateDep, api_key: ApiKeyHeader = None
) -> Accepted:
    """Take a batch of events. 202 means stored durably: it will be counted, once.

    The key goes in `X-API-Key`, or as `api_key` in the body for `navigator.sendBeacon`, which
    sends `text/plain`. A batch with any invalid event is refused whole (422, each bad index
    with the reason).
    """
    client = _client(request, state.settings.trust_proxy)
    body, target = await _open(request, state, api_key, client.origin)
    return Accepted(accepted=await service.ingest_events(state, target, body, client))


@router.post(
    "/metrics",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    responses=RESPONSES,
)
async def ingest_metrics(
    request: Request, state: StateDep, api_key: ApiKeyHeader = None
) -> Accepted:
    """Take a batch of metric samples (`name`, `value`, optional `timestamp` and `tags`)."""
    body, target = await _open(request, state, api_key, request.headers.get("origin"))
    return Accepted(accepted=await service.ingest_metrics(state, target, body))
