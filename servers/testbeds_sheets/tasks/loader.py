"""Load a task from a folder holding a case prompt and a solution workbook (the MBABench / Modeloff layout).

Folder layout::

    <task>/
      prompt.md          the case as the agent reads it (or prompt.txt)
      solution.xlsx      the solution workbook, with formulas
      outputs.json       optional: the required outputs, the difficulty, and input labels and units

`outputs.json` is either a list of outputs or an object::

    {"outputs": [{"name": "NPV_Project", "cell": "Outputs!C4", "label": "Project NPV", "unit": "currency"}],
     "inputs": [{"cell": "Inputs!B5", "label": "Project life", "unit": "years"}],
     "difficulty": 4}

In an output, label and unit are optional; "inputs" and "difficulty" are optional. Without outputs.json, the
outputs are the solution's defined names that point at one cell.

Inputs are the numeric constants of the solution's input sheet: the first sheet whose name contains "input" or
"assumption" (case-insensitive), else the first sheet. Each input's label is the nearest text to its left on the
same row. An "inputs" entry of outputs.json sets the label and unit of the input in its cell (label and unit
optional; "id" too); an entry naming a numeric constant elsewhere adds it as an input.

Units (one of `model.Unit`), first found wins:

1. the unit declared in outputs.json;
2. the unit written in the label, the conventions of the generated workbooks (`tasks/layout.py`) and common
   variants: the last parenthesised part of the label, e.g. "Revenue ($)", "Revenue ($m)", "WACC (%)",
   "Units sold (units)" or "(count)", "Life (years)", "DSO (days)", "Cover (x)", "Scenario (1/2/3)",
   "Start (date)", else a "%" or a currency sign anywhere in the label;
3. the cell's number format: "%" is percent, a date format is date;
4. currency.

Outputs carry no value (`value=None`): the grader recomputes the solution and grades against it.
The task's difficulty is outputs.json's "difficulty" when given, else 1 (a folder has no line-item graph).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, get_args

from openpyxl import load_workbook
from openpyxl.utils.cell import range_boundaries

from .model import Task, TaskInput, TaskOutput, Unit

_UNITS: tuple[str, ...] = get_args(Unit)

# Words of a parenthesised unit, by unit; checked in this order, so "1/2/3" is a selector before "/" means a rate.
_LABEL_UNITS: tuple[tuple[Unit, re.Pattern[str]], ...] = (
    ("selector", re.compile(r"^(?:\d(?:\s*/\s*\d)+|selector|switch|scenario|flag|0/1)$")),
    ("percent", re.compile(r"%|\bpercent(?:age)?\b|\bpct\b")),
    ("currency", re.compile(r"[$€£¥]|\b(?:usd|eur|gbp|jpy|chf|cad|aud|currency)\b")),
    ("date", re.compile(r"^(?:date|dd[/.-]mm[/.-]yy(?:yy)?|mm[/.-]dd[/.-]yy(?:yy)?|yyyy-mm-dd)$")),
    ("years", re.compile(r"^(?:years?|yrs?|y)$")),
    ("days", re.compile(r"^days?$")),
    ("ratio", re.compile(r"^(?:x|times|ratio|multiple)$")),
    ("count", re.compile(r"^(?:units?|count|#|no\.?|number|people|customers|users|items|heads?|fte)$")),
)
_PARENS = re.compile(r"\(([^()]*)\)")


def label_unit(label: str) -> Unit | None:
    """The unit a label states, e.g. 'WACC (%)' -> percent, 'Units sold (count)' -> count; None when it states none."""
    groups = _PARENS.findall(label)
    if groups:
        text = groups[-1].strip().lower()
        for unit, pattern in _LABEL_UNITS:
            if pattern.search(text):
                return unit
    low = label.lower()
    if "%" in low:
        return "percent"
    if re.search(r"[$€£¥]", low):
        return "currency"
    return None


def format_unit(number_format: str) -> Unit | None:
    """The unit a number format shows: '0.0%' -> percent, 'yyyy-mm-dd' -> date; None for a plain number format."""
    # quoted text and escapes are literal characters, not format codes
    codes = re.sub(r'"[^"]*"|\\.', "", number_format or "")
    if "%" in codes:
        return "percent"
    if re.search(r"yy|dd|mmm", codes.lower()):
        return "date"
    if re.search(r"[$€£¥]", number_format or ""):
        return "currency"
    return None


def _unit_of(declared: str | None, label: str, number_format: str, what: str) -> Unit:
    if declared is not None:
        if declared not in _UNITS:
            raise ValueError(f"{what} has unknown unit {declared!r}; units: {', '.join(_UNITS)}")
        return declared  # type: ignore[return-value]
    return label_unit(label) or format_unit(number_format) or "currency"


def _input_sheet(sheetnames: list[str]) -> str:
    for name in sheetnames:
        if re.search(r"input|assumption", name, re.IGNORECASE):
            return name
    return sheetnames[0]


def _row_label(ws: Any, row: int, col: int) -> str:
    for c in range(col - 1, 0, -1):
        value = ws.cell(row=row, column=c).value
        if isinstance(value, str) and value.strip() and not value.startswith("="):
            return value.strip()
    return ""


def _split_ref(ref: str) -> tuple[str, str]:
    sheet, _, cell = ref.rpartition("!")
    return sheet.strip("'"), cell.replace("$", "").upper()


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _read_outputs_json(path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    """(outputs, input declarations, difficulty) of an outputs.json."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(data, dict):
        return list(data.get("outputs", [])), list(data.get("inputs", [])), int(data.get("difficulty", 1))
    return list(data), [], 1


