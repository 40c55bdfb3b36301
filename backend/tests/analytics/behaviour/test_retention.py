"""Retention: cohorts by the project-local day or week of the first start event, exact grids."""

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.analytics.behaviour.helpers import Project, answer, event, parse_time, send
from tests.factories import Actor, create_project

ZONE = ZoneInfo("America/New_York")
# Per user: (local day of the last_7d range, hour, minute, event).
ACTIVITY: dict[str, list[tuple[int, int, int, str]]] = {
    "r1": [(0, 10, 0, "signup"), (1, 9, 0, "visit"), (3, 12, 0, "visit"), (3, 13, 0, "visit")],
    # 23:30 in New York is the next day in UTC: the cohort is still local day 0.
    "r2": [(0, 23, 30, "signup"), (2, 8, 0, "visit")],
    "r3": [
        (0, 5, 0, "visit"),
        (1, 4, 0, "signup"),
        (1, 20, 0, "visit"),
        (2, 3, 0, "signup"),
        (4, 22, 0, "visit"),
    ],
    "r4": [(5, 6, 0, "signup"), (5, 7, 0, "visit")],
    "r5": [(2, 2, 0, "visit")],
    "r6": [(1, 23, 50, "signup"), (2, 0, 10, "visit")],
}


def _first_day() -> date:
    return datetime.now(ZONE).date() - timedelta(days=6)


def _moment(day: int, hour: int, minute: int) -> datetime:
    local = datetime.combine(_first_day() + timedelta(days=day), time(hour, minute), tzinfo=ZONE)
    return local.astimezone(UTC)


@pytest.fixture
async def new_york(client: httpx.AsyncClient, owner: Actor) -> Project:
    project = await create_project(client, owner, name="NY", timezone="America/New_York")
    await send(
        client,
        project,
        [
            event(name, _moment(d, h, m), user, f"{user}-s")
            for user, items in ACTIVITY.items()
            for d, h, m, name in items
        ],
    )
    bot = [event("signup", _moment(0, 10, 0), "bot"), event("visit", _moment(1, 10, 0), "bot")]
    await send(client, project, bot, bot=True)
    return project


def _exact(start_event: str, return_event: str, weekly: bool, periods: int) -> list[dict[str, Any]]:
    def period_of(day: date) -> date:
        return day - timedelta(days=day.weekday()) if weekly else day

    first, today = _first_day(), _first_day() + timedelta(days=6)
    step = timedelta(days=7 if weekly else 1)
    cohort_starts = []
    cursor = period_of(first)
    while cursor <= today:
        cohort_starts.append(cursor)
        cursor += step
    sizes = dict.fromkeys(cohort_starts, 0)
    returned: dict[tuple[date, int], int] = {}
    for items in ACTIVITY.values():
        dated = sorted((_moment(d, h, m), name) for d, h, m, name in items)
        starts = [moment for moment, name in dated if name == start_event]
        if not starts:
            continue
        cohort = period_of(starts[0].astimezone(ZONE).date())
        sizes[cohort] += 1
        offsets = {
            (period_of(moment.astimezone(ZONE).date()) - cohort) // step
            for moment, name in dated
            if name == return_event and moment > starts[0]
        }
        for offset in offsets:
            if offset >= 1:
                returned[cohort, offset] = returned.get((cohort, offset), 0) + 1
    grid = []
    for index, cohort in enumerate(cohort_starts):
        size = sizes[cohort]
        values = []
        for offset in range(periods + 1):
            known = index + offset < len(cohort_starts)
            users = (size if offset == 0 else returned.get((cohort, offset), 0)) if known else None
            share = round(100 * users / size, 2) if users is not None and size else None
            values.append({"period": offset, "users": users, "percentage": share})
        local_start = max(cohort, first)
        start = datetime.combine(local_start, time(0), tzinfo=ZONE).astimezone(UTC)
        grid.append({"start": start, "size": size, "values": values})
    return grid


def _read(cohorts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**cohort, "start": parse_time(cohort["start"])} for cohort in cohorts]


@pytest.mark.parametrize("period", ["day", "week"])
async def test_retention_grid_in_local_periods(
    client: httpx.AsyncClient, owner: Actor, new_york: Project, period: str
) -> None:
    body = await answer(
        client,
        owner,
        new_york,
        "retention",
        range="last_7d",
        start_event="signup",
        return_event="visit",
        period=period,
        periods=4,
    )
    assert body["period"] == period
    assert _read(body["cohorts"]) == _exact("signup", "visit", period == "week", 4)
    if period == "day":
        first = body["cohorts"][0]
        assert first["size"] == 2  # r1 and r2; the bot never counts
        assert [v["users"] for v in first["values"]] == [2, 1, 1, 1, 0]


async def test_return_event_defaults_to_the_start_event(
    client: httpx.AsyncClient, owner: Actor, new_york: Project
) -> None:
    body = await answer(
        client, owner, new_york, "retention", range="last_7d", start_event="visit", periods=6
    )
    assert body["return_event"] == "visit"
    assert _read(body["cohorts"]) == _exact("visit", "visit", False, 6)


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"start_event": "signup", "period": "month"},
        {"start_event": "signup", "period": "auto"},
        {"start_event": "signup", "periods": 0},
        {"start_event": "signup", "periods": 61},
        {"start_event": ""},
        {"start_event": "signup\x00"},
        {"start_event": "signup", "return_event": "a" * 201},
    ],
)
async def test_bad_retention_queries_are_refused(
    client: httpx.AsyncClient, owner: Actor, project: Project, params: dict[str, Any]
) -> None:
    await answer(client, owner, project, "retention", status=422, **params)
