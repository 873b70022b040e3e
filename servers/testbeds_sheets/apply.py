"""Apply workbook operations to an openpyxl workbook, validating each one first.

Validation happens before any change, so a refused operation leaves the workbook as it was. Formulas are checked
by `formulas.validate_formula` and stored the way Excel stores them (`formulas.to_stored`: `_xlfn.` prefixes).
"""

from __future__ import annotations

import math
import re
import secrets
from collections.abc import Iterable

from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils.cell import column_index_from_string, coordinate_from_string, get_column_letter
from openpyxl.workbook.defined_name import DefinedName
from testbeds_serving.errors import InvalidArgument, NotFound

from . import formulas
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

MAX_ROWS = 10_000
MAX_COLUMNS = 702  # A..ZZ: far beyond any finance model, and it bounds a workbook's size
MAX_CELLS_PER_WRITE = 20_000
MAX_TEXT = 32_767  # Excel's cell limit
_CELL = re.compile(r"^\$?([A-Za-z]{1,3})\$?([0-9]{1,7})$")
_BAD_SHEET_CHARS = re.compile(r"[\[\]:*?/\\]")
_NAME = re.compile(r"^[A-Za-z_\\][A-Za-z0-9_.]{0,254}$")
_NAME_LIKE_CELL = re.compile(r"^[A-Za-z]{1,3}[0-9]{1,7}$")
# R1C1-style references Excel would read instead of the name: R, C, R5, C3, RC, R1C1, rc2 ...
_NAME_LIKE_R1C1 = re.compile(r"^(?:[Rr][0-9]*(?:[Cc][0-9]*)?|[Cc][0-9]*)$")
# XML 1.0 cannot hold these: control characters (cells may keep tab, newline, carriage return), lone surrogates and
# the non-characters U+FFFE/U+FFFF. openpyxl writes them anyway and the saved file no longer opens.
_BAD_CELL_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_BAD_NAME_CHARS = re.compile("[\x00-\x1f\x7f\ud800-\udfff\ufffe\uffff]")
MAX_NUMBER = 1e308  # beyond this an integer has no float form: openpyxl cannot save it, Excel cannot hold it


def parse_cell(ref: str) -> tuple[int, int]:
    """(row, column), 1-based, of an A1 reference such as 'B3' or '$B$3'."""
    m = _CELL.match(ref.strip())
    if not m:
        raise InvalidArgument(f"cell {ref!r} is not an A1 reference; use e.g. 'B3'")
    col = column_index_from_string(m.group(1).upper())
    row = int(m.group(2))
    if not (1 <= row <= MAX_ROWS and 1 <= col <= MAX_COLUMNS):
        raise InvalidArgument(f"cell {ref!r} is outside the workspace's bounds (rows 1-{MAX_ROWS}, columns A-ZZ)")
    return row, col


def parse_range(ref: str) -> tuple[int, int, int, int]:
    """(min_row, min_col, max_row, max_col) of 'B3' or 'B3:F10'; whole columns or rows are refused here."""
    parts = ref.strip().split(":")
    if len(parts) == 1:
        row, col = parse_cell(parts[0])
        return row, col, row, col
    if len(parts) != 2:
        raise InvalidArgument(f"range {ref!r} is not an A1 range; use e.g. 'B3:F10'")
    (r1, c1), (r2, c2) = parse_cell(parts[0]), parse_cell(parts[1])
    return min(r1, r2), min(c1, c2), max(r1, r2), max(c1, c2)


def check_text(text: str, what: str, *, line_breaks: bool = False) -> None:
    """Refuse text a saved .xlsx cannot hold: control characters (tab, newline and carriage return only where
    `line_breaks`), NUL, lone surrogates. `what` names the text in the message ('Inputs!B3', 'number format')."""
    bad = (_BAD_CELL_CHARS if line_breaks else _BAD_NAME_CHARS).search(text)
    if bad is not None:
        raise InvalidArgument(f"{what}: character {bad.group(0)!r} (U+{ord(bad.group(0)):04X}) cannot be stored in "
                              "an .xlsx file; remove control characters and invalid Unicode")


def check_sheet_name(name: str) -> None:
    check_text(name, f"sheet name {name!r}")
    if not name.strip():
        raise InvalidArgument(f"sheet name {name!r} is blank; give the sheet a visible name such as 'Inputs'")
    if not name or len(name) > 31 or _BAD_SHEET_CHARS.search(name) or name.startswith("'") or name.endswith("'"):
        raise InvalidArgument(f"sheet name {name!r} is not allowed: 1-31 characters, none of [ ] : * ? / \\, "
                              "not starting or ending with an apostrophe")


def sheet_of(wb: Workbook, name: str):
    if name not in wb.sheetnames:
        raise NotFound(f"no sheet {name!r}; sheets: {', '.join(wb.sheetnames) or '(none)'}")
    return wb[name]


