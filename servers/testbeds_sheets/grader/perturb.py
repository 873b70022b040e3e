"""Perturbation: recompute the attempt and the reference with one case input changed at a time.

An output that does not move when the reference's does was typed, not computed, or reads a constant buried in a
formula instead of the input cell. A mistyped input still moves (it is found by label and scaled like the
reference's), so it costs Accuracy only.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from openpyxl import Workbook

from ..engine.values import Evaluation, Value, is_error
from ..tasks.model import Perturbation, Task
from .accuracy import UNEVALUABLE_KINDS, is_number
from .book import Book
from .locate import Located, close
from .report import CheckResult, make_check


class Recalculator(Protocol):
    """One workbook, recomputed as it is and under what-ifs; every engine offers the same two calls."""

    def base(self) -> Evaluation: ...

    def what_if(self, changes: dict[str, float]) -> Evaluation: ...


class EmbeddedRecalculator:
    """Our evaluator: compile once, then set the changed inputs, recompute, and set them back."""

    def __init__(self, wb: Workbook, book: Book) -> None:
        from ..engine.evaluator import load_model

        self._load = lambda: load_model(wb)
        self.model = self._load()
        self.book = book
        self._base: Evaluation | None = None
        self._stale = False

    def base(self) -> Evaluation:
        if self._base is None:
            self._base = self.model.evaluate()
        return self._base

    def what_if(self, changes: dict[str, float]) -> Evaluation:
        if self._stale:
            self.model, self._stale = self._load(), False
        for key, value in changes.items():
            self.model.set_value(key, value)
        ev = self.model.evaluate()
        for key in changes:
            cell = self.book.cells.get(key)
            if cell is None or cell.is_formula:
                self._stale = True  # a formula replaced by a constant: recompile before the next what-if
            else:
                self.model.set_value(key, cell.raw)
        return ev


class LibreOfficeRecalculator:
    """LibreOffice: each what-if is the workbook saved with the changed inputs, then recalculated."""

    def __init__(self, wb: Workbook, engine: object, workdir: Path, name: str) -> None:
        self.wb, self.engine, self.workdir, self.name = wb, engine, workdir, name
        self._base: Evaluation | None = None
        self._count = 0

    def _recalc(self) -> Evaluation:
        self._count += 1
        path = self.workdir / f"{self.name}-{self._count}.xlsx"
        self.wb.save(path)
        return self.engine.recalculate(path)  # type: ignore[attr-defined]

    def base(self) -> Evaluation:
        if self._base is None:
            self._base = self._recalc()
        return self._base

    def what_if(self, changes: dict[str, float]) -> Evaluation:
        from ..engine.values import split_key

        saved = {}
        for key, value in changes.items():
            sheet, coord = split_key(key)
            cell = self.wb[sheet][coord]
            saved[key] = cell.value
            cell.value = value
        try:
            return self._recalc()
        finally:
            for key, value in saved.items():
                sheet, coord = split_key(key)
                self.wb[sheet][coord].value = value


@contextlib.contextmanager
def libreoffice_recalculators(pairs: list[tuple[Workbook, str]]) -> Iterator[list[LibreOfficeRecalculator]]:
    """Recalculators sharing one LibreOffice process and one scratch folder, closed on exit."""
    from ..engine.libreoffice import LibreOfficeEngine

    with tempfile.TemporaryDirectory(prefix="sheets-grade-") as tmp, LibreOfficeEngine() as engine:
        yield [LibreOfficeRecalculator(wb, engine, Path(tmp), name) for wb, name in pairs]


@dataclass
class PerturbationRun:
    perturbation: Perturbation
    attempt: Evaluation | None  # None when the attempt holds no cell for the input
    reference: Evaluation
    attempt_changes: dict[str, float]


def _changes(book: Book, ev: Evaluation, loc: Located, old: float, new: float) -> dict[str, float]:
    """The cells to set: each of the input's cells scaled like the case value (or set to it when 0)."""
    out: dict[str, float] = {}
    ratio = new / old if old else None
    for key in loc.series_keys or ([loc.key] if loc.key else []):
        current = ev.values.get(key)
        if not is_number(current):
            cell = book.cells.get(key)
            current = cell.raw if cell is not None and cell.is_number else None
        if ratio is not None and is_number(current) and float(current) != 0.0:
            out[key] = float(current) * ratio
        else:
            out[key] = new * loc.scale
    return out


def run_perturbations(task: Task, att: tuple[Book, Recalculator, dict[str, Located]],
                      ref: tuple[Book, Recalculator, dict[str, Located]]) -> list[PerturbationRun]:
    """One what-if per task perturbation on each book."""
    att_book, att_rc, att_inputs = att
    ref_book, ref_rc, ref_inputs = ref
    att_base, ref_base = att_rc.base(), ref_rc.base()
    inputs = {i.id: i for i in task.inputs}
    runs = []
    for p in task.perturbations:
        inp = inputs.get(p.input_id)
        if inp is None:
            raise ValueError(f"perturbation of unknown input {p.input_id!r}; inputs: {', '.join(inputs)}")
        ref_changes = _changes(ref_book, ref_base, ref_inputs[inp.id], inp.value, p.value)
        ref_ev = ref_rc.what_if(ref_changes)
        loc = att_inputs.get(inp.id)
        att_changes = _changes(att_book, att_base, loc, inp.value, p.value) if loc and loc.key else {}
        att_ev = att_rc.what_if(att_changes) if att_changes else None
        runs.append(PerturbationRun(p, att_ev, ref_ev, att_changes))
    return runs


def _moved(before: Value, after: Value) -> bool:
    if is_number(before) and is_number(after):
        return not close(float(after), float(before))
    return before != after


