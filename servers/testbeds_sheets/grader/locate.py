"""Find a task's inputs and outputs in an attempt the agent laid out as it liked.

Inputs: by value first (case inputs are pairwise distinct and unlike 0, 1, 12, 100, 365), preferring constants
that formulas read and input-role sheets; then by label, so a mistyped input is still found (and still moves
under perturbation). Outputs: by the defined name the prompt asked for, then by label and the number right of it.
"""

from __future__ import annotations

import bisect
import math
import re
from dataclasses import dataclass, field
from typing import Literal

from ..tasks.model import Task, TaskInput, TaskOutput
from .book import Book, Cell, sheet_role

How = Literal["value", "label", "name", "reference"]


@dataclass
class Located:
    id: str
    key: str | None = None
    how: How | None = None
    scale: float = 1.0  # 100 when a percent was typed as a whole number (5 for 5%)
    series_keys: list[str] = field(default_factory=list)

    @property
    def found(self) -> bool:
        return self.key is not None


def normalise_label(text: str) -> str:
    """Lower case, units in brackets and punctuation dropped: 'Revenue ($m)' -> 'revenue'."""
    text = re.sub(r"\([^)]*\)|\[[^\]]*\]", " ", text.lower())
    text = re.sub(r"[^a-z0-9]+", " ", text)
    return " ".join(text.split())


def close(a: float, b: float) -> bool:
    """The grader's tolerance: |a - b| <= max(1e-9, 1e-6 |b|)."""
    return abs(a - b) <= max(1e-9, 1e-6 * abs(b))


def _normalised_labels(book: Book) -> list[tuple[Cell, str]]:
    return [(c, normalise_label(c.raw)) for c in book.cells.values() if c.is_text and not c.text_formula]


def _label_cells(book: Book, label: str) -> list[Cell]:
    want = normalise_label(label)
    if not want:
        return []
    exact, loose = [], []
    for c, have in book.derived("normalised_labels", _normalised_labels):
        if have == want:
            exact.append(c)
        elif have.startswith(want + " "):
            loose.append(c)
    return exact or loose


def _right_number(book: Book, label: Cell) -> Cell | None:
    """The first number or formula right of a label in its row."""
    for c in book.row_cells(label.sheet, label.row):
        if c.col > label.col and (c.is_formula or c.is_number or c.text_formula):
            return c
    return None


def _sheet_rank(book: Book, sheet: str, prefer: str) -> int:
    role = sheet_role(sheet)
    return 0 if role == prefer else 1 if role in ("calc", "default") else 2


def _series_keys(book: Book, first: Cell, n: int) -> list[str]:
    keys = []
    for k in range(n):
        c = book.at(first.sheet, first.row, first.col + k)
        if c is None:
            break
        keys.append(c.key)
    return keys


def _numbers_near(book: Book, target: float) -> list[Cell]:
    """The numeric constants `close` to `target`, from the book's value index (built once per book): a bisected
    window twice the tolerance wide, then the exact test, so the result is the same as a scan of every cell."""
    if not math.isfinite(target):
        return [c for c in book.cells.values() if c.is_number and close(float(c.raw), target)]
    values, cells = book.numbers_by_value()
    tol = 2 * max(1e-9, 1e-6 * abs(target))
    lo, hi = bisect.bisect_left(values, target - tol), bisect.bisect_right(values, target + tol)
    return [c for c in cells[lo:hi] if close(float(c.raw), target)]


def locate_input(book: Book, inp: TaskInput) -> Located:
    """Where the attempt holds a case input: a numeric constant equal to it (or 100x for a percent), else the
    number right of its label."""
    scales = (1.0, 100.0) if inp.unit == "percent" else (1.0,)
    candidates: list[tuple[tuple, Cell, float]] = []
    for scale in scales:
        for c in _numbers_near(book, inp.value * scale):
            label = book.label_of(c)
            label_match = label is not None and normalise_label(label) == normalise_label(inp.label)
            series_ok = 0
            if inp.series:
                for k, v in enumerate(inp.series[1:], start=1):
                    nxt = book.at(c.sheet, c.row, c.col + k)
                    if nxt is not None and nxt.is_number and close(float(nxt.raw), v * scale):
                        series_ok += 1
            rank = (not label_match, -series_ok, c.key not in book.read_by_formulas,
                    _sheet_rank(book, c.sheet, "input"), scale != 1.0, book.sheetnames.index(c.sheet), c.row,
                    c.col)
            candidates.append((rank, c, scale))
    if candidates:
        _, c, scale = min(candidates, key=lambda t: t[0])
        n = len(inp.series) if inp.series else 1
        return Located(inp.id, c.key, "value", scale, _series_keys(book, c, n))
    for label in sorted(_label_cells(book, inp.label),
                        key=lambda c: (_sheet_rank(book, c.sheet, "input"), book.sheetnames.index(c.sheet), c.row)):
        c = _right_number(book, label)
        if c is not None:
            scale = 100.0 if (inp.unit == "percent" and c.is_number and abs(float(c.raw)) > 1.5
                              and abs(inp.value) <= 1.5) else 1.0
            n = len(inp.series) if inp.series else 1
            return Located(inp.id, c.key, "label", scale, _series_keys(book, c, n))
    return Located(inp.id)


def locate_output(book: Book, out: TaskOutput) -> Located:
    """Where the attempt holds a required output: its defined name, else its label and the number right of it
    (output-role sheets first)."""
    key = book.defined_name_cell(out.name) if out.name else None
    if key is not None:
        return Located(out.id, key, "name")
    for label in sorted(_label_cells(book, out.label),
                        key=lambda c: (_sheet_rank(book, c.sheet, "output"), book.sheetnames.index(c.sheet), c.row)):
        c = _right_number(book, label)
        if c is not None:
            return Located(out.id, c.key, "label")
    return Located(out.id)


def locate_all(book: Book, task: Task) -> tuple[dict[str, Located], dict[str, Located]]:
    """(inputs by id, outputs by id) located in an attempt."""
    return ({i.id: locate_input(book, i) for i in task.inputs}, {o.id: locate_output(book, o) for o in task.outputs})


def reference_locations(book: Book, task: Task) -> tuple[dict[str, Located], dict[str, Located]]:
    """The reference's own cells, as the task records them (falling back to the output's defined name)."""
    from ..engine.values import cell_key, split_key

    inputs = {}
    for i in task.inputs:
        sheet, coord = split_key(i.cell)
        first = book.cells.get(cell_key(sheet, coord))
        keys = [cell_key(sheet, coord)]
        if first is not None and i.series:
            keys = _series_keys(book, first, len(i.series))
        inputs[i.id] = Located(i.id, cell_key(sheet, coord), "reference", 1.0, keys)
    outputs = {}
    for o in task.outputs:
        sheet, coord = split_key(o.cell)
        key = cell_key(sheet, coord)
        if key not in book.cells and o.name:
            key = book.defined_name_cell(o.name) or key
        outputs[o.id] = Located(o.id, key, "reference")
    return inputs, outputs
