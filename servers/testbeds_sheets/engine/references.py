"""A1 references: parsing (with `$`, sheet names, whole columns and rows) and the R1C1 form used as a cache key.

Formulas copied along a row differ in A1 text but share one R1C1 form, so the evaluator parses each R1C1 form once
(xlcalculator's parser costs ~0.35 ms a formula, the main cost of a 5,000-cell load).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

MAX_ROW = 1_048_576
MAX_COL = 16_384

_CELL = r"(\$?)([A-Za-z]{1,3})(\$?)([0-9]+)"
CELL_RE = re.compile(rf"^{_CELL}$")
RANGE_RE = re.compile(rf"^{_CELL}:{_CELL}$")
COLS_RE = re.compile(r"^(\$?)([A-Za-z]{1,3}):(\$?)([A-Za-z]{1,3})$")
ROWS_RE = re.compile(r"^(\$?)([0-9]+):(\$?)([0-9]+)$")

# A cell token anywhere in formula text. The look-behind keeps names (`Rate2024`), numbers (`1E3`) and prefixed
# functions (`_xlfn.DAYS360`) out; the look-ahead keeps out function calls (`LOG10(`) and sheet names (`Q1!`).
CELL_TOKEN_RE = re.compile(r"(?<![A-Za-z0-9_.\\])(\$?)([A-Za-z]{1,3})(\$?)([0-9]{1,7})(?![A-Za-z0-9_.(!\\])")
# String literals and quoted sheet names are copied verbatim into the R1C1 key.
_LITERAL_RE = re.compile(r"\"(?:[^\"]|\"\")*\"|'(?:[^']|'')*'")


@lru_cache(maxsize=20_000)
def column_index(letters: str) -> int:
    """1 for 'A', 28 for 'AB'."""
    index = 0
    for char in letters.upper():
        index = index * 26 + ord(char) - 64
    return index


@lru_cache(maxsize=20_000)
def column_letters(index: int) -> str:
    """'A' for 1, 'AB' for 28."""
    letters = ""
    while index > 0:
        index, remainder = divmod(index - 1, 26)
        letters = chr(65 + remainder) + letters
    return letters


def coordinate(row: int, col: int) -> str:
    return f"{column_letters(col)}{row}"


def parse_coordinate(text: str) -> tuple[int, int]:
    """(row, col) of 'B3' or '$B$3'."""
    match = CELL_RE.match(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not an A1 cell reference")
    return int(match.group(4)), column_index(match.group(2))


@dataclass(frozen=True, slots=True)
class RefSpec:
    """A reference as written, relative to the formula's cell.

    Relative parts hold offsets from the origin cell, absolute parts (`$`, whole columns and rows, names) hold
    positions. `r2 is None` means "to the last used row" (whole columns), `c2 is None` likewise for whole rows.
    """

    sheet: str | None
    r1: int
    r1_abs: bool
    c1: int
    c1_abs: bool
    r2: int | None
    r2_abs: bool
    c2: int | None
    c2_abs: bool
    single: bool

    def resolve(self, row: int, col: int) -> tuple[int, int, int | None, int | None]:
        """(top, left, bottom, right) for a formula at (row, col); bottom/right None for whole columns/rows."""
        r1 = self.r1 if self.r1_abs else row + self.r1
        c1 = self.c1 if self.c1_abs else col + self.c1
        r2 = self.r2 if (self.r2 is None or self.r2_abs) else row + self.r2
        c2 = self.c2 if (self.c2 is None or self.c2_abs) else col + self.c2
        return r1, c1, r2, c2


def split_sheet(address: str) -> tuple[str | None, str]:
    """('My Sheet', 'A1') from "'My Sheet'!A1" or 'My Sheet!A1' (xlcalculator strips the quotes)."""
    if "!" not in address:
        return None, address
    sheet, _, local = address.rpartition("!")
    if len(sheet) >= 2 and sheet[0] == "'" and sheet[-1] == "'":
        sheet = sheet[1:-1].replace("''", "'")
    return sheet, local


def parse_reference(address: str, origin_row: int, origin_col: int) -> RefSpec | None:
    """The RefSpec of an A1 reference written in a formula at (origin_row, origin_col), or None when the text is
    not a reference (a defined name)."""
    sheet, local = split_sheet(address)
    match = CELL_RE.match(local)
    if match:
        r1, r1_abs, c1, c1_abs = _part(match.groups(), origin_row, origin_col)
        return RefSpec(sheet, r1, r1_abs, c1, c1_abs, r1, r1_abs, c1, c1_abs, True)
    match = RANGE_RE.match(local)
    if match:
        groups = match.groups()
        r1, r1_abs, c1, c1_abs = _part(groups[:4], origin_row, origin_col)
        r2, r2_abs, c2, c2_abs = _part(groups[4:], origin_row, origin_col)
        return RefSpec(sheet, r1, r1_abs, c1, c1_abs, r2, r2_abs, c2, c2_abs, False)
    # Whole columns and rows are kept absolute: the R1C1 key leaves them verbatim, so a shared key implies the same
    # text here, and the resolved position must not move with the origin.
    match = COLS_RE.match(local)
    if match:
        c1, c2 = column_index(match.group(2)), column_index(match.group(4))
        return RefSpec(sheet, 1, True, min(c1, c2), True, None, True, max(c1, c2), True, False)
    match = ROWS_RE.match(local)
    if match:
        r1, r2 = int(match.group(2)), int(match.group(4))
        return RefSpec(sheet, min(r1, r2), True, 1, True, max(r1, r2), True, None, True, False)
    return None


def _part(groups: tuple[str, ...], origin_row: int, origin_col: int) -> tuple[int, bool, int, bool]:
    col_abs, letters, row_abs, digits = groups
    row, col = int(digits), column_index(letters)
    return (
        row if row_abs else row - origin_row,
        bool(row_abs),
        col if col_abs else col - origin_col,
        bool(col_abs),
    )


def r1c1_key(formula: str, row: int, col: int) -> str:
    """The formula with every A1 cell token rewritten relative to (row, col): equal keys mean equal formulas up to
    a copy. Text in quotes (strings, quoted sheet names) is kept verbatim so it is never mistaken for a cell."""
    parts: list[str] = []
    position = 0
    for literal in _LITERAL_RE.finditer(formula):
        parts.append(_relative_cells(formula[position : literal.start()], row, col))
        parts.append(literal.group(0))
        position = literal.end()
    parts.append(_relative_cells(formula[position:], row, col))
    return "".join(parts)


def _relative_cells(text: str, row: int, col: int) -> str:
    def replace(match: re.Match[str]) -> str:
        col_abs, letters, row_abs, digits = match.groups()
        r, c = int(digits), column_index(letters)
        r_part = f"R{r}" if row_abs else f"R[{r - row}]"
        c_part = f"C{c}" if col_abs else f"C[{c - col}]"
        return r_part + c_part

    return CELL_TOKEN_RE.sub(replace, text)
