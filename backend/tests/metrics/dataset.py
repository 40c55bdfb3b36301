"""A known set of metric samples, sent through the ingest API, and the exact answers to expect."""

import math
import random
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.factories import Actor, ingest

LATENCY = "api.latency_ms"
ROUTES = ["/a", "/b", "/c"]
STATUSES = [200, 500]


@dataclass(frozen=True)
class Sample:
    name: str
    timestamp: datetime
    value: float
    tags: dict[str, Any]

    def json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.value,
            "timestamp": self.timestamp.isoformat(),
            "tags": self.tags,
        }


@dataclass
class Samples:
    day: datetime  # the UTC midnight the samples fall on
    items: list[Sample] = field(default_factory=list)

    @property
    def end(self) -> datetime:
        return self.day + timedelta(days=1)

    def body(self, **extra: Any) -> dict[str, Any]:
        return {
            "metric_name": LATENCY,
            "time_range": {"start": self.day.isoformat(), "end": self.end.isoformat()},
            **extra,
        }


def recent_day() -> datetime:
    """A whole UTC day two days ago: inside the ingest window and every rollup's retention."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=2)


def latency_samples(day: datetime, count: int, seed: int = 7) -> list[Sample]:
    rng = random.Random(seed)
    samples = []
    for _ in range(count):
        moment = day + timedelta(seconds=rng.randrange(86400), microseconds=rng.randrange(10**6))
        tags: dict[str, Any] = {"route": rng.choice(ROUTES), "status": rng.choice(STATUSES)}
        if rng.random() < 0.2:
            tags["canary"] = True
        samples.append(Sample(LATENCY, moment, round(rng.lognormvariate(3, 1), 3), tags))
    return samples


async def send(client: httpx.AsyncClient, key: str, samples: Iterable[Sample]) -> None:
    items = [sample.json() for sample in samples]
    for start in range(0, len(items), 1000):
        response = await ingest(
            client, key, items[start : start + 1000], path="/api/v1/metrics", field="metrics"
        )
        assert response.status_code == 202, response.text


def exact_quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


AGGREGATE: dict[str, Callable[[list[float]], float | None]] = {
    "count": len,
    "sum": sum,
    "avg": lambda v: sum(v) / len(v) if v else None,
    "min": lambda v: min(v) if v else None,
    "max": lambda v: max(v) if v else None,
    "p50": lambda v: exact_quantile(v, 0.5),
    "p95": lambda v: exact_quantile(v, 0.95),
    "p99": lambda v: exact_quantile(v, 0.99),
}


def bucketed(
    samples: Iterable[Sample],
    spans: list[tuple[datetime, datetime]],
    group: Callable[[Sample], Any] = lambda _: (),
) -> dict[Any, list[list[float]]]:
    """Each group's values per span."""
    found: dict[Any, list[list[float]]] = defaultdict(lambda: [[] for _ in spans])
    for sample in samples:
        for index, (start, end) in enumerate(spans):
            if start <= sample.timestamp < end:
                found[group(sample)][index].append(sample.value)
    return dict(found)


def hours(day: datetime) -> list[tuple[datetime, datetime]]:
    return [(day + timedelta(hours=h), day + timedelta(hours=h + 1)) for h in range(24)]


async def query(
    client: httpx.AsyncClient, actor: Actor, project: dict[str, Any], body: dict[str, Any]
) -> httpx.Response:
    return await client.post(
        "/api/v1/metrics/query",
        params={"project_id": project["id"]},
        json=body,
        headers=actor.headers,
    )


async def answer(
    client: httpx.AsyncClient, actor: Actor, project: dict[str, Any], body: dict[str, Any]
) -> dict[str, Any]:
    response = await query(client, actor, project, body)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def values_of(body: dict[str, Any], **tags: Any) -> list[float | None]:
    """The values of the series with exactly these tags, in time order."""
    return [point["value"] for point in body["data"] if point["tags"] == tags]


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
