"""The engine: atomic calls, ids, clock, exact money, effects, determinism, faults and the corpus examples."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from conftest import shared_data
from synthtools_returns import RETURNS, returns_toolset
from testbeds_synthtools.curated import curate
from testbeds_synthtools.engine import InternalError, Session, money_to_units, units_to_money
from testbeds_synthtools.faults import FaultConfig
from testbeds_synthtools.importer import import_toolset, list_corpus
from testbeds_synthtools.spec import Toolset, canonical_json, schema_validator

CREATE = {"order_id": "ORD001", "reason": "defective", "refund_amount": 20.0}


@pytest.fixture
def session() -> Session:
    s = Session(returns_toolset())
    yield s
    s.close()


def test_a_failed_create_leaves_state_counters_and_clock_unchanged(session: Session) -> None:
    before = (session.state_hash(), session.counters(), session.tick, session.now(), session.changes())
    bad = session.call("create_return_request", {**CREATE, "order_id": "ORD404"})
    assert not bad.ok and (bad.status, bad.code, bad.stage) == (404, "order_not_found", "precondition")
    assert bad.changes == [] and bad.tick == 0
    assert (session.state_hash(), session.counters(), session.tick, session.now(), session.changes()) == before


def test_ids_come_from_the_table_counter_and_a_failure_does_not_burn_one(session: Session) -> None:
    first = session.call("create_return_request", CREATE)
    assert first.ok and first.result is not None and first.result["return_request_id"] == "RET-000004"
    assert not session.call("create_return_request", {**CREATE, "order_id": "ORD404"}).ok
    second = session.call("create_return_request", CREATE)
    assert second.result is not None and second.result["return_request_id"] == "RET-000005"
    assert session.counters()["return_requests"] == 5


def test_the_clock_ticks_once_per_committed_write_and_never_on_reads(session: Session) -> None:
    assert session.now() == "2025-03-01T09:00:00Z"
    session.call("get_return_request", {"return_request_id": "RET-000001"})
    session.call("list_return_requests", {})
    assert session.tick == 0
    created = session.call("create_return_request", CREATE)
    assert created.tick == 1 and created.result is not None
    assert created.result["created_at"] == "2025-03-01T09:01:00Z" == session.now()
    session.call("update_return_status", {"return_request_id": "RET-000001", "new_status": "approved"})
    assert session.tick == 2 and session.now() == "2025-03-01T09:02:00Z"
    assert [c.tick for c in session.changes()] == [1, 2]


def test_money_is_stored_in_cents_and_rounded_half_up() -> None:
    assert money_to_units(149.99, 2) == 14999
    assert money_to_units(12.345, 2) == 1235 and money_to_units(2.675, 2) == 268
    assert units_to_money(14948, 2) == 149.48
    s = Session(returns_toolset())
    got = s.call("create_return_request", {**CREATE, "refund_amount": 0.1 + 0.2})
    assert got.result is not None and got.result["refund_amount"] == 0.3
    raw = s._conn.execute("SELECT refund_amount FROM return_requests WHERE return_request_id = 'RET-000004'")
    assert raw.fetchone()[0] == 30


def test_the_curated_refund_formula_gives_149_48(session: Session) -> None:
    got = session.call("calculate_refund", {"customer_id": "CUST001", "item_values": [149.99], "tax_rate": 0.08,
                                            "shipping_cost": 9.99, "restocking_fee_rate": 0.15})
    assert got.ok and got.result is not None
    assert (got.result["gross_refund"], got.result["tax_refund"], got.result["total_deductions"],
            got.result["net_refund"]) == (149.99, 12.0, 22.5, 149.48)
    assert got.meta["source"] == "formula" and set(got.meta["synthetic_keys"]) == {"breakdown", "refund_id"}


def test_an_example_with_equal_canonical_arguments_replays_exactly(session: Session) -> None:
    # defaults spelled out, integral float, different key order: the same canonical call as the example
    got = session.call("calculate_refund", {"tax_rate": 0.1, "item_values": [10], "customer_id": "CUST009",
                                            "shipping_cost": 0.0, "refund_method": "card"})
    assert got.meta["source"] == "example" and got.result is not None and got.result["refund_id"] == "REF-EXAMPLE"


def test_reads_return_rows_and_a_missing_row_gets_the_specs_404(session: Session) -> None:
    got = session.call("get_return_request", {"return_request_id": "RET-000002"})
    assert got.result == {"return_request_id": "RET-000002", "order_id": "ORD002", "status": "approved",
                          "refund_amount": 29.99}
    missing = session.call("get_return_request", {"return_request_id": "RET-999"})
    assert (missing.status, missing.code, missing.message) == (
        404, "return_request_not_found", "Return request not found: The provided return_request_id does not exist.")


def test_updates_follow_declared_transitions_and_without_a_set_argument_act_as_reads(session: Session) -> None:
    h = session.state_hash()
    same = session.call("update_return_status", {"return_request_id": "RET-000001"})
    assert same.ok and same.result is not None and same.result["status"] == "initiated"
    assert session.state_hash() == h and session.tick == 0
    bad = session.call("update_return_status", {"return_request_id": "RET-000001", "new_status": "refunded"})
    assert (bad.status, bad.code) == (409, "invalid_transition")
    assert bad.message == ("Invalid transition for status: 'initiated' -> 'refunded'. "
                           "Allowed from 'initiated': approved, rejected, cancelled")
    good = session.call("update_return_status", {"return_request_id": "RET-000001", "new_status": "approved"})
    assert good.ok and [(c.op, c.before["status"], c.after["status"]) for c in good.changes] == [
        ("update", "initiated", "approved")]


def test_list_filters_and_search_ranks_then_orders_by_key(session: Session) -> None:
    session.call("create_return_request", {**CREATE, "order_id": "ORD002"})
    got = session.call("list_return_requests", {"order_id": "ORD002"})
    assert got.result == {"return_request_ids": ["RET-000002", "RET-000004"], "count": 2}
    got = session.call("search_customers", {"query": "SMITH"})
    assert got.result == {"customers": [{"customer_id": "CUST002", "name": "Bob Smith"}], "count": 1}


def test_delete_writes_a_status_flag_or_removes_an_unreferenced_row(session: Session) -> None:
    flagged = session.call("cancel_return_request", {"return_request_id": "RET-000002"})
    assert flagged.result == {"return_request_id": "RET-000002", "status": "cancelled"}
    final = session.call("cancel_return_request", {"return_request_id": "RET-000003"})
    assert (final.status, final.code) == (409, "invalid_status_transition")
    referenced = session.call("delete_customer", {"customer_id": "CUST002"})
    assert (referenced.status, referenced.code) == (409, "conflict")
    doc = json.loads(json.dumps(RETURNS))
    doc["state_schema"]["tables"][0]["seed_rows"].append({"customer_id": "CUST003", "name": "Carol"})
    s = Session(Toolset.model_validate(doc))
    before = s.snapshot()
    gone = s.call("delete_customer", {"customer_id": "CUST003"})
    assert gone.result == {"customer_id": "CUST003", "deleted": True}
    assert s.diff(before, s.snapshot()) == {"customers": {"inserted": [], "updated": [], "deleted": ["CUST003"]}}


def test_snapshots_diff_by_key_and_the_change_log_records_each_write(session: Session) -> None:
    before = session.snapshot()
    created = session.call("create_return_request", CREATE)
    session.call("update_return_status", {"return_request_id": "RET-000004", "new_status": "rejected"})
    d = session.diff(before, session.snapshot())
    assert list(d) == ["return_requests"]
    assert [r["return_request_id"] for r in d["return_requests"]["inserted"]] == ["RET-000004"]
    assert d["return_requests"]["inserted"][0]["status"] == "rejected"
    log = session.changes()
    assert [(c.seq, c.call, c.op, c.key) for c in log] == [(1, 0, "insert", "RET-000004"),
                                                          (2, 1, "update", "RET-000004")]
    assert session.changes(since=1) == log[1:] and created.changes == log[:1]


def test_every_successful_output_validates_against_its_schema(session: Session) -> None:
    calls = [("create_return_request", CREATE), ("get_return_request", {"return_request_id": "RET-000001"}),
             ("update_return_status", {"return_request_id": "RET-000004", "new_status": "approved"}),
             ("list_return_requests", {"status": "approved"}), ("search_customers", {"query": "o"}),
             ("cancel_return_request", {"return_request_id": "RET-000004"}),
             ("calculate_refund", {"customer_id": "C7", "item_values": [1.5, 2.25], "quantities": [1, 2],
                                   "tax_rate": 0.2, "requested_at": "2025-03-02T00:00:00Z"})]
    for name, args in calls:
        got = session.call(name, args)
        assert got.ok, got
        assert schema_validator(session.toolset.tool(name).output_schema).is_valid(got.result)


def test_an_output_that_breaks_its_schema_is_an_internal_error() -> None:
    doc = json.loads(json.dumps(RETURNS))
    tool = next(t for t in doc["tools"] if t["name"] == "delete_customer")
    tool["effect"]["returns"] = {"deleted": "'yes'"}
    doc["state_schema"]["tables"][0]["seed_rows"].append({"customer_id": "CUST003", "name": "Carol"})
    s = Session(Toolset.model_validate(doc))
    h = s.state_hash()
    with pytest.raises(InternalError, match="deleted"):
        s.call("delete_customer", {"customer_id": "CUST003"})
    assert s.state_hash() == h and s.tick == 0


def test_faults_fire_only_when_enabled_and_change_nothing(session: Session) -> None:
    off = Session(returns_toolset(), faults=FaultConfig(enabled=False, rate=1.0))
    assert off.call("create_return_request", CREATE).ok
    on = Session(returns_toolset(), faults=FaultConfig(enabled=True, rate=1.0, seed=3, statuses=[429, 503]))
    h = on.state_hash()
    got = [on.call("create_return_request", CREATE) for _ in range(6)]
    assert all(not g.ok and g.status in (429, 503) and g.stage == "fault" for g in got)
    assert on.state_hash() == h and on.counters()["return_requests"] == 3
    again = Session(returns_toolset(), faults=FaultConfig(enabled=True, rate=1.0, seed=3, statuses=[429, 503]))
    assert [again.call("create_return_request", CREATE).status for _ in range(6)] == [g.status for g in got]
    half = Session(returns_toolset(), faults=FaultConfig(enabled=True, rate=0.5, seed=1))
    statuses = {half.call("get_return_request", {"return_request_id": "RET-000001"}).status for _ in range(40)}
    assert 200 in statuses and len(statuses) > 1


def test_a_session_database_on_disk_resumes_its_state(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    s = Session(returns_toolset(), path=path)
    s.call("create_return_request", CREATE)
    h, tick = s.state_hash(), s.tick
    s.close()
    again = Session(returns_toolset(), path=path)
    assert (again.state_hash(), again.tick) == (h, tick)
    nxt = again.call("create_return_request", CREATE)
    assert nxt.result is not None and nxt.result["return_request_id"] == "RET-000005" and nxt.call_index == 1
    again.close()
    other = returns_toolset().model_copy(update={"version": "2.0.0"})
    with pytest.raises(ValueError, match="another toolset"):
        Session(other, path=path)


SCRIPT = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, sys.argv[1])
    from synthtools_returns import returns_toolset
    from testbeds_synthtools.engine import Session
    from testbeds_synthtools.faults import FaultConfig
    s = Session(returns_toolset(), seed=11, faults=FaultConfig(enabled=True, rate=0.2, seed=5))
    calls = json.loads(sys.argv[2])
    out = [s.call(name, args).model_dump(mode="json") for name, args in calls]
    print(json.dumps({"results": out, "hash": s.state_hash()}, sort_keys=True))
""")
CALLS: list[tuple[str, dict[str, Any]]] = [
    ("create_return_request", CREATE), ("calculate_refund", {"customer_id": "C1", "item_values": [3.5, 1],
                                                             "tax_rate": 0.3}),
    ("update_return_status", {"return_request_id": "RET-000004", "new_status": "approved"}),
    ("list_return_requests", {}), ("update_return_status", {"return_request_id": "RET-000001", "new_status": "x"}),
    ("create_return_request", {**CREATE, "reason": "changed_mind"}),
    ("calculate_refund", {"customer_id": "C2", "item_values": [99.99], "tax_rate": 0.07, "quantities": [4]}),
]


