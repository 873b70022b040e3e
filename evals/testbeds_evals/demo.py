"""`testbeds demo`: every suite end to end, offline, on the embedded defaults.

latentgym: the scripted agent plays every environment with the bayes, no_transfer and random policies over
stdio (one server process per episode, recording into the DB), then the episodes are scored from the
recording and summarised: reward, exploration bits and exploitation regret per environment and policy.

mixopt: one study solved by our multi-fidelity multi-scale advisor and the three baselines (single-fidelity
GP-EI, steps-only Hyperband, random search), scored by the cost to reach within 1% of the optimum.

sheets: the reference builder and the values-only typist build finance models through the workspace tools; the
saved workbooks are re-graded on Accuracy, Formula and Format.

synthtools: the reference tool user and a random-valid-call baseline on tasks of generated toolsets, graded on
the final state of the simulated world.
"""

from __future__ import annotations

import argparse
import time
from functools import partial
from pathlib import Path
from typing import Any

import anyio
from rich.console import Console
from rich.table import Table

from .report import Summary, summarize, write_summary
from .runner import EpisodeSpec, latentgym_specs, run_many
from .scoring import score_db
from .store import Store

DEMO_POLICIES = ("bayes", "no_transfer", "random")
LATENTGYM_METRICS = ["cumulative_reward", "gain", "agent_bits", "feedback_bits", "regret", "reference_oracle"]
COLUMNS = {"cumulative_reward": "reward", "gain": "gain", "agent_bits": "own bits",
           "feedback_bits": "fb bits", "regret": "regret", "reference_oracle": "oracle"}
LEGEND = ("reward: cumulative over the tasks; gain: last task − first; own bits: information about the latent "
          "from the agent's own actions; fb bits: from feedback; regret: Σ exploitation regret against the "
          "planner under the agent's own posterior; oracle: the oracle's reward on the same seeds.")


def latentgym_demo(db: Path, out: Path, *, seeds: int, n_tasks: int, concurrency: int, show_progress: bool,
                   console: Console) -> dict[str, Any]:
    """Run, score and summarise the latentgym demo; returns the mean cumulative reward by (env, policy)."""
    from testbeds_latentgym.models import ENV_NAMES

    run_ids = []
    for policy in DEMO_POLICIES:
        specs = latentgym_specs(ENV_NAMES, list(range(seeds)), [policy], n_tasks=n_tasks, structure="latent")
        console.print(f"latentgym: scripted {policy} agent, {len(specs)} episodes over stdio")
        run_id, results = anyio.run(partial(run_many, db, "scripted", specs, concurrency=concurrency,
                                            show_progress=show_progress, config={"demo": True}))
        run_ids.append(run_id)
        stuck = [r for r in results if r.stop_reason != "completed"]
        if stuck:
            raise RuntimeError(f"{len(stuck)} {policy} episodes did not complete: {stuck[0].stop_reason}")
    for run_id in run_ids:
        _, failures = score_db(db, run_id=run_id, show_progress=show_progress, jobs=concurrency)
        if failures:
            raise RuntimeError(f"scoring failed: {failures[0]}")
    with Store(db) as store:
        rows = [r for run_id in run_ids for r in store.latest_scores(run_id=run_id, scorer="latentgym")]
    summary = summarize(rows, LATENTGYM_METRICS, ["env", "policy"],
                        title=f"latentgym: scripted agents over stdio, structured sequences, {seeds} seeds × "
                              f"{n_tasks} tasks (mean ± SE)")
    console.print(compact_table(summary))
    console.print(LEGEND, style="dim", highlight=False)
    write_summary(summary, out / "latentgym")
    means: dict[str, dict[str, float]] = {}
    for group in summary.groups:
        means.setdefault(group.key["env"], {})[group.key["policy"]] = group.metrics["cumulative_reward"].mean or 0.0
    return means


def compact_table(summary: Summary) -> Table:
    """One line per (env, policy): the report's full table is in report.md."""
    table = Table(title=summary.title, title_justify="left")
    for key in summary.group_by:
        table.add_column(key, no_wrap=True)
    for metric in summary.metrics:
        table.add_column(COLUMNS.get(metric, metric), justify="right")
    for group in summary.groups:
        cells = [str(group.key[k]) for k in summary.group_by]
        for metric in summary.metrics:
            m = group.metrics[metric]
            cells.append("—" if m.mean is None else f"{m.mean:.2f}" + ("" if m.se is None else f"±{m.se:.2f}"))
        table.add_row(*cells)
    return table