def _input_id(sheet: str, coordinate: str) -> str:
    return f"{sheet}_{coordinate}".lower().replace(" ", "_")


def _inputs(folder: Path, wb: Any, declared: list[dict[str, Any]]) -> list[TaskInput]:
    sheet_name = _input_sheet(wb.sheetnames)
    ws = wb[sheet_name]
    by_cell: dict[str, dict[str, Any]] = {}
    for spec in declared:
        if "cell" not in spec:
            raise ValueError(f"{folder}: an input in outputs.json has no 'cell': {spec!r}")
        sheet, cell = _split_ref(spec["cell"])
        by_cell[f"{sheet or sheet_name}!{cell}"] = spec
    cells = [c for row in ws.iter_rows() for c in row if c.data_type == "n" and _is_number(c.value)]
    found = {f"{sheet_name}!{c.coordinate}" for c in cells}
    for key in by_cell:
        if key in found:
            continue
        sheet, cell = _split_ref(key)
        if sheet not in wb.sheetnames:
            raise ValueError(f"{folder}: input {key!r} points at missing sheet {sheet!r}")
        target = wb[sheet][cell]
        if target.data_type != "n" or not _is_number(target.value):
            raise ValueError(f"{folder}: input {key!r} is not a numeric constant")
        cells.append(target)
    inputs: list[TaskInput] = []
    for c in cells:
        sheet = c.parent.title
        key = f"{sheet}!{c.coordinate}"
        spec = by_cell.get(key, {})
        label = spec.get("label") or _row_label(c.parent, c.row, c.column) or c.coordinate
        unit = _unit_of(spec.get("unit"), label, c.number_format, f"{folder}: input {key!r}")
        inputs.append(TaskInput(id=spec.get("id") or _input_id(sheet, c.coordinate), label=label,
                                value=float(c.value), unit=unit, cell=key))
    return inputs


def load_task_folder(path: str | Path) -> tuple[Task, Path]:
    """The task described by a folder (see the module docstring) and the path of its solution workbook."""
    folder = Path(path)
    prompt_path = next((folder / n for n in ("prompt.md", "prompt.txt") if (folder / n).is_file()), None)
    solution = folder / "solution.xlsx"
    if prompt_path is None or not solution.is_file():
        raise FileNotFoundError(f"{folder}: a task folder needs prompt.md (or prompt.txt) and solution.xlsx")
    prompt = prompt_path.read_text(encoding="utf-8")
    wb = load_workbook(solution)

    difficulty = 1
    specs: list[dict[str, Any]] = []
    declared_inputs: list[dict[str, Any]] = []
    if (folder / "outputs.json").is_file():
        specs, declared_inputs, difficulty = _read_outputs_json(folder / "outputs.json")
    if not specs:
        for name, defined in wb.defined_names.items():
            destinations = list(defined.destinations)
            if len(destinations) != 1:
                continue
            sheet, ref = destinations[0]
            min_col, min_row, max_col, max_row = range_boundaries(ref.replace("$", ""))
            if (min_col, min_row) == (max_col, max_row):
                specs.append({"name": name, "cell": f"{sheet}!{ref.replace('$', '')}"})
    if not specs:
        raise ValueError(f"{folder}: no outputs: add outputs.json or define names on the solution's output cells")

    outputs: list[TaskOutput] = []
    for spec in specs:
        sheet, cell = _split_ref(spec["cell"])
        if sheet not in wb.sheetnames:
            raise ValueError(f"{folder}: output {spec['name']!r} points at missing sheet {sheet!r}")
        ws = wb[sheet]
        target = ws[cell]
        row_label = _row_label(ws, target.row, target.column)
        label = spec.get("label") or row_label or spec["name"]
        # a label declared without its unit still lets the sheet's own label state it
        unit = _unit_of(spec.get("unit"), label if label_unit(label) else row_label, target.number_format,
                        f"{folder}: output {spec['name']!r}")
        outputs.append(TaskOutput(id=spec["name"].lower(), label=label, name=spec["name"], unit=unit,
                                  cell=f"{sheet}!{cell}", value=None))

    inputs = _inputs(folder, wb, declared_inputs)
    heading = next((ln.lstrip("# ").strip() for ln in prompt.splitlines() if ln.strip()), folder.name)
    task = Task(id=folder.name, family="folder", seed=0, difficulty=max(1, difficulty), title=heading,
                prompt=prompt, inputs=inputs, outputs=outputs, source="folder")
    return task, solution
