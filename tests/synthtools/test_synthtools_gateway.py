"""The gateway checks calls in a fixed order and returns the first failure with the exact message."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from synthtools_returns import returns_toolset
from testbeds_synthtools.gateway import Checked, Failure, Gateway
from testbeds_synthtools.spec import Toolset

VALID: dict[str, Any] = {"customer_id": "CUST001", "item_values": [10.0, 5.0], "quantities": [1, 2],
                         "tax_rate": 0.08}


@pytest.fixture(scope="module")
def toolset() -> Toolset:
    return returns_toolset()


@pytest.fixture(scope="module")
def gateway(toolset: Toolset) -> Gateway:
    return Gateway(toolset)


def fail(gateway: Gateway, tool: str, args: Any) -> Failure:
    got = gateway.check(tool, args)
    assert isinstance(got, Failure), got
    return got


def with_(**changes: Any) -> dict[str, Any]:
    args = {**VALID, **changes}
    return {k: v for k, v in args.items() if v is not ...}


def test_a_valid_call_passes_with_its_defaults_applied(gateway: Gateway) -> None:
    got = gateway.check("calculate_refund", VALID)
    assert isinstance(got, Checked)
    assert got.arguments == {**VALID, "shipping_cost": 0, "restocking_fee_rate": 0, "refund_method": "card",
                             "express": False}
    assert got.given == frozenset(VALID)


# one call per stage, failing only there, with the exact message

STAGE_CASES: list[tuple[str, str, Any, str, str]] = [
    ("tool", "calculate_refnd", VALID, "unknown_tool",
     "Unknown tool: calculate_refnd. Did you mean 'calculate_refund'? Available tools: create_return_request, "
     "get_return_request, update_return_status, list_return_requests, search_customers, cancel_return_request, "
     "delete_customer, calculate_refund."),
    ("unknown_parameter", "calculate_refund", with_(tax_rat=0.1), "unknown_parameter",
     "Unknown parameter: tax_rat. Did you mean 'tax_rate'? Valid parameters: customer_id, item_values, quantities, "
     "tax_rate, shipping_cost, restocking_fee_rate, refund_method, express, requested_at."),
    ("missing_required", "calculate_refund", with_(customer_id=...), "missing_required",
     "Missing required parameter: customer_id (string): Customer identifier for the refund"),
    ("type", "calculate_refund", with_(tax_rate="0.08"), "invalid_type",
     "Invalid type for tax_rate: expected number, got string"),
    ("items", "calculate_refund", with_(item_values=[10.0, "5"]), "invalid_item_type",
     "Invalid type for item_values[1]: expected number, got string"),
    ("items", "calculate_refund", with_(item_values=[], quantities=[]), "too_few_items",
     "Too few items for item_values: expected at least 1, got 0"),
    ("items", "calculate_refund", with_(item_values=[1, 2, 3, 4], quantities=[1, 1, 1, 1]), "too_many_items",
     "Too many items for item_values: expected at most 3, got 4"),
    ("enum_range", "calculate_refund", with_(refund_method="cash"), "invalid_enum",
     "Invalid value for refund_method: 'cash'. Use one of [card, store_credit]"),
    ("enum_range", "calculate_refund", with_(tax_rate=1.5), "out_of_range",
     "Value out of range for tax_rate: 1.5 is above the maximum 1. Use a value between 0 and 1."),
    ("date_time", "calculate_refund", with_(requested_at="2025-03-15"), "invalid_date_time",
     "Invalid date-time for requested_at: '2025-03-15'. Use an RFC 3339 date-time such as 2025-03-15T10:00:00Z"),
    ("constraint", "calculate_refund", with_(quantities=[1]), "array_length_mismatch",
     "Array length mismatch: item_values and quantities must have the same length."),
    ("when", "calculate_refund", with_(item_values=[900, 200]), "refund_too_large",
     "Refund too large: Gross refund above 1000 needs manual approval."),
]


@pytest.mark.parametrize(("stage", "tool", "args", "code", "message"), STAGE_CASES,
                         ids=[f"{c[0]}-{c[3]}" for c in STAGE_CASES])
def test_each_stage_has_a_call_failing_only_there_with_its_exact_message(
        gateway: Gateway, stage: str, tool: str, args: Any, code: str, message: str) -> None:
    got = fail(gateway, tool, args)
    assert (got.stage, got.code, got.message) == (stage, code, message)


def test_a_spec_error_about_the_parameter_replaces_the_generic_enum_message(gateway: Gateway) -> None:
    got = fail(gateway, "create_return_request", {"order_id": "ORD001", "reason": "broken", "refund_amount": 1})
    assert (got.status, got.code, got.message) == (400, "invalid_reason",
                                                   "Invalid reason: Use one of [defective, wrong_item, changed_mind].")


def test_the_first_failing_stage_wins_when_a_call_breaks_several(gateway: Gateway) -> None:
    # unknown parameter + missing required + wrong type + bad enum + bad date + broken constraint
    args = {"tax_rat": 1, "item_values": ["x"], "quantities": [1, 2], "tax_rate": "high", "refund_method": "cash",
            "requested_at": "soon"}
    assert fail(gateway, "calculate_refund", args).stage == "unknown_parameter"
    del args["tax_rat"]
    assert fail(gateway, "calculate_refund", args).stage == "missing_required"
    args["customer_id"] = "C1"
    assert fail(gateway, "calculate_refund", args).message == "Invalid type for tax_rate: expected number, got string"
    args["tax_rate"] = 0.1
    assert fail(gateway, "calculate_refund", args).stage == "items"
    args["item_values"] = [1.0]
    assert fail(gateway, "calculate_refund", args).stage == "enum_range"
    args["refund_method"] = "card"
    assert fail(gateway, "calculate_refund", args).stage == "date_time"
    args["requested_at"] = "2025-03-15T10:00:00Z"
    assert fail(gateway, "calculate_refund", args).stage == "constraint"
    args["quantities"] = [3]
    assert isinstance(gateway.check("calculate_refund", args), Checked)


def test_parameters_are_checked_in_spec_order_not_call_order(gateway: Gateway) -> None:
    args = {"tax_rate": "x", "customer_id": 7, "item_values": [1.0]}
    assert fail(gateway, "calculate_refund", args).message == \
        "Invalid type for customer_id: expected string, got integer"


def test_booleans_are_not_numbers_and_integers_accept_integral_floats(gateway: Gateway) -> None:
    assert fail(gateway, "calculate_refund", with_(tax_rate=True)).message == \
        "Invalid type for tax_rate: expected number, got boolean"
    assert fail(gateway, "calculate_refund", with_(quantities=[1, True])).message == \
        "Invalid type for quantities[1]: expected integer, got boolean"
    got = gateway.check("calculate_refund", with_(quantities=[1, 3.0]))
    assert isinstance(got, Checked) and got.arguments["quantities"] == [1, 3]
    assert type(got.arguments["quantities"][1]) is int
    assert fail(gateway, "calculate_refund", with_(quantities=[1, 3.5])).message == \
        "Invalid type for quantities[1]: expected integer, got number"


def test_imported_toolsets_accept_plain_dates_for_date_times(toolset: Toolset) -> None:
    lenient = Gateway(toolset.model_copy(update={"lenient_dates": True}))
    assert isinstance(lenient.check("calculate_refund", with_(requested_at="1985-03-15")), Checked)
    got = lenient.check("calculate_refund", with_(requested_at="15/03/1985"))
    assert isinstance(got, Failure) and got.message.endswith("or a date such as 2025-03-15")


def test_an_explicit_null_counts_as_absent(gateway: Gateway) -> None:
    assert fail(gateway, "calculate_refund", with_(customer_id=None)).stage == "missing_required"
    got = gateway.check("calculate_refund", with_(shipping_cost=None))
    assert isinstance(got, Checked) and got.arguments["shipping_cost"] == 0


def test_arguments_that_are_not_an_object_get_a_clear_error(gateway: Gateway) -> None:
    got = fail(gateway, "calculate_refund", [1, 2])
    assert (got.status, got.code) == (400, "invalid_arguments")
    assert fail(gateway, None, {}).code == "unknown_tool"


def test_remaining_schema_keywords_are_enforced_after_enum_and_range(gateway: Gateway) -> None:
    got = fail(gateway, "search_customers", {"query": ""})
    assert (got.stage, got.code) == ("enum_range", "invalid_value")
    assert got.message.startswith("Invalid value for query: ")


def test_a_rule_that_cannot_be_evaluated_returns_the_specs_error(toolset: Toolset) -> None:
    doc = toolset.model_dump(mode="json")
    tool = next(t for t in doc["tools"] if t["name"] == "calculate_refund")
    tool["errors"][1]["when"] = "customer_id > 3"  # a string compared with a number
    got = Gateway(Toolset.model_validate(doc)).check("calculate_refund", VALID)
    assert isinstance(got, Failure) and (got.stage, got.code) == ("when", "refund_too_large")


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True)
                    | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                                max_size=4), max_leaves=12)
NAMES = st.sampled_from(["customer_id", "item_values", "quantities", "tax_rate", "shipping_cost", "refund_method",
                         "express", "requested_at", "bogus", "restocking_fee_rate"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tool=st.sampled_from(["calculate_refund", "create_return_request", "search_customers", "nope"]),
       args=st.dictionaries(NAMES, JSON, max_size=8) | JSON)
def test_the_gateway_never_raises_on_arbitrary_json_arguments(gateway: Gateway, tool: str, args: Any) -> None:
    got = gateway.check(tool, args)
    assert isinstance(got, Checked | Failure)
    if isinstance(got, Failure):
        assert got.message and 400 <= got.status <= 599
