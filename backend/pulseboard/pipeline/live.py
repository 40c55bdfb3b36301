"""What the worker tells live dashboards after a commit: the new events, per project."""

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


class LivePublisher:
    def __init__(self, pubsub: PubSub) -> None:
        self.pubsub = pubsub

    async def __call__(self, stored: Stored) -> None:
        for project_id, rows in stored.events.items():
            if not self.pubsub.listened(live_channel(str(project_id))):
                continue
            events = [{name: row.get(name) for name in LIVE_FIELDS} for row in rows]
            message = {"type": "events", "project_id": project_id, "data": events}
            await self.pubsub.publish(live_channel(str(project_id)), orjson.dumps(message))
        for project_id, rows in stored.metrics.items():
            if not self.pubsub.listened(live_channel(str(project_id))):
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
            message = {"type": "metrics", "project_id": project_id, "data": points}
            await self.pubsub.publish(live_channel(str(project_id)), orjson.dumps(message))
