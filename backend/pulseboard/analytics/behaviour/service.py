"""Behaviour answers from raw events, cached like every analytics answer by the days they read."""

import base64
import binascii
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing
from datetime import UTC, datetime
from itertools import groupby
from operator import itemgetter
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from pulseboard.analytics.behaviour.funnels import FunnelCounter, Step
from pulseboard.analytics.behaviour.paths import Direction, Kind, PathTree
from pulseboard.analytics.behaviour.repository import BehaviourRepository, Selection, UserQuery
from pulseboard.analytics.behaviour.retention import RetentionCounter
from pulseboard.analytics.service import Analytics, Scope
from pulseboard.analytics.service import range_json as _range
from pulseboard.analytics.timerange import Interval, InvalidQuery, buckets
from pulseboard.core.errors import NotFound, Unprocessable

# Funnels, retention and paths read at most this many raw rows; past it the query is refused.
MAX_ROWS = 2_000_000
_NOTHING = object()  # the key before the first row


class QueryTooLarge(Unprocessable):
    code = "query_too_large"
    detail = "The query reads too many events"


class UserNotFound(NotFound):
    code = "user_not_found"
    detail = "No event of this user in the range"


class Behaviour:
    def __init__(self, analytics: Analytics, session: AsyncSession) -> None:
        self.analytics = analytics
        self.repository = BehaviourRepository(session)

    def selection(self, scope: Scope) -> Selection:
        return Selection(self.analytics.project.id, scope.time_range, scope.filters)

    async def events(self, scope: Scope, *, limit: int, cursor: str | None) -> dict[str, Any]:
        """A page of raw events, newest first."""
        after = _event_key(cursor)

        async def compute() -> dict[str, Any]:
            return await self._event_page(scope, limit, after)

        params = {"limit": limit, "cursor": cursor}
        page: dict[str, Any] = await self.analytics.cached("b.events", scope, params, compute)
        return page

    async def _event_page(
        self,
        scope: Scope,
        limit: int,
        after: tuple[datetime, uuid.UUID] | None,
        distinct_id: str | None = None,
    ) -> dict[str, Any]:
        rows = await self.repository.events(self.selection(scope), limit + 1, after, distinct_id)
        # asyncpg's own UUID type is not one the cache's JSON encoder knows.
        page = [{**row._asdict(), "id": str(row.id)} for row in rows[:limit]]
        last = page[-1] if len(rows) > limit else None
        return {
            "range": _range(scope.time_range),
            "events": page,
            "next_cursor": _cursor(last["timestamp"], last["id"]) if last else None,
        }

    async def users(
        self,
        scope: Scope,
        *,
        limit: int,
        cursor: str | None,
        search: str | None,
        include_anonymous: bool,
    ) -> dict[str, Any]:
        """A page of users, the most recently seen first, with how many match in all."""
        after = _cursor_key(cursor)
        query = UserQuery(search=search or None, include_anonymous=include_anonymous)

        async def compute() -> dict[str, Any]:
            selection = self.selection(scope)
            rows = await self.repository.users(selection, query, limit + 1, after)
            users = [row._asdict() for row in rows[:limit]]
            last = users[-1] if len(rows) > limit else None
            return {
                "range": _range(scope.time_range),
                "total": await self.repository.count_users(selection, query),
                "users": users,
                "next_cursor": _cursor(last["last_seen"], last["distinct_id"]) if last else None,
            }

        params = {
            "limit": limit,
            "cursor": cursor,
            "search": query.search,
            "anonymous": include_anonymous,
        }
        page: dict[str, Any] = await self.analytics.cached("b.users", scope, params, compute)
        return page

    async def timeline(
        self, scope: Scope, distinct_id: str, *, limit: int, cursor: str | None
    ) -> dict[str, Any]:
        """One user's totals over the range and a page of their events, newest first."""
        after = _event_key(cursor)

        async def compute() -> dict[str, Any]:
            query = UserQuery(include_anonymous=True, distinct_id=distinct_id)
            found = await self.repository.users(self.selection(scope), query, 1)
            if not found:
                raise UserNotFound()
            page = await self._event_page(scope, limit, after, distinct_id)
            return {**page, "user": found[0]._asdict()}

        params = {"user": distinct_id, "limit": limit, "cursor": cursor}
        page: dict[str, Any] = await self.analytics.cached("b.timeline", scope, params, compute)
        return page

    async def funnel(self, scope: Scope, steps: Sequence[Step], window: int) -> dict[str, Any]:
        """Users at each step, conversions and the median time between steps."""

        async def compute() -> dict[str, Any]:
            counter = FunnelCounter(steps, window)
            rows = self.repository.funnel_rows(
                self.selection(scope), [(step.event, step.path) for step in steps]
            )
            async for users in _per_key(rows):
                for user in users:
                    # Unpacked, not read by name: a Row's attribute lookup costs more than the
                    # funnel.
                    counter.add_user([(moment, event, path) for _, moment, event, path in user])
            return {"range": _range(scope.time_range), "window": window, "steps": counter.result()}

        params = {"steps": [[s.event, s.path] for s in steps], "window": window}
        answer: dict[str, Any] = await self.analytics.cached("b.funnel", scope, params, compute)
        return answer

    async def retention(
        self,
        scope: Scope,
        *,
        start_event: str,
        return_event: str,
        period: Interval,
        periods: int,
    ) -> dict[str, Any]:
        """The cohort grid: per local day or week, its size and who came back after."""
        spans = buckets(scope.time_range, period)

        async def compute() -> dict[str, Any]:
            counter = RetentionCounter(spans, periods, start_event, return_event)
            rows = self.repository.retention_rows(
                self.selection(scope), sorted({start_event, return_event})
            )
            async for users in _per_key(rows):
                for user in users:
                    counter.add_user([(moment, event) for _, moment, event in user])
            return {
                "range": _range(scope.time_range),
                "start_event": start_event,
                "return_event": return_event,
                "period": period.value,
                "periods": periods,
                "cohorts": counter.result(),
            }

        params = {"start": start_event, "return": return_event, "period": period, "n": periods}
        answer: dict[str, Any] = await self.analytics.cached("b.retention", scope, params, compute)
        return answer

    async def paths(
        self,
        scope: Scope,
        *,
        start: str,
        direction: Direction,
        kind: Kind,
        steps: int,
        limit: int,
    ) -> dict[str, Any]:
        """The most common journeys from (or to) `start` within sessions, as a tree."""

        async def compute() -> dict[str, Any]:
            tree = PathTree(start, direction, steps)
            rows = self.repository.session_items(self.selection(scope), pages=kind is Kind.PATH)
            async for sessions in _per_key(rows):
                for session in sessions:
                    tree.add_session([item for _, item in session])
            return {
                "range": _range(scope.time_range),
                "kind": kind.value,
                "direction": direction.value,
                "steps": steps,
                "root": tree.tree(limit),
            }

        params = {"start": start, "direction": direction, "kind": kind, "n": steps, "l": limit}
        answer: dict[str, Any] = await self.analytics.cached("b.paths", scope, params, compute)
        return answer


