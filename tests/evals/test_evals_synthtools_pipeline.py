"""synthtools end to end: scripted tool users over MCP, the server's verdict at submit, the scorer's replay."""

from __future__ import annotations

import io
from pathlib import Path

import anyio
import pytest
from rich.console import Console
from testbeds_evals.demo import synthtools_demo
from testbeds_evals.runner import EpisodeSpec, run_many
from testbeds_evals.scoring import score_db
from testbeds_evals.store import Store
from testbeds_evals.suites import synthtools as plugin
from testbeds_evals.suites.synthtools import TaskSettings


def run(db: Path, policy: str, **settings: object) -> tuple[dict, list]:
    specs = [EpisodeSpec("synthtools", TaskSettings(**settings), 0, policy)]
    run_id, results = anyio.run(lambda: run_many(db, "scripted", specs, transport="memory", show_progress=False))
    assert results[0].stop_reason == "completed", results[0].error
    assert score_db(db, run_id=run_id, show_progress=False) == (1, [])
    with Store(db) as store:
        (row,) = store.latest_scores(run_id=run_id)
        return row, store.events(row["episode_id"])


def test_the_reference_tool_user_passes_and_the_replay_agrees(tmp_path: Path) -> None:
    row, events = run(tmp_path / "runs.db", "reference", field="logistics", tier="medium")
    m = row["metrics"]
    assert m["passed"] and m["replayed"] is True and m["agrees_with_replay"] and m["errors"] == 0
    names = [e.name for e in events if e.type == "tool_call"]
    assert names[0] == "start_task" and names[-1] == "submit_task" and names.count("call") == m["calls"] >= 3


def test_the_random_valid_call_baseline_fails(tmp_path: Path) -> None:
    m = run(tmp_path / "runs.db", "random", field="healthcare", tier="simple")[0]["metrics"]
    assert not m["passed"] and m["submitted"] and m["replayed"] is False


def test_a_recorded_pass_the_engine_cannot_reproduce_is_not_trusted(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    row, events = run(db, "reference", field="healthcare", tier="simple")
    # Drop the recorded calls that changed the world: the recorded verdict says passed, the replay disagrees.
    kept = [e for e in events if not (e.type in ("tool_call", "tool_result") and e.name == "call")]
    with Store(db) as store:
        episode = next(e for e in store.episodes() if e["episode_id"] == row["episode_id"])
    metrics = plugin.score_episode(episode, kept)
    assert metrics["replayed"] is False and not metrics["passed"] and not metrics["agrees_with_replay"]


def test_an_unknown_field_is_refused_before_any_episode_runs() -> None:
    with pytest.raises(ValueError, match="unknown field"):
        TaskSettings(field="astrology")


def test_the_synthtools_demo_separates_the_reference_from_random_calls(tmp_path: Path) -> None:
    out = io.StringIO()
    rates = synthtools_demo(tmp_path / "runs.db", tmp_path / "report", show_progress=False,
                            console=Console(file=out, width=140), tasks=(("banking", "simple"),))
    assert rates == {"reference": 1.0, "random": 0.0, "infeasible": 0.0}
    assert (tmp_path / "report" / "synthtools" / "report.md").is_file()


def _index_where(feasible: bool, field: str = "healthcare") -> int:
    for i in range(3):
        if plugin.task_of(TaskSettings(field=field, tier="simple", index=i), 0).feasible is feasible:
            return i
    raise AssertionError(f"no {'feasible' if feasible else 'infeasible'} simple task in {field}")


def test_an_always_infeasible_agent_scores_zero_on_feasible_tasks_in_the_split_metrics(tmp_path: Path) -> None:
    feasible = run(tmp_path / "a.db", "infeasible", field="healthcare", tier="simple",
                   index=_index_where(True))[0]["metrics"]
    infeasible = run(tmp_path / "b.db", "infeasible", field="healthcare", tier="simple",
                     index=_index_where(False))[0]["metrics"]
    assert feasible["calls"] == 0 and feasible["passed"] is False
    assert feasible["passed_feasible"] is False and feasible["passed_infeasible"] is None
    assert infeasible["passed"] is True and infeasible["passed_infeasible"] is True
    assert infeasible["passed_feasible"] is None
    assert {"passed_feasible", "passed_infeasible"} <= set(plugin.REPORT_METRICS)


def test_the_replay_decodes_call_arguments_sent_as_json_text_and_skips_junk(tmp_path: Path) -> None:
    import json

    db = tmp_path / "runs.db"
    row, events = run(db, "reference", field="healthcare", tier="simple", index=_index_where(True))
    with Store(db) as store:
        episode = next(e for e in store.episodes() if e["episode_id"] == row["episode_id"])
    as_text = []
    for e in events:
        if e.type == "tool_call" and e.name == "call":
            e = e.model_copy(update={"arguments": {**e.arguments, "arguments": json.dumps(e.arguments["arguments"])}})
        as_text.append(e)
    assert plugin.score_episode(episode, as_text)["replayed"] is True
    junk = [e.model_copy(update={"arguments": {**e.arguments, "arguments": "[1, 2"}})
            if e.type == "tool_call" and e.name == "call" else e for e in events]
    assert plugin.score_episode(episode, junk)["replayed"] is False
