"""What every recalculation engine returns: typed cell values keyed by `Sheet!A1`, and per-cell problems.

Shared by the embedded evaluator and LibreOffice so the grader and the agreement tests compare like with like.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

# Excel's error values are kept as their codes (strings starting '#'), never as 0 or NaN.
ERROR_CODES = ("#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A", "#GETTING_DATA", "#SPILL!", "#CALC!")

Value = float | int | str | bool | None

ProblemKind = Literal["circular", "unsupported_function", "engine_error", "unevaluable", "parse_error", "skipped"]


def is_error(value: Value) -> bool:
    """True for an Excel error code such as '#DIV/0!'."""
    return isinstance(value, str) and value in ERROR_CODES


def cell_key(sheet: str, coordinate: str) -> str:
    """The canonical key of a cell: the sheet name unquoted, '!', the coordinate without '$' ('Inputs!B3')."""
    return f"{sheet}!{coordinate.replace('$', '').upper()}"


def split_key(key: str) -> tuple[str, str]:
    """('Inputs', 'B3') from 'Inputs!B3'; sheet names may themselves contain '!', so split on the last one."""
    sheet, _, coordinate = key.rpartition("!")
    return sheet, coordinate


class CellProblem(BaseModel):
    """Why a formula cell has no trustworthy value. Messages stay short: a failure deep in a chain must not grow."""

    kind: ProblemKind
    message: str = Field(max_length=500)


class Evaluation(BaseModel):
    """The values of one recalculated workbook.

    `values` holds every non-empty cell (constants and formula results; blank results are None). A formula cell
    listed in `problems` has no value in `values` (never a silent 0): graders leave it out and report coverage.
    """

    engine: str
    values: dict[str, Value] = Field(default_factory=dict)
    formula_cells: list[str] = Field(default_factory=list, description="Keys of every formula cell.")
    problems: dict[str, CellProblem] = Field(default_factory=dict)

    @property
    def coverage(self) -> float:
        """Share of formula cells with a value (1.0 for a workbook without formulas)."""
        if not self.formula_cells:
            return 1.0
        return 1.0 - sum(1 for k in self.formula_cells if k in self.problems) / len(self.formula_cells)
