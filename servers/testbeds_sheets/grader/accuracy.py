"""Accuracy checks: outputs match the reference's recomputed values, inputs match the case, every output is
present, outflow lines keep one sign."""

from __future__ import annotations

from dataclasses import dataclass

from ..engine.values import Evaluation, Value, is_error
from ..tasks.model import Task
from .book import Book
from .locate import Located, close, normalise_label
from .report import CheckResult, make_check

UNEVALUABLE_KINDS = ("unsupported_function", "engine_error", "unevaluable", "parse_error", "skipped")


@dataclass
class OutputValue:
    """One output's value in one book; `unevaluable` when the engine could not compute it (not a failure)."""

    key: str | None
    value: Value = None
    unevaluable: bool = False


def output_value(book: Book, ev: Evaluation, loc: Located) -> OutputValue:
    if loc.key is None:
        return OutputValue(None)
    problem = ev.problems.get(loc.key)
    if problem is not None:
        # a cycle is the attempt's fault; an engine gap is ours and leaves the denominator
        return OutputValue(loc.key, None, problem.kind in UNEVALUABLE_KINDS)
    cell = book.cells.get(loc.key)
    if cell is not None and cell.text_formula:
        return OutputValue(loc.key, cell.raw)
    return OutputValue(loc.key, ev.values.get(loc.key))


def is_number(v: Value) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def values_match(a: Value, b: Value) -> bool:
    """Numbers within tolerance, errors by code, booleans and text exactly; None never matches."""
    if a is None or b is None:
        return False
    if is_number(a) and is_number(b):
        return close(float(a), float(b))
    return type(a) is type(b) and a == b


def final_calculations(task: Task, attempt: dict[str, OutputValue], reference: dict[str, OutputValue]) -> CheckResult:
    eligible, offending, notes, left_out = 0, [], [], []
    for o in task.outputs:
        a, r = attempt[o.id], reference[o.id]
        expected = r.value if not r.unevaluable else o.value
        if a.unevaluable or expected is None and r.unevaluable:
            left_out.append(o.id)
            continue
        eligible += 1
        if a.key is None:
            offending.append(o.id)
            notes.append(f"{o.id}: not found")
        elif not values_match(a.value, expected):
            offending.append(a.key)
            notes.append(f"{a.key} ({o.id}) = {a.value!r}, reference {expected!r}")
    text = (f"{eligible - len(offending)}/{eligible} outputs match the reference's recomputed values"
            + (": " + "; ".join(notes) if notes else "")
            + (f"; left out (unevaluable): {', '.join(left_out)}" if left_out else ""))
    return make_check("final_calculations", "final_calculations", eligible, offending, text)


def starting_values(task: Task, book: Book, inputs: dict[str, Located]) -> CheckResult:
    eligible, offending, notes = len(task.inputs), [], []
    if not book.formula_cells and task.inputs:
        return make_check("starting_values", "starting_values", eligible, [i.id for i in task.inputs],
                          "the workbook holds no formula at all: typed inputs drive nothing", score=0.0)
    for i in task.inputs:
        loc = inputs[i.id]
        if loc.key is None:
            offending.append(i.id)
            notes.append(f"{i.id} ({i.label}) not found")
            continue
        expected = [i.value] + list(i.series[1:] if i.series else [])
        keys = loc.series_keys or [loc.key]
        bad = None
        for k, (key, want) in enumerate(zip(keys + [None] * (len(expected) - len(keys)), expected)):
            cell = book.cells.get(key) if key else None
            if cell is None or not cell.is_number:
                bad = f"{key or i.id} is not a numeric constant" + (f" (period {k + 1})" if k else "")
                break
            got = float(cell.raw)
            if not (close(got, want) or (i.unit == "percent" and close(got, want * 100))):
                bad = f"{key} = {got!r}, the case gives {want!r}"
                break
        if bad:
            offending.append(loc.key)
            notes.append(bad)
    text = (f"{eligible - len(offending)}/{eligible} case inputs typed as constants with the case's values"
            + (": " + "; ".join(notes) if notes else ""))
    return make_check("starting_values", "starting_values", eligible, offending, text)


def task_completed(task: Task, attempt: dict[str, OutputValue]) -> CheckResult:
    eligible, offending, notes, left_out = 0, [], [], []
    for o in task.outputs:
        a = attempt[o.id]
        if a.unevaluable:
            left_out.append(a.key or o.id)
            continue
        eligible += 1
        if a.key is None:
            offending.append(o.id)
            notes.append(f"{o.id} ({o.label}, name {o.name}) not found")
        elif is_error(a.value):
            offending.append(a.key)
            notes.append(f"{a.key} ({o.id}) is {a.value}")
        elif not is_number(a.value):
            offending.append(a.key)
            notes.append(f"{a.key} ({o.id}) holds {a.value!r}, not a number")
    text = (f"{eligible - len(offending)}/{eligible} required outputs present and evaluated"
            + (": " + "; ".join(notes) if notes else "")
            + (f"; left out (unevaluable): {', '.join(left_out)}" if left_out else ""))
    return make_check("task_completed", "task_completed", eligible, offending, text)


def sign_consistency(task: Task, book: Book, ev: Evaluation) -> CheckResult:
    """Each declared outflow line (a calculated row under its label) keeps one sign, and all share one."""
    lines: list[tuple[str, int, str]] = []  # (label key, sign, description)
    offending, notes = [], []
    wanted = {normalise_label(lab): lab for lab in task.outflow_labels}
    for c in book.cells.values():
        if not c.is_text or c.text_formula or normalise_label(c.raw) not in wanted:
            continue
        row = [x for x in book.row_cells(c.sheet, c.row) if x.col > c.col]
        if not any(x.is_formula for x in row):
            continue  # a case input's row: its sign is the case's
        signs = set()
        for x in row:
            v = ev.values.get(x.key)
            if is_number(v) and float(v) != 0.0:
                signs.add(1 if float(v) > 0 else -1)
        if not signs:
            continue
        if len(signs) > 1:
            offending.append(c.key)
            notes.append(f"{c.key} '{c.raw}' mixes signs")
            continue
        lines.append((c.key, signs.pop(), c.raw))
    if lines:
        pos = sum(1 for _, s, _ in lines if s > 0)
        majority = 1 if pos * 2 > len(lines) else -1
        for key, s, raw in lines:
            if s != majority:
                offending.append(key)
                notes.append(f"{key} '{raw}' has the opposite sign of the other outflows")
    eligible = len(lines) + sum(1 for n in notes if "mixes" in n)
    text = (f"{eligible - len(offending)}/{eligible} outflow lines keep one sign convention"
            + (": " + "; ".join(notes) if notes else "") if eligible else "no declared outflow line found")
    return make_check("sign_consistency", "sign_consistency", eligible, offending, text)
