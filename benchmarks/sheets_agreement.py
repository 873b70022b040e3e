"""Values agreement of the embedded evaluator with LibreOffice (forced `calculateAll()`) over every generated task.

    .venv/bin/python benchmarks/sheets_agreement.py [--seeds 2] [--difficulties 1-12] [--show 10]

For every family x difficulty x seed, the reference workbook is built, saved, evaluated by our evaluator and
recalculated by one headless LibreOffice; every formula cell is compared at relative tolerance 1e-9 (absolute
1e-9 near zero). Cells LibreOffice skips (a function it lacks) are listed apart, not counted. Prints a table by
family (workbooks, formula cells compared, agreed, rate, skipped) and the first disagreements with their formula
and both values. Baseline: LibreOffice's values in the same run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from testbeds_sheets.apply import build
from testbeds_sheets.engine.evaluator import load_model
from testbeds_sheets.engine.libreoffice import LibreOfficeEngine, soffice_available
from testbeds_sheets.stress import Agreement, compare_evaluations
from testbeds_sheets.tasks import FAMILIES, MAX_DIFFICULTY, generate_task, reference_plan


def difficulties(spec: str) -> list[int]:
    first, _, last = spec.partition("-")
    return list(range(int(first), int(last or first) + 1))


def formulas_of(model) -> dict[str, str]:
    return {key: model.formula(key) or "" for key in model.evaluate().formula_cells}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=2, help="seeds 0..N-1 per family and difficulty")
    parser.add_argument("--difficulties", default=f"1-{MAX_DIFFICULTY}", help="e.g. 1-12 or 4")
    parser.add_argument("--show", type=int, default=10, help="disagreements to print")
    args = parser.parse_args()
    if not soffice_available():
        print("LibreOffice (soffice + python3-uno) is not installed", file=sys.stderr)
        return 2
    rows: dict[str, dict[str, int]] = {}
    wrong: list[tuple[str, object]] = []
    skipped: list[tuple[str, str]] = []
    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, LibreOfficeEngine() as engine:
        for family in FAMILIES:
            row = rows.setdefault(family, {"books": 0, "compared": 0, "agreed": 0, "skipped": 0})
            for difficulty in difficulties(args.difficulties):
                for seed in range(args.seeds):
                    task = generate_task(family, seed, difficulty)
                    path = Path(tmp) / f"{task.id}.xlsx"
                    build(reference_plan(task)).save(path)
                    model = load_model(path)
                    ours = model.evaluate()
                    theirs = engine.recalculate(path)
                    result: Agreement = compare_evaluations(
                        ours, theirs, {k: model.formula(k) or "" for k in ours.formula_cells})
                    row["books"] += 1
                    row["compared"] += result.compared
                    row["agreed"] += result.agreed
                    row["skipped"] += len(result.skipped)
                    wrong += [(task.id, d) for d in result.disagreements]
                    skipped += [(task.id, k) for k in result.skipped]
    total = {k: sum(r[k] for r in rows.values()) for k in ("books", "compared", "agreed", "skipped")}
    print(f"seeds 0..{args.seeds - 1}, difficulties {args.difficulties}, {time.perf_counter() - began:.1f} s")
    print(f"{'family':<20}{'books':>7}{'compared':>10}{'agreed':>9}{'rate':>10}{'skipped':>9}")
    for family, r in [*rows.items(), ("all", total)]:
        rate = r["agreed"] / r["compared"] if r["compared"] else 1.0
        print(f"{family:<20}{r['books']:>7}{r['compared']:>10}{r['agreed']:>9}{rate:>10.4%}{r['skipped']:>9}")
    for task_id, d in wrong[:args.show]:
        print(f"DISAGREE {task_id} {d.cell} {d.formula!r}: ours {d.ours!r}, LibreOffice {d.theirs!r} ({d.note})")
    if skipped:
        print("skipped by LibreOffice:", ", ".join(f"{t}:{k}" for t, k in skipped[:args.show]))
    return 0 if not wrong else 1


if __name__ == "__main__":
    raise SystemExit(main())