def every_input_moved(task: Task, att: tuple[Book, Recalculator, dict[str, Located]]) -> Evaluation | None:
    """The attempt recomputed with every located case input changed at once, each by its own factor (a selector
    switched to another case), so no output that truly depends on an input can stay put by symmetry. None when the
    attempt holds no input cell. This what-if tells an output that reads a buried constant (it still moves with
    the inputs it does read) from one that reaches an input in form only (`=Inputs!$B$4*0+123.45`)."""
    book, rc, located = att
    base = rc.base()
    changes: dict[str, float] = {}
    for k, inp in enumerate(task.inputs):
        loc = located.get(inp.id)
        if loc is None or loc.key is None or not inp.value:
            continue
        if inp.unit == "selector":
            new = 2.0 if inp.value == 1 else 1.0
        else:
            new = inp.value * (1.0 + 0.07 * (k % 5 + 1) * (1 if k % 2 else -1))
        changes.update(_changes(book, base, loc, inp.value, new))
    return rc.what_if(changes) if changes else None


def unmoved_outputs(task: Task, runs: list[PerturbationRun], att_base: Evaluation, ref_base: Evaluation,
                    att_outputs: dict[str, Located], ref_outputs: dict[str, Located],
                    everything: Evaluation | None) -> set[str]:
    """Attempt output cells that move under no perturbation although the reference's output moves under at least
    one, and that stay put too when every input moves at once (`everything`, from `every_input_moved`): typed,
    not computed, e.g. `=Inputs!$B$4*0+123.45`. An output reading a buried input still moves with its other
    inputs, so it is left to `no_buried_constants` and `inputs_linked`.

    Only runs that changed an attempt cell count as evidence (an input the attempt lacks is `inputs_linked`'s
    business), and an output that is an error or beyond the engine is left to the checks that judge those."""
    still: set[str] = set()
    for o in task.outputs:
        rk, ak = ref_outputs[o.id].key, att_outputs[o.id].key
        if rk is None or ak is None or rk in ref_base.problems:
            continue
        problem = att_base.problems.get(ak)
        if (problem is not None and problem.kind in UNEVALUABLE_KINDS) or is_error(att_base.values.get(ak)):
            continue
        if everything is not None and _moved(att_base.values.get(ak), everything.values.get(ak)):
            continue
        tested = moved = False
        for run in runs:
            if run.attempt is None or rk in run.reference.problems:
                continue
            if not _moved(ref_base.values.get(rk), run.reference.values.get(rk)):
                continue
            tested = True
            if _moved(att_base.values.get(ak), run.attempt.values.get(ak)):
                moved = True
                break
        if tested and not moved:
            still.add(ak)
    return still


def nothing_moves(book: Book, runs: list[PerturbationRun], att_base: Evaluation, ref_base: Evaluation,
                  ref_outputs: dict[str, Located], everything: Evaluation | None) -> bool:
    """Whether no formula of the attempt moves under any perturbation that changed an attempt cell, although the
    reference's outputs move under one of them, nor when every input moves at once (`everything`): every formula
    reaches an input in form only (`=Inputs!$B$4*0+v`), as `=123.45` shells reach none. False without such a
    run (nothing to tell)."""
    evidence = False
    ref_keys = [loc.key for loc in ref_outputs.values() if loc.key is not None]
    attempts = [everything] if everything is not None else []
    for run in runs:
        if run.attempt is None:
            continue
        if any(_moved(ref_base.values.get(k), run.reference.values.get(k)) for k in ref_keys):
            evidence = True
            attempts.append(run.attempt)
    if not evidence:
        return False
    return not any(_moved(att_base.values.get(c.key), ev.values.get(c.key))
                   for ev in attempts for c in book.formula_cells)


def inputs_linked(task: Task, runs: list[PerturbationRun], att_base: Evaluation, ref_base: Evaluation,
                  att_outputs: dict[str, Located], ref_outputs: dict[str, Located]) -> CheckResult:
    """Per (input, output) pair where the reference's output moves, the attempt's must move too."""
    eligible, offending, notes = 0, [], []
    for run in runs:
        for o in task.outputs:
            rk = ref_outputs[o.id].key
            if rk is None or rk in ref_base.problems or rk in run.reference.problems:
                continue
            if not _moved(ref_base.values.get(rk), run.reference.values.get(rk)):
                continue
            ak = att_outputs[o.id].key
            pair = f"{ak or o.id} <- {run.perturbation.input_id}"
            if ak is not None:
                problem = att_base.problems.get(ak)
                if problem is not None and problem.kind in UNEVALUABLE_KINDS:
                    continue
                if is_error(att_base.values.get(ak)):
                    continue  # an error output is judged by no_errors and Accuracy, not by movement
            eligible += 1
            if ak is None:
                offending.append(pair)
                notes.append(f"{o.id} not found")
            elif run.attempt is None:
                offending.append(pair)
                notes.append(f"{run.perturbation.input_id} has no input cell in the attempt")
            elif not _moved(att_base.values.get(ak), run.attempt.values.get(ak)):
                offending.append(pair)
                notes.append(f"{ak} ({o.id}) stays {att_base.values.get(ak)!r} when "
                             f"{run.perturbation.input_id} changes")
    what = "output responses to input changes reproduced"
    if not eligible:
        text = f"nothing to check: {what} (no perturbation moves the reference)"
    else:
        text = f"{eligible - len(offending)}/{eligible} {what}" + (": " + "; ".join(notes[:12]) if notes else "")
    return make_check("inputs_linked", "hardcoding", eligible, offending, text)
