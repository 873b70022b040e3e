"""LLM mode: a scripted LLM fills free values; cache record/replay; fallback; refused patches."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from synthtools_returns import returns_toolset
from testbeds_synthtools.engine import Session
from testbeds_synthtools.llm_sim import (
    DeterministicSimulator,
    LLMSimulator,
    ReplayMiss,
    SimCache,
    parse_answer,
)

pytestmark = pytest.mark.anyio

REFUND = {"customer_id": "CUST001", "item_values": [149.99], "tax_rate": 0.08, "shipping_cost": 9.99,
          "restocking_fee_rate": 0.15}


class ScriptedLLM:
    """Answers from a script: each answer is a function of the prompt; counts calls."""

    def __init__(self, answer: Any):
        self.answer = answer
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    async def __call__(self, system: str, prompt: str, schema: dict[str, Any]) -> str:
        self.calls.append((system, prompt, schema))
        return self.answer(prompt) if callable(self.answer) else self.answer


def refund_answer(prompt: str) -> str:
    # a plausible LLM: fills the free keys, and (wrongly) tries to change a fixed one
    return json.dumps({"result": {"customer_id": "CUST001", "gross_refund": 1.0, "tax_refund": 1.0,
                                  "total_deductions": 1.0, "net_refund": 137.48,
                                  "breakdown": ["Restocking fee (15%): $22.50"], "refund_id": "RF-1001"}})


async def test_the_llm_fills_free_keys_and_the_engine_keeps_bound_ones() -> None:
    llm = ScriptedLLM(refund_answer)
    s = Session(returns_toolset(), simulator=LLMSimulator(llm, provider="test", model="scripted"))
    got = await s.acall("calculate_refund", REFUND)
    assert got.ok and got.result is not None
    assert got.result["net_refund"] == 149.48 and got.result["tax_refund"] == 12.0
    assert got.result["breakdown"] == ["Restocking fee (15%): $22.50"] and got.result["refund_id"] == "RF-1001"
    assert got.meta["simulator"] == "llm" and "synthetic" not in got.meta
    system, prompt, schema = llm.calls[0]
    assert '"net_refund":149.48' in prompt and "breakdown" in prompt and schema["required"] == ["result"]


async def test_record_then_replay_gives_identical_results_without_the_llm(tmp_path: Path) -> None:
    calls = [("calculate_refund", REFUND), ("create_return_request",
                                            {"order_id": "ORD001", "reason": "defective", "refund_amount": 5}),
             ("update_return_status", {"return_request_id": "RET-000004", "new_status": "approved"}),
             ("calculate_refund", {**REFUND, "tax_rate": 0.05})]

    def answer(prompt: str) -> str:
        if prompt.startswith("Tool: update_return_status"):
            return json.dumps({"result": {"return_request_id": "RET-000004", "status": "approved",
                                          "message": "Return approved"}})
        return refund_answer(prompt)

    llm = ScriptedLLM(answer)
    cache = SimCache(tmp_path / "sim.db")
    rec = Session(returns_toolset(), seed=4, simulator=LLMSimulator(llm, provider="test", model="m", cache=cache,
                                                                   mode="record"))
    recorded = [await rec.acall(n, a) for n, a in calls]
    assert len(llm.calls) == 3 and len(cache) == 3
    replayer = LLMSimulator(None, provider="test", model="m", cache=SimCache(tmp_path / "sim.db"), mode="replay")
    rep = Session(returns_toolset(), seed=4, simulator=replayer)
    replayed = [await rep.acall(n, a) for n, a in calls]
    assert [r.model_dump(exclude={"meta"}) for r in replayed] == [r.model_dump(exclude={"meta"}) for r in recorded]
    assert {r.meta.get("simulator") for r in replayed} == {"cache", None}
    assert replayer.live_calls == 0 and rep.state_hash() == rec.state_hash()


async def test_replay_on_an_empty_cache_raises_replay_miss_and_writes_nothing(tmp_path: Path) -> None:
    sim = LLMSimulator(None, cache=SimCache(tmp_path / "empty"), mode="replay")
    s = Session(returns_toolset(), simulator=sim)
    h = s.state_hash()
    with pytest.raises(ReplayMiss, match="replay miss for calculate_refund"):
        await s.acall("calculate_refund", REFUND)
    with pytest.raises(ReplayMiss):
        await s.acall("update_return_status", {"return_request_id": "RET-000001", "new_status": "approved"})
    assert s.state_hash() == h and s.tick == 0 and s.changes() == []
    assert sim.live_calls == 0
    # calls that need no LLM still work from the engine alone
    read = await s.acall("get_return_request", {"return_request_id": "RET-000001"})
    assert read.ok and read.meta["source"] == "state"


async def test_invalid_llm_json_n_times_falls_back_to_the_deterministic_answer() -> None:
    llm = ScriptedLLM("this is not json {")
    s = Session(returns_toolset(), simulator=LLMSimulator(llm, max_tries=3))
    got = await s.acall("calculate_refund", REFUND)
    plain = Session(returns_toolset()).call("calculate_refund", REFUND)
    assert len(llm.calls) == 3
    assert got.result == plain.result and got.meta["simulator"] == "fallback" and got.meta["synthetic"] is True
    assert len(got.meta["refusals"]) == 3 and "not JSON" in got.meta["refusals"][0]
    assert "previous answer was refused" in llm.calls[1][1]


async def test_an_answer_failing_the_output_schema_is_retried_with_its_problems() -> None:
    answers = iter([json.dumps({"result": {"breakdown": "one string", "refund_id": "R1"}}), refund_answer("")])
    llm = ScriptedLLM(lambda prompt: next(answers))
    s = Session(returns_toolset(), simulator=LLMSimulator(llm))
    got = await s.acall("calculate_refund", REFUND)
    assert got.meta["simulator"] == "llm" and got.meta["tries"] == 2
    assert "is not of type 'array'" in llm.calls[1][1]


async def test_a_proposed_write_to_an_undeclared_column_is_refused() -> None:
    bad = json.dumps({"result": {"return_request_id": "RET-000001", "status": "approved", "message": "ok"},
                      "patches": [{"table": "return_requests", "key": "RET-000001", "set": {"reason": "fraud"}}]})
    llm = ScriptedLLM(bad)
    s = Session(returns_toolset(), simulator=LLMSimulator(llm, max_tries=2))
    got = await s.acall("update_return_status", {"return_request_id": "RET-000001", "new_status": "approved"})
    assert got.ok and got.meta["simulator"] == "fallback"
    assert "not declared writable" in got.meta["refusals"][0]
    assert [(c.key, set(k for k in c.after if c.after[k] != c.before[k])) for c in got.changes] == [
        ("RET-000001", {"status"})]
    assert s.snapshot()["return_requests"][0]["reason"] == "defective"


async def test_an_accepted_patch_is_applied_in_the_calls_savepoint_and_logged() -> None:
    good = json.dumps({"result": {"return_request_id": "RET-000001", "status": "approved", "message": "done"},
                       "patches": [{"table": "return_requests", "key": "RET-000001", "set": {"status": "refunded"}}]})
    s = Session(returns_toolset(), simulator=LLMSimulator(ScriptedLLM(good)))
    got = await s.acall("update_return_status", {"return_request_id": "RET-000001", "new_status": "approved"})
    assert got.ok and got.result is not None and got.result["message"] == "done"
    assert [(c.key, c.after["status"]) for c in got.changes] == [("RET-000001", "approved"),
                                                                 ("RET-000001", "refunded")]
    assert s.tick == 1


async def test_a_patch_of_a_row_other_than_the_calls_own_is_refused() -> None:
    other = json.dumps({"result": {"return_request_id": "RET-000001", "status": "approved", "message": "done"},
                        "patches": [{"table": "return_requests", "key": "RET-000002", "set": {"status": "refunded"}}]})
    s = Session(returns_toolset(), simulator=LLMSimulator(ScriptedLLM(other), max_tries=1))
    before = s.snapshot()["return_requests"][1]
    got = await s.acall("update_return_status", {"return_request_id": "RET-000001", "new_status": "approved"})
    assert got.ok and got.meta["simulator"] == "fallback"
    assert "RET-000002" in got.meta["refusals"][0] and "only the row 'RET-000001'" in got.meta["refusals"][0]
    assert [c.key for c in got.changes] == ["RET-000001"]
    assert s.snapshot()["return_requests"][1] == before


async def test_read_only_tools_may_not_write_and_bad_transitions_are_refused() -> None:
    patch = {"patches": [{"table": "return_requests", "key": "RET-000001", "set": {"status": "initiated"}}]}
    ans = json.dumps({"result": {"return_request_id": "RET-000001", "status": "approved", "message": "x"}, **patch})
    s = Session(returns_toolset(), simulator=LLMSimulator(ScriptedLLM(ans), max_tries=1))
    got = await s.acall("update_return_status", {"return_request_id": "RET-000001", "new_status": "approved"})
    assert got.meta["simulator"] == "fallback" and "transition" in got.meta["refusals"][0]
    ans2 = json.dumps({"result": json.loads(refund_answer(""))["result"], **patch})
    s2 = Session(returns_toolset(), simulator=LLMSimulator(ScriptedLLM(ans2), max_tries=1))
    got2 = await s2.acall("calculate_refund", REFUND)
    assert got2.meta["simulator"] == "fallback" and "not writable" in got2.meta["refusals"][0]


async def test_the_deterministic_simulator_matches_the_plain_engine() -> None:
    s = Session(returns_toolset(), simulator=DeterministicSimulator())
    got = await s.acall("calculate_refund", REFUND)
    assert got.result == Session(returns_toolset()).call("calculate_refund", REFUND).result


async def test_the_cache_key_depends_on_state_and_arguments_not_key_order(tmp_path: Path) -> None:
    llm = ScriptedLLM(refund_answer)
    sim = LLMSimulator(llm, cache=SimCache(tmp_path / "dir"), mode="record")
    s = Session(returns_toolset(), simulator=sim)
    await s.acall("calculate_refund", REFUND)
    await s.acall("calculate_refund", dict(reversed(list(REFUND.items()))))
    assert len(llm.calls) == 1
    await s.acall("create_return_request", {"order_id": "ORD001", "reason": "defective", "refund_amount": 5})
    await s.acall("calculate_refund", REFUND)
    assert len(llm.calls) == 2


def test_answers_in_code_fences_parse_and_junk_is_rejected() -> None:
    result, patches = parse_answer('```json\n{"result": {"a": 1}, "patches": []}\n```')
    assert result == {"a": 1} and patches == []
    for junk in ("[]", '{"result": 3}', '{"result": {}, "extra": 1}', '{"result": {}, "patches": [{"x": 1}]}'):
        with pytest.raises(ValueError):
            parse_answer(junk)
