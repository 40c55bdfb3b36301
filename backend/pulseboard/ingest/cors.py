"""CORS for the ingest endpoints only: any origin may send (the write key and the project's
domain allowlist decide), while the rest of the API keeps the configured origins."""

from collections.abc import Sequence

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ALLOW_HEADERS = "content-type, content-encoding, x-api-key"
# Where events and metric samples are sent (POST); GET /api/v1/metrics lists metrics.
INGEST_PATHS = ("/api/v1/events/ingest", "/api/v1/metrics")


class IngestCORSMiddleware:
    def __init__(self, app: ASGIApp, paths: Sequence[str]) -> None:
        self.app = app
        self.paths = tuple(paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].rstrip("/") not in self.paths:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        # Only sending is open to every origin; reads on the same path (GET /api/v1/metrics)
        # keep the API's own CORS rules.
        method = scope["method"]
        if method == "OPTIONS":
            method = headers.get("access-control-request-method", "POST").upper()
        if method != "POST":
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS":
            await self._preflight(origin, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start" and origin:
                headers = MutableHeaders(scope=message)
                headers["access-control-allow-origin"] = origin
                headers.add_vary_header("Origin")
            await send(message)

        await self.app(scope, receive, send_with_cors)

    async def _preflight(self, origin: str | None, send: Send) -> None:
        headers = [
            (b"access-control-allow-methods", b"POST, OPTIONS"),
            (b"access-control-allow-headers", ALLOW_HEADERS.encode()),
            (b"access-control-max-age", b"86400"),
            (b"vary", b"Origin"),
        ]
        if origin:
            headers.append((b"access-control-allow-origin", origin.encode("latin-1")))
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
