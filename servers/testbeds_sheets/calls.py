"""Map workbook operations to the MCP tool calls that perform them.

The scripted reference agent replays a task's reference plan through the tools with `plan_to_calls`, so the plan
that builds the reference workbook and the tool calls an agent makes are one vocabulary.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .ops import (
    AddSheet,
    DefineName,
    DeleteSheet,
    FreezePanes,
    Op,
    RenameSheet,
    SetColumnWidth,
    SetStyle,
    WorkbookPlan,
    WriteRange,
)

TOOL_OF_OP: dict[type, str] = {
    AddSheet: "add_sheet",
    RenameSheet: "rename_sheet",
    DeleteSheet: "delete_sheet",
    WriteRange: "write_range",
    SetStyle: "set_style",
    SetColumnWidth: "set_column_width",
    FreezePanes: "freeze_panes",
    DefineName: "define_name",
}
"""The tool performing each operation; every tool takes the op's fields (minus `op`) plus `handle`."""


def op_to_call(op: Op) -> tuple[str, dict[str, Any]]:
    """(tool name, arguments without the handle) performing `op`."""
    tool = TOOL_OF_OP[type(op)]
    args = op.model_dump(mode="json", exclude={"op"}, exclude_defaults=True)
    # Required fields that happen to equal a default (write at 'A1', freeze_panes cell None) must still be sent
    # where the tool has no such default.
    if isinstance(op, WriteRange):
        args.setdefault("start", op.start)
    if isinstance(op, FreezePanes):
        args["cell"] = op.cell
    return tool, args


def plan_to_calls(plan: WorkbookPlan | Iterable[Op]) -> list[tuple[str, dict[str, Any]]]:
    """Every operation of `plan`, in order, as (tool name, arguments without the handle)."""
    ops = plan.ops if isinstance(plan, WorkbookPlan) else list(plan)
    return [op_to_call(op) for op in ops]
