"""Workspaces: one real .xlsx workbook per handle, saved under a workspace root after every change.

A change is a transaction: the operation is validated in full (apply.validate plus the workspace's own bounds),
applied to the workbook in memory, serialised, size-checked and written atomically (a temporary file, then
os.replace). If any step fails, the workbook in memory is restored from the last saved bytes, so a failed call
leaves both memory and file as they were.

Values come from recalculation (openpyxl stores no cached values for the formulas it writes): the evaluation is
cached per workspace and dropped by every change that can move a value (style changes keep it).
"""

from __future__ import annotations

import io
import logging
import os
import re
import secrets
import threading
import warnings
from collections.abc import Iterable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

from openpyxl import Workbook, load_workbook
from openpyxl.utils.cell import column_index_from_string, coordinate_from_string, get_column_letter
from openpyxl.worksheet.formula import ArrayFormula, DataTableFormula
from testbeds_serving.errors import InvalidArgument, UserError

from . import formulas
from .apply import apply, new_workbook, parse_range, sheet_of, validate
from .engine.values import Evaluation, cell_key, is_error, split_key
from .models import (
    CellIssue,
    CellView,
    RangeView,
    RecalcReport,
    RunList,
    SheetSummary,
    WorkbookDescription,
)
from .ops import DeleteSheet, FreezePanes, Op, SetColumnWidth, SetStyle, WriteRange
from .tasks.model import Task

log = logging.getLogger("testbeds.sheets.workspace")

DEFAULT_ROOT = "~/.local/state/testbeds/sheets"
ROOT_ENV = "TESTBEDS_SHEETS_ROOT"
FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,80}\.xlsx$")
MAX_FILE_BYTES = 20_000_000
MAX_SHEETS = 50
MAX_CELLS = 200_000  # well past a 50-period, many-line model; bounds memory and recalculation time
MAX_STYLE_CELLS = 20_000
MAX_READ_CELLS = 10_000
MAX_LISTED_RUNS = 100
MAX_LISTED_ISSUES = 200
# Changes that cannot move a value keep the cached evaluation.
_STYLE_ONLY = (SetStyle, SetColumnWidth, FreezePanes)


def workspace_root(root: str | os.PathLike[str] | None = None) -> Path:
    """The directory workbooks are saved in: `root`, else $TESTBEDS_SHEETS_ROOT, else ~/.local/state/testbeds/sheets.

    Created if missing.
    """
    chosen = Path(root if root is not None else os.environ.get(ROOT_ENV) or DEFAULT_ROOT).expanduser()
    chosen.mkdir(parents=True, exist_ok=True)
    return chosen.resolve()


def check_file_name(name: str) -> str:
    """Return `name` if it is a plain .xlsx file name (no folders, no traversal), else raise InvalidArgument."""
    if not isinstance(name, str) or not FILE_NAME.fullmatch(name) or name != name.strip():
        raise InvalidArgument(
            f"file name {name!r} is not allowed: use 1-81 letters, digits, spaces, '_', '.' or '-' (starting with "
            "a letter or digit) followed by '.xlsx', e.g. 'dcf model.xlsx'; folders are not allowed"
        )
    return name


class Recalculator(Protocol):
    """A recalculation engine as the workspace uses it."""

    name: str

    def evaluate(self, wb: Workbook, path: Path | None) -> Evaluation:
        """Values of `wb`, whose saved copy (when it has one) is `path`."""
        ...

    def close(self) -> None: ...


class EmbeddedEngine:
    """Our xlcalculator-based evaluator: in process, no external program."""

    name = "embedded"

    def evaluate(self, wb: Workbook, path: Path | None) -> Evaluation:
        from .engine.evaluator import evaluate_workbook

        return evaluate_workbook(wb)

    def close(self) -> None:
        pass


class LibreOfficeRecalculator:
    """LibreOffice headless, started on first use and shared by every workspace (one call at a time)."""

    name = "libreoffice"

    def __init__(self) -> None:
        self._engine: Any = None
        self._context: AbstractContextManager[Any] | None = None
        self._lock = threading.Lock()

    def evaluate(self, wb: Workbook, path: Path | None) -> Evaluation:
        if path is None:
            raise InvalidArgument("the workbook has no saved file yet; add a sheet first")
        with self._lock:
            if self._engine is None:
                from .engine.libreoffice import LibreOfficeEngine

                self._context = LibreOfficeEngine()
                self._engine = self._context.__enter__()
            return self._engine.recalculate(path)

    def close(self) -> None:
        with self._lock:
            if self._context is not None:
                self._context.__exit__(None, None, None)
            self._engine = self._context = None


