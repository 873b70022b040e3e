"""mixopt end to end: the scripted advisor-loop agent over MCP, server-side recording, cost-to-target scoring."""

from __future__ import annotations

import io
from pathlib import Path

import anyio
from rich.console import Console
from testbeds_evals.demo import mixopt_demo
from testbeds_evals.runner import EpisodeSpec, run_many
from testbeds_evals.scoring import score_db
from testbeds_evals.store import Store
from testbeds_evals.suites.mixopt import StudySettings


def test_the_scripted_agent_spends_the_budget_and_the_scorer_judges_its_recommendations(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    specs = [EpisodeSpec("mixopt", StudySettings(method="random", budget=2.0), 3, "advisor")]
    run_id, results = anyio.run(lambda: run_many(db, "scripted", specs, transport="memory", show_progress=False))
    assert results[0].stop_reason == "completed"
    assert score_db(db, run_id=run_id, show_progress=False) == (1, [])
    with Store(db) as store:
        (row,) = store.latest_scores(run_id=run_id)
        events = store.events(row["episode_id"])
    metrics = row["metrics"]
    assert metrics["runs"] == 2 and abs(metrics["spent"] - 2.0) < 1e-9
    assert metrics["final_gap"] > 0.01 and metrics["cost_to_1pct"] is None  # two random mixtures miss 1%
    names = [e.name for e in events if e.type == "tool_call"]
    assert names[0] == "create_study" and names.count("run_simulation") == 2 and names[-1] == "recommend"
    assert (tmp_path / "runs.studies.db").is_file()


def test_the_mixopt_demo_compares_our_advisor_with_the_three_baselines(tmp_path: Path) -> None:
    out = io.StringIO()
    by_method = mixopt_demo(tmp_path / "runs.db", tmp_path / "report", budget=0.6, show_progress=False,
                            console=Console(file=out, width=120))
    assert sorted(by_method) == ["gp_ei", "hyperband", "mfms", "random"]
    assert "cost to 1%" in out.getvalue()
    assert (tmp_path / "report" / "mixopt" / "report.md").is_file()
    assert all(m["spent"] <= 0.6 + 1e-9 for m in by_method.values())
    # A target run costs 1: the baselines that only train at the target can afford nothing and recommend nothing.
    assert by_method["random"]["runs"] == 0 and by_method["random"]["final_gap"] is None
    assert by_method["mfms"]["runs"] > 0
