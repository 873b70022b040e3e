"""Grades of the reference workbook and of the values-only baseline by difficulty, over every task family.

    .venv/bin/python benchmarks/sheets_scores_by_difficulty.py [--seeds 3] [--plot PATH]

The plot goes to benchmarks/sheets_scores_by_difficulty.png unless --plot says otherwise.

For each difficulty 1..12, every family x seed 0..N-1 is generated; the reference workbook
(`tasks.reference_workbook`) and the values-only attempt (`baselines.values_only_plan`: inputs and answers typed as
numbers, no formula, no formatting) are graded against the reference with the embedded engine. Prints the mean
final grade and the mean Accuracy / Formula / Format of each by difficulty (min and max of the final in brackets),
and plots final and dimension means against difficulty (matplotlib, Agg backend). Baseline: the values-only agent
in the same run; the reference is the ceiling (it should grade 100 everywhere).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen before pyplot is imported)
from testbeds_sheets.apply import build  # noqa: E402
from testbeds_sheets.baselines import values_only_plan  # noqa: E402
from testbeds_sheets.grader import grade  # noqa: E402
from testbeds_sheets.tasks import FAMILIES, MAX_DIFFICULTY, generate_task, reference_workbook  # noqa: E402

HERE = Path(__file__).resolve().parent
AGENTS = ("reference", "values_only")
DIMENSIONS = ("final", "accuracy", "formula", "format")


def measure(seeds: int) -> dict[str, dict[int, dict[str, list[float]]]]:
    """scores[agent][difficulty][dimension] -> one score per (family, seed)."""
    scores: dict[str, dict[int, dict[str, list[float]]]] = {a: {} for a in AGENTS}
    for difficulty in range(1, MAX_DIFFICULTY + 1):
        for agent in AGENTS:
            scores[agent][difficulty] = {d: [] for d in DIMENSIONS}
        for family in FAMILIES:
            for seed in range(seeds):
                task = generate_task(family, seed, difficulty)
                reference = reference_workbook(task)
                attempts = {"reference": reference, "values_only": build(values_only_plan(task))}
                for agent, attempt in attempts.items():
                    report = grade(task, attempt, reference)
                    cell = scores[agent][difficulty]
                    cell["final"].append(report.final)
                    for d in DIMENSIONS[1:]:
                        cell[d].append(report.dimensions[d])
    return scores


def plot(scores: dict[str, dict[int, dict[str, list[float]]]], path: Path, seeds: int) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    styles = {"final": ("k", "-", "o"), "accuracy": ("tab:blue", "--", "s"), "formula": ("tab:red", "--", "^"),
              "format": ("tab:green", "--", "D")}
    titles = {"reference": "Reference workbook", "values_only": "Values-only agent (typed numbers, no formulas)"}
    for ax, agent in zip(axes, AGENTS):
        ds = sorted(scores[agent])
        for dim, (colour, line, marker) in styles.items():
            ax.plot(ds, [statistics.mean(scores[agent][d][dim]) for d in ds], color=colour, linestyle=line,
                    marker=marker, label=dim.capitalize() if dim != "final" else "Final grade")
        ax.set_title(titles[agent], fontsize=11)
        ax.set_xlabel("difficulty (chained calculation steps)")
        ax.set_xticks(ds)
        ax.set_ylim(-3, 103)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"mean score, {len(FAMILIES)} families x {seeds} seeds")
    axes[0].legend(loc="lower center", fontsize=9, ncol=2)  # the reference panel is empty below its lines
    fig.suptitle("sheets: deterministic grades by difficulty", fontsize=12)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--plot", type=Path, default=HERE / "sheets_scores_by_difficulty.png")
    args = parser.parse_args()
    began = time.perf_counter()
    scores = measure(args.seeds)
    n = len(FAMILIES) * args.seeds
    print(f"{len(FAMILIES)} families x {args.seeds} seeds = {n} tasks per difficulty, embedded engine, "
          f"{time.perf_counter() - began:.0f} s")
    header = f"{'d':>3} | {'agent':<12}{'final (min-max)':>22}{'accuracy':>10}{'formula':>9}{'format':>8}"
    print(header)
    print("-" * len(header))
    for difficulty in sorted(scores["reference"]):
        for agent in AGENTS:
            s = scores[agent][difficulty]
            final = f"{statistics.mean(s['final']):.1f} ({min(s['final']):.1f}-{max(s['final']):.1f})"
            print(f"{difficulty:>3} | {agent:<12}{final:>22}{statistics.mean(s['accuracy']):>10.1f}"
                  f"{statistics.mean(s['formula']):>9.1f}{statistics.mean(s['format']):>8.1f}")
    for agent in AGENTS:
        every = [v for d in scores[agent].values() for v in d["final"]]
        dims = {dim: statistics.mean(v for d in scores[agent].values() for v in d[dim]) for dim in DIMENSIONS[1:]}
        print(f"all | {agent:<12} final {statistics.mean(every):.1f} (min {min(every):.1f}, max {max(every):.1f}); "
              + ", ".join(f"{k} {v:.1f}" for k, v in dims.items()))
    plot(scores, args.plot, args.seeds)
    print(f"plot: {args.plot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
