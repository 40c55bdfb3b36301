"""Formulas of other metrics (`signups / pageviews * 100`), parsed by hand: never eval().

    expression := term (("+" | "-") term)*
    term       := unary (("*" | "/") unary)*
    unary      := "-" unary | atom
    atom       := number | name | "(" expression ")"
    name       := [A-Za-z_][A-Za-z0-9_.]*

Evaluation is per point: a missing operand (None) or a division by zero gives None.
"""

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

MAX_TOKENS = 200
MAX_DEPTH = 32
_TOKEN = re.compile(
    r"\s*(?:(?P<number>\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_.]*)|(?P<op>[-+*/()]))"
)
NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.]*$"


class FormulaError(ValueError):
    """A formula that does not parse; the message says where and why."""


@dataclass(frozen=True, slots=True)
class Number:
    value: float


@dataclass(frozen=True, slots=True)
class Name:
    name: str


@dataclass(frozen=True, slots=True)
class Negative:
    operand: "Node"


@dataclass(frozen=True, slots=True)
class Binary:
    op: str
    left: "Node"
    right: "Node"


Node = Number | Name | Negative | Binary

_OPERATORS: dict[str, Callable[[float, float], float | None]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: a / b if b != 0 else None,
}


def _tokens(text: str) -> list[tuple[str, str, int]]:
    tokens: list[tuple[str, str, int]] = []
    position = 0
    text = text.rstrip()
    while position < len(text):
        found = _TOKEN.match(text, position)
        if found is None or found.lastgroup is None:
            column = len(text) - len(text[position:].lstrip()) + 1
            raise FormulaError(f"Unexpected character {text[column - 1]!r} at position {column}")
        tokens.append((found.lastgroup, found.group(found.lastgroup), found.start(found.lastgroup)))
        position = found.end()
        if len(tokens) > MAX_TOKENS:
            raise FormulaError(f"A formula has at most {MAX_TOKENS} tokens")
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.index = 0
        self.depth = 0

    def parse(self) -> Node:
        if not self.tokens:
            raise FormulaError("The formula is empty")
        node = self.expression()
        if self.index < len(self.tokens):
            _, value, at = self.tokens[self.index]
            raise FormulaError(f"Unexpected {value!r} at position {at + 1}")
        return node

    def peek(self) -> str | None:
        return self.tokens[self.index][1] if self.index < len(self.tokens) else None

    def expression(self) -> Node:
        node = self.term()
        while self.peek() in ("+", "-"):
            op = self.tokens[self.index][1]
            self.index += 1
            node = Binary(op, node, self.term())
        return node

    def term(self) -> Node:
        node = self.unary()
        while self.peek() in ("*", "/"):
            op = self.tokens[self.index][1]
            self.index += 1
            node = Binary(op, node, self.unary())
        return node

    def unary(self) -> Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise FormulaError(f"A formula nests at most {MAX_DEPTH} levels")
        try:
            if self.peek() == "-":
                self.index += 1
                return Negative(self.unary())
            return self.atom()
        finally:
            self.depth -= 1

    def atom(self) -> Node:
        if self.index >= len(self.tokens):
            raise FormulaError("The formula ends where a number, name or '(' was expected")
        kind, value, at = self.tokens[self.index]
        self.index += 1
        if kind == "number":
            number = float(value)
            if not math.isfinite(number):
                raise FormulaError(f"The number at position {at + 1} is too large")
            return Number(number)
        if kind == "name":
            return Name(value)
        if value == "(":
            node = self.expression()
            if self.peek() != ")":
                raise FormulaError(f"The '(' at position {at + 1} is never closed")
            self.index += 1
            return node
        raise FormulaError(f"Unexpected {value!r} at position {at + 1}")


def parse(text: str) -> Node:
    """The formula's syntax tree, or FormulaError saying what is wrong and where."""
    return _Parser(text).parse()


def names(node: Node) -> set[str]:
    """The metric names a formula reads."""
    match node:
        case Number():
            return set()
        case Name(name):
            return {name}
        case Negative(operand):
            return names(operand)
        case Binary(_, left, right):
            return names(left) | names(right)


def evaluate(node: Node, values: Mapping[str, float | None]) -> float | None:
    """The formula's value at one point; None when an operand is None, a divisor is 0, or the
    result is past the range of a double (1e308 * 1e308)."""
    return finite(_evaluate(node, values))


def finite(value: float | None) -> float | None:
    """No number for infinity or NaN: JSON has none, and GraphQL cannot serialise them."""
    return value if value is None or math.isfinite(value) else None


def _evaluate(node: Node, values: Mapping[str, float | None]) -> float | None:
    match node:
        case Number(value):
            return value
        case Name(name):
            return values.get(name)
        case Negative(operand):
            inner = _evaluate(operand, values)
            return None if inner is None else -inner
        case Binary(op, left, right):
            a, b = _evaluate(left, values), _evaluate(right, values)
            if a is None or b is None:
                return None
            return _OPERATORS[op](a, b)
