"""SynthTools' curated tasks as our tasks: safe parsing, engine replay, feasibility, serving."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from conftest import shared_data
from mcp import Client
from testbeds_serving import ServeOptions
from testbeds_synthtools.catalog import Catalog
from testbeds_synthtools.curated_tasks import CuratedTaskError, CuratedTasks, build_task, parse_call
from testbeds_synthtools.grading import grade
from testbeds_synthtools.server import SynthtoolsSettings, build
from testbeds_synthtools.spec import Toolset
from testbeds_synthtools.tasks import grade_calls, reference_submission, replay_reference

TOOLSET = "ecommerce_and_retail.43"


@pytest.fixture(scope="module")
def corpus() -> Path:
    return shared_data("synthtools")


@pytest.fixture(scope="module")
def toolset(corpus: Path) -> Toolset:
    return Catalog(corpus).load(TOOLSET)


@pytest.fixture(scope="module")
def curated(toolset: Toolset) -> CuratedTasks:
    got = Catalog.curated(toolset)  # cached per process: the server below serves the same tasks
    assert got is not None
    return got


def curated_doc(corpus: Path, n: int) -> dict:
    return yaml.safe_load((corpus / "task_curated" / f"ecommerce_and_retail_tool_spec_43.task{n}.yml").read_text())


def test_a_solution_call_is_parsed_into_a_title_and_literal_arguments() -> None:
    title, args = parse_call('ReturnItemInspector(return_request_id="RET003", item_ids=["ITEM004"], '
                             'packaging_intact=true, damage_notes = null, tax_rate = -0.5)')
    assert title == "ReturnItemInspector"
    assert args == {"return_request_id": "RET003", "item_ids": ["ITEM004"], "packaging_intact": True,
                    "damage_notes": None, "tax_rate": -0.5}


@pytest.mark.parametrize("text", [
    'RefundCalculator(x = __import__("os").system("true"))',
    "RefundCalculator(x = open)",
    "RefundCalculator(x = 1 + 2j * 3)",
    "RefundCalculator(**kwargs)",
    "RefundCalculator(1, 2)",
    "not a call at all (",
    "a.b(x = 1)",
    "X(" + "[" * 50_000 + "]" * 50_000 + ")",
])
def test_anything_but_literal_arguments_is_refused_without_being_evaluated(text: str) -> None:
    with pytest.raises(CuratedTaskError):
        parse_call(text)


def test_curated_task_2_replays_to_the_reference_refund_of_149_48(curated: CuratedTasks, toolset: Toolset) -> None:
    task = next(t for t in curated.tasks if t.id == f"{TOOLSET}/curated/2")
    assert task.tier == "simple" and task.feasible
    assert [c.tool for c in task.reference_solution] == ["refund_calculator", "payment_processor",
                                                         "customer_notifier"]
    assert task.expected_answer == {"net_refund": 149.48} and task.answer_money == {"net_refund": 2}
    session, submission = replay_reference(task, toolset)
    try:
        verdict = grade(task, session, submission)
    finally:
        session.close()
    assert verdict.passed, verdict.reasons
    assert not grade_calls(task, toolset, [])  # the empty agent fails


def test_every_curated_file_is_reported_and_task_5s_hand_written_refund_is_flagged(curated: CuratedTasks) -> None:
    assert [r.file.split(".")[-2] for r in curated.report] == ["task2", "task5", "task9"]
    assert [r.status for r in curated.report] == ["kept", "kept", "kept"]
    assert [t.tier for t in curated.tasks] == ["simple", "medium", "complex"]
    task5 = curated.report[1]
    assert any("refund_amount=32.39" in w and "net_refund=48.38" in w for w in task5.warnings)


def test_a_task_needing_a_tool_without_a_spec_becomes_infeasible_and_says_which(corpus: Path,
                                                                               toolset: Toolset) -> None:
    doc = copy.deepcopy(curated_doc(corpus, 2))
    doc["task_data"]["tools_required"].append("Restocking Assessor")
    task, report = build_task(doc, toolset, 2)
    assert task is not None and not task.feasible and task.infeasible_kind == "tool_absent"
    assert report.status == "infeasible" and "Restocking Assessor" in report.reasons[0]
    assert task.reference_solution == [] and task.expected_diff == {}
    assert grade_calls(task, toolset, []) is False  # no report made
    session, submission = replay_reference(task, toolset)
    try:
        assert grade(task, session, reference_submission(task)).passed
    finally:
        session.close()


def test_a_solution_that_fails_on_the_engine_is_dropped_with_the_failing_step(corpus: Path,
                                                                             toolset: Toolset) -> None:
    doc = copy.deepcopy(curated_doc(corpus, 2))
    doc["solution"][0]["tool_call1"] = doc["solution"][0]["tool_call1"].replace("tax_rate = 0.08", "tax_rate = 7")
    task, report = build_task(doc, toolset, 2)
    assert task is None and report.status == "dropped"
    assert report.reasons[0].startswith("solution step 1 (refund_calculator) fails on the engine")



@pytest.mark.anyio
async def test_start_task_serves_curated_task_2_and_a_faithful_agent_passes(corpus: Path,
                                                                          curated: CuratedTasks) -> None:
    srv = build(ServeOptions(), SynthtoolsSettings(corpus=corpus))
    async with Client(srv) as client:
        started = (await client.call_tool("start_task", {"toolset": TOOLSET, "tier": "simple"})).structured_content
        assert "RET001" in started["instruction"] and "net_refund" in started["instruction"]
        handle = started["handle"]
        refund = await client.call_tool("refund_calculator", {
            "handle": handle, "return_request_id": "RET001", "original_order_total": 171.98,
            "item_values": [149.99], "tax_rate": 0.08, "shipping_cost": 9.99, "restocking_fee_rate": 0.15})
        assert refund.structured_content["net_refund"] == 149.48
        done = await client.call_tool("submit_task", {"handle": handle, "answer": {"net_refund": 149.48}})
        started2 = (await client.call_tool("start_task", {"toolset": TOOLSET, "tier": "simple"})).structured_content
        wrong = await client.call_tool("submit_task", {"handle": started2["handle"],
                                                       "answer": {"net_refund": 137.48}})
    assert done.structured_content["passed"], done.structured_content
    assert not wrong.structured_content["passed"]
