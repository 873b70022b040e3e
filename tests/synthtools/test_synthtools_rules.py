"""The rule language accepts its small grammar, refuses everything else at parse time, and evaluates exactly."""

from __future__ import annotations

import pytest
from testbeds_synthtools.rules import RuleEvalError, RuleSyntaxError, evaluate, holds, parse


@pytest.mark.parametrize("source", [
    "__import__('os')",
    "row.__class__",
    "x.y",
    "a.b.c",
    "open('f')",
    "foo(1)",
    "lambda: 1",
    "[x for x in y]",
    "{x: 1 for x in y}",
    "(x for x in y)",
    "2 ** 100",
    "x[1:2]",
    "max(*xs)",
    "round(x, ndigits=2)",
    "_secret > 1",
    "f'{x}'",
    "x := 1",
    "len(x).bit_length()",
    "import os",
    "",
])
def test_anything_outside_the_language_is_a_parse_error(source: str) -> None:
    with pytest.raises(RuleSyntaxError):
        parse(source)


def test_functions_check_their_arity_at_parse_time() -> None:
    with pytest.raises(RuleSyntaxError, match="takes 2 arguments"):
        parse("lt(a)")


@pytest.mark.parametrize(("source", "env", "expected"), [
    ("lt(a, b)", {"a": 1, "b": 2}, True),
    ("lt(a, b)", {"a": 3, "b": 2}, False),
    ("lt(a, b)", {"a": 3}, True),
    ("le(a, 2) and ge(a, 2) and gt(3, a)", {"a": 2}, True),
    ("same_length(item_ids, quantities)", {"item_ids": ["a", "b"], "quantities": [1, 2]}, True),
    ("same_length(item_ids, quantities)", {"item_ids": ["a"], "quantities": [1, 2]}, False),
    ("requires(discount_code, customer_id)", {"discount_code": "X"}, False),
    ("requires(discount_code, customer_id)", {}, True),
    ("exclusive(a, b)", {"a": 1, "b": 2}, False),
    ("exclusive(a, b)", {"a": 1}, True),
    ("sum_le(item_values, original_order_total)", {"item_values": [149.99], "original_order_total": 171.98}, True),
    ("sum_le(item_values, original_order_total)", {"item_values": [100, 80], "original_order_total": 171.98}, False),
    ("status in ['open', 'closed']", {"status": "open"}, True),
    ("status not in ['open', 'closed']", {"status": "open"}, False),
    ("row.status == 'initiated' or not given(new_status)", {"row": {"status": "initiated"}, "new_status": "x"}, True),
    ("0 < quantity <= 10", {"quantity": 10}, True),
    ("0 < quantity <= 10", {"quantity": 11}, False),
    ("x is None", {}, True),
])
def test_constraints_evaluate_as_documented(source: str, env: dict, expected: bool) -> None:
    assert holds(source, env) is expected


def test_arithmetic_is_decimal_exact_and_rounds_half_up() -> None:
    assert evaluate("0.1 + 0.2", {}) == 0.3
    assert evaluate("round(price * rate, 2)", {"price": 149.99, "rate": 0.08}) == 12.0
    assert evaluate("round(2.675, 2)", {}) == 2.68
    assert evaluate("sum(xs) - min(xs) + max(1, 2) + abs(-3) + len(xs)", {"xs": [1, 2, 3]}) == 13
    assert isinstance(evaluate("3 * 2", {}), int)
    assert evaluate("a if a > b else b", {"a": 1, "b": 5}) == 5
    assert evaluate("rows.amount", {"rows": [{"amount": 1.5}, {"amount": 2}]}) == [1.5, 2]
    assert evaluate("xs[0] + xs[-1]", {"xs": [1, 4]}) == 5


def test_type_errors_at_evaluation_are_rule_errors() -> None:
    with pytest.raises(RuleEvalError):
        evaluate("a < b", {"a": "x", "b": 1})
    with pytest.raises(RuleEvalError):
        evaluate("a / 0", {"a": 1})
    with pytest.raises(RuleEvalError):
        evaluate("'ab' * 1000000", {})


def test_booleans_are_not_numbers() -> None:
    with pytest.raises(RuleEvalError):
        evaluate("flag + 1", {"flag": True})


def test_parse_reports_free_names_and_row_fields() -> None:
    rule = parse("row.status == new_status and lt(now, row.deadline)")
    assert rule.names == {"row", "new_status", "now"}
    assert rule.fields == {"status", "deadline"}
