"""Reading an ingest body: size-capped, gzip-aware, UTF-8 JSON, each failure a clear 4xx."""

import zlib
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import Request, status

from pulseboard.core.errors import PulseboardError
from pulseboard.core.nul import has_escaped_nul

ACCEPTED_TYPES = ("application/json", "text/plain", "")


class PayloadTooLarge(PulseboardError):
    status_code = status.HTTP_413_CONTENT_TOO_LARGE
    code = "payload_too_large"


class UnsupportedMediaType(PulseboardError):
    status_code = status.HTTP_415_UNSUPPORTED_MEDIA_TYPE
    code = "unsupported_media_type"


class MalformedBody(PulseboardError):
    status_code = status.HTTP_400_BAD_REQUEST
    code = "malformed_body"


@dataclass(frozen=True, slots=True)
class JsonBody:
    value: Any
    # Whether the JSON text holds a NUL (`\u0000`): only then are the items' texts checked.
    has_nul: bool


async def read_json(request: Request, limit: int) -> JsonBody:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in ACCEPTED_TYPES:
        raise UnsupportedMediaType(
            f"Content-Type {content_type!r} is not accepted; send application/json or text/plain"
        )
    too_large = PayloadTooLarge(f"The body is over the limit of {limit} bytes")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    body = b"".join(chunks)

    encoding = request.headers.get("content-encoding", "").strip().lower()
    if encoding == "gzip":
        body = _gunzip(body, limit, too_large)
    elif encoding not in ("", "identity"):
        raise UnsupportedMediaType(f"Content-Encoding {encoding!r} is not accepted; use gzip")

    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedBody(f"The body is not valid UTF-8 (byte {exc.start})") from exc
    try:
        return JsonBody(orjson.loads(body), has_escaped_nul(body))
    except orjson.JSONDecodeError as exc:
        raise MalformedBody(f"The body is not valid JSON: {exc}") from exc


def _gunzip(body: bytes, limit: int, too_large: PayloadTooLarge) -> bytes:
    # Decompressed size is capped too: a small gzip bomb must not expand in memory.
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise MalformedBody(f"The body is not valid gzip: {exc}") from exc
    if len(data) > limit or inflater.unconsumed_tail:
        raise too_large
    if not inflater.eof:
        raise MalformedBody("The gzip body is truncated")
    return data
