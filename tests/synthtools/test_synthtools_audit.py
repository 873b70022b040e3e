"""The audit judges pairs against the engine as oracle, catches every mutation class, and checks trajectories."""

from __future__ import annotations

import random
from typing import Any

import pytest
from conftest import shared_data
from synthtools_returns import returns_toolset
from testbeds_synthtools.audit import (
    AuditPair,
    AuditResponse,
    Oracle,
    TrajectoryStep,
    WorldState,
    audit_pair,
    audit_trajectory,
    record_trajectory,
)
from testbeds_synthtools.generator import generate_toolset
from testbeds_synthtools.mutation import (
    EXPECTED_VERDICT,
    MUTATION_CLASSES,
    STATEFUL_CLASSES,
    CleanPair,
    audit_accuracy,
    clean_pairs,
    mutate,
    wilson,
)
from testbeds_synthtools.spec import Toolset


@pytest.fixture(scope="module")
def returns() -> Toolset:
    return returns_toolset()


@pytest.fixture(scope="module")
def returns_pairs(returns: Toolset) -> list[CleanPair]:
    return clean_pairs(returns, seed=3, n_pairs=300)


@pytest.fixture(scope="module")
def generated() -> list[Toolset]:
    return [generate_toolset(seed=0), generate_toolset(seed=5)]


@pytest.fixture(scope="module")
def generated_pairs(generated: list[Toolset]) -> list[tuple[Toolset, list[CleanPair]]]:
    return [(t, clean_pairs(t, seed=1, n_pairs=120)) for t in generated]


def ok(result: dict[str, Any]) -> AuditResponse:
    return AuditResponse(ok=True, status=200, result=result)


# ------------------------------------------------------------------------------------------- Wilson