async def _per_key(chunks: AsyncIterator[Sequence[Any]]) -> AsyncIterator[list[list[Any]]]:
    """The rows of each user or session (their first column, which they arrive ordered by)
    together, refusing more than MAX_ROWS. Groups come a chunk's worth at a time: one await per
    chunk rather than per user, and `groupby` splits the chunk in C."""
    pending: list[Any] = []
    current: Any = _NOTHING
    seen = 0
    async with aclosing(chunks):  # type: ignore[type-var]
        async for chunk in chunks:
            seen += len(chunk)
            if seen > MAX_ROWS:
                raise QueryTooLarge(
                    f"The query reads more than {MAX_ROWS:,} events; "
                    "choose a shorter range or add filters"
                )
            done: list[list[Any]] = []
            for key, rows in groupby(chunk, itemgetter(0)):
                if key == current:
                    pending.extend(rows)  # a group that began in the chunk before
                    continue
                if pending:
                    done.append(pending)
                pending, current = list(rows), key
            if done:
                yield done
    if pending:
        yield [pending]


def _cursor(moment: datetime, tie: str) -> str:
    """An opaque page cursor: the sort key of the last row shown."""
    return base64.urlsafe_b64encode(orjson.dumps([moment.isoformat(), tie])).decode().rstrip("=")


def _cursor_key(cursor: str | None) -> tuple[datetime, str] | None:
    if cursor is None:
        return None
    try:
        moment, tie = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        parsed = datetime.fromisoformat(moment)
        # Naive times are not cursors; an offset that takes the time out of range is not either.
        key = (parsed.astimezone(UTC), str(tie)) if parsed.tzinfo is not None else None
    except (binascii.Error, ValueError, TypeError, OverflowError):
        key = None
    if key is None:
        raise InvalidQuery("`cursor` is not valid; pass the `next_cursor` of a previous page")
    return key


def _event_key(cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
    key = _cursor_key(cursor)
    if key is None:
        return None
    try:
        return key[0], uuid.UUID(key[1])
    except ValueError:
        raise InvalidQuery("`cursor` is not valid for this list") from None
