"""Grade an attempt workbook against its task and reference: Accuracy, Formula and Format, 0-100.

Each book is evaluated once, plus one what-if pass per task perturbation; every formula is tokenised once.
"""

from __future__ import annotations

import contextlib
import gc
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import openpyxl
from openpyxl import Workbook

from ..tasks.model import Task
from .accuracy import (
    UNEVALUABLE_KINDS,
    final_calculations,
    output_value,
    sign_consistency,
    starting_values,
    task_completed,
)
from .book import Book
from .format_checks import FORMAT_CHECKS, FormatRun, format_checks
from .formula_checks import FORMULA_CHECK_NAMES, FORMULA_CHECKS, FormulaRun, computes_anything, formula_checks
from .judge import run_judge
from .locate import locate_all, reference_locations
from .perturb import (
    EmbeddedRecalculator,
    Recalculator,
    every_input_moved,
    inputs_linked,
    libreoffice_recalculators,
    nothing_moves,
    run_perturbations,
    unmoved_outputs,
)
from .report import GradeReport, against_reference, roll_up

ENGINES = ("embedded", "libreoffice", "auto")


def load(source: Workbook | str | Path) -> Workbook:
    """An openpyxl workbook with formulas (not cached values) from a path, or the workbook itself."""
    if isinstance(source, Workbook):
        return source
    with warnings.catch_warnings():
        # openpyxl warns about features it drops on read (data validation, extensions): irrelevant to grading
        warnings.simplefilter("ignore")
        return openpyxl.load_workbook(Path(source), data_only=False)


@contextlib.contextmanager
def _recalculators(engine: str, att: tuple[Workbook, Book],
                   ref: tuple[Workbook, Book]) -> Iterator[tuple[Recalculator, Recalculator]]:
    if engine == "libreoffice":
        with libreoffice_recalculators([(att[0], "attempt"), (ref[0], "reference")]) as (a, r):
            yield a, r
    else:
        yield EmbeddedRecalculator(*att), EmbeddedRecalculator(*ref)


