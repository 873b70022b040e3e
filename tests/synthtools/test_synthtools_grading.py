"""Grading on final state: content matching, collateral damage, answers, infeasible reports, pass^k."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from testbeds_synthtools.engine import Session
from testbeds_synthtools.generator import generate_toolset
from testbeds_synthtools.grading import Submission, compare_answer, grade, pass_hat_k, values_match
from testbeds_synthtools.spec import Toolset
from testbeds_synthtools.tasks import Call, Task, execute, generate_tasks, perturb_value, reference_submission


@pytest.fixture(scope="module")
def world() -> tuple[Toolset, list[Task]]:
    ts = generate_toolset("healthcare", 0)
    return ts, generate_tasks(ts, seed=7)


def _task(tasks: list[Task], tier: str) -> Task:
    return next(t for t in tasks if t.feasible and t.tier == tier)


def _grade(ts: Toolset, task: Task, calls: list[Call], sub: Submission | None = None):
    session, _ = execute(ts, calls, seed=task.seed)
    try:
        return grade(task, session, sub if sub is not None else reference_submission(task))
    finally:
        session.close()


def test_a_duplicate_insert_fails(world):
    ts, tasks = world
    task = _task(tasks, "simple")
    create = next(c for c in task.reference_solution if c.tool.startswith("create_"))
    g = _grade(ts, task, [*task.reference_solution, create])
    assert not g.passed
    assert any(c["op"] == "insert" for c in g.collateral)


def test_an_update_to_a_row_outside_the_expected_set_fails(world):
    ts, tasks = world
    task = _task(tasks, "simple")
    extra = Call(tool="update_patient", arguments={"patient_id": "PAT-000003", "city": "Elsewhere"})
    g = _grade(ts, task, [*task.reference_solution, extra])
    assert not g.passed and not g.diff_match
    assert {"table": "patients", "op": "update", "key": "PAT-000003", "columns": ["city"]} in g.collateral


def test_an_extra_column_changed_on_an_expected_row_is_collateral(world):
    ts, tasks = world
    task = next(t for t in tasks if t.feasible and any(d.updated for d in t.expected_diff.values()))
    table, d = next((k, v) for k, v in task.expected_diff.items() if v.updated)
    upd = d.updated[0]
    tool = next(x for x in ts.tools if x.effect.kind == "update" and x.effect.table == table
                and any(c not in upd.after for c in x.effect.set.values()))
    arg = next(a for a, c in tool.effect.set.items() if c not in upd.after)
    session, _ = execute(ts, task.reference_solution, seed=task.seed)
    try:
        current = next(r for r in session.snapshot()[table] if r[task.tables[table].key] == upd.key)
        value = perturb_value(current[tool.effect.set[arg]], tool.input_schema["properties"][arg], ts, {})
        r = session.call(tool.name, {task.tables[table].key: upd.key, arg: value})
        assert r.ok and r.changes, r.message
        g = grade(task, session, reference_submission(task))
    finally:
        session.close()
    assert not g.passed
    assert any(c.get("key") == upd.key and c["op"] == "update" for c in g.collateral)


def test_inserted_rows_match_by_content_not_by_surrogate_ids(world):
    ts, tasks = world
    task = _task(tasks, "medium")
    assert any(d.inserted for d in task.expected_diff.values())
    # a throwaway patient shifts every id the reference would get; content still matches
    detour = [Call(tool="create_patient", arguments={
        "full_name": "Temp Person", "email": "temp.person@example.com", "phone": "+1-555-000-0000",
        "birth_date": "1990-01-01T00:00:00Z", "insurance_plan": "basic", "city": "Lyon"})]
    session, results = execute(ts, detour, seed=task.seed)
    assert results[0].ok
    temp = results[0].result["patient_id"]
    session.call("delete_patient", {"patient_id": temp})
    outputs: list[dict] = []
    shifted = []
    for call in task.reference_solution:
        args = dict(call.arguments)
        for k, v in args.items():  # follow the ids this run makes, as an agent would
            for old, new in shifted:
                if v == old:
                    args[k] = new
        r = session.call(call.tool, args)
        assert r.ok, r.message
        for ch in r.changes:
            if ch.op == "insert":
                ref_key = _reference_key(ts, task, call.tool, len(outputs))
                shifted.append((ref_key, ch.key))
        outputs.append(r.result)
    try:
        assert shifted and any(a != b for a, b in shifted)
        g = grade(task, session, Submission(answer=task.expected_answer))
    finally:
        session.close()
    assert g.passed, g.reasons


def _reference_key(ts: Toolset, task: Task, tool: str, step: int):
    session, results = execute(ts, task.reference_solution[: step + 1], seed=task.seed)
    session.close()
    return next(c.key for c in results[-1].changes if c.op == "insert")


def test_a_change_in_a_table_the_task_does_not_allow_fails(world):
    ts, tasks = world
    task = next(t for t in tasks if t.feasible and "providers" not in t.allowed_tables)
    extra = Call(tool="update_provider", arguments={"provider_id": "PRV-000002", "specialty": "cardiology"})
    session, results = execute(ts, [*task.reference_solution, extra], seed=task.seed)
    try:
        if not results[-1].changes:
            extra.arguments["specialty"] = "oncology"
            session.call(extra.tool, extra.arguments)
        g = grade(task, session, reference_submission(task))
    finally:
        session.close()
    assert not g.passed
    assert any(c["table"] == "providers" and c["op"] == "any" for c in g.collateral)


def test_a_wrong_or_missing_answer_fails_and_the_right_one_passes(world):
    ts, tasks = world
    task = next(t for t in tasks if t.feasible and t.expected_answer)
    assert _grade(ts, task, task.reference_solution).passed
    assert not _grade(ts, task, task.reference_solution, Submission()).passed
    wrong = {k: (v + 7 if isinstance(v, int | float) and not isinstance(v, bool) else "zzz")
             for k, v in task.expected_answer.items()}
    g = _grade(ts, task, task.reference_solution, Submission(answer=wrong))
    assert not g.passed and g.diff_match and not g.answer_match
    shouty = {k.upper(): (v.upper() if isinstance(v, str) else v) for k, v in task.expected_answer.items()}
    assert _grade(ts, task, task.reference_solution, Submission(answer=shouty)).passed


def test_reporting_infeasible_on_a_feasible_task_fails(world):
    ts, tasks = world
    task = _task(tasks, "simple")
    sub = Submission(answer=task.expected_answer, infeasible=True, reason="no")
    g = _grade(ts, task, task.reference_solution, sub)
    assert not g.passed and g.diff_match


def test_a_successful_call_to_a_tool_that_is_not_allowed_fails(world):
    ts, tasks = world
    twin = next(t for t in tasks if t.infeasible_kind == "tool_absent")
    (dropped,) = set(ts.tool(n).name for n in [t.name for t in ts.tools]) - set(twin.tools_allowed)
    g = grade(twin, {}, Submission(infeasible=True), initial={}, calls=[{"tool": dropped, "ok": True}])
    assert not g.passed and "not allowed" in g.reasons[0]
    assert grade(twin, {}, Submission(infeasible=True), initial={}, calls=[{"tool": dropped, "ok": False}]).passed


def test_grading_a_snapshot_needs_the_initial_snapshot(world):
    ts, tasks = world
    task = _task(tasks, "simple")
    session, _ = execute(ts, task.reference_solution, seed=task.seed)
    final = session.snapshot()
    session.close()
    with pytest.raises(ValueError):
        grade(task, final, reference_submission(task))
    fresh = Session(ts, seed=task.seed)
    initial = fresh.snapshot()
    fresh.close()
    assert grade(task, final, reference_submission(task), initial=initial).passed


def test_money_is_exact_in_cents_and_other_numbers_have_a_relative_tolerance():
    assert values_match(149.48, 149.48, 2)
    assert not values_match(149.47, 149.48, 2)
    assert values_match("149.48", 149.48, 2)
    assert values_match(149.47, 149.48)  # within 1e-4 relative without a money scale
    assert not values_match(149.0, 149.48)
    assert values_match(1e-7, 0.0) and not values_match(1e-5, 0.0)
    assert not values_match(True, 1) and not values_match(1, True)
    assert values_match(3, 3.0)


def test_strings_and_enums_compare_case_insensitively():
    assert values_match("Confirmed", "confirmed")
    assert not values_match("confirmed", "cancelled")
    assert values_match(["A", "b"], ["a", "B"])
    assert not values_match(None, "x") and values_match(None, None)
    assert compare_answer({"status": "shipped"}, {"Status": "SHIPPED"}) == []
    assert compare_answer({"total": 10.5}, {"total": 10.51}, {"total": 2})


def test_a_free_text_infeasible_answer_is_a_report():
    assert Submission.from_text("This is infeasible: the tool is missing").infeasible
    assert not Submission.from_text("done, total 12.50").infeasible
    assert not Submission.from_text(None).infeasible


def test_pass_hat_k_is_the_unbiased_estimate():
    assert pass_hat_k([3], 4, 2) == 0.5
    assert pass_hat_k([4, 0], 4, 2) == 0.5
    assert pass_hat_k([2], 4, 3) == 0.0
    with pytest.raises(ValueError):
        pass_hat_k([5], 4, 2)
    with pytest.raises(ValueError):
        pass_hat_k([1], 4, 5)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 6).flatmap(lambda n: st.tuples(
    st.just(n), st.integers(1, n), st.lists(st.lists(st.booleans(), min_size=n, max_size=n), min_size=1,
                                            max_size=4))))
def test_pass_hat_k_matches_brute_force_enumeration_over_subsets(case):
    n, k, trials = case
    brute = []
    for outcomes in trials:
        subsets = list(itertools.combinations(range(n), k))
        brute.append(sum(all(outcomes[i] for i in s) for s in subsets) / len(subsets))
    expected = sum(brute) / len(brute)
    assert math.isclose(pass_hat_k([sum(o) for o in trials], n, k), expected, rel_tol=1e-12, abs_tol=1e-15)
