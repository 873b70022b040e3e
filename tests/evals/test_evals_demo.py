"""`testbeds demo`: every environment and policy over stdio, scored, tabulated and reported."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console
from testbeds_evals.demo import latentgym_demo, ordering_lines
from testbeds_evals.store import Store
from testbeds_latentgym.models import ENV_NAMES


def test_the_demo_plays_every_environment_and_policy_and_writes_a_report(tmp_path: Path) -> None:
    out = io.StringIO()
    means = latentgym_demo(tmp_path / "runs.db", tmp_path / "report", seeds=1, n_tasks=2, concurrency=2,
                           show_progress=False, console=Console(file=out, width=120))
    assert sorted(means) == sorted(ENV_NAMES)
    assert all(sorted(by_policy) == ["bayes", "no_transfer", "random"] for by_policy in means.values())
    text = out.getvalue()
    assert "own bits" in text and "regret" in text and "secretary" in text
    assert (tmp_path / "report" / "latentgym" / "report.md").is_file()
    assert list((tmp_path / "report" / "latentgym").glob("*.png"))
    with Store(tmp_path / "runs.db") as store:
        episodes = store.episodes()
    assert len(episodes) == 15 and all(e["termination"] == "completed" for e in episodes)


def test_the_ordering_verdict_names_every_failure() -> None:
    lines, ok = ordering_lines({"bandit": {"bayes": 3.0, "no_transfer": 2.0, "random": 1.0},
                                "secretary": {"bayes": 1.0, "no_transfer": 2.0, "random": 0.5}})
    assert not ok
    assert lines[0].endswith("holds") and lines[1].endswith("DOES NOT HOLD")
