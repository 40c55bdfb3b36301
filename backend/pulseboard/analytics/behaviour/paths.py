"""Paths: where sessions went after (or came from before) a page or event, a few steps deep.

A session counts once, from the first time it reached the start. The same item repeated in a
row (a reload, a double click) counts as one step.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

MAX_STEPS = 5
MAX_LIMIT = 10


class Direction(StrEnum):
    NEXT = "next"
    PREVIOUS = "previous"


class Kind(StrEnum):
    PATH = "path"
    EVENT = "event"


@dataclass(slots=True)
class _Node:
    count: int = 0
    ended: int = 0
    children: dict[str, "_Node"] = field(default_factory=dict)


class PathTree:
    """Counts the journeys from the start, one session's ordered items at a time."""

    def __init__(self, start: str, direction: Direction, steps: int) -> None:
        self.start = start
        self.direction = direction
        self.steps = steps
        self.root = _Node()

    def add_session(self, items: Sequence[str]) -> None:
        collapsed = [item for i, item in enumerate(items) if i == 0 or items[i - 1] != item]
        try:
            at = collapsed.index(self.start)
        except ValueError:
            return
        ahead = self.direction is Direction.NEXT
        rest = collapsed[at + 1 :] if ahead else collapsed[:at][::-1]
        node = self.root
        node.count += 1
        for item in rest[: self.steps]:
            node = node.children.setdefault(item, _Node())
            node.count += 1
        if len(rest) <= self.steps:
            node.ended += 1

    def tree(self, limit: int) -> dict[str, Any]:
        return _shape(self.start, self.root, limit)


def _shape(item: str, node: _Node, limit: int) -> dict[str, Any]:
    top = sorted(node.children.items(), key=lambda child: (-child[1].count, child[0]))[:limit]
    return {
        "item": item,
        "count": node.count,
        "ended": node.ended,
        "children": [_shape(name, child, limit) for name, child in top],
    }
