"""A workbook parsed once for grading: every cell's content, each formula tokenised once, its references resolved.

Every check reads this structure, so a 5,000-cell model is tokenised at most once per grade: each formula on
first use of its parse (a reference graded against an honest attempt is looked up but never tokenised), each
distinct formula shape through openpyxl's tokenizer once per process.
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, TypeVar

from openpyxl import Workbook
from openpyxl.formula.tokenizer import Token, Tokenizer
from openpyxl.utils.cell import column_index_from_string, get_column_letter
from openpyxl.worksheet.formula import ArrayFormula, DataTableFormula

from ..engine.values import cell_key

T = TypeVar("T")

_SHEET_PREFIX = re.compile(r"^(?:'((?:[^']|'')+)'|([^'!]+))!(.*)$")
_CELL = re.compile(r"^(\$?)([A-Za-z]{1,3})(\$?)([0-9]+)$")
_COLS = re.compile(r"^(\$?)([A-Za-z]{1,3})$")
_ROWS = re.compile(r"^(\$?)([0-9]+)$")
_XLFN = re.compile(r"_xlfn\.(?:_xlws\.)?", re.IGNORECASE)


# A cell or range reference, optionally sheet-qualified, standing alone (not part of a name, number or function).
_REF_UNIT = re.compile(r"(?<![\w.$'!:])((?:'(?:[^']|'')+'|[A-Za-z_][A-Za-z0-9_.]*)!)?"
                       r"\$?[A-Za-z]{1,3}\$?[0-9]+(?::\$?[A-Za-z]{1,3}\$?[0-9]+)?(?![\w(!:])")
# shape (or, for formulas tokenised directly, the formula itself) -> its tokens, the positions of the reference
# placeholders, and the operand plan
_SHAPES: dict[str, tuple[list[Token], list[int], list[tuple[int, tuple[tuple[str, int], ...]]]]] = {}
_MAX_SHAPES = 20_000
_DIRECT = "\0"  # prefix of cache keys for formulas tokenised whole (no shape text starts with it)


def _operand_plan(tokens: list[Token]) -> list[tuple[int, tuple[tuple[str, int], ...]]]:
    """(token index, enclosing (FUNCTION, argument index) pairs, outermost first) of every operand token. It
    depends only on the token types and function names, so one plan serves every formula of a shape."""
    plan = []
    stack: list[list[Any]] = []  # [function name or '(' , argument index]
    for i, t in enumerate(tokens):
        if t.type == Token.FUNC and t.subtype == Token.OPEN:
            stack.append([t.value[:-1].upper(), 0])
        elif t.type == Token.PAREN and t.subtype == Token.OPEN:
            stack.append(["(", 0])
        elif t.type in (Token.FUNC, Token.PAREN) and t.subtype == Token.CLOSE:
            if stack:
                stack.pop()
        elif t.type == Token.SEP and t.subtype == Token.ARG and stack:
            stack[-1][1] += 1
        elif t.type == Token.OPERAND:
            plan.append((i, tuple((f, a) for f, a in stack if f != "(")))
    return plan


def _remember(key: str, entry: tuple) -> None:
    if len(_SHAPES) >= _MAX_SHAPES:
        _SHAPES.clear()
    _SHAPES[key] = entry


def _direct(formula: str) -> tuple[list[Token], list[tuple[int, tuple[tuple[str, int], ...]]]]:
    entry = _SHAPES.get(_DIRECT + formula)
    if entry is None:
        tokens = Tokenizer(formula).items
        entry = (tokens, [], _operand_plan(tokens))
        _remember(_DIRECT + formula, entry)
    return list(entry[0]), entry[2]


def tokenize_with_plan(formula: str) -> tuple[list[Token], list[tuple[int, tuple[tuple[str, int], ...]]]]:
    """`tokenize(formula)` and its operand plan (see `_operand_plan`), both from the shape cache."""
    if '"' in formula:
        return _direct(formula)
    # one regex pass yields both the references and the shape (what `_REF_UNIT.sub("A1", formula)` gives)
    refs: list[str] = []
    pieces: list[str] = []
    end = 0
    for m in _REF_UNIT.finditer(formula):
        refs.append(m.group(0))
        pieces.append(formula[end:m.start()])
        pieces.append("A1")
        end = m.end()
    pieces.append(formula[end:])
    shape = "".join(pieces)
    entry = _SHAPES.get(shape)
    if entry is None:
        tokens = Tokenizer(shape).items
        ranges = [i for i, t in enumerate(tokens) if t.type == Token.OPERAND and t.subtype == Token.RANGE
                  and t.value == "A1"]
        entry = (tokens, ranges, _operand_plan(tokens))
        _remember(shape, entry)
    tokens, ranges, plan = entry
    if len(ranges) != len(refs):
        return _direct(formula)
    out = list(tokens)
    for i, ref in zip(ranges, refs):
        out[i] = Token(ref, Token.OPERAND, Token.RANGE)
    return out, plan


def tokenize(formula: str) -> list[Token]:
    """Tokenizer(formula).items, tokenising each formula *shape* once: a row of copied formulas differs only in
    its references, so they are swapped for a placeholder, the shape is tokenised (and cached), and the real
    references are put back. Formulas with text literals are tokenised directly (and cached whole)."""
    return tokenize_with_plan(formula)[0]


@dataclass(frozen=True)
class Ref:
    """One reference operand, resolved to a sheet and a block; names resolve to their target (absolute)."""

    sheet: str
    min_row: int
    min_col: int
    max_row: int
    max_col: int
    col_abs: bool  # '$' on the column of the first corner (for a name: True)
    row_abs: bool
    kind: str  # 'cell' | 'range' | 'columns' | 'rows' | 'name'
    text: str
    last_col_abs: bool = False
    last_row_abs: bool = False

    @property
    def is_single(self) -> bool:
        return self.min_row == self.max_row and self.min_col == self.max_col

    def contains(self, sheet: str, row: int, col: int) -> bool:
        return (sheet == self.sheet and self.min_row <= row <= self.max_row
                and self.min_col <= col <= self.max_col)


@dataclass
class Operand:
    """A token of a formula with its position among function arguments (for idiomatic-slot tests)."""

    token: Token
    index: int
    functions: tuple[tuple[str, int], ...]  # (FUNCTION, argument index), outermost first


@dataclass
class Cell:
    key: str
    sheet: str
    row: int
    col: int
    raw: Any  # the stored value: a number, text, bool, or the formula text
    cell: Any  # the openpyxl cell, for styles
    formula: str | None = None  # '=...' with _xlfn. prefixes removed
    text_formula: bool = False  # a string starting '=' stored as text: a formula that never computes
    # The formula's parse (tokens, operands, references) is done on first use: a reference workbook graded
    # against an honest attempt is only looked up, never checked, and so never tokenised.
    _pending: Book | None = field(default=None, repr=False, compare=False)
    _unparsable: bool = False
    _tokens: list[Token] = field(default_factory=list)
    _operands: list[Operand] = field(default_factory=list)
    _refs: list[Ref] = field(default_factory=list)
    _error_literal: bool = False

    def _ready(self) -> None:
        book = self._pending
        if book is not None:
            self._pending = None
            book._parse_formula(self)

    @property
    def unparsable(self) -> bool:
        if self._pending is not None:
            self._ready()
        return self._unparsable

    @property
    def tokens(self) -> list[Token]:
        if self._pending is not None:
            self._ready()
        return self._tokens

    @property
    def operands(self) -> list[Operand]:
        if self._pending is not None:
            self._ready()
        return self._operands

    @property
    def refs(self) -> list[Ref]:
        if self._pending is not None:
            self._ready()
        return self._refs

    @property
    def error_literal(self) -> bool:
        if self._pending is not None:
            self._ready()
        return self._error_literal

    @property
    def is_formula(self) -> bool:
        return self.formula is not None

    @property
    def is_number(self) -> bool:
        return self.formula is None and isinstance(self.raw, (int, float)) and not isinstance(self.raw, bool)

    @property
    def is_text(self) -> bool:
        return self.formula is None and isinstance(self.raw, str)

    @property
    def coordinate(self) -> str:
        return f"{get_column_letter(self.col)}{self.row}"


class Book:
    """The parsed workbook: cells by key and by sheet row, precedents, defined names, sheet bounds."""

    def __init__(self, wb: Workbook) -> None:
        self.wb = wb
        self.sheetnames: list[str] = list(wb.sheetnames)
        self.cells: dict[str, Cell] = {}
        self.rows: dict[str, dict[int, dict[int, Cell]]] = {}
        self.bounds: dict[str, tuple[int, int]] = {}
        self.names: dict[str, list[Ref]] = {}
        self.sheet_names: dict[str, dict[str, list[Ref]]] = {}
        self._ref_memo: dict[tuple[str, str | None, bool], Ref | None] = {}
        self._row_labels: dict[tuple[str, int], tuple[list[int], list[str]]] = {}
        self._numbers: tuple[list[float], list[Cell]] | None = None
        self._derived: dict[str, Any] = {}
        self._load_names()
        for ws in wb.worksheets:
            rows: dict[int, dict[int, Cell]] = {}
            max_row = max_col = 0
            for row in ws.iter_rows():
                for c in row:
                    v = c.value
                    if v is None or (isinstance(v, str) and v == ""):
                        continue
                    cell = Cell(key=cell_key(ws.title, c.coordinate), sheet=ws.title, row=c.row, col=c.column,
                                raw=v, cell=c)
                    self._parse(cell, c)
                    self.cells[cell.key] = cell
                    rows.setdefault(c.row, {})[c.column] = cell
                    max_row, max_col = max(max_row, c.row), max(max_col, c.column)
            self.rows[ws.title] = rows
            self.bounds[ws.title] = (max_row, max_col)
        self.formula_cells = [c for c in self.cells.values() if c.is_formula]
        self._precedents: dict[str, list[str]] | None = None
        self._read_by_formulas: set[str] | None = None

    @property
    def precedents(self) -> dict[str, list[str]]:
        """The non-empty cells (and single cells, empty or not) each formula reads, by formula key; on first use."""
        if self._precedents is None:
            self._precedents = {c.key: self._expand(c.refs) for c in self.formula_cells}
        return self._precedents

    def precedents_of(self, cell: Cell) -> list[str]:
        """`precedents[cell.key]`, without expanding every other formula's references when none were yet."""
        if self._precedents is not None:
            return self._precedents[cell.key]
        return self._expand(cell.refs)

    @property
    def read_by_formulas(self) -> set[str]:
        """Every cell some formula reads."""
        if self._read_by_formulas is None:
            self._read_by_formulas = {k for ps in self.precedents.values() for k in ps}
        return self._read_by_formulas

    # -- parsing -------------------------------------------------------------------------------------------------
    def _load_names(self) -> None:
        for name, dn in self.wb.defined_names.items():
            self.names[name.upper()] = self._name_refs(dn.attr_text or "")
        for ws in self.wb.worksheets:
            scoped = {n.upper(): self._name_refs(dn.attr_text or "") for n, dn in ws.defined_names.items()}
            self.sheet_names[ws.title] = scoped

    def _name_refs(self, text: str) -> list[Ref]:
        refs = []
        for part in text.split(","):
            ref = self.parse_ref(part.strip().lstrip("="), None, resolve_names=False)
            if ref is not None:
                refs.append(ref)
        return refs

    def _parse(self, cell: Cell, c: Any) -> None:
        v = cell.raw
        if isinstance(v, ArrayFormula):
            text = v.text or ""
        elif isinstance(v, DataTableFormula):
            cell.formula = "=TABLE()"
            cell._unparsable = True
            return
        elif isinstance(v, str) and v.startswith("="):
            if c.data_type != "f":
                cell.text_formula = True
                return
            text = v
        else:
            return
        cell.formula = _XLFN.sub("", text if text.startswith("=") else "=" + text)
        cell._pending = self

    def _parse_formula(self, cell: Cell) -> None:
        """Tokenise a formula cell and resolve its references (called once, on first use of its parse)."""
        text = cell.formula
        assert text is not None
        try:
            tokens, plan = tokenize_with_plan(text)
        except Exception:  # openpyxl raises bare errors on malformed text: the formula is judged unparsable
            cell._unparsable = True
            return
        cell._tokens = tokens
        operands, refs = cell._operands, cell._refs
        for i, funcs in plan:
            t = tokens[i]
            operands.append(Operand(t, i, funcs))
            if t.subtype == Token.RANGE:
                ref = self.parse_ref(t.value, cell.sheet)
                if ref is not None:
                    refs.append(ref)
                elif "#REF!" in t.value.upper():
                    cell._error_literal = True
            elif t.subtype == Token.ERROR:
                cell._error_literal = True

    def parse_ref(self, text: str, sheet: str | None, resolve_names: bool = True) -> Ref | None:
        """A reference operand resolved against `sheet`; None for errors, external or structured references."""
        memo_key = (text, sheet, resolve_names)
        if memo_key in self._ref_memo:
            return self._ref_memo[memo_key]
        ref = self._parse_ref(text, sheet, resolve_names)
        self._ref_memo[memo_key] = ref
        return ref

    def _parse_ref(self, text: str, sheet: str | None, resolve_names: bool) -> Ref | None:
        m = _SHEET_PREFIX.match(text)
        if m:
            target = (m.group(1) or "").replace("''", "'") or m.group(2)
            rest = m.group(3)
        else:
            target, rest = sheet, text
        if "#" in rest or "[" in text:
            return None
        parts = rest.split(":")
        if len(parts) == 1:
            cm = _CELL.match(parts[0])
            if cm and target is not None:
                r, c = int(cm.group(4)), column_index_from_string(cm.group(2).upper())
                return Ref(target, r, c, r, c, bool(cm.group(1)), bool(cm.group(3)), "cell", text,
                           bool(cm.group(1)), bool(cm.group(3)))
            if resolve_names:
                return self._resolve_name(parts[0], target if m else sheet, text)
            return None
        if len(parts) != 2 or target is None:
            return None
        a, b = parts
        ca, cb = _CELL.match(a), _CELL.match(b)
        if ca and cb:
            r1, c1 = int(ca.group(4)), column_index_from_string(ca.group(2).upper())
            r2, c2 = int(cb.group(4)), column_index_from_string(cb.group(2).upper())
            return Ref(target, min(r1, r2), min(c1, c2), max(r1, r2), max(c1, c2), bool(ca.group(1)),
                       bool(ca.group(3)), "range", text, bool(cb.group(1)), bool(cb.group(3)))
        la, lb = _COLS.match(a), _COLS.match(b)
        if la and lb:
            c1, c2 = column_index_from_string(la.group(2).upper()), column_index_from_string(lb.group(2).upper())
            return Ref(target, 1, min(c1, c2), 1_048_576, max(c1, c2), bool(la.group(1)), True, "columns", text,
                       bool(lb.group(1)), True)
        ra, rb = _ROWS.match(a), _ROWS.match(b)
        if ra and rb:
            r1, r2 = int(ra.group(2)), int(rb.group(2))
            return Ref(target, min(r1, r2), 1, max(r1, r2), 16_384, True, bool(ra.group(1)), "rows", text,
                       True, bool(rb.group(1)))
        return None

    def _resolve_name(self, name: str, sheet: str | None, text: str) -> Ref | None:
        key = name.upper()
        refs = (self.sheet_names.get(sheet or "", {}).get(key) or self.names.get(key))
        if not refs:
            return None
        r = refs[0]
        return Ref(r.sheet, r.min_row, r.min_col, r.max_row, r.max_col, True, True, "name", text, True, True)

    # -- queries -------------------------------------------------------------------------------------------------
    def _expand(self, refs: list[Ref]) -> list[str]:
        out: list[str] = []
        for r in refs:
            rows = self.rows.get(r.sheet)
            if rows is None:
                continue
            if r.is_single:
                cell = rows.get(r.min_row, {}).get(r.min_col)
                out.append(cell.key if cell is not None
                           else cell_key(r.sheet, f"{get_column_letter(r.min_col)}{r.min_row}"))
                continue
            # only non-empty cells matter as precedents; whole columns are clipped to the used range
            max_row, max_col = self.bounds[r.sheet]
            lo_col, hi_col = r.min_col, min(r.max_col, max_col)
            for row in range(r.min_row, min(r.max_row, max_row) + 1):
                cols = rows.get(row)
                if not cols:
                    continue
                for col, cell in cols.items():
                    if lo_col <= col <= hi_col:
                        out.append(cell.key)
        return out

    def at(self, sheet: str, row: int, col: int) -> Cell | None:
        return self.rows.get(sheet, {}).get(row, {}).get(col)

    def row_cells(self, sheet: str, row: int) -> list[Cell]:
        return [c for _, c in sorted(self.rows.get(sheet, {}).get(row, {}).items())]

    def label_of(self, cell: Cell) -> str | None:
        """The row label of a cell: the nearest text cell to its left (not a formula stored as text)."""
        row_key = (cell.sheet, cell.row)
        labels = self._row_labels.get(row_key)
        if labels is None:
            # each row's label cells, found once: checks ask for the label of every number in a 5,000-cell model
            labels = ([], [])
            for col, c in sorted(self.rows.get(cell.sheet, {}).get(cell.row, {}).items()):
                if c.is_text and not c.text_formula and c.raw.strip():
                    labels[0].append(col)
                    labels[1].append(c.raw.strip())
            self._row_labels[row_key] = labels
        at = bisect.bisect_left(labels[0], cell.col)
        return labels[1][at - 1] if at > 0 else None

    def numbers_by_value(self) -> tuple[list[float], list[Cell]]:
        """The finite numeric constants sorted by value (ties in workbook order), as parallel lists for bisection;
        built on first use."""
        if self._numbers is None:
            found = [(float(c.raw), i, c) for i, c in enumerate(self.cells.values())
                     if c.is_number and math.isfinite(float(c.raw))]
            found.sort(key=lambda t: (t[0], t[1]))
            self._numbers = ([v for v, _, _ in found], [c for _, _, c in found])
        return self._numbers

    def derived(self, name: str, build: Callable[[Book], T]) -> T:
        """`build(self)`, computed once per book and kept under `name` (for indexes other modules own)."""
        if name not in self._derived:
            self._derived[name] = build(self)
        return self._derived[name]

    def defined_name_cell(self, name: str) -> str | None:
        """The key of the first cell a defined name points at (workbook scope, then any sheet's scope)."""
        refs = self.names.get(name.upper())
        if not refs:
            for scoped in self.sheet_names.values():
                refs = scoped.get(name.upper())
                if refs:
                    break
        if not refs:
            return None
        r = refs[0]
        return cell_key(r.sheet, f"{get_column_letter(r.min_col)}{r.min_row}")

    def is_link(self, cell: Cell) -> bool:
        """A pure link: the formula is one single-cell reference to another sheet (`=Inputs!B3`)."""
        if not cell.is_formula or cell.unparsable:
            return False
        meaningful = [t for t in cell.tokens if t.type != Token.WSPACE]
        if len(meaningful) != 1 or meaningful[0].subtype != Token.RANGE:
            return False
        if not cell.refs:  # a broken link (`=Calc!#REF!`) is still a link
            m = _SHEET_PREFIX.match(meaningful[0].value)
            return m is not None and ((m.group(1) or "").replace("''", "'") or m.group(2)) != cell.sheet
        r = cell.refs[0]
        return r.is_single and r.sheet != cell.sheet


SHEET_ROLES = {
    "input": ("input", "assumption", "driver", "case", "data", "parameter", "scenario"),
    "output": ("output", "summary", "result", "dashboard", "answer", "report"),
    "check": ("check",),
    "meta": ("cover", "note", "readme", "contents", "toc", "about", "instruction"),
}


@lru_cache(maxsize=4096)
def sheet_role(name: str) -> str:
    """'input', 'calc', 'output', 'check', 'meta' or 'default' (an unnamed `Sheet1`) from a sheet's name."""
    low = name.lower()
    if re.fullmatch(r"sheet\d*", low.replace(" ", "")):
        return "default"
    for role, words in SHEET_ROLES.items():
        if any(w in low for w in words):
            return role
    return "calc"  # schedules and workings go by many names (Revenue, Debt, DCF): all sit between in and out
