"""Funnels: counts, conversions and median gaps equal to a brute-force search of the data."""

import itertools
import statistics
from datetime import datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest

from pulseboard.analytics.behaviour import service
from tests.analytics.behaviour.helpers import (
    Project,
    answer,
    around,
    event,
    filters,
    recent_hour,
    send,
)
from tests.factories import Actor

STEPS = ["path:/pricing", "signup", "purchase"]

# Per user: (seconds after the start, event, path). The users who reach their deepest step by
# more than one route have the same gaps on each, so the expected medians are unambiguous.
JOURNEYS: dict[str, list[tuple[int, str, str | None]]] = {
    "complete": [(0, "pageview", "/pricing"), (60, "signup", None), (300, "purchase", None)],
    "no-purchase": [(0, "pageview", "/pricing"), (120, "signup", None)],
    "skipped-signup": [(0, "pageview", "/pricing"), (100, "purchase", None)],
    "wrong-order": [(0, "signup", None), (30, "pageview", "/pricing")],
    "too-slow": [(0, "pageview", "/pricing"), (4000, "signup", None)],
    "second-try": [
        (0, "pageview", "/pricing"),
        (5000, "pageview", "/pricing"),
        (5100, "signup", None),
        (5200, "purchase", None),
    ],
    "other-page": [(0, "pageview", "/docs"), (10, "signup", None)],
    "same-second": [(0, "pageview", "/pricing"), (0, "signup", None), (0, "purchase", None)],
}


def _matches(step: str, name: str, path: str | None) -> bool:
    if step.startswith("path:"):
        return name == "pageview" and path == step.removeprefix("path:")
    return name == step


def _deepest(
    journey: list[tuple[int, str, str | None]], steps: list[str], window: int
) -> list[tuple[int, ...]]:
    """Every chain of event positions that reaches the deepest step any chain reaches."""
    for depth in range(len(steps), 0, -1):
        chains = [
            chain
            for chain in itertools.combinations(range(len(journey)), depth)
            if all(_matches(steps[k], *journey[i][1:]) for k, i in enumerate(chain))
            and journey[chain[-1]][0] - journey[chain[0]][0] <= window
        ]
        if chains:
            return chains
    return []


def _exact(journeys: dict[str, Any], steps: list[str], window: int) -> list[dict[str, Any]]:
    reached = [0] * len(steps)
    gaps: list[list[int]] = [[] for _ in steps]
    for journey in journeys.values():
        chains = _deepest(journey, steps, window)
        if not chains:
            continue
        per_chain = {
            tuple(journey[b][0] - journey[a][0] for a, b in itertools.pairwise(c)) for c in chains
        }
        assert len(per_chain) == 1, "the data is chosen so that the gaps are unambiguous"
        for index in range(len(chains[0])):
            reached[index] += 1
        for index, gap in enumerate(per_chain.pop(), start=1):
            gaps[index].append(gap)

    def percent(part: int, whole: int) -> float | None:
        return round(100 * part / whole, 2) if whole else None

    return [
        {
            "step": step,
            "count": reached[index],
            "conversion_from_first": percent(reached[index], reached[0]),
            "conversion_from_previous": percent(reached[index], reached[max(index - 1, 0)]),
            "median_seconds_from_previous": statistics.median(gaps[index]) if gaps[index] else None,
        }
        for index, step in enumerate(steps)
    ]


async def _send_journeys(client: httpx.AsyncClient, project: Project) -> datetime:
    start = recent_hour()
    await send(
        client,
        project,
        [
            event(name, start + timedelta(seconds=offset), user, f"{user}-s", path)
            for user, journey in JOURNEYS.items()
            for offset, name, path in journey
        ],
    )
    bot = [
        event(n, start + timedelta(seconds=s), "bot", "b", p) for s, n, p in JOURNEYS["complete"]
    ]
    await send(client, project, bot, bot=True)
    return start


def _span(start: datetime) -> dict[str, Any]:
    return around(start)


async def test_funnel_counts_conversions_and_medians(
    client: httpx.AsyncClient, owner: Actor, project: Project
) -> None:
    start = await _send_journeys(client, project)
    body = await answer(client, owner, project, "funnels", steps=STEPS, window=3600, **_span(start))
    assert body["window"] == 3600
    assert body["steps"] == _exact(JOURNEYS, STEPS, 3600)
    assert [step["count"] for step in body["steps"]] == [7, 4, 3]


async def test_window_steps_as_json_and_filters(
    client: httpx.AsyncClient, owner: Actor, project: Project
) -> None:
    start = await _send_journeys(client, project)
    as_json = orjson.dumps([{"path": "/pricing"}, "signup"]).decode()
    wide = await answer(
        client, owner, project, "funnels", steps=as_json, window=4000, **_span(start)
    )
    # "too-slow" signs up 4000 seconds after the pricing page: just inside this window.
    assert wide["steps"] == _exact(JOURNEYS, STEPS[:2], 4000)
    assert wide["steps"][1]["count"] == 5
    chosen = filters(("distinct_id", "in", ["complete", "no-purchase", "too-slow"]))
    some = await answer(
        client, owner, project, "funnels", steps=STEPS, window=3600, filters=chosen, **_span(start)
    )
    subset = {u: JOURNEYS[u] for u in ("complete", "no-purchase", "too-slow")}
    assert some["steps"] == _exact(subset, STEPS, 3600)


@pytest.mark.parametrize(
    "params",
    [
        {"steps": ["signup"]},
        {"steps": [f"e{i}" for i in range(11)]},
        {"steps": "[not json"},
        {"steps": '[{"event": 3}, "b"]'},
        {"steps": ["path:", "b"]},
        {"steps": ["a\x00", "b"]},
        {"steps": '[{"event": "click", "path": "/\\u0000"}, "b"]'},
        {"steps": ["a", "b"], "window": 0},
        {"steps": ["a", "b"], "window": 91 * 86400},
        {},
    ],
)
async def test_bad_funnels_are_refused(
    client: httpx.AsyncClient, owner: Actor, project: Project, params: dict[str, Any]
) -> None:
    await answer(client, owner, project, "funnels", status=422, **params)


async def test_a_funnel_past_the_row_limit_is_refused(
    client: httpx.AsyncClient, owner: Actor, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = await _send_journeys(client, project)
    monkeypatch.setattr(service, "MAX_ROWS", 5)
    body = await answer(client, owner, project, "funnels", status=422, steps=STEPS, **_span(start))
    assert body["code"] == "query_too_large"
