"""Summary statistics (checked by hand), rendering and report files."""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from testbeds_evals.report import (
    lookup,
    mean_se,
    pass_hat_k,
    print_summary,
    summarize,
    to_html,
    to_markdown,
    write_report,
)


def _row(env: str, task: str, passed: bool, reward: float | None, scorer: str = "exact") -> dict[str, Any]:
    metrics: dict[str, Any] = {"passed": passed}
    if reward is not None:
        metrics["reward"] = reward
    return {"scorer": scorer, "model": "scripted", "suite": "latentgym", "seed": 0,
            "settings": {"env": env, "task": task}, "metrics": metrics}


# env a: task t1 passes 2 of 3, task t2 passes 3 of 3; env b: task t3 passes 1 of 2.
ROWS = [
    _row("a", "t1", True, 1.0),
    _row("a", "t1", True, 2.0),
    _row("a", "t1", False, 4.0),
    _row("a", "t2", True, None),
    _row("a", "t2", True, None),
    _row("a", "t2", True, None),
    _row("b", "t3", False, 3.0),
    _row("b", "t3", True, None),
]


def test_mean_and_standard_error_match_a_hand_computation() -> None:
    # values 1, 2, 4: mean 7/3; squared deviations 16/9 + 1/9 + 25/9 = 42/9; variance 21/9; se sqrt(21/27)
    stats = mean_se([1.0, 2.0, 4.0])
    assert stats.n == 3
    assert stats.mean == pytest.approx(7 / 3)
    assert stats.se == pytest.approx(math.sqrt(21 / 27))


def test_one_value_has_a_mean_but_no_standard_error() -> None:
    assert mean_se([3.0]).model_dump() == {"n": 1, "mean": 3.0, "se": None}


def test_pass_hat_k_is_the_chance_that_k_draws_without_replacement_all_pass() -> None:
    assert pass_hat_k(2, 3, 1) == pytest.approx(2 / 3)
    assert pass_hat_k(2, 3, 2) == pytest.approx(1 / 3)
    assert pass_hat_k(2, 3, 3) == 0.0
    assert pass_hat_k(3, 3, 3) == 1.0
    with pytest.raises(ValueError, match="k must be"):
        pass_hat_k(1, 2, 3)


def test_summary_groups_rows_and_reports_mean_se_and_pass_k() -> None:
    summary = summarize(ROWS, ["reward", "passed"], ["env"])
    assert summary.group_by == ["env"]
    assert summary.ks == [1, 2, 3]  # env a: every task has 3 attempts
    a, b = summary.groups
    assert (a.key, a.n, a.tasks, b.key, b.n, b.tasks) == ({"env": "a"}, 6, 2, {"env": "b"}, 2, 1)
    assert a.metrics["reward"].n == 3
    assert a.metrics["reward"].mean == pytest.approx(7 / 3)
    assert a.metrics["reward"].se == pytest.approx(math.sqrt(21 / 27))
    assert a.metrics["passed"].mean == pytest.approx(5 / 6)
    # t1: C(2,k)/C(3,k) = 2/3, 1/3, 0; t2: 1, 1, 1; averaged over the two tasks
    assert a.pass_k[1] == pytest.approx((2 / 3 + 1) / 2)
    assert a.pass_k[2] == pytest.approx((1 / 3 + 1) / 2)
    assert a.pass_k[3] == pytest.approx(0.5)
    assert b.pass_k[1] == pytest.approx(0.5)
    assert b.pass_k[2] == 0.0
    assert b.pass_k[3] is None  # t3 has only two attempts


def test_without_repeats_there_are_no_pass_k_columns() -> None:
    rows = [_row("a", f"t{i}", True, 1.0) for i in range(3)]
    assert summarize(rows, ["reward"], ["env"]).ks == []


def test_metrics_default_to_every_numeric_metric() -> None:
    rows = [{**_row("a", "t", True, 1.0), "metrics": {"passed": True, "reward": 1.0, "note": "text"}}]
    assert summarize(rows).metrics == ["passed", "reward"]


def test_rows_from_several_scorers_are_never_mixed() -> None:
    rows = [_row("a", "t", True, 1.0, scorer="exact"), _row("a", "t", False, 0.0, scorer="judge")]
    summary = summarize(rows, ["reward"], ["env"])
    assert summary.group_by == ["scorer", "env"]
    means = [(g.key["scorer"], g.metrics["reward"].mean) for g in summary.groups]
    assert means == [("exact", 1.0), ("judge", 0.0)]


def test_lookup_searches_columns_then_settings_then_metrics() -> None:
    row = {"model": "m", "settings": {"env": "a", "model": "shadowed"}, "metrics": {"env": "x", "score": 2}}
    assert lookup(row, "model") == "m"
    assert lookup(row, "env") == "a"
    assert lookup(row, "score") == 2
    assert lookup(row, "metrics.env") == "x"
    assert lookup(row, "missing") is None


def test_markdown_and_html_show_mean_plus_minus_se() -> None:
    summary = summarize(ROWS, ["reward"], ["env"], title="Bandits <v1>")
    markdown = to_markdown(summary)
    assert "| env | n | reward | pass^1 | pass^2 | pass^3 |" in markdown
    assert "| a | 6 | 2.333 ± 0.882 (n=3) | 0.833 | 0.667 | 0.500 |" in markdown
    assert "| b | 2 | 3.000 (n=1) | 0.500 | 0.000 | — |" in markdown
    page = to_html(summary)
    assert "<h1>Bandits &lt;v1&gt;</h1>" in page
    assert "<td>2.333 ± 0.882 (n=3)</td>" in page


def test_print_summary_writes_a_table_to_the_console() -> None:
    buffer = io.StringIO()
    print_summary(summarize(ROWS, ["reward"], ["env"]), Console(file=buffer, width=150))
    text = buffer.getvalue()
    assert "2.333 ± 0.882" in text
    assert "\x1b[" not in text  # not a terminal: no ANSI codes


def test_write_report_writes_markdown_html_and_png_plots(tmp_path: Path) -> None:
    path = write_report(ROWS, tmp_path / "out", ["reward", "passed"], ["env"], "Bandits")
    out = tmp_path / "out"
    assert path == out / "report.md"
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == ["metric-passed.png", "metric-reward.png", "pass_k.png"]
    for png in pngs:
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "![metric-reward](metric-reward.png)" in path.read_text(encoding="utf-8")
    assert '<img src="pass_k.png"' in (out / "report.html").read_text(encoding="utf-8")


def test_an_empty_report_says_so(tmp_path: Path) -> None:
    path = write_report([], tmp_path, ["reward"], ["env"])
    assert "No scored episodes." in path.read_text(encoding="utf-8")
    assert list(tmp_path.glob("*.png")) == []