def check_defined_name(name: str) -> None:
    if name.lower().startswith("_xlnm."):
        raise InvalidArgument(f"defined name {name!r} is reserved: '_xlnm.' names are Excel's built-in names "
                              "(print areas, filters); choose another name")
    if (not _NAME.match(name) or _NAME_LIKE_CELL.match(name) or _NAME_LIKE_R1C1.match(name)
            or name.upper() in ("TRUE", "FALSE")):
        raise InvalidArgument(f"defined name {name!r} is not allowed: start with a letter or '_', then letters, "
                              "digits, '_' or '.'; it must not look like a cell reference (e.g. 'TAX2024', "
                              "'R1C1', 'RC')")


def validate(wb: Workbook, op: Op) -> None:
    """Raise InvalidArgument / NotFound if `op` cannot be applied to `wb`; never changes `wb`."""
    if isinstance(op, AddSheet):
        check_sheet_name(op.name)
        if op.name.lower() in (s.lower() for s in wb.sheetnames):
            raise InvalidArgument(f"a sheet named {op.name!r} already exists")
    elif isinstance(op, RenameSheet):
        sheet_of(wb, op.sheet)
        check_sheet_name(op.new_name)
        if op.new_name.lower() in (s.lower() for s in wb.sheetnames if s != op.sheet):
            raise InvalidArgument(f"a sheet named {op.new_name!r} already exists")
    elif isinstance(op, DeleteSheet):
        sheet_of(wb, op.sheet)
    elif isinstance(op, WriteRange):
        sheet_of(wb, op.sheet)
        row0, col0 = parse_cell(op.start)
        width = max(len(r) for r in op.rows)
        if width == 0:
            raise InvalidArgument("the block is empty: give at least one row with at least one value (None clears "
                                  "a cell)")
        if len(op.rows) * width > MAX_CELLS_PER_WRITE:
            raise InvalidArgument(f"one write holds at most {MAX_CELLS_PER_WRITE} cells; split the block")
        if row0 + len(op.rows) - 1 > MAX_ROWS or col0 + width - 1 > MAX_COLUMNS:
            raise InvalidArgument("the block runs past the workspace's bounds (rows 1-10000, columns A-ZZ)")
        names = {n.upper() for n in defined_names(wb)}
        for i, row in enumerate(op.rows):
            for j, value in enumerate(row):
                coordinate = f"{get_column_letter(col0 + j)}{row0 + i}"
                check_value(value, op.sheet, coordinate, set(wb.sheetnames), names)
    elif isinstance(op, SetStyle):
        sheet_of(wb, op.sheet)
        parse_range(op.range)
        if op.number_format is not None:
            check_text(op.number_format, "number format")
            if not op.number_format.strip():
                raise InvalidArgument("number format is blank; use e.g. 'General' or '#,##0'")
        if op.font_name is not None:
            check_text(op.font_name, "font name")
            if not op.font_name.strip():
                raise InvalidArgument("font name is blank; use e.g. 'Calibri'")
    elif isinstance(op, SetColumnWidth):
        sheet_of(wb, op.sheet)
        first, _, last = op.columns.partition(":")
        for letters in (first, last or first):
            if not re.fullmatch(r"[A-Za-z]{1,3}", letters) or column_index_from_string(letters.upper()) > MAX_COLUMNS:
                raise InvalidArgument(f"columns {op.columns!r} are not column letters; use e.g. 'A' or 'B:F'")
    elif isinstance(op, FreezePanes):
        sheet_of(wb, op.sheet)
        if op.cell is not None:
            parse_cell(op.cell)
    elif isinstance(op, DefineName):
        check_defined_name(op.name)
        sheet, _, ref = op.ref.rpartition("!")
        sheet = sheet.strip("'")
        if not sheet:
            raise InvalidArgument(f"name {op.name!r}: give the sheet in the reference, e.g. 'Outputs!$C$4'")
        sheet_of(wb, sheet)
        parse_range(ref.replace("$", ""))


def check_value(value: object, sheet: str, coordinate: str, sheet_names: set[str], names: set[str]) -> None:
    """Raise InvalidArgument for a value that cannot be written to `sheet`!`coordinate`."""
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidArgument(f"{sheet}!{coordinate}: NaN and infinity cannot be stored in a cell")
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_NUMBER:
        raise InvalidArgument(f"{sheet}!{coordinate}: the number has {len(str(abs(value)))} digits; a cell holds "
                              "numbers up to about 1e308")
    if isinstance(value, str):
        check_text(value, f"{sheet}!{coordinate}", line_breaks=True)
        if len(value) > MAX_TEXT:
            raise InvalidArgument(f"{sheet}!{coordinate}: text longer than {MAX_TEXT} characters")
        if value.startswith("="):
            formulas.validate_formula(value, coordinate, sheet, sheet_names, names)
        elif formulas.looks_like_formula_text(value):
            raise InvalidArgument(f"{sheet}!{coordinate}: {value!r} looks like a formula stored as text; write it "
                                  "starting with '=' and without leading spaces or quotes")


def defined_names(wb: Workbook) -> list[str]:
    return list(wb.defined_names.keys())