def test_same_seed_and_calls_give_identical_results_in_two_processes() -> None:
    here = str(Path(__file__).parent)
    runs = [subprocess.run([sys.executable, "-c", SCRIPT, here, json.dumps(CALLS)], capture_output=True, text=True,
                           check=True, env={"PYTHONHASHSEED": str(seed), "PATH": ""}).stdout for seed in (1, 2)]
    assert runs[0] == runs[1]
    got = json.loads(runs[0])
    assert len(got["results"]) == len(CALLS) and any(r["ok"] for r in got["results"])
    assert any(r["meta"].get("synthetic") for r in got["results"])


@pytest.fixture(scope="module")
def corpus_root() -> Path:
    root = shared_data("synthtools")
    if not (root / "tool_json").is_dir():
        pytest.skip("SynthTools corpus absent")
    return root


def test_the_curated_task_2_refund_is_149_48_on_the_imported_toolset(corpus_root: Path) -> None:
    s = Session(curate(import_toolset(corpus_root, "ecommerce_and_retail.43")))
    got = s.call("refund_calculator", {"return_request_id": "RET001", "original_order_total": 171.98,
                                       "item_values": [149.99], "tax_rate": 0.08, "shipping_cost": 9.99,
                                       "restocking_fee_rate": 0.15})
    assert got.ok and got.result is not None
    assert {k: got.result[k] for k in ("gross_refund", "tax_refund", "shipping_refund", "total_deductions",
                                       "net_refund")} == {"gross_refund": 149.99, "tax_refund": 12.0,
                                                          "shipping_refund": 9.99, "total_deductions": 22.5,
                                                          "net_refund": 149.48}
    too_much = s.call("refund_calculator", {"return_request_id": "RET001", "original_order_total": 100.0,
                                            "item_values": [149.99], "tax_rate": 0.08, "shipping_cost": 9.99})
    assert (too_much.stage, too_much.code) == ("constraint", "item_value_mismatch")
    tracked = s.call("return_status_tracker", {"return_request_id": "RET001", "new_status": "approved"})
    assert tracked.result is not None and tracked.result["current_status"] == "approved"
    assert [(c.table, c.key, c.after["status"]) for c in tracked.changes] == [("return_requests", "RET001",
                                                                              "approved")]
    missing = s.call("return_status_tracker", {"return_request_id": "RET404", "new_status": "approved"})
    assert (missing.status, missing.code) == (404, "return_request_not_found")


def test_200_sampled_corpus_tools_replay_their_example_results_exactly(corpus_root: Path) -> None:
    meta = {p.name.removesuffix("__output.json") for p in (corpus_root / "tool_meta").glob("*__output.json")}
    ids = [e.toolset_id for e in list_corpus(corpus_root) if any(s in meta for s in e.stems)]
    cases = []
    for tid in ids:
        ts = import_toolset(corpus_root, tid)
        cases += [(ts, tool.name, ex) for tool in ts.tools for ex in tool.examples[:1]]
    step = max(1, len(cases) // 200)
    sample = cases[::step][:200]
    assert len(sample) == 200
    sessions: dict[str, Session] = {}
    mismatches = []
    for ts, name, ex in sample:
        s = sessions.setdefault(ts.id, Session(ts))
        got = s.call(name, ex.arguments)
        if not got.ok or canonical_json(got.result) != canonical_json(ex.result) or got.meta["source"] != "example":
            mismatches.append((ts.id, name, got.message))
    assert mismatches == []