_gc_lock = threading.Lock()
_gc_holders = 0
_gc_was_enabled = False


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Automatic garbage collection off while grading, one young-generation pass at the end. Loading and parsing
    two 5,000-cell books allocates hundreds of thousands of objects, which made the collector re-scan everything
    alive many times over (~20% of a grade); the final pass frees this grade's cyclic garbage (openpyxl cells and
    sheets point at each other) at once. Counted, so overlapping grades in threads re-enable it only when the last
    one ends, and only if it was on."""
    global _gc_holders, _gc_was_enabled
    with _gc_lock:
        if _gc_holders == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_holders += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_holders -= 1
            restore = _gc_holders == 0 and _gc_was_enabled
            if restore:
                gc.enable()
        if restore:
            gc.collect(0)


def _needs_fallback(*evs) -> bool:
    return any(p.kind in UNEVALUABLE_KINDS for ev in evs for p in ev.problems.values())


def grade(task: Task, attempt: Workbook | str | Path, reference: Workbook | str | Path, *, engine: str = "embedded",
          weights: dict[str, float] | None = None, strict: bool = False,
          judge: Callable[[str], str] | None = None) -> GradeReport:
    """Grade `attempt` for `task` against `reference`.

    engine: 'embedded' (our evaluator), 'libreoffice' (headless soffice), or 'auto' (embedded, redone in
    LibreOffice when a cell is beyond the embedded engine and soffice is installed).
    weights: dimension weights (default accuracy 0.50, formula 0.35, format 0.15).
    strict: every check scores 1 or 0, as MBABench's pass/fail criteria.
    judge: an optional chat callable (prompt -> text) scoring the subjective criteria; off by default.
    """
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; use one of {', '.join(ENGINES)}")
    with _collector_paused():
        return _grade(task, attempt, reference, engine, weights, strict, judge)


def _grade(task: Task, attempt: Workbook | str | Path, reference: Workbook | str | Path, engine: str,
           weights: dict[str, float] | None, strict: bool, judge: Callable[[str], str] | None) -> GradeReport:
    att_wb, ref_wb = load(attempt), load(reference)
    att_book, ref_book = Book(att_wb), Book(ref_wb)
    inputs, outputs = locate_all(att_book, task)
    ref_inputs, ref_outputs = reference_locations(ref_book, task)
    used = "libreoffice" if engine == "libreoffice" else "embedded"
    ref_counts: dict[tuple[int, str], ReferenceCounts] = {}
    report = _grade_with(used, task, (att_wb, att_book, inputs, outputs), (ref_wb, ref_book, ref_inputs, ref_outputs),
                         weights, strict, judge, ref_counts)
    if engine == "auto" and report[1]:
        from ..engine.libreoffice import soffice_available

        if soffice_available():
            report = _grade_with("libreoffice", task, (att_wb, att_book, inputs, outputs),
                                 (ref_wb, ref_book, ref_inputs, ref_outputs), weights, strict, judge, ref_counts)
    return report[0]


class ReferenceCounts:
    """The reference's eligible count per Formula and Format check, each worked out the first time it is asked
    for: `against_reference` asks only about checks the attempt has nothing eligible for, so grading an honest
    attempt runs no check on the reference at all."""

    def __init__(self, task: Task, ref_book: Book, ref_ev, ref_inputs: dict, ref_outputs: dict) -> None:
        self._formula = lambda: FormulaRun(ref_book, ref_ev, ref_outputs, ref_inputs)
        self._format = lambda: FormatRun(ref_book, ref_ev, task, ref_inputs, ref_outputs)
        self._formula_run: FormulaRun | None = None
        self._format_run: FormatRun | None = None
        self._counts: dict[str, int] = {}

    def get(self, name: str, default: int = 0, /) -> int:
        if name in self._counts:
            return self._counts[name]
        if name in FORMULA_CHECK_NAMES:
            if self._formula_run is None:
                self._formula_run = self._formula()
            n = self._formula_run.check(name).eligible
        elif name in FORMAT_CHECKS:
            if self._format_run is None:
                self._format_run = self._format()
            n = self._format_run.check(name).eligible
        else:
            return default
        self._counts[name] = n
        return n


def reference_eligible(task: Task, ref_book: Book, ref_ev, ref_inputs: dict, ref_outputs: dict) -> dict[str, int]:
    """How many items each Formula and Format check finds eligible on the reference workbook (every check, at
    once; grading uses the lazy `ReferenceCounts`)."""
    counts = ReferenceCounts(task, ref_book, ref_ev, ref_inputs, ref_outputs)
    return {name: counts.get(name) for name in (*(n for n, _ in FORMULA_CHECKS), *FORMAT_CHECKS)}


def _grade_with(engine: str, task: Task, att: tuple, ref: tuple, weights: dict[str, float] | None, strict: bool,
                judge: Callable[[str], str] | None,
                ref_counts: dict[tuple[int, str], ReferenceCounts]) -> tuple[GradeReport, bool]:
    att_wb, att_book, inputs, outputs = att
    ref_wb, ref_book, ref_inputs, ref_outputs = ref
    with _recalculators(engine, (att_wb, att_book), (ref_wb, ref_book)) as (att_rc, ref_rc):
        att_ev, ref_ev = att_rc.base(), ref_rc.base()
        runs = run_perturbations(task, (att_book, att_rc, inputs), (ref_book, ref_rc, ref_inputs))
        # the what-if that confirms a still output is typed: only needed when some output stayed put
        unmoved = unmoved_outputs(task, runs, att_ev, ref_ev, outputs, ref_outputs, None)
        still = nothing_moves(att_book, runs, att_ev, ref_ev, ref_outputs, None)
        if unmoved or still:
            everything = every_input_moved(task, (att_book, att_rc, inputs))
            unmoved = unmoved_outputs(task, runs, att_ev, ref_ev, outputs, ref_outputs, everything)
            still = nothing_moves(att_book, runs, att_ev, ref_ev, ref_outputs, everything)
    att_values = {o.id: output_value(att_book, att_ev, outputs[o.id]) for o in task.outputs}
    ref_values = {o.id: output_value(ref_book, ref_ev, ref_outputs[o.id]) for o in task.outputs}

    checks = [
        final_calculations(task, att_values, ref_values),
        starting_values(task, att_book, inputs),
        task_completed(task, att_values),
        sign_consistency(task, att_book, att_ev),
    ]
    # the reference's eligible counts tell "nothing to check" from "nothing done": worked out lazily, only for
    # the checks the attempt has nothing eligible for, and kept per reference and engine within this grade call
    cache_key = (id(ref_book), engine)
    if cache_key not in ref_counts:
        ref_counts[cache_key] = ReferenceCounts(task, ref_book, ref_ev, ref_inputs, ref_outputs)
    counts = ref_counts[cache_key]
    fchecks = against_reference(formula_checks(att_book, att_ev, outputs, inputs, unmoved, still), counts)
    linked = inputs_linked(task, runs, att_ev, ref_ev, outputs, ref_outputs)
    at = next(i for i, c in enumerate(fchecks) if c.name == "no_buried_constants") + 1
    checks += fchecks[:at] + [linked] + fchecks[at:]
    computes = computes_anything(att_book, inputs) and not still
    checks += against_reference(format_checks(att_book, att_ev, task, inputs, outputs, computes), counts)
    judged = None
    if judge is not None:
        judge_checks, judged = run_judge(judge, task, att_book, att_ev)
        checks += judge_checks
    final, dims, checks = roll_up(checks, weights, strict)

    n = len(task.outputs)
    gone = sum(1 for o in task.outputs if att_values[o.id].unevaluable or ref_values[o.id].unevaluable)
    unevaluable = sorted(k for k, p in att_ev.problems.items() if p.kind in UNEVALUABLE_KINDS)
    report = GradeReport(task_id=task.id, final=final, dimensions=dims, checks=checks,
                         coverage=1.0 if n == 0 else 1.0 - gone / n, formula_coverage=att_ev.coverage,
                         engine=engine, unevaluable=unevaluable, strict=strict, judge=judged)
    return report, _needs_fallback(att_ev, ref_ev)