def test_wilson_intervals_match_known_values() -> None:
    assert wilson(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert wilson(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson(10, 10) == pytest.approx((0.7225, 1.0), abs=1e-4)
    assert wilson(95, 100) == pytest.approx((0.8882, 0.9785), abs=1e-4)


def test_zero_of_n_gives_an_upper_bound_near_four_over_n() -> None:
    lo, hi = wilson(0, 3000)
    assert lo == 0.0
    assert hi == pytest.approx(3.8415 / 3003.8415, rel=1e-4)
    assert hi < 0.0013
    assert wilson(0, 0) == (0.0, 1.0)


# ------------------------------------------------------------------------------------------- clean pairs


def test_clean_pairs_mix_successes_and_errors_and_get_no_false_positives(
        returns: Toolset, returns_pairs: list[CleanPair]) -> None:
    assert sum(p.pair.response.ok for p in returns_pairs) > 50
    assert sum(not p.pair.response.ok for p in returns_pairs) > 50
    intents = {p.intent for p in returns_pairs}
    assert {"valid:example", "invalid:omit", "invalid:retype", "valid:read_back"} <= intents
    with Oracle(returns) as oracle:
        verdicts = [audit_pair(returns, p.pair, oracle=oracle) for p in returns_pairs]
    wrong = [(p.pair.tool, v.reasons) for p, v in zip(returns_pairs, verdicts, strict=True) if v.verdict != "correct"]
    assert wrong == []


def test_clean_pairs_of_generated_toolsets_get_no_false_positives(
        generated_pairs: list[tuple[Toolset, list[CleanPair]]]) -> None:
    for toolset, pairs in generated_pairs:
        with Oracle(toolset) as oracle:
            bad = [p.pair.tool for p in pairs if audit_pair(toolset, p.pair, oracle=oracle).verdict != "correct"]
        assert bad == [], toolset.id


# ------------------------------------------------------------------------------------------- mutations


def _mutants(toolset: Toolset, pairs: list[CleanPair], cls: str, want: int = 12) -> list[Any]:
    rng = random.Random(7)
    out = []
    for p in pairs:
        m = mutate(toolset, p, cls, rng)  # type: ignore[arg-type]
        if m is not None:
            out.append(m)
            if len(out) >= want:
                break
    return out


@pytest.mark.parametrize("cls", MUTATION_CLASSES)
def test_each_mutation_class_gets_its_verdict_on_the_hand_made_stateful_toolset(
        returns: Toolset, returns_pairs: list[CleanPair], cls: str) -> None:
    mutants = _mutants(returns, returns_pairs, cls)
    assert mutants, f"no {cls} mutant"
    with Oracle(returns) as oracle:
        got = [audit_pair(returns, m.pair, oracle=oracle).verdict for m in mutants]
    assert got == [EXPECTED_VERDICT[cls]] * len(mutants)


@pytest.mark.parametrize("cls", MUTATION_CLASSES)
def test_each_mutation_class_gets_its_verdict_on_generated_toolsets(
        generated_pairs: list[tuple[Toolset, list[CleanPair]]], cls: str) -> None:
    seen = 0
    for toolset, pairs in generated_pairs:
        mutants = _mutants(toolset, pairs, cls, want=6)
        seen += len(mutants)
        with Oracle(toolset) as oracle:
            got = [audit_pair(toolset, m.pair, oracle=oracle).verdict for m in mutants]
        assert got == [EXPECTED_VERDICT[cls]] * len(mutants)
    assert seen > 0, f"no {cls} mutant"


def test_a_mutant_equal_to_the_correct_response_is_not_counted(returns: Toolset) -> None:
    from testbeds_synthtools.mutation import confirmed

    pair = AuditPair(tool="get_return_request", arguments={"return_request_id": "RET-000001"}, response=ok({"n": 3}))
    same = pair.model_copy(update={"response": ok({"n": 3.0})})
    assert not confirmed(pair, same)
    assert confirmed(pair, pair.model_copy(update={"response": ok({"n": 4})}))


def test_the_accuracy_report_counts_every_class_and_no_false_positives(returns: Toolset) -> None:
    report = audit_accuracy([returns], seed=2, n_pairs=60)
    assert report.false_positives.k == 0 and report.false_positives.n == 60
    assert report.false_positives.high == pytest.approx(wilson(0, 60)[1])
    assert [c.cls for c in report.classes] == list(MUTATION_CLASSES)
    assert report.overall_recall.value is not None and report.overall_recall.value >= 0.99
    assert "flip_to_error" in report.table() and "FP rate" in report.table()


def test_stateful_classes_do_not_apply_to_a_stateless_corpus_toolset() -> None:
    root = shared_data("synthtools")
    if not (root / "tool_json").is_dir():
        pytest.skip("SynthTools corpus not available")
    from testbeds_synthtools.importer import import_toolset

    toolset = import_toolset(root, "education_elearning.224")
    assert toolset.state_schema is None
    report = audit_accuracy([toolset], seed=0, n_pairs=25)
    assert report.false_positives.k == 0
    for c in report.classes:
        if c.cls in STATEFUL_CLASSES:
            assert c.recall.n == 0 and c.not_applicable == 25
            assert "needs state" in report.table()
        elif c.recall.n:
            assert c.recall.k == c.recall.n


# ------------------------------------------------------------------------------------------- pair audit


def test_a_transcript_without_states_is_judged_on_the_seed_world(returns: Toolset) -> None:
    good = {"return_request_id": "RET-000001", "order_id": "ORD001", "status": "initiated", "refund_amount": 149.99}
    seed = WorldState.seed(returns)
    row = next(r for r in seed.tables["return_requests"] if r["return_request_id"] == "RET-000001")
    good = {k: row[k] for k in good}
    pair = AuditPair(tool="get_return_request", arguments={"return_request_id": "RET-000001"}, response=ok(good))
    assert audit_pair(returns, pair).verdict == "correct"
    bad = AuditPair(tool="get_return_request", arguments={"return_request_id": "RET-000001"},
                    response=ok({**good, "status": "refunded" if good["status"] != "refunded" else "approved"}))
    v = audit_pair(returns, bad)
    assert v.verdict == "inappropriate_response"
    assert [r.kind for r in v.reasons] == ["value"] and v.reasons[0].path == "status"


def test_an_unknown_tool_must_fail(returns: Toolset) -> None:
    err = AuditPair(tool="no_such_tool", arguments={}, response=AuditResponse(ok=False, status=404,
                                                                               code="unknown_tool"))
    assert audit_pair(returns, err).verdict == "correct"
    wrong = AuditPair(tool="no_such_tool", arguments={}, response=ok({"x": 1}))
    assert audit_pair(returns, wrong).verdict == "should_have_failed"


def test_free_synthetic_keys_are_checked_for_shape_only_when_not_strict(returns: Toolset) -> None:
    args = {"customer_id": "CUST001", "item_values": [20.0], "tax_rate": 0.1}
    with Oracle(returns) as oracle:
        exp = oracle.expect("calculate_refund", args)
        assert "refund_id" in exp.synthetic_keys
        result = {**exp.response.result, "refund_id": "REF-FROM-AN-LLM"}
        pair = AuditPair(tool="calculate_refund", arguments=args, response=ok(result))
        assert audit_pair(returns, pair, oracle=oracle).verdict == "inappropriate_response"
        assert audit_pair(returns, pair, oracle=oracle, strict_synthetic=False).verdict == "correct"
        wrong_tax = AuditPair(tool="calculate_refund", arguments=args,
                              response=ok({**result, "tax_refund": 2.01}))
        v = audit_pair(returns, wrong_tax, oracle=oracle, strict_synthetic=False)
        assert v.verdict == "inappropriate_response" and v.reasons[0].path == "tax_refund"
        echo = AuditPair(tool="calculate_refund", arguments=args, response=ok({**result, "customer_id": "CUST002"}))
        assert audit_pair(returns, echo, oracle=oracle, strict_synthetic=False).verdict == "inappropriate_response"


def test_money_is_exact_to_the_cent_and_float_noise_is_tolerated(returns: Toolset) -> None:
    args = {"customer_id": "CUST001", "item_values": [0.1, 0.2], "quantities": [1, 1], "tax_rate": 0.0}
    with Oracle(returns) as oracle:
        result = dict(oracle.expect("calculate_refund", args).response.result)
        noisy = AuditPair(tool="calculate_refund", arguments=args,
                          response=ok({**result, "gross_refund": 0.1 + 0.2}))
        assert audit_pair(returns, noisy, oracle=oracle).verdict == "correct"
        cent = AuditPair(tool="calculate_refund", arguments=args,
                         response=ok({**result, "gross_refund": result["gross_refund"] + 0.01}))
        assert audit_pair(returns, cent, oracle=oracle).verdict == "inappropriate_response"


def test_a_write_judged_against_the_pairs_own_pre_state(returns: Toolset) -> None:
    steps = record_trajectory(returns, [("cancel_return_request", {"return_request_id": "RET-000001"}),
                                        ("cancel_return_request", {"return_request_id": "RET-000001"})])
    first, second = steps
    assert first.response.ok
    pair = AuditPair(tool=second.tool, arguments=second.arguments, pre_state=second.pre_state,
                     response=second.response, post_state=second.post_state)
    assert audit_pair(returns, pair).verdict == "correct"
    replayed_on_seed = pair.model_copy(update={"pre_state": first.pre_state, "post_state": first.pre_state})
    assert audit_pair(returns, replayed_on_seed).verdict != "correct"


# ------------------------------------------------------------------------------------------- trajectories


def _tamper(world: WorldState, table: str, column: str, value: Any) -> WorldState:
    w = world.model_copy(deep=True)
    w.tables[table][0][column] = value
    return w


def test_a_recorded_engine_trajectory_has_no_findings(returns: Toolset) -> None:
    calls = [("get_return_request", {"return_request_id": "RET-000001"}),
             ("update_return_status", {"return_request_id": "RET-000001", "new_status": "approved"}),
             ("update_return_status", {"return_request_id": "RET-000001", "new_status": "approved"}),
             ("get_return_request", {"return_request_id": "RET-000001"}),
             ("get_return_request", {"return_request_id": "RET-000001"}),
             ("get_return_request", {"return_request_id": "NOPE"}),
             ("create_return_request", {"order_id": "ORD001", "reason": "defective", "refund_amount": 5}),
             ("delete_customer", {"customer_id": "CUST001"})]
    assert audit_trajectory(returns, record_trajectory(returns, calls)) == []


def test_a_read_only_tool_that_writes_is_caught(returns: Toolset) -> None:
    steps = record_trajectory(returns, [("get_return_request", {"return_request_id": "RET-000001"})])
    written = _tamper(steps[0].post_state, "customers", "name", "Mallory")  # type: ignore[arg-type]
    steps[0] = steps[0].model_copy(update={"post_state": written})
    found = audit_trajectory(returns, steps)
    assert [f.check for f in found] == ["read_only_state"]


def test_an_error_that_changes_state_is_caught(returns: Toolset) -> None:
    steps = record_trajectory(returns, [("get_return_request", {"return_request_id": "NOPE"})])
    assert not steps[0].response.ok
    steps[0] = steps[0].model_copy(update={"post_state": _tamper(steps[0].pre_state, "customers", "name", "X")})
    assert [f.check for f in audit_trajectory(returns, steps)] == ["error_state"]


def test_errors_and_read_only_writes_are_caught_from_hashes_alone(returns: Toolset) -> None:
    step = TrajectoryStep(tool="get_return_request", arguments={"return_request_id": "RET-000001"},
                          response=ok({}), state_hash_before="a", state_hash_after="b")
    err = TrajectoryStep(tool="create_return_request", arguments={}, response=AuditResponse(ok=False, status=400),
                         state_hash_before="b", state_hash_after="c")
    assert [f.check for f in audit_trajectory(returns, [step, err])] == ["read_only_state", "error_state"]


def test_an_idempotent_repeat_that_changes_state_is_caught(returns: Toolset) -> None:
    call = ("update_return_status", {"return_request_id": "RET-000002", "new_status": "refunded"})
    steps = record_trajectory(returns, [call, call])
    assert steps[1].response.ok and audit_trajectory(returns, steps) == []
    post = _tamper(steps[1].post_state, "customers", "name", "Changed again")  # type: ignore[arg-type]
    steps[1] = steps[1].model_copy(update={"post_state": post})
    found = audit_trajectory(returns, steps)
    assert [(f.check, f.step, f.other_step) for f in found] == [("idempotent_repeat", 1, 0)]


def test_repeated_reads_that_differ_are_caught(returns: Toolset) -> None:
    call = ("get_return_request", {"return_request_id": "RET-000001"})
    steps = record_trajectory(returns, [call, call])
    result = dict(steps[1].response.result)
    result["refund_amount"] = result["refund_amount"] + 1
    steps[1] = steps[1].model_copy(update={"response": ok(result)})
    checks = [f.check for f in audit_trajectory(returns, steps)]
    assert "repeated_read" in checks


def test_a_read_that_misses_an_earlier_write_is_caught(returns: Toolset) -> None:
    steps = record_trajectory(returns, [
        ("get_return_request", {"return_request_id": "RET-000001"}),
        ("update_return_status", {"return_request_id": "RET-000001", "new_status": "approved"}),
        ("get_return_request", {"return_request_id": "RET-000001"})])
    stale = steps[0].response.result
    assert stale["status"] != "approved"
    steps[2] = steps[2].model_copy(update={"response": ok(dict(stale))})
    found = audit_trajectory(returns, steps)
    assert [f.check for f in found] == ["read_after_write"]
    assert "status" in found[0].message
