"""Load test of the ingest API with Locust, for those who use it (the benchmark is bench/ingest.py).

Each simulated browser posts batches of events to `POST /api/v1/events/ingest`, and now and then
a server posts a batch of metric points to `POST /api/v1/metrics`, both with a project's write key.
Locust is not one of Pulseboard's dependencies: install it where you run it.

    pip install locust
    PULSEBOARD_WRITE_KEY=pb_... locust -f bench/locustfile.py --host http://127.0.0.1:8000

Settings (environment): PULSEBOARD_WRITE_KEY (required: the key of a project's data source, shown
in the project's settings or returned when the project is created), PULSEBOARD_BATCH (events per
request, 100 unless set; at most the server's batch limit).
"""

import os
import random
import uuid
from typing import Any

from locust import FastHttpUser, between, events, task

BATCH = int(os.environ.get("PULSEBOARD_BATCH", "100"))
EVENT_NAMES = ["pageview"] * 8 + ["click", "signup"]
REFERRERS = ["", "https://www.google.com/", "https://news.ycombinator.com/"]
CAMPAIGNS = ["", "", "?utm_source=newsletter", "?utm_source=twitter"]
ROUTES = ["/", "/pricing", "/checkout", "/search"]


@events.init.add_listener
def _require_key(environment: Any, **_: Any) -> None:
    if not os.environ.get("PULSEBOARD_WRITE_KEY"):
        raise SystemExit("set PULSEBOARD_WRITE_KEY to a project's write key")


class Browser(FastHttpUser):
    """A visitor whose tracker flushes a batch of pageviews and clicks every half second or so."""

    wait_time = between(0.2, 0.8)
    weight = 9

    def on_start(self) -> None:
        self.distinct_id = f"user-{uuid.uuid4().hex[:12]}"
        self.session_id = f"session-{uuid.uuid4().hex[:12]}"

    @task
    def send_batch(self) -> None:
        batch = [self._event() for _ in range(BATCH)]
        _post(self, "/api/v1/events/ingest", {"events": batch}, "events/ingest")

    def _event(self) -> dict[str, Any]:
        return {
            "event": random.choice(EVENT_NAMES),
            "distinct_id": self.distinct_id,
            "session_id": self.session_id,
            "page_url": f"https://shop.example.com/p/{random.randrange(200)}"
            + random.choice(CAMPAIGNS),
            "referrer": random.choice(REFERRERS),
            "properties": {"plan": random.choice(["free", "pro"]), "value": random.randrange(100)},
        }


class Server(FastHttpUser):
    """A service reporting request latencies, per route, every second or so."""

    wait_time = between(0.5, 1.5)
    weight = 1

    @task
    def send_metrics(self) -> None:
        points = [
            {
                "name": "http.request.duration_ms",
                "value": random.lognormvariate(3.5, 0.6),
                "tags": {"route": random.choice(ROUTES), "status": "200"},
            }
            for _ in range(BATCH)
        ]
        _post(self, "/api/v1/metrics", {"metrics": points}, "metrics")


def _post(user: FastHttpUser, path: str, body: dict[str, Any], name: str) -> None:
    """Post with the write key; anything but a 202 counts as a failure, with its reason."""
    headers = {"X-API-Key": os.environ["PULSEBOARD_WRITE_KEY"]}
    with user.client.post(
        path, json=body, headers=headers, name=name, catch_response=True
    ) as response:
        if response.status_code != 202:
            response.failure(f"{response.status_code}: {response.text[:200]}")
