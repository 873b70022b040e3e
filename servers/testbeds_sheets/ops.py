"""Workbook operations: what the agent's write tools do and what a reference model is built from.

One vocabulary for both on purpose: the reference workbook of a task is a `WorkbookPlan` applied to an empty
book, and the scripted reference agent replays the same plan through the MCP tools, so "the reference grades 100"
and "the reference agent builds it through the tools" test the same thing.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

CellInput = float | int | str | bool | None
"""A cell's content as written: a number, text, a boolean, None to clear, or a formula as text starting '='."""

HexColour = Annotated[str, Field(pattern=r"^#?[0-9A-Fa-f]{6}$", description="RGB colour such as '0000FF' (blue).")]


class _Op(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AddSheet(_Op):
    op: Literal["add_sheet"] = "add_sheet"
    name: str = Field(min_length=1, max_length=31)
    index: int | None = Field(None, ge=0, description="Position among the sheets; default: last.")


class RenameSheet(_Op):
    op: Literal["rename_sheet"] = "rename_sheet"
    sheet: str
    new_name: str = Field(min_length=1, max_length=31)


class DeleteSheet(_Op):
    op: Literal["delete_sheet"] = "delete_sheet"
    sheet: str


class WriteRange(_Op):
    """Write a block of cells starting at `start`: rows of values; a string starting '=' is a formula."""

    op: Literal["write"] = "write"
    sheet: str
    start: str = Field("A1", description="Top-left cell of the block, e.g. 'B3'.")
    rows: list[list[CellInput]] = Field(min_length=1)


class SetStyle(_Op):
    """Style every cell of a range; fields left None are not changed."""

    op: Literal["style"] = "style"
    sheet: str
    range: str = Field(description="A cell or range, e.g. 'B3' or 'B3:F10'.")
    number_format: str | None = Field(None, description="Excel number format, e.g. '#,##0;(#,##0)' or '0.0%'.")
    font_color: HexColour | None = None
    bold: bool | None = None
    italic: bool | None = None
    font_name: str | None = None
    font_size: float | None = Field(None, gt=0, le=100)
    fill: HexColour | None = Field(None, description="Solid background colour; '' is not allowed, use clear_fill.")
    clear_fill: bool = False
    border: Literal["none", "thin", "medium", "top", "bottom", "box"] | None = None
    align: Literal["left", "center", "right"] | None = None


class SetColumnWidth(_Op):
    op: Literal["column_width"] = "column_width"
    sheet: str
    columns: str = Field(description="A column or span of columns, e.g. 'A' or 'B:F'.")
    width: float = Field(gt=0, le=255)


class FreezePanes(_Op):
    op: Literal["freeze_panes"] = "freeze_panes"
    sheet: str
    cell: str | None = Field(description="Rows above and columns left of this cell stay in view; None unfreezes.")


class DefineName(_Op):
    op: Literal["define_name"] = "define_name"
    name: str = Field(min_length=1, max_length=255)
    ref: str = Field(description="A cell or range with its sheet, e.g. 'Outputs!$C$4' or 'Calc!$C$10:$G$10'.")


Op = Annotated[AddSheet | RenameSheet | DeleteSheet | WriteRange | SetStyle | SetColumnWidth | FreezePanes
               | DefineName, Field(discriminator="op")]


class WorkbookPlan(BaseModel):
    """An ordered list of operations that builds a workbook from an empty one (with no sheets)."""

    model_config = ConfigDict(extra="forbid")

    ops: list[Op] = Field(default_factory=list)