def apply(wb: Workbook, op: Op) -> None:
    """Validate, then apply one operation."""
    validate(wb, op)
    if isinstance(op, AddSheet):
        wb.create_sheet(op.name, op.index)
    elif isinstance(op, RenameSheet):
        ws = wb[op.sheet]
        if op.new_name.lower() == op.sheet.lower():
            # openpyxl's title setter renames a case-variant of an existing title (itself included) to
            # 'INPUTS1'; a sheet may take another case of its own name, so pass through an unused title.
            ws.title = f"~{secrets.token_hex(8)}"
        ws.title = op.new_name
    elif isinstance(op, DeleteSheet):
        del wb[op.sheet]
    elif isinstance(op, WriteRange):
        ws = wb[op.sheet]
        row0, col0 = parse_cell(op.start)
        for i, row in enumerate(op.rows):
            for j, value in enumerate(row):
                cell = ws.cell(row=row0 + i, column=col0 + j)
                cell.value = formulas.to_stored(value) if isinstance(value, str) and value.startswith("=") else value
    elif isinstance(op, SetStyle):
        apply_style(wb[op.sheet], op)
    elif isinstance(op, SetColumnWidth):
        ws = wb[op.sheet]
        first, _, last = op.columns.upper().partition(":")
        low, high = sorted((column_index_from_string(first), column_index_from_string(last or first)))
        for index in range(low, high + 1):
            ws.column_dimensions[get_column_letter(index)].width = op.width
    elif isinstance(op, FreezePanes):
        wb[op.sheet].freeze_panes = op.cell.replace("$", "").upper() if op.cell else None
    elif isinstance(op, DefineName):
        sheet, _, ref = op.ref.rpartition("!")
        sheet = sheet.strip("'")
        quoted = f"'{sheet}'" if re.search(r"[^A-Za-z0-9_]", sheet) else sheet
        absolute = ":".join(_absolute(part) for part in ref.replace("$", "").split(":"))
        if op.name in wb.defined_names:
            del wb.defined_names[op.name]
        wb.defined_names[op.name] = DefinedName(op.name, attr_text=f"{quoted}!{absolute}")


def _absolute(coordinate: str) -> str:
    letters, row = coordinate_from_string(coordinate.upper())
    return f"${letters}${row}"


def apply_style(ws, op: SetStyle) -> None:
    min_row, min_col, max_row, max_col = parse_range(op.range)
    for r in range(min_row, max_row + 1):
        for c in range(min_col, max_col + 1):
            cell = ws.cell(row=r, column=c)
            if op.number_format is not None:
                cell.number_format = op.number_format
            if any(v is not None for v in (op.font_color, op.bold, op.italic, op.font_name, op.font_size)):
                f = cell.font
                cell.font = Font(name=op.font_name or f.name, size=op.font_size or f.size,
                                 bold=f.bold if op.bold is None else op.bold,
                                 italic=f.italic if op.italic is None else op.italic,
                                 color=("FF" + op.font_color.lstrip("#").upper()) if op.font_color else f.color,
                                 underline=f.underline)
            if op.clear_fill:
                cell.fill = PatternFill(fill_type=None)
            elif op.fill is not None:
                rgb = "FF" + op.fill.lstrip("#").upper()
                cell.fill = PatternFill(fill_type="solid", start_color=rgb, end_color=rgb)
            if op.border == "box":
                cell.border = _outline(cell.border, r == min_row, r == max_row, c == min_col, c == max_col)
            elif op.border is not None:
                cell.border = _border(op.border, cell.border)
            if op.align is not None:
                cell.alignment = Alignment(horizontal=op.align, vertical=cell.alignment.vertical,
                                           wrap_text=cell.alignment.wrap_text)


def _border(kind: str, current: Border) -> Border:
    thin, medium = Side(style="thin"), Side(style="medium")
    if kind == "none":
        return Border()
    if kind == "thin":
        return Border(left=thin, right=thin, top=thin, bottom=thin)
    if kind == "medium":
        return Border(left=medium, right=medium, top=medium, bottom=medium)
    if kind == "top":
        return Border(left=current.left, right=current.right, top=thin, bottom=current.bottom)
    if kind == "bottom":
        return Border(left=current.left, right=current.right, top=current.top, bottom=thin)
    raise InvalidArgument(f"unknown border {kind!r}; use none, thin, medium, top, bottom or box")


def _outline(current: Border, top: bool, bottom: bool, left: bool, right: bool) -> Border:
    """A cell's share of a thin outline around a range: its edges on the range's boundary, the rest kept."""
    thin = Side(style="thin")
    return Border(left=thin if left else current.left, right=thin if right else current.right,
                  top=thin if top else current.top, bottom=thin if bottom else current.bottom)


def new_workbook() -> Workbook:
    """An empty workbook with no sheets: plans add their own."""
    wb = Workbook()
    wb.remove(wb.active)
    return wb


def build(plan: WorkbookPlan | Iterable[Op]) -> Workbook:
    """A new workbook with every operation of `plan` applied in order."""
    wb = new_workbook()
    for op in plan.ops if isinstance(plan, WorkbookPlan) else plan:
        apply(wb, op)
    return wb
