"""The static lint finds what is wrong in a spec, and finds nothing in well-formed ones."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from synthtools_returns import RETURNS, returns_toolset
from testbeds_synthtools.generator import generate_toolset
from testbeds_synthtools.lint import errors_only, lint


def doc() -> dict[str, Any]:
    return copy.deepcopy(RETURNS)


def tool(d: dict[str, Any], name: str) -> dict[str, Any]:
    return next(t for t in d["tools"] if t["name"] == name)


def codes(d: Any) -> set[str]:
    return {f.code for f in lint(d)}


def test_well_formed_toolsets_have_no_errors() -> None:
    assert errors_only(lint(returns_toolset())) == []
    assert lint(doc()) == lint(returns_toolset())
    for seed in (0, 3):
        assert errors_only(lint(generate_toolset(seed=seed))) == []


def test_a_schema_that_breaks_the_metaschema_is_reported_with_its_path() -> None:
    d = doc()
    tool(d, "get_return_request")["input_schema"]["properties"]["return_request_id"]["minLength"] = -1
    found = [f for f in lint(d) if f.code == "schema_invalid"]
    assert found and found[0].tool == "get_return_request"
    assert found[0].path == "/input_schema/properties/return_request_id/minLength"


def test_bad_names_and_duplicates_are_errors() -> None:
    d = doc()
    d["tools"][1]["name"] = "Bad Name"
    d["tools"][2]["name"] = d["tools"][3]["name"]
    found = codes(d)
    assert {"spec_invalid", "name_invalid", "name_duplicate"} <= found


def test_errors_without_guidance_warn_and_duplicate_codes_are_errors() -> None:
    d = doc()
    errs = tool(d, "create_return_request")["errors"]
    errs[0]["guidance"] = ""
    errs[1]["code"] = errs[0]["code"]
    by = {f.code: f for f in lint(d)}
    assert by["error_without_guidance"].severity == "warning"
    assert by["error_code_duplicate"].severity == "error"


def test_effect_bindings_to_unknown_tables_columns_and_arguments_are_errors() -> None:
    d = doc()
    tool(d, "get_return_request")["effect"]["table"] = "refunds"
    tool(d, "create_return_request")["effect"]["set"]["reason"] = "why"
    tool(d, "list_return_requests")["effect"]["filters"][0]["arg"] = "order"
    found = codes(d)
    assert {"effect_unknown_table", "effect_unknown_column", "effect_unknown_argument"} <= found


def test_rules_that_do_not_parse_or_name_unknown_things_are_errors() -> None:
    d = doc()
    calc = tool(d, "calculate_refund")
    calc["constraints"].append({"rule": "__import__('os')"})
    calc["errors"][1]["when"] = "sum(item_prices) > 1000"
    calc["constraints"].append({"rule": "tax_rate < 1", "error": "no_such_error"})
    tool(d, "cancel_return_request")["effect"]["assign"] = {"status": "row.state"}
    by: dict[str, list[str]] = {}
    for f in lint(d):
        by.setdefault(f.code, []).append(f.path)
    assert "rule_syntax" in by and "rule_unknown_name" in by
    assert "/errors/1/when" in by["rule_unknown_name"]
    assert "constraint_unknown_error" in by
    assert "/effect/assign/status" in by["rule_unknown_column"]


def test_enum_defaults_outside_the_enum_and_invalid_defaults_are_errors() -> None:
    d = doc()
    props = tool(d, "calculate_refund")["input_schema"]["properties"]
    props["refund_method"]["default"] = "cash"
    props["shipping_cost"]["default"] = "free"
    found = {f.code: f.path for f in lint(d)}
    assert found["enum_default_outside"] == "/input_schema/properties/refund_method/default"
    assert found["default_invalid"] == "/input_schema/properties/shipping_cost/default"


def test_examples_that_fail_their_own_schemas_are_errors() -> None:
    d = doc()
    ex = tool(d, "calculate_refund")["examples"][0]
    ex["arguments"]["tax_rate"] = 3
    ex["result"]["net_refund"] = "eleven"
    found = codes(d)
    assert {"example_invalid_arguments", "example_invalid_result"} <= found


def test_a_read_only_hint_on_a_write_contradicts_the_effect() -> None:
    d = doc()
    tool(d, "update_return_status")["annotations"] = {"read_only": True, "destructive": False, "idempotent": True}
    found = [f for f in lint(d) if f.code == "annotation_contradiction"]
    assert [(f.tool, f.severity) for f in found if f.severity == "error"] == [("update_return_status", "error")]


def test_workflows_naming_unknown_tools_are_errors() -> None:
    d = doc()
    d["workflows"] = [{"tier": "simple", "tools": ["get_return_request", "issue_refund"]}]
    found = [f for f in lint(d) if f.code == "workflow_unknown_tool"]
    assert [f.path for f in found] == ["/workflows/0/tools/1"]


@pytest.mark.parametrize("bounds", [("minimum", 5, "maximum", 1), ("minItems", 3, "maxItems", 1)])
def test_inverted_bounds_are_errors(bounds: tuple[str, int, str, int]) -> None:
    d = doc()
    lo, a, hi, b = bounds
    p = tool(d, "calculate_refund")["input_schema"]["properties"]["item_values"]
    p[lo], p[hi] = a, b
    assert "bounds_inverted" in codes(d)


def test_a_document_that_is_not_an_object_is_one_finding() -> None:
    found = lint([1, 2])  # type: ignore[arg-type]
    assert found and all(f.code == "spec_invalid" for f in found)
