"""sheets end to end: scripted builders over MCP, server-side recording, re-grading the saved workbook."""

from __future__ import annotations

import io
from pathlib import Path

import anyio
import pytest
from rich.console import Console
from testbeds_evals.cli import main as cli_main
from testbeds_evals.demo import sheets_demo
from testbeds_evals.runner import EpisodeSpec, run_many
from testbeds_evals.scoring import score_db
from testbeds_evals.store import Store
from testbeds_evals.suites import sheets as plugin
from testbeds_evals.suites.sheets import TaskSettings


def run(db: Path, policy: str, family: str = "break_even", difficulty: int = 2) -> dict:
    specs = [EpisodeSpec("sheets", TaskSettings(family=family, difficulty=difficulty), 1, policy)]
    run_id, results = anyio.run(lambda: run_many(db, "scripted", specs, transport="memory", show_progress=False))
    assert results[0].stop_reason == "completed", results[0].error
    assert score_db(db, run_id=run_id, show_progress=False) == (1, [])
    with Store(db) as store:
        (row,) = store.latest_scores(run_id=run_id)
    return row


def test_the_reference_builder_scores_100_by_regrading_the_workbook_it_built_through_the_tools(
        tmp_path: Path) -> None:
    row = run(tmp_path / "runs.db", "reference")
    m = row["metrics"]
    assert m["final"] == 100.0 and m["regraded"] and m["submitted"] and m["passed"]
    assert set(m["checks"].values()) == {1.0}
    with Store(tmp_path / "runs.db") as store:
        names = [e.name for e in store.events(row["episode_id"]) if e.type == "tool_call"]
    assert names[0] == "start_task" and names[-1] == "submit" and "write_range" in names
    assert Path(row["settings"]["file"]).is_file()
    assert Path(row["settings"]["file"]).parent == plugin.workspaces_path(tmp_path / "runs.db").resolve()


def test_the_values_only_typist_is_accurate_but_scores_low_on_formula_and_format(tmp_path: Path) -> None:
    m = run(tmp_path / "runs.db", "values_only")["metrics"]
    assert m["accuracy"] >= 70 and m["formula"] <= 20 and m["format"] < 70 and not m["passed"]
    assert m["checks"]["outputs_are_formulas"] == 0.0


def test_a_workbook_that_is_gone_is_scored_from_the_grade_the_server_returned_at_submit(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    row = run(db, "reference")
    Path(row["settings"]["file"]).unlink()
    with Store(db) as store:
        episode = next(e for e in store.episodes() if e["episode_id"] == row["episode_id"])
        metrics = plugin.score_episode(episode, store.events(row["episode_id"]))
    assert metrics["final"] == 100.0 and metrics["regraded"] is False


def test_a_free_form_workspace_has_nothing_to_grade() -> None:
    with pytest.raises(ValueError, match="nothing to grade"):
        plugin.score_episode({"settings": {"file": "/nowhere.xlsx"}}, [])


def test_the_run_command_takes_families_difficulties_and_the_values_only_policy(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    code = cli_main(["run", "--suite", "sheets", "--family", "depreciation", "--difficulty", "1", "--seeds", "0",
                     "--policy", "values_only", "--transport", "memory", "--db", str(db), "--no-progress"])
    assert code == 0
    with Store(db) as store:
        (episode,) = store.episodes()
    assert episode["settings"]["family"] == "depreciation" and episode["settings"]["policy"] == "values_only"
    assert cli_main(["run", "--suite", "sheets", "--policy", "bayes", "--db", str(db), "--no-progress"]) == 2


def test_the_sheets_demo_tabulates_both_builders(tmp_path: Path) -> None:
    out = io.StringIO()
    means = sheets_demo(tmp_path / "runs.db", tmp_path / "report", difficulty=1, show_progress=False,
                        console=Console(file=out, width=140), families=("npv_irr",))
    assert means["reference"] == 100.0 and means["values_only"] < 60
    assert "values_only" in out.getvalue() and (tmp_path / "report" / "sheets" / "report.md").is_file()


def test_a_workbook_changed_after_submit_is_not_regraded(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    row = run(db, "values_only")
    assert row["settings"]["graded_sha256"]
    path = Path(row["settings"]["file"])
    path.write_bytes(path.read_bytes() + b"\0")  # reopened and edited after submit
    with Store(db) as store:
        episode = next(e for e in store.episodes() if e["episode_id"] == row["episode_id"])
        metrics = plugin.score_episode(episode, store.events(row["episode_id"]))
    assert metrics["file_changed_after_submit"] and metrics["regraded"] is False
    assert metrics["final"] == row["metrics"]["final"]


def test_bad_task_settings_are_refused_in_one_line_before_anything_runs(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "runs.db"
    assert cli_main(["run", "--suite", "sheets", "--difficulty", "13", "--db", str(db), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "difficulty: Input should be less than or equal to 12" in err and "errors.pydantic.dev" not in err
    assert not db.exists()
