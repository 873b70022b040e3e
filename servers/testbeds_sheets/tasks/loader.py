"""Load a task from a folder holding a case prompt and a solution workbook (the MBABench / Modeloff layout).

Folder layout::

    <task>/
      prompt.md          the case as the agent reads it (or prompt.txt)
      solution.xlsx      the solution workbook, with formulas
      outputs.json       optional: the required outputs

`outputs.json` is either a list or {"outputs": [...], "difficulty": d}; each output is
{"name": "NPV_Project", "cell": "Outputs!C4", "label": "Project NPV", "unit": "currency"} (label and unit optional,
unit one of `model.Unit`). Without it, the outputs are the solution's defined names that point at one cell.

Inputs are the numeric constants of the solution's input sheet: the first sheet whose name contains "input" or
"assumption" (case-insensitive), else the first sheet. Each input's label is the nearest text to its left on the
same row. Outputs carry no value (`value=None`): the grader recomputes the solution and grades against it.
The task's difficulty is `outputs.json`'s "difficulty" when given, else 1 (a folder has no line-item graph).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from openpyxl import load_workbook
from openpyxl.utils.cell import range_boundaries

from .model import Task, TaskInput, TaskOutput, Unit

_UNITS = ("currency", "percent", "count", "years", "ratio", "selector", "days", "date")


def _unit_of(number_format: str) -> Unit:
    if "%" in number_format:
        return "percent"
    if "yy" in number_format.lower():
        return "date"
    return "currency"


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


def _read_outputs_json(path: Path) -> tuple[list[dict[str, Any]], int]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(data, dict):
        return list(data.get("outputs", [])), int(data.get("difficulty", 1))
    return list(data), 1


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
    specs: list[dict[str, Any]]
    if (folder / "outputs.json").is_file():
        specs, difficulty = _read_outputs_json(folder / "outputs.json")
    else:
        specs = []
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
        unit = spec.get("unit") or _unit_of(target.number_format)
        if unit not in _UNITS:
            raise ValueError(f"{folder}: output {spec['name']!r} has unknown unit {unit!r}")
        label = spec.get("label") or _row_label(ws, target.row, target.column) or spec["name"]
        outputs.append(TaskOutput(id=spec["name"].lower(), label=label, name=spec["name"], unit=unit,
                                  cell=f"{sheet}!{cell}", value=None))

    sheet_name = _input_sheet(wb.sheetnames)
    ws = wb[sheet_name]
    inputs: list[TaskInput] = []
    for row in ws.iter_rows():
        for c in row:
            if c.data_type == "n" and isinstance(c.value, (int, float)) and not isinstance(c.value, bool):
                inputs.append(TaskInput(id=f"{sheet_name}_{c.coordinate}".lower().replace(" ", "_"),
                                        label=_row_label(ws, c.row, c.column) or c.coordinate,
                                        value=float(c.value), unit=_unit_of(c.number_format),
                                        cell=f"{sheet_name}!{c.coordinate}"))
    heading = next((ln.lstrip("# ").strip() for ln in prompt.splitlines() if ln.strip()), folder.name)
    task = Task(id=folder.name, family="folder", seed=0, difficulty=max(1, difficulty), title=heading,
                prompt=prompt, inputs=inputs, outputs=outputs, source="folder")
    return task, solution
