"""Ingest: check the key, validate the batch, enrich each item, publish one bus message."""

import hashlib
import os
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

import orjson
from pydantic import ValidationError

from pulseboard.core.bus import BusUnavailable
from pulseboard.core.errors import Forbidden, NotAuthenticated, ServiceUnavailable, Unprocessable
from pulseboard.core.security import utcnow
from pulseboard.core.state import AppState
from pulseboard.ingest.body import JsonBody
from pulseboard.ingest.enrich import Agent, ip_hash, page_parts, parse_user_agent, referrer_domain
from pulseboard.ingest.schemas import (
    CheckedEventBatch,
    EventBatch,
    EventIn,
    ItemError,
    Limits,
    MetricBatch,
    MetricIn,
    as_utc,
)
from pulseboard.pipeline.messages import EVENTS, METRICS
from pulseboard.sources import service as sources_service
from pulseboard.sources.service import IngestTarget


class InvalidApiKey(NotAuthenticated):
    code = "invalid_api_key"
    detail = "The write key is missing, wrong, rotated or deleted"
    headers = None


class SourceDisabled(Forbidden):
    code = "source_disabled"
    detail = "This data source is switched off"


class OriginNotAllowed(Forbidden):
    code = "origin_not_allowed"


class InvalidBatch(Unprocessable):
    code = "invalid_items"


class IngestUnavailable(ServiceUnavailable):
    code = "ingest_unavailable"


@dataclass(frozen=True, slots=True)
class Client:
    """What the request itself tells about the sender."""

    user_agent: str | None
    ip: str | None
    origin: str | None


async def authenticate(state: AppState, key: str | None, origin: str | None) -> IngestTarget:
    if not key or "\x00" in key:  # no key holds a NUL (nor could the database look one up)
        raise InvalidApiKey()

    async def load(value: str) -> IngestTarget | None:
        async with state.sessions() as session:
            return await sources_service.resolve_write_key(session, value)

    target = await state.key_cache.resolve(key, load)
    if target is None:
        raise InvalidApiKey()
    if not target.enabled:
        raise SourceDisabled()
    if origin and target.domains and not origin_allowed(origin, target.domains):
        raise OriginNotAllowed(f"Origin {origin} is not in this project's domain allowlist")
    return target


def origin_allowed(origin: str, domains: tuple[str, ...]) -> bool:
    host = origin.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0].lower()
    for domain in domains:
        if domain.startswith("*."):
            if host == domain[2:] or host.endswith(domain[1:]):
                return True
        elif host == domain or host == f"www.{domain}":
            return True
    return False


def api_key_of(body: Any, header: str | None) -> str | None:
    if header:
        return header
    key = body.get("api_key") if isinstance(body, dict) else None
    return key if isinstance(key, str) else None


async def ingest_events(
    state: AppState, target: IngestTarget, body: JsonBody, client: Client
) -> int:
    limits = state.limits
    batch = _validate(
        CheckedEventBatch if body.has_nul else EventBatch, body.value, "events", limits
    )
    now = utcnow()
    timestamps = _timestamps([e.timestamp for e in batch.events], batch.sent_at, now, limits)
    salt = await state.salts.salt_for(now.date())
    sender = Sender.of(client, salt, str(target.project_id))
    ids = new_uuids(len(batch.events))
    rows = [
        event_row(event, timestamp, sender, generated)
        for event, timestamp, generated in zip(batch.events, timestamps, ids, strict=True)
    ]
    await publish(state, EVENTS, target, now, rows)
    return len(rows)


async def ingest_metrics(state: AppState, target: IngestTarget, body: JsonBody) -> int:
    limits = state.limits
    batch = _validate(MetricBatch, body.value, "metrics", limits)
    now = utcnow()
    timestamps = _timestamps([m.timestamp for m in batch.metrics], batch.sent_at, now, limits)
    rows = [
        _metric_row(metric, timestamp, generated)
        for metric, timestamp, generated in zip(
            batch.metrics, timestamps, new_uuids(len(batch.metrics)), strict=True
        )
    ]
    await publish(state, METRICS, target, now, rows)
    return len(rows)


Batch = TypeVar("Batch", EventBatch, MetricBatch)
SKEW_TOLERANCE = timedelta(minutes=1)
OUT_OF_RANGE = "is out of range"
OUT_OF_RANGE_SKEWED = "is out of range once moved by the sender's clock skew (sent_at)"


def _validate(model: type[Batch], body: Any, field: str, limits: Limits) -> Batch:
    items = body.get(field) if isinstance(body, dict) else None
    if isinstance(items, list):
        if not items:
            raise InvalidBatch(f"`{field}` is empty", errors=[])
        if len(items) > limits.max_batch:
            raise InvalidBatch(
                f"The batch has {len(items)} {field}; the limit is {limits.max_batch}", errors=[]
            )
    try:
        return model.model_validate(body, context={"limits": limits})
    except ValidationError as exc:
        raise _rejection(exc, field, len(items) if isinstance(items, list) else 0) from exc


def _rejection(exc: ValidationError, field: str, total: int) -> InvalidBatch:
    errors: list[ItemError] = []
    for error in exc.errors(include_url=False):
        location = error["loc"]
        if len(location) >= 2 and location[0] == field and isinstance(location[1], int):
            where = ".".join(str(part) for part in location[2:]) or "item"
            errors.append(ItemError(index=location[1], field=where, reason=error["msg"]))
        else:
            where = ".".join(str(part) for part in location) or "body"
            errors.append(ItemError(index=None, field=where, reason=error["msg"]))
    bad = len({e.index for e in errors if e.index is not None})
    detail = (
        f"{bad} of {total} {field} are invalid; nothing was stored"
        if bad
        else f"The body is not a valid {field} batch"
    )
    return InvalidBatch(detail, errors=errors)


