"""`testbeds demo`: every suite end to end, offline, on the embedded defaults.

latentgym: the scripted agent plays every environment with the bayes, no_transfer and random policies over
stdio (one server process per episode, recording into the DB), then the episodes are scored from the
recording and summarised: reward, exploration bits and exploitation regret per environment and policy.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import anyio
from rich.console import Console

from .report import print_summary, summarize, write_summary
from .runner import latentgym_specs, run_many
from .scoring import score_db
from .store import Store

DEMO_POLICIES = ("bayes", "no_transfer", "random")
LATENTGYM_METRICS = ["cumulative_reward", "agent_bits", "feedback_bits", "regret", "reference_oracle"]


def latentgym_demo(db: Path, out: Path, *, seeds: int, n_tasks: int, concurrency: int, show_progress: bool,
                   console: Console) -> dict[str, Any]:
    """Run, score and summarise the latentgym demo; returns the mean cumulative reward by (env, policy)."""
    from testbeds_latentgym.models import ENV_NAMES

    run_ids = []
    for policy in DEMO_POLICIES:
        specs = latentgym_specs(ENV_NAMES, list(range(seeds)), [policy], n_tasks=n_tasks, structure="latent")
        console.print(f"latentgym: scripted {policy} agent, {len(specs)} episodes over stdio")
        run_id, results = anyio.run(lambda: run_many(db, "scripted", specs, concurrency=concurrency,
                                                     show_progress=show_progress, config={"demo": True}))
        run_ids.append(run_id)
        stuck = [r for r in results if r.stop_reason != "completed"]
        if stuck:
            raise RuntimeError(f"{len(stuck)} {policy} episodes did not complete: {stuck[0].stop_reason}")
    for run_id in run_ids:
        _, failures = score_db(db, run_id=run_id, show_progress=show_progress)
        if failures:
            raise RuntimeError(f"scoring failed: {failures[0]}")
    with Store(db) as store:
        rows = [r for run_id in run_ids for r in store.latest_scores(run_id=run_id, scorer="latentgym")]
    summary = summarize(rows, LATENTGYM_METRICS, ["env", "model"],
                        title=f"latentgym: scripted policies, structured sequences, {seeds} seeds × {n_tasks} tasks")
    print_summary(summary, console)
    write_summary(summary, out / "latentgym")
    means: dict[str, dict[str, float]] = {}
    for group in summary.groups:
        env, model = group.key["env"], group.key["model"]
        means.setdefault(env, {})[model.split(":", 1)[1]] = group.metrics["cumulative_reward"].mean or 0.0
    return means


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
    p.add_argument("--seeds", type=int, default=4, help="seeds per environment and policy (default 4)")
    p.add_argument("--n-tasks", type=int, default=10)
    p.add_argument("--concurrency", type=int, default=2)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_demo)


def _demo(args: argparse.Namespace) -> int:
    console = Console()
    started = time.monotonic()
    db, out = Path(args.db), Path(args.out)
    means = latentgym_demo(db, out, seeds=args.seeds, n_tasks=args.n_tasks, concurrency=args.concurrency,
                           show_progress=not args.no_progress, console=console)
    lines, ok = ordering_lines(means)
    console.print("Cumulative reward, mean over seeds (bayes > no_transfer > random expected):")
    for line in lines:
        console.print("  " + line, highlight=False)
    console.print(f"Transcripts in {db}; report in {out}/latentgym/report.md "
                  f"({time.monotonic() - started:.0f} s).")
    return 0 if ok else 1
