"""Rows streamed in chunks come out grouped per key, whatever the chunks' edges."""

from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from pulseboard.analytics.behaviour import service
from pulseboard.analytics.behaviour.service import QueryTooLarge, _per_key


async def _chunks(rows: list[tuple[Any, ...]], size: int) -> AsyncIterator[Sequence[Any]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


@pytest.mark.parametrize("size", [1, 2, 3, 4, 100])
async def test_groups_span_chunk_edges(size: int) -> None:
    rows = [("a", 1), ("a", 2), ("a", 3), ("b", 4), ("c", 5), ("c", 6), ("d", 7)]
    groups = [group async for batch in _per_key(_chunks(rows, size)) for group in batch]
    assert groups == [
        [("a", 1), ("a", 2), ("a", 3)],
        [("b", 4)],
        [("c", 5), ("c", 6)],
        [("d", 7)],
    ]


async def test_no_rows_no_groups() -> None:
    assert [batch async for batch in _per_key(_chunks([], 3))] == []


async def test_more_rows_than_allowed_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service, "MAX_ROWS", 3)
    with pytest.raises(QueryTooLarge):
        [batch async for batch in _per_key(_chunks([("a", i) for i in range(5)], 2))]
