"""Hostile inputs: rules that overflow or meet infinities, clashing injected arguments, answer-key leaks in the
agent-visible grade, check order on malformed calls, huge arrays."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from synthtools_returns import RETURNS, returns_toolset
from testbeds_serving.errors import InvalidArgument
from testbeds_synthtools import rules
from testbeds_synthtools.engine import Session
from testbeds_synthtools.episodes import Exposure
from testbeds_synthtools.gateway import MAX_ARRAY_ITEMS, Failure, Gateway
from testbeds_synthtools.generator import generate_toolset, valid_arguments
from testbeds_synthtools.grading import NOT_AS_ASKED, Submission, grade
from testbeds_synthtools.spec import Provenance, Tool, Toolset
from testbeds_synthtools.tasks import Task, execute, generate_tasks

# ------------------------------------------------------------------------------------------- rules


@pytest.mark.parametrize(("source", "env"), [
    ("1e999", {}),
    ("round(1, 1e999)", {}),
    ("round(1e20, 12)", {}),
    ("x < 1", {"x": float("nan")}),
    ("lt(x, 1)", {"x": float("nan")}),
    ("x + 1", {"x": float("inf")}),
    ("abs(x)", {"x": float("-inf")}),
    ("sum(x)", {"x": [float("nan")]}),
    ("same_length(1, 2)", {}),
    ("x in y", {"x": [1], "y": {"a": 1}}),
    ("x[1e999]", {"x": [1, 2]}),
    ("round(x * 0.08, 2)", {"x": 1e30}),
])
def test_a_rule_that_overflows_or_meets_non_finite_values_raises_a_rule_eval_error(source: str,
                                                                                    env: dict[str, Any]) -> None:
    with pytest.raises(rules.RuleEvalError):
        rules.evaluate(source, env)


def test_huge_but_finite_integers_still_evaluate() -> None:
    assert rules.evaluate("x * 2", {"x": 10**40}) == 2 * 10**40


def test_a_formula_overflow_on_a_huge_input_is_a_clean_400_and_the_session_keeps_working() -> None:
    spec = copy.deepcopy(RETURNS)
    refund = next(t for t in spec["tools"] if t["name"] == "calculate_refund")
    refund["errors"] = [e for e in refund["errors"] if "when" not in e]  # let the formula meet the value
    s = Session(Toolset.model_validate(spec))
    before = s.state_hash()
    got = s.call("calculate_refund", {"customer_id": "CUST001", "item_values": [1e30], "tax_rate": 0.08})
    assert not got.ok and got.status == 400 and got.code == "calculation_error"
    assert s.state_hash() == before
    again = s.call("calculate_refund", {"customer_id": "CUST001", "item_values": [10.0], "tax_rate": 0.1})
    assert again.ok and again.result is not None and again.result["net_refund"] == 11.0


# ------------------------------------------------------------------------------------------- exposure


def _tool(name: str, params: list[str]) -> Tool:
    return Tool(name=name, title=name.title(), description="d",
                input_schema={"type": "object", "properties": {p: {"type": "string"} for p in params},
                              "required": [], "additionalProperties": False},
                output_schema={"type": "object", "properties": {"x": {"type": "string"}}, "required": ["x"],
                               "additionalProperties": False})


def test_a_toolset_with_a_handle_parameter_is_refused_naming_the_tool_and_exposes_nothing() -> None:
    ts = Toolset(id="manual.h", field="f", provenance=Provenance(origin="manual"),
                 tools=[_tool("zz_first", ["a"]), _tool("zz_second", ["handle"])])
    exposure = Exposure(frozenset())
    with pytest.raises(InvalidArgument, match="zz_second"):
        exposure.expose(ts, ts.spec_hash())
    assert exposure.tools == {} and exposure.by_toolset == {}
    fine = Toolset(id="manual.ok", field="f", provenance=Provenance(origin="manual"), tools=[_tool("zz_first", ["a"])])
    mapping, changed = exposure.expose(fine, fine.spec_hash())
    assert mapping == {"zz_first": "zz_first"} and changed


# ------------------------------------------------------------------------------------------- grading leaks


@pytest.fixture(scope="module")
def world() -> tuple[Toolset, list[Task]]:
    ts = generate_toolset("healthcare", 0)
    return ts, generate_tasks(ts, seed=7)


def _leaf_texts(value: Any) -> set[str]:
    """String forms of the leaf values of an expected diff or answer that are specific enough to spot."""
    out: set[str] = set()
    if isinstance(value, dict) and "$new" in value:
        return out  # a reference marker names a table, which the agent already knows
    if isinstance(value, dict):
        for v in value.values():
            out |= _leaf_texts(v)
    elif isinstance(value, list):
        for v in value:
            out |= _leaf_texts(v)
    elif value is not None and not isinstance(value, bool):
        text = str(value)
        if len(text) >= 4:
            out.add(text)
    return out


def _expected_texts(task: Task) -> set[str]:
    diff = {t: d.model_dump() for t, d in task.expected_diff.items()}
    return _leaf_texts(diff) | _leaf_texts(task.expected_answer or {})


def _grade_empty(ts: Toolset, task: Task, sub: Submission) -> Any:
    session, _ = execute(ts, [], seed=task.seed)
    try:
        return grade(task, session, sub)
    finally:
        session.close()


def test_agent_visible_reasons_name_no_expected_value_but_the_details_do(world) -> None:
    ts, tasks = world
    checked = 0
    for task in [t for t in tasks if t.feasible][:6]:
        g = _grade_empty(ts, task, Submission(answer={k: "wrong" for k in task.expected_answer or {}}))
        assert not g.passed and g.reasons and g.details
        secrets = _expected_texts(task)
        shown = " ".join(g.reasons)
        assert not [s for s in secrets if s in shown], (task.id, g.reasons)
        assert any(s in " ".join(g.details) for s in secrets) or not secrets
        assert "feasib" not in shown.lower()
        checked += 1
    assert checked >= 3


def test_agent_visible_reasons_do_not_say_whether_the_task_was_feasible(world) -> None:
    ts, tasks = world
    infeasible = next(t for t in tasks if not t.feasible)
    feasible = next(t for t in tasks if t.feasible)
    unreported = _grade_empty(ts, infeasible, Submission())
    wrongly_reported = _grade_empty(ts, feasible, Submission(infeasible=True, reason="no"))
    assert not unreported.passed and unreported.reasons == [NOT_AS_ASKED]
    assert not wrongly_reported.passed and NOT_AS_ASKED in wrongly_reported.reasons
    for g in (unreported, wrongly_reported):
        assert all("feasib" not in r.lower() for r in g.reasons)
        assert all("feasib" not in json.dumps(c).lower() for c in g.collateral)
    assert any("infeasible" in d for d in unreported.details)


def test_a_wrong_state_is_reported_per_table_with_a_row_count(world) -> None:
    ts, tasks = world
    task = next(t for t in tasks if t.feasible and t.expected_diff)
    g = _grade_empty(ts, task, Submission(answer=copy.deepcopy(task.expected_answer)))
    table = sorted(task.expected_diff)[0]
    assert any(r.startswith(f"the final state does not match the expected outcome in table {table} (")
               for r in g.reasons), g.reasons


def test_a_passing_grade_has_no_reasons_and_no_details(world) -> None:
    from testbeds_synthtools.tasks import replay_reference

    ts, tasks = world
    session, sub = replay_reference(tasks[0], ts)
    try:
        g = grade(tasks[0], session, sub)
    finally:
        session.close()
    assert g.passed and g.reasons == [] and g.details == []


# ------------------------------------------------------------------------------------------- gateway order


def test_an_unknown_tool_is_reported_before_non_object_arguments() -> None:
    got = Gateway(returns_toolset()).check("no_such_tool", [1])
    assert isinstance(got, Failure) and got.stage == "tool" and got.code == "unknown_tool"
    known = Gateway(returns_toolset()).check("calculate_refund", [1])
    assert isinstance(known, Failure) and known.stage == "arguments"


def test_a_pattern_violation_on_an_earlier_parameter_comes_before_a_later_bad_date_time() -> None:
    ts = generate_toolset("healthcare", 0)
    tool = ts.tool("create_appointment")
    props = list(tool.input_schema["properties"])
    assert props.index("patient_id") < props.index("scheduled_at")
    args = valid_arguments(ts, "create_appointment")
    args.update(patient_id="bad id", scheduled_at="not a date")
    got = Session(ts).call("create_appointment", args)
    assert not got.ok and got.stage == "enum_range" and "patient_id" in (got.message or "")
    args = valid_arguments(ts, "create_appointment")
    args["scheduled_at"] = "not a date"
    got = Session(ts).call("create_appointment", args)
    assert got.stage == "date_time" and got.code == "invalid_date_time"


def test_an_array_argument_over_the_item_cap_is_refused_in_the_items_stage() -> None:
    ts = returns_toolset()
    gw = Gateway(ts)
    args = {"customer_id": "CUST001", "item_values": [1.0] * (MAX_ARRAY_ITEMS + 1), "tax_rate": 0.1}
    got = gw.check("calculate_refund", args)
    assert isinstance(got, Failure) and got.stage == "items" and got.code == "too_many_items"
    assert str(MAX_ARRAY_ITEMS) in got.message and got.status == 400
    spec = copy.deepcopy(RETURNS)
    refund = next(t for t in spec["tools"] if t["name"] == "calculate_refund")
    del refund["input_schema"]["properties"]["item_values"]["maxItems"]
    uncapped = Gateway(Toolset.model_validate(spec))
    big = uncapped.check("calculate_refund", {**args, "item_values": [1.0] * 400_000})
    assert isinstance(big, Failure) and big.code == "too_many_items"
    ok = uncapped.check("calculate_refund", {**args, "item_values": [1.0] * 4})
    assert not isinstance(ok, Failure)
