"""Building bus messages the way the ingest API does, for tests that drive the worker directly."""

import uuid
from datetime import UTC, datetime
from typing import Any

import orjson

from pulseboard.pipeline.messages import EVENTS, METRICS, Batch, decode


def event_item(
    timestamp: datetime,
    *,
    name: str = "pageview",
    user: str = "u1",
    session: str | None = "s1",
    path: str | None = "/",
    browser: str = "Firefox",
    is_bot: bool = False,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "timestamp": timestamp,
        "event_name": name,
        "distinct_id": user,
        "session_id": session,
        "properties": {},
        "page_url": None if path is None else f"https://example.com{path}",
        "host": "example.com",
        "path": path,
        "referrer": None,
        "referrer_domain": extra.pop("referrer_domain", None),
        "utm_source": extra.pop("utm_source", None),
        "utm_medium": None,
        "utm_campaign": None,
        "utm_term": None,
        "utm_content": None,
        "browser": browser,
        "os": extra.pop("os", "Linux"),
        "device": extra.pop("device", "desktop"),
        "is_bot": is_bot,
        "ip_hash": None,
        **extra,
    }


def metric_item(timestamp: datetime, name: str, value: float, **tags: Any) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "timestamp": timestamp,
        "name": name,
        "value": value,
        "tags": tags,
    }


def message(
    project_id: uuid.UUID,
    source_id: uuid.UUID,
    items: list[dict[str, Any]],
    *,
    kind: str = EVENTS,
    timezone: str = "UTC",
) -> bytes:
    assert kind in (EVENTS, METRICS)
    return orjson.dumps(
        {
            "kind": kind,
            "project_id": str(project_id),
            "source_id": str(source_id),
            "timezone": timezone,
            "received_at": datetime.now(UTC),
            "items": items,
        }
    )


def batch(*args: Any, **kwargs: Any) -> Batch:
    return decode(message(*args, **kwargs))
