"""The testbeds-mixopt MCP server: studies behind handles that survive restarts, validation, ground truth."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mcp import Client
from testbeds_mixopt.server import build
from testbeds_serving import ServeOptions
from testbeds_serving.testing import stdio_client

pytestmark = pytest.mark.anyio
UNIFORM = [0.2] * 5


async def create(client: Client, **kwargs) -> dict:
    result = await client.call_tool("create_study", {"metric": "loss_stackexchange", "budget": 3.0, "seed": 1,
                                                     **kwargs})
    assert not result.is_error, result.content
    return result.structured_content


async def test_the_advisor_loop_runs_suggestions_and_recommends_within_budget(tmp_path: Path) -> None:
    async with Client(build(ServeOptions(), store_path=tmp_path / "s.db")) as client:
        handle = (await create(client))["handle"]
        for _ in range(4):
            suggested = (await client.call_tool("suggest", {"handle": handle})).structured_content
            for run in suggested["runs"]:
                args = {k: run[k] for k in ("mixture", "size_m", "steps", "resume_run")}
                result = await client.call_tool("run_simulation", {"handle": handle, **args})
                assert not result.is_error, result.content
                json.dumps(result.structured_content)
        rec = (await client.call_tool("recommend", {"handle": handle})).structured_content
        history = (await client.call_tool("study_history", {"handle": handle})).structured_content
    assert abs(sum(rec["mixture"]) - 1) < 1e-9 and min(rec["mixture"]) >= 0
    assert history["spent"] <= 3.0 + 1e-9 and len(history["runs"]) >= 4


@pytest.mark.parametrize(("args", "message"), [
    ({"mixture": [0.3] * 5, "size_m": 150, "steps": 6000}, "sum to 1"),
    ({"mixture": [0.2, 0.2, 0.2, 0.2, float("nan")], "size_m": 150, "steps": 6000}, ""),
    ({"mixture": UNIFORM, "size_m": 5000, "steps": 6000}, "size"),
    ({"mixture": UNIFORM, "size_m": 150, "steps": 6050}, "100"),
    ({"mixture": UNIFORM, "size_m": 1000, "steps": 19500}, "budget"),
])
async def test_bad_runs_get_clear_errors_and_charge_nothing(tmp_path: Path, args: dict, message: str) -> None:
    async with Client(build(ServeOptions(), store_path=tmp_path / "s.db")) as client:
        handle = (await create(client, budget=0.5))["handle"]
        result = await client.call_tool("run_simulation", {"handle": handle, **args})
        assert result.is_error and message in result.content[0].text
        history = (await client.call_tool("study_history", {"handle": handle})).structured_content
    assert history["spent"] == 0 and history["runs"] == []


async def test_a_study_survives_a_server_restart_under_the_same_handle(tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    async with Client(build(ServeOptions(), store_path=store)) as client:
        handle = (await create(client))["handle"]
        await client.call_tool("run_simulation", {"handle": handle, "mixture": UNIFORM, "size_m": 60, "steps": 2000})
    async with Client(build(ServeOptions(), store_path=store)) as client:
        history = (await client.call_tool("study_history", {"handle": handle})).structured_content
        again = await client.call_tool("run_simulation", {"handle": handle, "mixture": UNIFORM, "size_m": 60,
                                                          "steps": 4000, "resume_run": 0})
    assert len(history["runs"]) == 1 and not again.is_error


async def test_ground_truth_is_an_evaluator_resource_only(tmp_path: Path) -> None:
    async with Client(build(ServeOptions(), store_path=tmp_path / "s.db")) as client:
        handle = (await create(client))["handle"]
        templates = [t.uri_template for t in (await client.list_resource_templates()).resource_templates]
        assert not any("ground_truth" in t for t in templates)
        visible = json.dumps((await client.call_tool("study_history", {"handle": handle})).structured_content)
    async with Client(build(ServeOptions(evaluator=True), store_path=tmp_path / "s.db")) as client:
        truth = json.loads((await client.read_resource(f"mixopt://study/{handle}/ground_truth")).contents[0].text)
    assert truth["optimum"] == pytest.approx([0, 0.83, 0.17, 0, 0], abs=0.02)
    assert f"{truth['value']:.4f}" not in visible


async def test_a_real_stdio_subprocess_serves_a_study(tmp_path: Path) -> None:
    env = {"TESTBEDS_MIXOPT_DB": str(tmp_path / "s.db")}
    async with stdio_client("testbeds_mixopt", env=env, mode="legacy") as client:
        handle = (await create(client))["handle"]
        result = await client.call_tool("run_simulation", {"handle": handle, "mixture": UNIFORM, "size_m": 20,
                                                           "steps": 1000})
    assert not result.is_error and result.structured_content["run"]["metrics"]["loss_stackexchange"] > 0


async def test_the_ledger_and_best_so_far_resources_follow_the_runs(tmp_path: Path) -> None:
    async with Client(build(ServeOptions(), store_path=tmp_path / "s.db")) as client:
        handle = (await create(client))["handle"]
        await client.call_tool("run_simulation", {"handle": handle, "mixture": UNIFORM, "size_m": 60, "steps": 2000})
        await client.call_tool("run_simulation", {"handle": handle, "mixture": UNIFORM, "size_m": 1000,
                                                  "steps": 19500})
        ledger = json.loads((await client.read_resource(f"mixopt://study/{handle}/ledger")).contents[0].text)
        curve = json.loads((await client.read_resource(f"mixopt://study/{handle}/best_so_far")).contents[0].text)
    assert [e["kind"] for e in ledger] == ["new", "new"]
    assert ledger[-1]["spent_after"] == pytest.approx(ledger[0]["cost"] + 1.0)
    assert curve[0]["best_at_target"] is None and curve[1]["best_at_target"] > 0


async def test_the_http_transport_serves_a_study(tmp_path: Path) -> None:
    from testbeds_serving.testing import http_client, serve_http

    async with serve_http(build(ServeOptions(transport="http"), store_path=tmp_path / "s.db")) as url:
        for mode in ("auto", "legacy"):
            async with http_client(url, mode=mode) as client:
                handle = (await create(client))["handle"]
                runs = (await client.call_tool("suggest", {"handle": handle})).structured_content["runs"]
    assert runs and all(abs(sum(r["mixture"]) - 1) < 1e-9 for r in runs)


async def test_a_table_without_the_target_size_is_refused_and_one_with_it_limits_the_sizes(tmp_path: Path) -> None:
    header = "wikipedia,stackexchange,github,arxiv,book,size_m,steps,loss_stackexchange\n"
    small = tmp_path / "small.csv"
    small.write_text(header + "0.2,0.2,0.2,0.2,0.2,20,19500,1.3\n0.2,0.2,0.2,0.2,0.2,60,19500,1.1\n")
    full = tmp_path / "full.csv"
    full.write_text(header + "0.2,0.2,0.2,0.2,0.2,20,19500,1.3\n0.2,0.2,0.2,0.2,0.2,1000,19500,0.9\n"
                    "0,1,0,0,0,1000,19500,0.85\n")
    async with Client(build(ServeOptions(), store_path=tmp_path / "s.db")) as client:
        refused = await client.call_tool("create_study", {"backend": "table", "backend_path": str(small),
                                                          "metric": "loss_stackexchange"})
        assert refused.is_error and "target size 1000M" in refused.content[0].text
        made = await create(client, backend="table", backend_path=str(full))
    assert made["spec"]["sizes_m"] == [20, 1000]
