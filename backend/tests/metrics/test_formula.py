"""Formulas evaluate to a finite number or to nothing; a literal past a double is refused."""

import pytest

from pulseboard.metrics.formula import FormulaError, evaluate, parse


def test_a_formula_evaluates_point_by_point() -> None:
    assert evaluate(parse("signups / pageviews * 100"), {"signups": 5, "pageviews": 20}) == 25.0
    assert evaluate(parse("signups / pageviews"), {"signups": 5, "pageviews": 0}) is None


def test_a_result_past_the_range_of_a_double_is_no_number() -> None:
    assert evaluate(parse("a * a"), {"a": 1e308}) is None
    assert evaluate(parse("a * a - a * a"), {"a": 1e308}) is None  # inf - inf is NaN


def test_a_literal_past_the_range_of_a_double_is_refused() -> None:
    with pytest.raises(FormulaError, match="too large"):
        parse("a * 1e999")