def run_and_score(db: Path, specs: list[EpisodeSpec], suite: str, *, show_progress: bool) -> list[dict[str, Any]]:
    """Run the scripted agents of `specs` over stdio as one run, score it, and return its score rows; any episode
    that did not complete, or could not be scored, fails the demo."""
    run_id, results = anyio.run(partial(run_many, db, "scripted", specs, show_progress=show_progress,
                                        config={"demo": True}))
    failed = [r for r in results if r.stop_reason != "completed"]
    if failed:
        raise RuntimeError(f"{suite} episode did not complete: {failed[0].stop_reason} {failed[0].error or ''}")
    _, failures = score_db(db, run_id=run_id, show_progress=show_progress)
    if failures:
        raise RuntimeError(f"scoring failed: {failures[0]}")
    with Store(db) as store:
        return store.latest_scores(run_id=run_id, scorer=suite)


MIXOPT_METHODS = ("mfms", "gp_ei", "hyperband", "random")
MIXOPT_COLUMNS = {"cost_to_1pct": "cost to 1%", "final_gap": "final gap", "spent": "spent", "runs": "runs"}


def mixopt_demo(db: Path, out: Path, *, budget: float, show_progress: bool, console: Console,
                metric: str = "loss_stackexchange", seed: int = 0) -> dict[str, dict[str, Any]]:
    """One study (SlimPajama StackExchange loss at 1B, parametric simulator), solved by our multi-fidelity
    multi-scale advisor and the three baselines, each driven by the scripted agent over stdio."""
    from .suites.mixopt import StudySettings

    specs = [EpisodeSpec("mixopt", StudySettings(metric=metric, budget=budget, method=m, batch=4 if m == "mfms"
                                                 else 1), seed, "advisor") for m in MIXOPT_METHODS]
    console.print(f"mixopt: one {metric} study, budget {budget:g} target runs, {len(specs)} methods over stdio")
    rows = run_and_score(db, specs, "mixopt", show_progress=show_progress)
    table = Table(title=f"mixopt: cost (in full 1B runs) to a mixture within 1% of the best {metric} at 1B",
                  title_justify="left")
    for name in ("method", *MIXOPT_COLUMNS.values()):
        table.add_column(name, justify="left" if name == "method" else "right")
    by_method = {}
    for row in sorted(rows, key=lambda r: MIXOPT_METHODS.index(r["settings"]["method"])):
        m = row["metrics"]
        by_method[row["settings"]["method"]] = m
        cost = m["cost_to_1pct"]
        gap = "—" if m["final_gap"] is None else f"{100 * m['final_gap']:.2f}%"
        table.add_row(row["settings"]["method"], "not reached" if cost is None else f"{cost:.3f}", gap,
                      f"{m['spent']:.3f}", str(m["runs"]))
    console.print(table)
    console.print("cost to 1%: spending until the first recommendation within 1% of the optimum, plus a "
                  "confirmation run at 1B if that mixture was never trained there; final gap: the last "
                  "recommendation's noise-free distance from the optimum.", style="dim", highlight=False)
    summary = summarize(rows, ["cost_to_1pct", "final_gap", "spent", "runs"], ["method"],
                        title=f"mixopt: one {metric} study")
    write_summary(summary, out / "mixopt")
    return by_method


# A few families keep `make demo` well inside its 5 minutes; `testbeds run --suite sheets` plays them all.
SHEETS_DEMO_FAMILIES = ("loan_amortisation", "dcf", "three_scenarios")
SHEETS_POLICIES = ("reference", "values_only")


def sheets_demo(db: Path, out: Path, *, difficulty: int, show_progress: bool, console: Console,
                families: tuple[str, ...] = SHEETS_DEMO_FAMILIES) -> dict[str, float]:
    """The reference builder and the values-only typist on a few task families, each building its workbook
    through the MCP tools over stdio; scored by re-grading the saved .xlsx. Returns the mean final by policy."""
    from .suites.sheets import REPORT_METRICS, TaskSettings

    specs = [EpisodeSpec("sheets", TaskSettings(family=f, difficulty=difficulty), 0, policy)
             for policy in SHEETS_POLICIES for f in families]
    console.print(f"sheets: scripted reference and values-only agents, {len(families)} families at difficulty "
                  f"{difficulty}, over stdio")
    rows = run_and_score(db, specs, "sheets", show_progress=show_progress)
    summary = summarize(rows, list(REPORT_METRICS), ["policy", "family"],
                        title=f"sheets: scripted agents build finance models through the tools, difficulty "
                              f"{difficulty} (0-100; coverage and passed 0-1)")
    console.print(compact_table(summary))
    console.print("final: 0.50 accuracy + 0.35 formula + 0.15 format; the values-only agent types the right "
                  "numbers with no formulas or formatting.", style="dim", highlight=False)
    write_summary(summary, out / "sheets")
    means: dict[str, list[float]] = {}
    for row in rows:
        means.setdefault(row["settings"]["policy"], []).append(row["metrics"]["final"])
    return {policy: sum(v) / len(v) for policy, v in means.items()}


SYNTHTOOLS_POLICIES = ("reference", "random", "infeasible")


