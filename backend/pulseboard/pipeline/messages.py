"""The bus message: one request's batch, as the API publishes it and the worker reads it."""

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

EVENTS = "events"
METRICS = "metrics"


@dataclass(frozen=True, slots=True)
class Batch:
    kind: str
    project_id: uuid.UUID
    source_id: uuid.UUID
    timezone: str
    received_at: datetime
    items: list[dict[str, Any]]


class MalformedMessage(ValueError):
    """A payload the worker cannot read; it goes to the dead-letter stream, not back in line."""


def decode(payload: bytes) -> Batch:
    try:
        message = orjson.loads(payload)
        kind = message["kind"]
        if kind not in (EVENTS, METRICS):
            raise ValueError(f"unknown kind {kind!r}")
        items = message["items"]
        for item in items:
            item["id"] = uuid.UUID(item["id"])
            item["timestamp"] = datetime.fromisoformat(item["timestamp"])
            # Hex on the bus (JSON has no bytes), stored as its 32 bytes.
            digest = item.get("ip_hash")
            if digest is not None:
                item["ip_hash"] = bytes.fromhex(digest)
        return Batch(
            kind=kind,
            project_id=uuid.UUID(message["project_id"]),
            source_id=uuid.UUID(message["source_id"]),
            timezone=message.get("timezone") or "UTC",
            received_at=datetime.fromisoformat(message["received_at"]),
            items=items,
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise MalformedMessage(f"unreadable bus message: {exc}") from exc


def canonical_tags(tags: dict[str, Any]) -> str:
    """One spelling per tag set: sorted keys, compact JSON."""
    return orjson.dumps(tags, option=orjson.OPT_SORT_KEYS).decode()
