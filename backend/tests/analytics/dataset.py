"""A known set of events, ingested through the API, and the exact answers computed from it."""

import random
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.factories import ingest

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)
BOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
PATHS = ["/", "/pricing", "/blog/launch", "/docs", "/signup"]
SOURCES = [None, "newsletter", "twitter"]
REFERRERS = [None, "https://news.ycombinator.com/item?id=1", "https://www.google.com/"]


@dataclass
class Sent:
    """One stored event as the queries should see it."""

    timestamp: datetime
    event: str
    user: str
    session: str
    path: str
    browser: str
    utm_source: str | None
    referrer: str | None
    plan: str | None
    amount: float | None
    is_bot: bool = False

    def value(self, name: str) -> Any:
        return {
            "event": self.event,
            "path": self.path,
            "browser": self.browser,
            "utm_source": self.utm_source,
            "referrer": self.referrer,
            "properties.plan": self.plan,
            "plan": self.plan,
        }[name]


@dataclass
class Dataset:
    start: datetime
    end: datetime
    events: list[Sent] = field(default_factory=list)

    def counted(self, start: datetime | None = None, end: datetime | None = None) -> list[Sent]:
        start, end = start or self.start, end or self.end
        return [e for e in self.events if not e.is_bot and start <= e.timestamp < end]

    def params(self, **extra: Any) -> dict[str, Any]:
        return {"from": self.start.isoformat(), "to": self.end.isoformat(), **extra}

    def sessions_started(
        self, start: datetime | None = None, end: datetime | None = None
    ) -> dict[str, list[Sent]]:
        """Each session whose first event falls in the range, with all of its events."""
        start, end = start or self.start, end or self.end
        every = grouped((e for e in self.events if not e.is_bot), lambda e: e.session)
        return {
            session: events
            for session, events in every.items()
            if start <= min(e.timestamp for e in events) < end
        }


def totals(events: Iterable[Sent]) -> dict[str, int]:
    events = list(events)
    return {
        "count": len(events),
        "unique_users": len({e.user for e in events}),
        "unique_sessions": len({e.session for e in events}),
    }


def grouped(events: Iterable[Sent], key: Callable[[Sent], Any]) -> dict[Any, list[Sent]]:
    groups: dict[Any, list[Sent]] = defaultdict(list)
    for event in events:
        groups[key(event)].append(event)
    return groups


def hour_of(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


async def ingest_dataset(
    client: httpx.AsyncClient, write_key: str, *, seed: int = 7, size: int = 240
) -> Dataset:
    """Events over the last five hours (and a few six hours back), in three batches by browser."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    end = hour_of(now) + timedelta(hours=1)
    dataset = Dataset(start=end - timedelta(hours=6), end=end)
    batches: dict[str, list[dict[str, Any]]] = {FIREFOX: [], CHROME: [], BOT: []}
    for index in range(size):
        agent = FIREFOX if index % 3 else CHROME
        if index % 40 == 0:
            agent = BOT
        # Some before the range: they must count in the previous period only.
        back = rng.uniform(6.2, 6.8) * 3600 if index % 25 == 0 else rng.uniform(60, 5.5 * 3600)
        moment = (now - timedelta(seconds=back)).replace(microsecond=0)
        user = f"user-{rng.randrange(30)}"
        session = f"{user}-s{rng.randrange(3)}"
        event = rng.choice(["pageview", "pageview", "pageview", "signup", "purchase"])
        path = rng.choice(PATHS)
        source = rng.choice(SOURCES)
        referrer = rng.choice(REFERRERS)
        plan = rng.choice([None, "free", "pro"])
        amount = round(rng.uniform(5, 100), 2) if event == "purchase" else None
        properties: dict[str, Any] = {}
        if plan is not None:
            properties["plan"] = plan
        if amount is not None:
            properties["amount"] = amount
        url = f"https://shop.example.com{path}" + (f"?utm_source={source}" if source else "")
        batches[agent].append(
            {
                "event": event,
                "distinct_id": user,
                "session_id": session,
                "page_url": url,
                "referrer": referrer,
                "timestamp": moment.isoformat(),
                "uuid": str(uuid.uuid4()),
                "properties": properties,
            }
        )
        dataset.events.append(
            Sent(
                timestamp=moment,
                event=event,
                user=user,
                session=session,
                path=path,
                browser="Chrome" if agent == CHROME else "Firefox",
                utm_source=source,
                referrer={None: None, REFERRERS[1]: "news.ycombinator.com"}.get(
                    referrer, "google.com"
                ),
                plan=plan,
                amount=amount,
                is_bot=agent == BOT,
            )
        )
    for agent, events in batches.items():
        response = await ingest(client, write_key, events, headers={"User-Agent": agent})
        assert response.status_code == 202, response.text
    return dataset


def exact_top(events: list[Sent], name: str) -> Counter[Any]:
    return Counter(e.value(name) for e in events if e.value(name) is not None)
