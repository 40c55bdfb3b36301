"""What the worker tells live dashboards after a commit: the new events and points, per project.

Events go in messages of at most `EVENTS_PER_MESSAGE`, each kept in the channel's history
first (which gives it its cursor) and then published with that cursor, so that a client that
saw a cursor can always resume from it. Metric points feed live numbers only; no history.
"""

from typing import Any

import orjson

from pulseboard.core.pubsub import PubSub, live_channel
from pulseboard.pipeline.store import Stored

LIVE_FIELDS = (
    "id",
    "timestamp",
    "event_name",
    "distinct_id",
    "session_id",
    "path",
    "referrer_domain",
    "browser",
    "os",
    "device",
    "is_bot",
)
EVENTS_PER_MESSAGE = 100


def events_message(cursor: str, data: bytes) -> bytes:
    """The channel message for a history entry: its cursor and its events (a JSON array)."""
    return orjson.dumps({"type": "events", "cursor": cursor, "data": orjson.Fragment(data)})


class LivePublisher:
    def __init__(self, pubsub: PubSub) -> None:
        self.pubsub = pubsub

    async def __call__(self, stored: Stored) -> None:
        for project_id, rows in stored.events.items():
            channel = live_channel(str(project_id))
            chunks = [
                orjson.dumps([_live_event(row) for row in rows[i : i + EVENTS_PER_MESSAGE]])
                for i in range(0, len(rows), EVENTS_PER_MESSAGE)
            ]
            # Kept even when nobody listens now: a client reconnecting with `since` reads it.
            cursors = await self.pubsub.append(channel, chunks)
            if self.pubsub.listened(channel):
                for cursor, chunk in zip(cursors, chunks, strict=True):
                    await self.pubsub.publish(channel, events_message(cursor, chunk))
        for project_id, rows in stored.metrics.items():
            channel = live_channel(str(project_id))
            if not self.pubsub.listened(channel):
                continue
            points = [
                {
                    "timestamp": row["timestamp"],
                    "name": row["name"],
                    "value": row["value"],
                    "tags": row["tags"],
                }
                for row in rows
            ]
            message = {"type": "metrics", "data": points}
            await self.pubsub.publish(channel, orjson.dumps(message))


def _live_event(row: dict[str, Any]) -> dict[str, Any]:
    return {name: row.get(name) for name in LIVE_FIELDS}