def synthtools_demo(db: Path, out: Path, *, show_progress: bool, console: Console,
                    tasks: tuple[tuple[str, str], ...] = (("healthcare", "simple"), ("banking", "complex"))
                    ) -> dict[str, float]:
    """The reference tool user, a random-valid-call baseline and an always-"infeasible" reporter on tasks of generated
    toolsets, over stdio; the server grades the final state at submit and the scorer replays the recorded calls to
    confirm it. Returns the pass rate on feasible tasks by policy (the demo's tasks are feasible ones)."""
    from .suites.synthtools import REPORT_METRICS, TaskSettings

    specs = [EpisodeSpec("synthtools", TaskSettings(field=field, tier=tier), 0, policy)
             for policy in SYNTHTOOLS_POLICIES for field, tier in tasks]
    console.print(f"synthtools: scripted reference, random-valid-call and always-infeasible agents, {len(tasks)} "
                  "tasks of generated toolsets, over stdio")
    rows = run_and_score(db, specs, "synthtools", show_progress=show_progress)
    summary = summarize(rows, list(REPORT_METRICS), ["policy", "field", "tier"],
                        title="synthtools: tasks on generated toolsets, graded on the final state (passed 0-1)")
    console.print(compact_table(summary))
    write_summary(summary, out / "synthtools")
    rates: dict[str, list[float]] = {}
    for row in rows:
        if row["metrics"]["feasible"]:
            rates.setdefault(row["settings"]["policy"], []).append(float(row["metrics"]["passed"]))
    return {policy: sum(v) / len(v) for policy, v in rates.items()}


def ordering_lines(means: dict[str, dict[str, float]]) -> tuple[list[str], bool]:
    lines, ok = [], True
    for env, by_policy in means.items():
        holds = by_policy["bayes"] > by_policy["no_transfer"] > by_policy["random"]
        ok = ok and holds
        lines.append(f"{env}: bayes {by_policy['bayes']:.2f} > no_transfer {by_policy['no_transfer']:.2f} > "
                     f"random {by_policy['random']:.2f}: {'holds' if holds else 'DOES NOT HOLD'}")
    return lines, ok


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("demo", help="run every suite end to end offline, score, and write a report")
    p.add_argument("--db", default="runs.db", help="SQLite transcript store (default runs.db; new runs are added)")
    p.add_argument("--out", default="report", help="report directory (default report)")
    p.add_argument("--seeds", type=int, default=3, help="latentgym seeds per environment and policy (default 3)")
    p.add_argument("--mixopt-budget", type=float, default=2.0,
                   help="mixopt study budget in full target runs (default 2)")
    p.add_argument("--n-tasks", type=int, default=10)
    p.add_argument("--sheets-difficulty", type=int, default=3, help="sheets: chained calculations (default 3)")
    p.add_argument("--concurrency", type=int, default=2)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_demo)


def _demo(args: argparse.Namespace) -> int:
    console = Console()
    started = time.monotonic()
    db, out = Path(args.db), Path(args.out)
    means = latentgym_demo(db, out, seeds=args.seeds, n_tasks=args.n_tasks, concurrency=args.concurrency,
                           show_progress=not args.no_progress, console=console)
    mixopt_demo(db, out, budget=args.mixopt_budget, show_progress=not args.no_progress, console=console)
    sheets = sheets_demo(db, out, difficulty=args.sheets_difficulty, show_progress=not args.no_progress,
                         console=console)
    synth = synthtools_demo(db, out, show_progress=not args.no_progress, console=console)
    lines, ok = ordering_lines(means)
    synth_ok = synth.get("reference") == 1.0 and synth.get("random", 1.0) <= 0.34 and synth.get("infeasible") == 0.0
    lines.append(f"synthtools: reference passes {100 * synth.get('reference', 0):.0f}% (100% expected), random "
                 f"{100 * synth.get('random', 0):.0f}% and always-infeasible {100 * synth.get('infeasible', 0):.0f}% "
                 f"(near 0 expected): {'holds' if synth_ok else 'DOES NOT HOLD'}")
    sheets_ok = sheets.get("reference") == 100.0 and sheets.get("values_only", 100.0) < 60.0
    lines.append(f"sheets: reference {sheets.get('reference', 0):.1f} (100 expected), values-only "
                 f"{sheets.get('values_only', 0):.1f} (below 60 expected): {'holds' if sheets_ok else 'DOES NOT HOLD'}")
    ok = ok and sheets_ok and synth_ok
    console.print("Expected orderings (latentgym: cumulative reward, mean over seeds):")
    for line in lines:
        console.print("  " + line, highlight=False)
    console.print(f"Transcripts in {db}; reports in {out}/<suite>/report.md for latentgym, mixopt, sheets and "
                  f"synthtools ({time.monotonic() - started:.0f} s).")
    return 0 if ok else 1