def make_engine(name: str) -> Recalculator:
    """'embedded' (default) or 'libreoffice' (needs soffice on PATH)."""
    if name == "embedded":
        return EmbeddedEngine()
    if name == "libreoffice":
        from .engine.libreoffice import soffice_available

        if not soffice_available():
            raise InvalidArgument("engine 'libreoffice' needs LibreOffice (soffice) installed; use 'embedded'")
        return LibreOfficeRecalculator()
    raise InvalidArgument(f"unknown engine {name!r}; choose 'embedded' or 'libreoffice'")


def _serialise(wb: Workbook) -> bytes:
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


def _load(data: bytes | Path) -> Workbook:
    source = io.BytesIO(data) if isinstance(data, bytes) else data
    # openpyxl warns about parts it drops (extensions, data validation) in files made elsewhere: not our errors.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_workbook(source)


def _write_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with open(temporary, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _cell_count(wb: Workbook) -> int:
    # openpyxl keeps a worksheet's cells in `_cells`; counting it is O(sheets), iterating would be O(cells).
    return sum(len(ws._cells) for ws in wb.worksheets)


def _hex(color: Any) -> str | None:
    if color is None:
        return None
    kind = getattr(color, "type", None)
    if kind == "rgb" and isinstance(color.rgb, str):
        return color.rgb[-6:].upper()
    if kind == "theme":
        return f"theme:{color.theme}"
    if kind == "indexed":
        return f"indexed:{color.indexed}"
    return None


def formula_text(raw: Any) -> str | None:
    """The formula of a cell's raw value as the agent wrote it (no _xlfn. prefixes), or None for a constant."""
    if isinstance(raw, ArrayFormula):
        return formulas.from_stored(raw.text or "")
    if isinstance(raw, DataTableFormula):
        return "=TABLE()"
    if isinstance(raw, str) and raw.startswith("=") and len(raw) > 1:
        return formulas.from_stored(raw)
    return None


class Workspace:
    """One workbook, its file under the workspace root, and (for a task) the task and its grade.

    Not thread-safe: the server holds the handle's lock around every call.
    """

    def __init__(self, path: Path, wb: Workbook, engine: Recalculator, task: Task | None = None,
                 saved: bytes | None = None) -> None:
        self.path = path
        self.wb = wb
        self.engine = engine
        self.task = task
        self.grade: Any = None
        self._saved = saved
        self._evaluation: Evaluation | None = None

    @property
    def file_name(self) -> str:
        return self.path.name

    @property
    def saved(self) -> bool:
        return self._saved is not None

    @property
    def file_bytes(self) -> bytes | None:
        """The workbook as last saved (None before it has a sheet)."""
        return self._saved

    # -- changes ---------------------------------------------------------------------------------------------

    def check(self, op: Op) -> None:
        """Raise a UserError if `op` cannot be applied; never changes anything."""
        validate(self.wb, op)
        if isinstance(op, DeleteSheet) and len(self.wb.sheetnames) == 1:
            raise InvalidArgument(f"{op.sheet!r} is the workbook's only sheet and an .xlsx needs one; add another "
                                  "sheet first")
        if op.op == "add_sheet" and len(self.wb.sheetnames) >= MAX_SHEETS:
            raise InvalidArgument(f"a workbook holds at most {MAX_SHEETS} sheets")
        if isinstance(op, WriteRange):
            block = len(op.rows) * max(len(r) for r in op.rows)
            if _cell_count(self.wb) + block > MAX_CELLS:
                raise InvalidArgument(f"the workbook would exceed {MAX_CELLS} cells; keep the model smaller")
        if isinstance(op, SetStyle):
            min_row, min_col, max_row, max_col = parse_range(op.range)
            size = (max_row - min_row + 1) * (max_col - min_col + 1)
            if size > MAX_STYLE_CELLS:
                raise InvalidArgument(f"one style call covers at most {MAX_STYLE_CELLS} cells; style the used "
                                      "block, not whole sheets")
            if _cell_count(self.wb) + size > MAX_CELLS:  # styling creates the cells it touches
                raise InvalidArgument(f"the workbook would exceed {MAX_CELLS} cells; style the used block only")

    def change(self, op: Op) -> None:
        """Validate, apply and save `op` as one transaction (see the module docstring)."""
        self.check(op)
        try:
            apply(self.wb, op)
            data = _serialise(self.wb) if self.wb.sheetnames else None
            if data is not None and len(data) > MAX_FILE_BYTES:
                raise InvalidArgument(f"the workbook would exceed {MAX_FILE_BYTES // 1_000_000} MB; the change "
                                      "was not made")
            if data is not None:
                _write_atomically(self.path, data)
        except BaseException:
            self._rollback()
            raise
        self._saved = data
        if not isinstance(op, _STYLE_ONLY):
            self._evaluation = None

    def _rollback(self) -> None:
        try:
            self.wb = _load(self._saved) if self._saved is not None else new_workbook()
        except Exception:  # the saved bytes were written by us: failing to read them back is a bug
            log.exception("could not restore workspace %s from its saved bytes", self.path.name)
            raise
        self._evaluation = None

    # -- values ----------------------------------------------------------------------------------------------

    def evaluation(self) -> Evaluation:
        """The workbook's values, recalculated when something changed since the last call."""
        if self._evaluation is None:
            if not self.wb.sheetnames:
                self._evaluation = Evaluation(engine=self.engine.name)
            else:
                self._evaluation = self.engine.evaluate(self.wb, self.path if self.saved else None)
        return self._evaluation

    def _try_evaluation(self) -> tuple[Evaluation | None, str | None]:
        try:
            return self.evaluation(), None
        except UserError as exc:
            return None, str(exc)
        except Exception as exc:  # a recalculation bug must not turn a saved change into a failed call
            log.exception("recalculation failed in workspace %s", self.path.name)
            return None, f"values could not be recomputed ({type(exc).__name__}); the workbook itself is saved"

    def read(self, sheet: str, ref: str, *, include_styles: bool = False, values: bool = True) -> RangeView:
        """The cells of `sheet!ref`, with values by recalculation and, if asked, their styles."""
        ws = sheet_of(self.wb, sheet)
        min_row, min_col, max_row, max_col = parse_range(ref)
        if (max_row - min_row + 1) * (max_col - min_col + 1) > MAX_READ_CELLS:
            raise InvalidArgument(f"one read covers at most {MAX_READ_CELLS} cells; read a smaller range")
        evaluation, note = self._try_evaluation() if values else (None, "values not recomputed (recalculate=false)")
        rows = []
        for r in range(min_row, max_row + 1):
            row = []
            for c in range(min_col, max_col + 1):
                coordinate = f"{get_column_letter(c)}{r}"
                # ws._cells avoids creating empty cells just by reading them (ws.cell would, and grow the file).
                cell = ws._cells.get((r, c))
                row.append(self._view(ws.title, coordinate, cell, evaluation, include_styles))
            rows.append(row)
        shown = f"{get_column_letter(min_col)}{min_row}"
        if (max_row, max_col) != (min_row, min_col):
            shown += f":{get_column_letter(max_col)}{max_row}"
        return RangeView(sheet=ws.title, range=shown, rows=rows, recalc_note=note)

    @staticmethod
    def _view(sheet: str, coordinate: str, cell: Any, evaluation: Evaluation | None, styles: bool) -> CellView:
        view = CellView(ref=coordinate)
        if cell is None:
            return view
        raw = cell.value
        view.formula = formula_text(raw)
        if view.formula is None:
            view.value = raw if isinstance(raw, int | float | str | bool) or raw is None else str(raw)
        elif evaluation is not None:
            key = cell_key(sheet, coordinate)
            problem = evaluation.problems.get(key)
            if problem is not None:
                view.problem = f"{problem.kind}: {problem.message}"
            else:
                view.value = evaluation.values.get(key)
        if styles:
            font = cell.font
            view.number_format = cell.number_format
            view.font_color = _hex(font.color)
            view.bold = bool(font.bold)
            view.italic = bool(font.italic)
            view.font_name = font.name
            view.font_size = float(font.size) if font.size is not None else None
            fill = cell.fill
            view.fill = _hex(fill.fgColor) if fill is not None and fill.fill_type == "solid" else None
            view.align = cell.alignment.horizontal
            sides = [f"{side}:{getattr(cell.border, side).style}" for side in ("left", "right", "top", "bottom")
                     if getattr(cell.border, side) is not None and getattr(cell.border, side).style]
            view.border = " ".join(sides) or None
        return view

    def recalc_report(self) -> RecalcReport:
        """Recalculate and list every error value and unevaluable formula, by cell."""
        evaluation = self.evaluation()
        order = {name: i for i, name in enumerate(self.wb.sheetnames)}
        issues: list[CellIssue] = []
        for key, value in evaluation.values.items():
            if is_error(value) and key not in evaluation.problems:
                issues.append(CellIssue(ref=key, kind=str(value)))
        for key, problem in evaluation.problems.items():
            issues.append(CellIssue(ref=key, kind=problem.kind, message=problem.message))
        issues.sort(key=lambda i: _sort_key(i.ref, order))
        counts: dict[str, int] = {}
        for issue in issues:
            counts[issue.kind] = counts.get(issue.kind, 0) + 1
        return RecalcReport(engine=evaluation.engine, formula_cells=len(evaluation.formula_cells),
                            coverage=round(evaluation.coverage, 6), errors=issues[:MAX_LISTED_ISSUES],
                            counts=counts, truncated=len(issues) > MAX_LISTED_ISSUES)

    # -- description -----------------------------------------------------------------------------------------

    def describe(self) -> WorkbookDescription:
        """Sheets, used ranges, input (numeric constant) and formula cells, names: no values."""
        return WorkbookDescription(file_name=self.file_name, saved=self.saved,
                                   task_id=self.task.id if self.task else None, submitted=self.grade is not None,
                                   sheets=sheet_summaries(self.wb), defined_names=names_of(self.wb))


def sheet_summaries(wb: Workbook) -> list[SheetSummary]:
    """Each sheet's used range, input and formula cells, labels, frozen panes and column widths."""
    return [_summary(ws) for ws in wb.worksheets]


def names_of(wb: Workbook) -> dict[str, str]:
    """Defined names and their references; sheet-scoped names as 'Sheet!name'."""
    names = {name: d.attr_text for name, d in wb.defined_names.items()}
    for ws in wb.worksheets:
        names.update({f"{ws.title}!{name}": d.attr_text for name, d in ws.defined_names.items()})
    return names


def _sort_key(key: str, order: dict[str, int]) -> tuple[int, int, int]:
    sheet, coordinate = split_key(key)
    try:
        letters, row = coordinate_from_string(coordinate)
        return order.get(sheet, len(order)), row, column_index_from_string(letters)
    except ValueError:
        return order.get(sheet, len(order)), 0, 0


def _runs(cells: list[tuple[int, int]]) -> RunList:
    """Cells as rectangles: runs along each row, then runs of equal column spans down consecutive rows."""
    spans: list[tuple[int, int, int]] = []  # (row, first column, last column)
    for row, col in sorted(cells):
        if spans and spans[-1][0] == row and spans[-1][2] == col - 1:
            spans[-1] = (row, spans[-1][1], col)
        else:
            spans.append((row, col, col))
    blocks: list[list[int]] = []  # [first row, last row, first column, last column]
    for row, c1, c2 in sorted(spans, key=lambda s: (s[1], s[2], s[0])):
        if blocks and blocks[-1][2:] == [c1, c2] and blocks[-1][1] == row - 1:
            blocks[-1][1] = row
        else:
            blocks.append([row, row, c1, c2])
    blocks.sort()
    runs = [_run_text((r1, c1), (r2, c2)) for r1, r2, c1, c2 in blocks]
    return RunList(count=len(cells), runs=runs[:MAX_LISTED_RUNS], truncated=len(runs) > MAX_LISTED_RUNS)


def _run_text(start: tuple[int, int], end: tuple[int, int] | None) -> str:
    first = f"{get_column_letter(start[1])}{start[0]}"
    if end is None or end == start:
        return first
    return f"{first}:{get_column_letter(end[1])}{end[0]}"


def _summary(ws: Any) -> SheetSummary:
    inputs: list[tuple[int, int]] = []
    formula_cells: list[tuple[int, int]] = []
    labels = 0
    used: list[tuple[int, int]] = []
    for (row, col), cell in ws._cells.items():
        raw = cell.value
        if raw is None:
            continue
        used.append((row, col))
        if formula_text(raw) is not None:
            formula_cells.append((row, col))
        elif isinstance(raw, int | float) and not isinstance(raw, bool):
            inputs.append((row, col))
        elif isinstance(raw, str):
            labels += 1
    used_range = None
    if used:
        rows, cols = [r for r, _ in used], [c for _, c in used]
        used_range = _run_text((min(rows), min(cols)), (max(rows), max(cols)))
    widths = {letter: float(d.width) for letter, d in ws.column_dimensions.items()
              if d.width is not None and d.customWidth}
    return SheetSummary(name=ws.title, used_range=used_range, inputs=_runs(inputs), formulas=_runs(formula_cells),
                        labels=labels, freeze_panes=ws.freeze_panes, column_widths=widths)


def _read_file(path: Path) -> tuple[Workbook, bytes]:
    name = path.name
    if not path.is_file():
        raise InvalidArgument(f"{name!r} exists under the workspace root but is not a file")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise InvalidArgument(f"{name!r} is {size // 1_000_000} MB; workbooks are limited to "
                              f"{MAX_FILE_BYTES // 1_000_000} MB")
    data = path.read_bytes()
    try:
        wb = _load(data)
    except Exception as exc:
        raise InvalidArgument(f"{name!r} is not a readable .xlsx workbook ({type(exc).__name__})") from None
    if _cell_count(wb) > MAX_CELLS:
        raise InvalidArgument(f"{name!r} has more than {MAX_CELLS} cells; the workspace cannot hold it")
    return wb, data


class Workspaces:
    """Where workbooks live: the root folder, the recalculation engine, and which files are open.

    A file is open under at most one live workspace, so two handles never overwrite each other's work.
    """

    def __init__(self, root: str | os.PathLike[str] | None = None, engine: str = "embedded") -> None:
        self.root = workspace_root(root)
        self.engine = make_engine(engine)
        self._open: dict[Path, Workspace] = {}
        self._guard = threading.Lock()

    def _claim(self, workspace: Workspace) -> None:
        with self._guard:
            if workspace.path in self._open:
                raise InvalidArgument(f"{workspace.file_name!r} is already open in another workspace; use that "
                                      "handle, or open another file name")
            self._open[workspace.path] = workspace

    def release(self, workspace: Workspace) -> None:
        """Let `workspace`'s file be opened again (its handle was closed, expired, or can no longer write)."""
        with self._guard:
            if self._open.get(workspace.path) is workspace:
                del self._open[workspace.path]

    def open(self, file_name: str | None = None) -> tuple[Workspace, bool]:
        """A workspace on `file_name` under the root: opened if it exists, else new. Returns (workspace, created)."""
        name = check_file_name(file_name) if file_name is not None else f"workbook-{secrets.token_hex(4)}.xlsx"
        path = self.root / name
        with self._guard:
            if path in self._open:
                raise InvalidArgument(f"{name!r} is already open in another workspace; use that handle, or open "
                                      "another file name")
        if not path.exists():
            workspace, created = Workspace(path, new_workbook(), self.engine), True
        else:
            wb, data = _read_file(path)
            workspace, created = Workspace(path, wb, self.engine, saved=data), False
        self._claim(workspace)
        return workspace, created

    def for_task(self, task: Task) -> Workspace:
        """A new, empty workbook for `task` (no sheets yet: the agent adds its own)."""
        safe = re.sub(r"[^A-Za-z0-9_.-]", "-", task.id)[:60] or "task"
        workspace = Workspace(self.root / f"{safe}-{secrets.token_hex(4)}.xlsx", new_workbook(), self.engine, task=task)
        self._claim(workspace)
        return workspace

    def close(self) -> None:
        """Stop the engine (LibreOffice) if one was started."""
        self.engine.close()


__all__: Iterable[str] = [
    "EmbeddedEngine",
    "LibreOfficeRecalculator",
    "Workspace",
    "Workspaces",
    "check_file_name",
    "formula_text",
    "make_engine",
    "names_of",
    "sheet_summaries",
    "workspace_root",
]
