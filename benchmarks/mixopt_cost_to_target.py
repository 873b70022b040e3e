"""Cost to reach within 1% of the best value at the target scale (1B, 19,500 steps): our multi-fidelity
multi-scale advisor against single-fidelity GP-EI, steps-only Hyperband and random search, in one run.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/mixopt_cost_to_target.py --seeds 20 \\
        [--network ../shared/data/mixopt] [--metrics loss_commoncrawl loss_stackexchange] [--jobs 2]

Each (backend, metric, method, seed) study runs the advisor loop in process (suggest, run, recommend) and
stops at its first success or at the method's cap; cost = spending to the first recommendation within the
tolerance (noise-free) plus one confirmation run if that mixture was never trained at the target. Prints
median and quartiles per method, seeds solved, and ratios of medians against each baseline (a censored
baseline makes the ratio a lower bound, shown as '>'). Also times `suggest` at 200 observations.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")

CAPS = {"mfms": 20.0, "gp_ei": 40.0, "hyperband": 40.0, "random": 60.0}
BATCH = {"mfms": 4}
TOLERANCE = 0.01
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "mixopt"


def one_study(args: tuple[str, str | None, str, str, int, float]) -> dict:
    from testbeds_mixopt.advisor import make_method
    from testbeds_mixopt.backends import make_backend
    from testbeds_mixopt.domains import default_direction
    from testbeds_mixopt.models import StudySpec
    from testbeds_mixopt.study import Study
    from testbeds_mixopt.targets import cost_to_target, relative_gap, run_method

    backend_name, path, metric, method_name, seed, cap = args
    backend = make_backend(backend_name, path)
    direction = default_direction(metric)
    _, best = backend.optimum(metric, 1000, 19_500)
    spec = StudySpec(metric=metric, budget=cap, seed=seed, batch=BATCH.get(method_name, 1))
    study = Study(spec=spec, backend=backend, method=method_name)
    method = make_method(method_name, seed=seed, cost=backend.cost)
    started = time.perf_counter()
    trajectory = run_method(study, method, q=spec.batch,
                            stop=lambda c: relative_gap(c.true_value, best, direction) <= TOLERANCE)
    cost = cost_to_target(trajectory, best, direction, TOLERANCE)
    by_size: dict[str, float] = {}
    for entry in study.ledger:
        by_size[str(int(entry.size_m))] = by_size.get(str(int(entry.size_m)), 0.0) + entry.cost
    return {"backend": backend_name, "metric": metric, "method": method_name, "seed": seed, "cap": cap, "cost": cost,
            "spent": study.spent, "runs": len(study.runs), "seconds": time.perf_counter() - started,
            "cost_by_size": by_size}


def quartiles(values: list[float]) -> tuple[float, float, float]:
    q = np.percentile(values, [25, 50, 75])
    return float(q[0]), float(q[1]), float(q[2])


def summarise(rows: list[dict]) -> list[str]:
    lines = []
    keys = sorted({(r["backend"], r["metric"]) for r in rows})
    for backend, metric in keys:
        lines.append(f"\n{backend} / {metric} (cost in full 1B runs; tolerance {TOLERANCE:.0%})")
        medians = {}
        for method in CAPS:
            mine = [r for r in rows if (r["backend"], r["metric"], r["method"]) == (backend, metric, method)]
            if not mine:
                continue
            # A miss counts as more than the cap: it sorts last, so the median is honest while solved >= half.
            costs = [r["cost"] if r["cost"] is not None else float("inf") for r in mine]
            solved = sum(c != float("inf") for c in costs)
            finite = [c if c != float("inf") else r.get("cap", CAPS[method]) for c, r in zip(costs, mine, strict=True)]
            lo, med, hi = quartiles(finite)
            censored = solved < len(costs) / 2
            medians[method] = (med, censored)
            wall = statistics.mean(r["seconds"] for r in mine)
            lines.append(f"  {method:10s} median {'>' if censored else ''}{med:7.3f}  quartiles {lo:.3f}-{hi:.3f}"
                         f"  solved {solved}/{len(costs)}  mean wall {wall:.1f}s")
        if "mfms" in medians:
            ours, _ = medians["mfms"]
            for method, (med, censored) in medians.items():
                if method != "mfms":
                    lines.append(f"  ratio {method}/mfms of medians: {'>' if censored else ''}{med / ours:.2f}x")
    return lines


def suggest_time(n: int = 200, calls: int = 50) -> tuple[float, float]:
    """Median and p95 seconds of `suggest` from n observations on, one new run between calls (so the model
    changes every call and refits its hyperparameters at its usual milestones)."""
    from testbeds_mixopt.advisor import make_method
    from testbeds_mixopt.backends import make_backend
    from testbeds_mixopt.models import RunRequest, StudySpec
    from testbeds_mixopt.study import Study

    backend = make_backend("parametric")
    study = Study(spec=StudySpec(metric="loss_commoncrawl", budget=1e6, seed=0), backend=backend)
    rng = np.random.default_rng(0)
    while len(study.points) < n:
        mix = rng.dirichlet(np.ones(5))
        study.execute(RunRequest(mixture=(mix / mix.sum()).tolist(), size_m=int(rng.choice([20, 60, 150])),
                                 steps=int(rng.choice([1000, 2000]))))
    method = make_method("mfms", seed=0, cost=backend.cost)
    times = []
    for _ in range(calls):
        mix = rng.dirichlet(np.ones(5))
        study.execute(RunRequest(mixture=(mix / mix.sum()).tolist(), size_m=20, steps=1000))
        t0 = time.perf_counter()
        method.suggest(study.spec, list(study.points), list(study.runs), 1)
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), float(np.percentile(times, 95))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--metrics", nargs="+", default=["loss_commoncrawl", "loss_stackexchange"])
    parser.add_argument("--methods", nargs="+", default=list(CAPS))
    parser.add_argument("--network", default=str(SHARED) if SHARED.is_dir() else None,
                        help="folder of the paper's network (default ../shared/data/mixopt if present)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", default=None, help="write every study's result as JSON here")
    parser.add_argument("--plot", default=None, help="write a PNG of the cost distributions here")
    parser.add_argument("--cap", nargs="+", default=[], metavar="METHOD=UNITS",
                        help="override a method's budget cap, e.g. mfms=10 (misses count as beyond the cap)")
    parser.add_argument("--from-json", default=None, help="summarise and plot a saved --out file, running nothing")
    args = parser.parse_args()
    if args.from_json:
        rows = json.loads(Path(args.from_json).read_text())
        for line in summarise(rows):
            print(line)
        if args.plot:
            plot(rows, Path(args.plot))
        return
    for item in args.cap:
        method, units = item.split("=")
        CAPS[method] = float(units)
    backends = [("parametric", None)] + ([("network", args.network)] if args.network else [])
    jobs = [(b, p, m, method, seed, CAPS[method]) for b, p in backends for m in args.metrics
            for method in args.methods for seed in range(args.seeds)]
    started = time.perf_counter()
    with ProcessPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(one_study, jobs))
    print(f"{len(rows)} studies in {time.perf_counter() - started:.0f} s ({args.jobs} processes, "
          f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']})")
    for line in summarise(rows):
        print(line)
    median, p95 = suggest_time()
    print(f"\nsuggest from 200 observations on (50 calls, a new run before each): median {median:.3f} s, "
          f"p95 {p95:.3f} s (one thread)")
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1))
    if args.plot:
        plot(rows, Path(args.plot))


def plot(rows: list[dict], path: Path) -> None:
    """Box plots of cost to target per method, one panel per (backend, metric); misses drawn at the cap."""
    from matplotlib.figure import Figure

    keys = sorted({(r["backend"], r["metric"]) for r in rows})
    fig = Figure(figsize=(4.2 * len(keys), 3.8), layout="constrained")
    axes = fig.subplots(1, len(keys), squeeze=False)[0]
    for ax, (backend, metric) in zip(axes, keys, strict=True):
        methods = [m for m in CAPS if any(r["method"] == m for r in rows)]
        data = [[r["cost"] if r["cost"] is not None else r.get("cap", CAPS[m]) for r in rows
                 if (r["backend"], r["metric"], r["method"]) == (backend, metric, m)] for m in methods]
        ax.boxplot(data, tick_labels=methods)
        ax.set_yscale("log")
        ax.set_title(f"{backend}: {metric}", fontsize=9)
        ax.set_ylabel("cost to within 1% (full 1B runs)")
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
