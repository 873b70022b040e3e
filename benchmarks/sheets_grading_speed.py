"""Grading time of a 5,000-cell model against LibreOffice headless recalculation of the same file, start-up included.

    .venv/bin/python benchmarks/sheets_grading_speed.py [--repeats 3] [--stock] [--stock-timeout 300]

The business-unit plan (`stress.unit_model_plan`: 10 units x 10 line items x 50 periods, 5,051 formulas plus two
output links) is saved once as .xlsx. Each repeat times, in this process:

- A, ours: `grade(task, file, file)`: load both books, evaluate them, every check, and the task's two
  perturbations (each re-evaluates both books);
- B, baseline: start a headless LibreOffice (our `LibreOfficeEngine`: private profile, UNO worker), load the file,
  `calculateAll()`, read every cell back; shutdown is not counted;
- for context, our evaluator alone (load + evaluate, no grading).

Prints each repeat, the medians and the ratio A/B (target <= 1: grading no slower than LibreOffice recalculating),
and the values agreement between our evaluation and LibreOffice's (formula cells, relative 1e-9, absolute 1e-9
near zero). `--stock` also runs stock xlcalculator 0.5.0 once in a subprocess with a timeout: ModelCompiler, then
Evaluator on the two cells the outputs link to (it computes their precedents on the way, each as often as it is
reached: no shared memo), and counts the formula values it left in the model that agree with LibreOffice.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from testbeds_sheets.apply import build
from testbeds_sheets.engine.evaluator import load_model
from testbeds_sheets.engine.libreoffice import LibreOfficeEngine, soffice_available
from testbeds_sheets.engine.values import Evaluation
from testbeds_sheets.grader import grade
from testbeds_sheets.stress import compare_evaluations, unit_model_plan, unit_model_task, values_agree

STOCK = r"""
import json, sys, time, warnings
warnings.simplefilter("ignore")
sys.setrecursionlimit(100_000)
from xlcalculator import ModelCompiler, Evaluator
t0 = time.perf_counter()
model = ModelCompiler().read_and_parse_archive(sys.argv[1])
t1 = time.perf_counter()
evaluator = Evaluator(model)
# What a grader needs: the outputs. Stock evaluates their precedents on the way and keeps each value in its cell.
for address in sys.argv[2:]:
    evaluator.evaluate(address)
t2 = time.perf_counter()
values = {}
for address, cell in model.cells.items():
    if cell.formula is None:
        continue
    value = cell.value
    try:
        values[address] = float(value)
    except (TypeError, ValueError):
        values[address] = None if value is None else str(value)
print(json.dumps({"load": t1 - t0, "evaluate": t2 - t1, "values": values}))
"""


def time_ours(task, path: Path) -> tuple[float, float]:
    began = time.perf_counter()
    report = grade(task, path, path)
    graded = time.perf_counter() - began
    if report.final != 100.0:
        raise SystemExit(f"the model should grade 100 against itself, got {report.final}")
    began = time.perf_counter()
    load_model(path).evaluate()
    return graded, time.perf_counter() - began


def time_libreoffice(path: Path) -> tuple[float, float, Evaluation]:
    began = time.perf_counter()
    engine = LibreOfficeEngine()
    try:
        engine.start()
        evaluation = engine.recalculate(path)
        elapsed = time.perf_counter() - began
        startup = engine.startup_seconds or 0.0
    finally:
        engine.close()
    return elapsed, startup, evaluation


def run_stock(path: Path, outputs: list[str], timeout: float) -> dict | None:
    try:
        done = subprocess.run([sys.executable, "-c", STOCK, str(path), *outputs], capture_output=True, text=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return None
    if done.returncode != 0:
        raise SystemExit(f"stock xlcalculator crashed: {done.stderr[-800:]}")
    return json.loads(done.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--stock", action="store_true", help="also time stock xlcalculator 0.5.0 (slow)")
    parser.add_argument("--stock-timeout", type=float, default=900.0)
    args = parser.parse_args()
    if not soffice_available():
        print("LibreOffice (soffice + python3-uno) is not installed", file=sys.stderr)
        return 2
    task = unit_model_task()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "units-10x10x50.xlsx"
        build(unit_model_plan()).save(path)
        ours_eval = load_model(path).evaluate()
        print(f"model: {len(ours_eval.formula_cells):,} formula cells, {path.stat().st_size / 1e3:.0f} kB")
        # warm-up: imports, and LibreOffice's first start creates the profile template later starts copy
        time_ours(task, path)
        time_libreoffice(path)
        a_runs, b_runs, eval_runs, starts = [], [], [], []
        theirs: Evaluation | None = None
        for k in range(args.repeats):
            a, ev = time_ours(task, path)
            b, start, theirs = time_libreoffice(path)
            a_runs.append(a)
            eval_runs.append(ev)
            b_runs.append(b)
            starts.append(start)
            print(f"repeat {k + 1}: grade {a:.2f} s (evaluator alone {ev:.2f} s); LibreOffice {b:.2f} s "
                  f"(start-up {start:.2f} s)")
        assert theirs is not None
        agreement = compare_evaluations(ours_eval, theirs)
        a_med, b_med = statistics.median(a_runs), statistics.median(b_runs)
        print(f"median: A grade (load + evaluate + every check + 2 perturbations, both books) {a_med:.2f} s; "
              f"B LibreOffice start-up + load + calculateAll + read {b_med:.2f} s "
              f"(start-up {statistics.median(starts):.2f} s); our evaluator alone {statistics.median(eval_runs):.2f} s")
        print(f"ratio A/B = {a_med / b_med:.2f} (target <= 1); evaluator alone / B = "
              f"{statistics.median(eval_runs) / b_med:.2f}")
        print(f"values agreement with LibreOffice: {agreement.agreed:,}/{agreement.compared:,} formula cells"
              + (f", {len(agreement.skipped)} skipped" if agreement.skipped else ""))
        for d in agreement.disagreements[:5]:
            print(f"  DISAGREE {d.cell}: ours {d.ours!r}, LibreOffice {d.theirs!r}")
        if args.stock:
            # The cells the outputs link to: stock returns a blank for a cell that carries a defined name.
            model = load_model(path)
            sources = [(model.formula(k) or "").lstrip("=").replace("$", "") for k in ("Outputs!B4", "Outputs!B5")]
            stock = run_stock(path, sources, args.stock_timeout)
            if stock is None:
                print(f"stock xlcalculator 0.5.0: no result within {args.stock_timeout:.0f} s")
            else:
                agreed = sum(1 for key, value in stock["values"].items()
                             if key in theirs.values and values_agree(value, theirs.values[key]))
                total = stock["load"] + stock["evaluate"]
                print(f"stock xlcalculator 0.5.0: load {stock['load']:.2f} s + evaluate outputs "
                      f"{stock['evaluate']:.2f} s "
                      f"= {total:.2f} s ({total / b_med:.1f}x LibreOffice, {total / a_med:.1f}x our grade); agrees "
                      f"with LibreOffice on {agreed:,}/{len(stock['values']):,} formula cells; NPV "
                      f"{stock['values'].get(sources[0])!r} (LibreOffice {theirs.values.get(sources[0])!r})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