def _timestamps(
    given: list[datetime | None], sent_at: datetime | None, now: datetime, limits: Limits
) -> list[datetime]:
    # As PostHog does: the gap between the client's clock and ours, measured by `sent_at`, moves
    # every timestamp of the batch by the same amount. A gap under a minute is network delay
    # more than a wrong clock, and is left alone: then a resend (same uuid, same timestamp,
    # a later sent_at) lands on the same stored key and counts once.
    skew = now - as_utc(sent_at) if sent_at else timedelta(0)
    if abs(skew) < SKEW_TOLERANCE:
        skew = timedelta(0)
    result: list[datetime] = []
    errors: list[ItemError] = []
    for index, moment in enumerate(given):
        try:
            corrected = as_utc(moment) + skew if moment else now
        except (ValueError, OverflowError):  # past what a datetime holds, or moved there
            reason = OUT_OF_RANGE_SKEWED if skew else OUT_OF_RANGE
            errors.append(ItemError(index=index, field="timestamp", reason=reason))
            result.append(now)
            continue
        problem = timestamp_problem(corrected, now, limits.max_age, limits.max_future)
        if problem is not None:
            errors.append(ItemError(index=index, field="timestamp", reason=problem))
        result.append(corrected)
    if errors:
        raise InvalidBatch(
            f"{len(errors)} of {len(given)} timestamps are out of range; nothing was stored",
            errors=errors,
        )
    return result


def timestamp_problem(
    moment: datetime, now: datetime, max_age: timedelta, max_future: timedelta
) -> str | None:
    """Why a UTC timestamp is out of range (the ingest API's and imports' windows), or None."""
    if moment < now - max_age:
        return f"is older than {max_age.days} days"
    if moment > now + max_future:
        return f"is more than {int(max_future.total_seconds() // 60)} minutes ahead"
    return None


@dataclass(frozen=True, slots=True)
class Sender:
    """What is the same for every event of a request: worked out once, not per event."""

    agent: Agent
    ip_hash: str | None
    anonymous_id: str

    @classmethod
    def of(cls, client: Client, salt: bytes, project: str) -> "Sender":
        # Without a distinct id, a visitor is the day's hash of address and browser (Plausible).
        material = b"\0".join(
            (salt, project.encode(), (client.ip or "").encode(), (client.user_agent or "").encode())
        )
        return cls(
            agent=parse_user_agent(client.user_agent),
            ip_hash=ip_hash(salt, project, client.ip) if client.ip else None,
            anonymous_id="anon:" + hashlib.sha256(material).hexdigest()[:32],
        )


def event_row(
    event: EventIn, timestamp: datetime, sender: Sender, generated_id: str
) -> dict[str, Any]:
    """The bus form of one validated event, with what enrichment derives from it."""
    page = page_parts(event.page_url)
    agent = sender.agent
    return {
        "id": str(event.uuid) if event.uuid else generated_id,
        "timestamp": timestamp,
        "event_name": event.event,
        "distinct_id": event.distinct_id or sender.anonymous_id,
        "session_id": event.session_id,
        "properties": event.properties,
        "page_url": event.page_url,
        "host": page.host,
        "path": page.path if event.page_url else None,
        "referrer": event.referrer,
        "referrer_domain": referrer_domain(event.referrer, page.host),
        "utm_source": page.utm_source,
        "utm_medium": page.utm_medium,
        "utm_campaign": page.utm_campaign,
        "utm_term": page.utm_term,
        "utm_content": page.utm_content,
        "browser": agent.browser,
        "os": agent.os,
        "device": agent.device,
        "is_bot": agent.is_bot,
        "ip_hash": sender.ip_hash,
    }


def new_uuids(count: int) -> list[str]:
    """Version-7 UUIDs (RFC 9562) as strings: this Unix millisecond, then 74 random bits.

    Ordered by time, so each one lands at the end of the indexes keyed by it (the event
    uuids' claim table above all) instead of on a random page of them; as PostHog's clients
    make theirs. Formatted from one buffer of random bytes: ten times cheaper than
    `str(uuid.uuid4())` each.
    """
    stamp = f"{time.time_ns() // 1_000_000:012x}"
    head = f"{stamp[:8]}-{stamp[8:]}-7"
    random = os.urandom(10 * count).hex()
    ids = []
    for start in range(0, 20 * count, 20):
        h = random[start : start + 20]
        variant = "89ab"[int(h[3], 16) & 3]
        ids.append(f"{head}{h[:3]}-{variant}{h[4:7]}-{h[7:19]}")
    return ids


def _metric_row(metric: MetricIn, timestamp: datetime, generated_id: str) -> dict[str, Any]:
    return {
        "id": generated_id,
        "timestamp": timestamp,
        "name": metric.name,
        "tags": metric.tags,
        "value": metric.value,
    }


async def publish(
    state: AppState, kind: str, target: IngestTarget, now: datetime, rows: list[dict[str, Any]]
) -> None:
    """Put one batch on the bus; 503 when the bus cannot take it (the client retries)."""
    message = {
        "kind": kind,
        "project_id": str(target.project_id),
        "source_id": str(target.source_id),
        "timezone": target.timezone,
        "received_at": now,
        "items": rows,
    }
    try:
        await state.bus.publish(orjson.dumps(message))
    except BusUnavailable as exc:
        raise IngestUnavailable(f"Ingest is unavailable: {exc}") from exc
