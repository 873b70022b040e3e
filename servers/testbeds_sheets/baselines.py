"""Scripted baseline attempts that bound the grader from below.

`values_only_plan` is the agent that knows every answer but builds no model: it types the case inputs and the
required outputs as numbers. A grader that rewards such a workbook on Formula or Format, or punishes it on
Accuracy, measures the wrong thing (the sheets issue: "scores high on Accuracy and low on Formula and Format").
"""

from __future__ import annotations

from .ops import AddSheet, DefineName, WorkbookPlan, WriteRange
from .tasks.generator import reference_outputs
from .tasks.layout import label_with_unit
from .tasks.model import Task

# The default name a spreadsheet gives a new book's only sheet: this agent builds no structure.
VALUES_SHEET = "Sheet1"


def values_only_plan(task: Task, outputs: dict[str, float] | None = None) -> WorkbookPlan:
    """One sheet holding the case inputs as numbers beside their labels (a per-period input as its row of
    numbers), then every required output typed as its number beside its label, with the defined name the prompt
    asks for. No formula and no formatting.

    outputs: the numbers to type, by output id; default `reference_outputs(task)` (a generated task), else each
    output's recorded value.
    """
    if outputs is None:
        outputs = reference_outputs(task) if task.source == "generated" else {
            o.id: o.value for o in task.outputs if o.value is not None}
    rows: list[list[float | str | None]] = [["Inputs"]]
    for i in task.inputs:
        rows.append([label_with_unit(i.label, i.unit), *(i.series if i.series else [i.value])])
    rows.append([None])
    rows.append(["Outputs"])
    first_output = len(rows) + 1
    named: list[tuple[str, int]] = []
    for o in task.outputs:
        value = outputs.get(o.id)
        named.append((o.name, first_output + len(named)))
        rows.append([label_with_unit(o.label, o.unit), value])
    ops: list = [AddSheet(name=VALUES_SHEET), WriteRange(sheet=VALUES_SHEET, start="A1", rows=rows)]
    ops += [DefineName(name=name, ref=f"{VALUES_SHEET}!$B${row}") for name, row in named if name]
    return WorkbookPlan(ops=ops)
