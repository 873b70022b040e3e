"""What the sheets tools return: cell views, range reads, workbook descriptions, recalculation and grade summaries.

Inputs of the write tools are the operation models of ops.py; these are the outputs. Nothing here carries
ground truth: reference values and locations stay in the task and the evaluator resource.
"""

from __future__ import annotations

from pydantic import BaseModel, Field, SerializerFunctionWrapHandler, model_serializer

from .engine.values import Value
from .tasks.model import Unit


class CellView(BaseModel):
    """One cell as the agent sees it; fields without content are left out. Style fields are filled only when
    styles were asked for."""

    ref: str = Field(description="A1 coordinate, e.g. 'B3'.")
    value: Value = Field(None, description="The value after recalculation (formula result or constant); "
                                           "an Excel error as its code, e.g. '#DIV/0!'; None when blank or "
                                           "when the formula could not be evaluated (see problem).")
    formula: str | None = Field(None, description="The formula as written, starting '=' (no _xlfn. prefixes).")
    problem: str | None = Field(None, description="Why a formula has no value: circular, unevaluable, ...")
    number_format: str | None = None
    font_color: str | None = Field(None, description="'RRGGBB', 'theme:N' or 'indexed:N'; None is the default "
                                                     "(black).")
    bold: bool | None = None
    italic: bool | None = None
    font_name: str | None = None
    font_size: float | None = None
    fill: str | None = Field(None, description="Solid background colour 'RRGGBB', or None for no fill.")
    align: str | None = Field(None, description="Horizontal alignment if set: left, center, right, ...")
    border: str | None = Field(None, description="Styled sides, e.g. 'top:thin bottom:medium'; None for none.")

    @model_serializer(mode="wrap")
    def _omit_empty(self, handler: SerializerFunctionWrapHandler) -> dict[str, object]:
        # A read returns many cells: unset fields would be most of the payload the agent has to read.
        data = handler(self)
        return {k: v for k, v in data.items() if v is not None or k in ("ref", "value")}


class RangeView(BaseModel):
    """A rectangular block of cells, row by row."""

    sheet: str
    range: str = Field(description="The block read or written, e.g. 'B3:F10'.")
    rows: list[list[CellView]]
    recalc_note: str | None = Field(None, description="Set when values could not be recomputed (then values "
                                                      "are None).")


class Written(RangeView):
    """The block a write changed, with its recomputed values."""

    cells_written: int
    file_name: str


class Changed(BaseModel):
    """Result of a structural or style change."""

    done: str = Field(description="What changed, in words.")
    sheets: list[str] = Field(description="The workbook's sheets, in order, after the change.")
    file_name: str


class RunList(BaseModel):
    """Compact cell lists: each entry a cell or a block of cells, e.g. 'C5:H5' or 'B3:B9'."""

    count: int
    runs: list[str]
    truncated: bool = Field(False, description="True when only the first runs are listed.")


class SheetSummary(BaseModel):
    name: str
    used_range: str | None = Field(description="Bounding range of non-empty cells, None for an empty sheet.")
    inputs: RunList = Field(description="Numeric constants (candidate inputs).")
    formulas: RunList = Field(description="Formula cells.")
    labels: int = Field(description="Non-empty text cells.")
    freeze_panes: str | None = None
    column_widths: dict[str, float] = Field(default_factory=dict)


class WorkbookDescription(BaseModel):
    file_name: str
    saved: bool = Field(description="False until the workbook has a sheet (an .xlsx needs one).")
    task_id: str | None = None
    submitted: bool = False
    sheets: list[SheetSummary]
    defined_names: dict[str, str] = Field(description="Name -> reference, e.g. {'EV': 'Outputs!$C$4'}.")


class CellIssue(BaseModel):
    ref: str = Field(description="'Sheet!A1'.")
    kind: str = Field(description="An Excel error code ('#DIV/0!', '#REF!', '#NAME?', ...) or a problem kind: "
                                  "circular, unsupported_function, unevaluable, engine_error, parse_error, skipped.")
    message: str | None = None


class RecalcReport(BaseModel):
    engine: str
    formula_cells: int
    coverage: float = Field(description="Share of formula cells with a value (1.0 = all evaluated).")
    errors: list[CellIssue] = Field(description="Cells whose value is an Excel error, or that could not be "
                                                "evaluated; the first 200.")
    counts: dict[str, int] = Field(description="Number of issues per kind.")
    truncated: bool = False


class OutputSpec(BaseModel):
    """A required output: give its cell the defined name and put the label left of it."""

    id: str
    label: str
    name: str = Field(description="Define this name on the output cell (define_name).")
    unit: Unit


class InputSpec(BaseModel):
    """A case input, as the prompt gives it."""

    id: str
    label: str
    value: float
    unit: Unit
    series: list[float] | None = None


class TaskStarted(BaseModel):
    handle: str = Field(description="Pass this to every other tool.")
    task_id: str
    family: str
    difficulty: int
    title: str
    prompt: str
    required_outputs: list[OutputSpec]
    file_name: str
    resources: list[str] = Field(description="Resources of this task (prompt, inputs; the grade after submit).")


class WorkspaceOpened(BaseModel):
    handle: str = Field(description="Pass this to every other tool.")
    file_name: str
    created: bool = Field(description="True for a new workbook, False when an existing file was opened.")
    sheets: list[str]


class FamilyInfo(BaseModel):
    name: str
    description: str
    difficulties: str = Field(description="Accepted difficulty levels, e.g. '1-10'.")


class TaskFamilies(BaseModel):
    families: list[FamilyInfo]


class Submitted(BaseModel):
    task_id: str
    final: float = Field(description="Score 0-100.")
    dimensions: dict[str, float] = Field(description="Score per dimension (accuracy, formula, format), 0-100.")
    coverage: float = Field(description="Share of required outputs that could be evaluated (1.0 = all).")
    grade_resource: str = Field(description="Read this resource for the full report (every check and cell).")
    file_name: str
