"""NUL characters: no field takes one, since PostgreSQL's text and jsonb cannot hold it.

`RejectNulMiddleware` refuses, with a 422, a request that carries one in its URL or in a JSON or
form body, before any route reads it; so every route answers the same way in both storage modes
instead of storing the value in SQLite and failing in PostgreSQL. Ingest bodies (gzip, and a
422 that names each bad item) and file uploads are checked item by item where they are read.
"""

from typing import TypeVar

import orjson
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REASON = "holds a NUL character, which cannot be stored"
_Text = TypeVar("_Text", str, str | None)
_ESCAPE = b"\\u0000"
_BACKSLASH = ord("\\")
JSON, FORM = "application/json", "application/x-www-form-urlencoded"


def has_escaped_nul(json_text: bytes) -> bool:
    """Whether JSON text holds a NUL character, written `\\u0000` (JSON allows no raw one).

    An escape counts when an odd number of backslashes leads to it: `"\\\\u0000"` is a backslash
    followed by the text u0000, not a NUL.
    """
    # A backslash first: JSON escapes are rare, `\u0000` rarer, and an int `in` bytes is one
    # memchr (16 ns, where finding `\u0000` takes 140).
    if _BACKSLASH not in json_text:
        return False
    start = json_text.find(_ESCAPE)
    while start != -1:
        backslashes = 1
        while start - backslashes >= 0 and json_text[start - backslashes] == _BACKSLASH:
            backslashes += 1
        if backslashes % 2 == 1:
            return True
        start = json_text.find(_ESCAPE, start + 1)
    return False


def storable(text: str) -> bool:
    """Whether text can be stored and compared: no NUL, and no lone surrogate (no UTF-8 spells
    one; Python's JSON reads "\\ud800" all the same, orjson does not)."""
    if "\x00" in text:
        return False
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def check_text(value: _Text) -> _Text:
    """A pydantic validator for one string field (or an optional one)."""
    if value is not None and "\x00" in value:
        raise ValueError(REASON)
    return value


class RejectNulMiddleware:
    def __init__(self, app: ASGIApp, item_checked: tuple[str, ...]) -> None:
        self.app = app
        # Paths whose bodies are checked item by item (their 422 says which item).
        self.item_checked = item_checked

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query: bytes = scope["query_string"]
        if "\x00" in scope["path"] or b"%00" in query or b"\x00" in query:
            await _refuse(send, f"The URL {REASON} (%00)")
            return
        if scope["method"] in ("GET", "HEAD", "OPTIONS") or (
            scope["path"].rstrip("/") in self.item_checked
        ):
            await self.app(scope, receive, send)
            return
        content_type = Headers(scope=scope).get("content-type", "").split(";")[0].strip().lower()
        if content_type not in (JSON, FORM):
            await self.app(scope, receive, send)
            return
        # These bodies are small, and read whole by the route anyway: read here, then replayed.
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                await self.app(scope, _replay([message], receive), send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if (b"%00" in body or b"\x00" in body) if content_type == FORM else has_escaped_nul(body):
            await _refuse(send, f"The body {REASON}")
            return
        request: Message = {"type": "http.request", "body": body, "more_body": False}
        await self.app(scope, _replay([request], receive), send)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """A receive that gives back what was read, then reads on."""
    pending = list(messages)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed


async def _refuse(send: Send, detail: str) -> None:
    body = orjson.dumps({"detail": detail, "code": "invalid_characters"})
    await send(
        {
            "type": "http.response.start",
            "status": 422,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
