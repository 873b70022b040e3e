"""The embedded recalculation engine: xlcalculator's parser and function table, our compiler and evaluation loop.

Why not xlcalculator's own model and evaluator (0.5.0): it reads single-cell `$` references as blanks, loses range
names, recomputes a shared precedent once per path (exponential on a corkscrew), recurses per dependency (a 5,000
step chain needs a huge recursion limit) and loops or crashes on cycles. Here:

* the workbook is read once with openpyxl; each formula's R1C1 form is parsed once by xlcalculator's parser and
  compiled to Python closures whose references are offsets from the formula's cell, shared by every copy;
* one pass orders formula cells by an iterative Tarjan SCC walk (dependencies first, no recursion): each cell is
  evaluated exactly once into one memo, and every member of a cycle is reported `circular`;
* OFFSET, INDIRECT, array formulas and data tables are `unevaluable`, and so is everything that depends on them:
  never a silent 0.
"""

from __future__ import annotations

import bisect
import datetime as dt
import inspect
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import openpyxl
from openpyxl.worksheet.formula import ArrayFormula, DataTableFormula

from .catalog import is_excel_function
from .functions import FUNCTIONS, LAZY, excel_name
from .operands import (
    INFIX,
    NAME,
    NEGATE,
    PERCENT,
    REF,
    VALUE,
    ErrorRaised,
    Rng,
    Unsupported,
    XLError,
    to_serial,
)
from .parser import ArrayLit, Func, Infix, Lit, Missing, ParseError, Postfix, Prefix, Ref, parse
from .references import MAX_COL, MAX_ROW, RefSpec, coordinate, parse_coordinate, parse_reference, r1c1_key, split_sheet
from .values import ERROR_CODES, CellProblem, Evaluation, Value, cell_key

# Functions whose result depends on references rather than values, or on the workbook's layout: evaluating them
# from values would be silently wrong, so their cells (and dependants) are reported unevaluable.
UNEVALUABLE_FUNCTIONS = frozenset({"OFFSET", "INDIRECT", "CELL", "INFO", "AREAS", "GETPIVOTDATA", "FORMULATEXT",
                                   "ISFORMULA", "SHEET", "SHEETS", "LET", "LAMBDA", "RTD", "WEBSERVICE", "FILTERXML"})

# Functions that treat a value read from a reference differently from one typed as an argument (text and logicals
# in references are skipped), with the index of their first such argument (NPV's rate is a plain number).
REFERENCE_AWARE = {name: 0 for name in (
    "SUM", "PRODUCT", "MAX", "MIN", "AVERAGE", "AVERAGEA", "COUNT", "COUNTA", "MEDIAN", "STDEV", "STDEV.S",
    "STDEVP", "STDEV.P", "VAR", "VAR.S", "VARP", "VAR.P", "AND", "OR", "XOR")} | {"NPV": 1}


class UnsupportedFunction(Unsupported):
    """A real Excel function the embedded engine does not implement (unlike an unknown name, which is #NAME?)."""


# Ranges bigger than this that run past a sheet's used area are clipped to it (whole columns always are).
CLIP_ROWS = 2048
CLIP_COLS = 256
MAX_NAME_DEPTH = 16

Key = tuple[str, int, int]


def _load_xlcalculator_table() -> dict[str, Callable[..., Any]]:
    """xlcalculator's registered functions. Imported on first need: the package pulls in pandas and scipy (~1 s),
    which a workbook using only our functions never pays."""
    import xlcalculator  # noqa: F401  (its __init__ registers every function module into xl.FUNCTIONS)
    from xlcalculator.xlfunctions import xl

    return {name: fn for name, fn in xl.FUNCTIONS.items() if not name.startswith("OP_")}


def _to_xlcalculator(value: Any) -> Any:
    from xlcalculator.xlfunctions import func_xltypes, xlerrors

    if value is None:
        return func_xltypes.BLANK
    if isinstance(value, XLError):
        return xlerrors.ERRORS_BY_CODE.get(value.code, xlerrors.ValueExcelError)()
    if isinstance(value, Rng):
        return func_xltypes.Array([[_to_xlcalculator(v) for v in row] for row in value.rows])
    return value


def _from_xlcalculator(value: Any) -> Any:
    from xlcalculator.xlfunctions import func_xltypes, xlerrors

    if isinstance(value, xlerrors.ExcelError):
        return XLError(value.value if value.value in ERROR_CODES else "#VALUE!")
    if isinstance(value, func_xltypes.Array):
        return Rng([[_from_xlcalculator(v) for v in row] for row in value.values.tolist()])
    if isinstance(value, func_xltypes.Blank):
        return None
    if isinstance(value, func_xltypes.Boolean):
        return bool(value)
    if isinstance(value, func_xltypes.Number):
        return float(value)
    if isinstance(value, func_xltypes.Text):
        return str(value)
    if isinstance(value, func_xltypes.DateTime):
        return to_serial(value)
    return _python(value)


def _adapt(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Call an xlcalculator function with our values; its typed wrappers convert arguments themselves."""

    def call(*args: Any) -> Any:
        with warnings.catch_warnings():
            # xlcalculator builds pandas frames and numpy values that may warn on edge cases; the result is
            # converted (NaN becomes #NUM!) so the warning carries nothing the caller needs.
            warnings.simplefilter("ignore")
            return _from_xlcalculator(fn(*[_to_xlcalculator(a) for a in args]))

    call.__signature__ = inspect.signature(fn)  # type: ignore[attr-defined]
    return call


def build_namespace() -> dict[str, Callable[..., Any]]:
    """xlcalculator's function table (adapted) with ours registered over it: upper-case names, no `_xlfn.`."""
    namespace = {name: _adapt(fn) for name, fn in _load_xlcalculator_table().items()}
    namespace.update(FUNCTIONS)
    return namespace


# The names xlcalculator 0.5.0 registers (pinned), so an unknown name is #NAME? without importing it.
XLCALCULATOR_NAMES = frozenset("""
ABS ACOS ACOSH AND ASIN ASINH ATAN ATAN2 AVERAGE BIN2DEC BIN2HEX BIN2OCT CEILING CHOOSE CONCAT CONCATENATE COS COSH
COUNT COUNTA COUNTIF COUNTIFS DATE DATEDIF DAY DAYS DEC2BIN DEC2HEX DEC2OCT DEGREES EDATE EOMONTH EVEN EXACT EXP FACT
FACTDOUBLE FALSE FIND FLOOR HEX2BIN HEX2DEC HEX2OCT IF INT IRR ISBLANK ISERR ISERROR ISEVEN ISNA ISNUMBER ISODD
ISOWEEKNUM ISTEXT LEFT LEN LN LOG LOG10 LOWER MATCH MAX MID MIN MOD MONTH NA NOT NOW NPV OCT2BIN OCT2DEC OCT2HEX OR PI
PMT POWER PV RADIANS RAND RANDBETWEEN REPLACE RIGHT ROUND ROUNDDOWN ROUNDUP SIGN SIN SLN SQRT SQRTPI SUM SUMIF SUMIFS
SUMPRODUCT TAN TODAY TRIM TRUE TRUNC UPPER VDB VLOOKUP WEEKDAY XIRR XNPV YEAR YEARFRAC
""".split())

_NAMESPACE: dict[str, Callable[..., Any]] = {}
_ARITY: dict[str, inspect.Signature | None] = {}


def lookup_function(name: str) -> Callable[..., Any] | None:
    """The implementation of an Excel function (upper case, no prefix): ours first, else xlcalculator's."""
    found = FUNCTIONS.get(name)
    if found is not None or name not in XLCALCULATOR_NAMES:
        return found
    if not _NAMESPACE:
        _NAMESPACE.update(build_namespace())
    return _NAMESPACE.get(name)


def _python(value: Any) -> Any:
    """numpy scalars and 0-d arrays as Python scalars."""
    if isinstance(value, np.ndarray):
        if value.size == 1:
            return _python(value.reshape(-1)[0])
        return Rng([[_python(v) for v in row] for row in np.atleast_2d(value).tolist()])
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


class Ctx:
    """The cell being evaluated: its sheet and position, for relative references."""

    __slots__ = ("sheet", "row", "col")

    def __init__(self, sheet: str, row: int, col: int) -> None:
        self.sheet = sheet
        self.row = row
        self.col = col


Node = Callable[[Ctx], Any]


@dataclass
class Compiled:
    """One parsed R1C1 form: the closure evaluating it, and the references it reads (for the dependency graph)."""

    fn: Node | None
    refs: list[tuple[str | None, RefSpec]] = field(default_factory=list)
    problem: CellProblem | None = None


def _short(message: str, limit: int = 300) -> str:
    message = " ".join(str(message).split())
    return message if len(message) <= limit else message[: limit - 3] + "..."


class Model:
    """A workbook compiled for recalculation. Build with `load_model`; `evaluate()` recalculates every formula.

    What-if: `set_value("Inputs!B3", 0.07)` then `evaluate()`; each pass starts from the constants, so a recompute
    equals a fresh load of the edited workbook.
    """

    def __init__(self, workbook: openpyxl.Workbook) -> None:
        self.sheets: list[str] = list(workbook.sheetnames)
        self._sheet_by_upper = {name.upper(): name for name in self.sheets}
        self.constants: dict[Key, Any] = {}
        self.formulas: dict[Key, str] = {}
        self._cell_compiled: dict[Key, Compiled] = {}
        self._cache: dict[tuple[str, str], Compiled] = {}
        self._extent: dict[str, tuple[int, int]] = {name: (0, 0) for name in self.sheets}
        self._formula_rows: dict[tuple[str, int], list[int]] = {}
        self._precedents: dict[Key, tuple[Key, ...]] = {}
        self._names: dict[str, str] = {}
        self._sheet_names: dict[tuple[str, str], str] = {}
        self.memo: dict[Key, Any] = {}
        self.evaluation_count = 0
        self._read(workbook)
        self._compile_all()

    # ------------------------------------------------------------------ reading

    def _read(self, workbook: openpyxl.Workbook) -> None:
        for name, definition in workbook.defined_names.items():
            if not name.startswith("_xlnm.") and definition.attr_text:
                self._names[name.upper()] = definition.attr_text
        for ws in workbook.worksheets:
            sheet = ws.title
            for name, definition in ws.defined_names.items():
                if definition.attr_text:
                    self._sheet_names[(sheet.upper(), name.upper())] = definition.attr_text
            max_row = max_col = 0
            array_cells: list[Key] = []
            for (row, col), cell in _cells(ws):
                value = cell.value
                if value is None:
                    continue
                key = (sheet, row, col)
                max_row, max_col = max(max_row, row), max(max_col, col)
                kind = cell.data_type
                if kind == "f":
                    if isinstance(value, str):
                        self.formulas[key] = value
                    elif isinstance(value, ArrayFormula):
                        self.formulas[key] = value.text or "{array}"
                        array_cells.extend(self._array_members(sheet, value.ref, key))
                    elif isinstance(value, DataTableFormula):
                        self.formulas[key] = "{data table}"
                        array_cells.append(key)
                    else:
                        self.formulas[key] = str(value)
                        array_cells.append(key)
                else:
                    self.constants[key] = self._constant(value, kind)
            self._extent[sheet] = (max_row, max_col)
            for key in array_cells:
                self.formulas.setdefault(key, "{array}")
                self._cell_compiled[key] = Compiled(None, problem=CellProblem(
                    kind="unevaluable", message="array formula or data table: not evaluated by the embedded engine"))

    def _array_members(self, sheet: str, ref: str | None, anchor: Key) -> list[Key]:
        members = [anchor]
        if ref and ":" in ref:
            first, _, last = ref.replace("$", "").partition(":")
            (r1, c1), (r2, c2) = parse_coordinate(first), parse_coordinate(last)
            members += [(sheet, r, c) for r in range(r1, r2 + 1) for c in range(c1, c2 + 1)]
        return members

    @staticmethod
    def _constant(value: Any, kind: str) -> Any:
        if kind == "e" and isinstance(value, str):
            return XLError(value) if value in ERROR_CODES else value
        if isinstance(value, bool) or isinstance(value, (int, float, str)):
            return _python(value)
        if isinstance(value, (dt.datetime, dt.date, dt.time)):
            return to_serial(value)
        if isinstance(value, dt.timedelta):
            return value.total_seconds() / 86400
        return _python(value)

    # ------------------------------------------------------------------ compiling

    def _compile_all(self) -> None:
        for key, formula in self.formulas.items():
            if key in self._cell_compiled:
                continue
            self._cell_compiled[key] = self._compile_cell(key, formula)
        for (sheet, row, col) in self.formulas:
            self._formula_rows.setdefault((sheet, col), []).append(row)
        for rows in self._formula_rows.values():
            rows.sort()
        for key in self.formulas:
            self._precedents[key] = self._find_precedents(key)

    def _compile_cell(self, key: Key, formula: str) -> Compiled:
        sheet, row, col = key
        cache_key = (sheet, r1c1_key(formula, row, col))
        compiled = self._cache.get(cache_key)
        if compiled is None:
            compiled = self._compile_formula(formula, sheet, row, col)
            self._cache[cache_key] = compiled
        return compiled

    def _compile_formula(self, formula: str, sheet: str, row: int, col: int, depth: int = 0) -> Compiled:
        refs: list[tuple[str | None, RefSpec]] = []
        try:
            tree = parse(formula)
        except ParseError as exc:
            return Compiled(None, problem=CellProblem(kind="parse_error", message=_short(f"cannot parse: {exc}")))
        except RecursionError:
            return Compiled(None, problem=CellProblem(kind="engine_error",
                                                      message="formula nested too deeply to parse"))
        try:
            fn = self._node(tree, sheet, row, col, refs, depth)
        except UnsupportedFunction as exc:
            return Compiled(None, refs, CellProblem(kind="unsupported_function", message=_short(str(exc))))
        except Unsupported as exc:
            return Compiled(None, refs, CellProblem(kind="unevaluable", message=_short(str(exc))))
        except RecursionError:
            return Compiled(None, refs, CellProblem(kind="engine_error",
                                                    message="formula nested too deeply to compile"))
        return Compiled(fn, refs)

    def _node(self, node: Any, sheet: str, row: int, col: int, refs: list[tuple[str | None, RefSpec]],
              depth: int) -> Node:
        kind = type(node)
        if kind is Ref:
            return self._reference(node.address, sheet, row, col, refs, depth)
        if kind is Func:
            return self._function(node, sheet, row, col, refs, depth)
        if kind is Infix:
            # Walk the left spine iteratively: `=A1+A2+...+A600` is a 600-deep left-leaning tree, and nested
            # closures would hit the recursion limit; a loop over (operator, operand) steps does not.
            steps: list[tuple[Callable[[Any, Any], Any], Any]] = []
            while type(node) is Infix:
                steps.append((INFIX[node.op], node.right))
                node = node.left
            first = self._node(node, sheet, row, col, refs, depth)
            compiled = [(op, self._node(right, sheet, row, col, refs, depth)) for op, right in reversed(steps)]
            if len(compiled) == 1:
                op, right = compiled[0]
                return lambda ctx: op(first(ctx), right(ctx))

            def chain(ctx: Ctx) -> Any:
                value = first(ctx)
                for op, right in compiled:
                    value = op(value, right(ctx))
                return value

            return chain
        if kind is Prefix:
            # A run of signs is unwound in a loop (no nested closures): '=---...-1' must not recurse per sign.
            negations = 0
            while type(node) is Prefix:
                negations += node.op == "-"
                node = node.operand
            inner = self._node(node, sheet, row, col, refs, depth)
            if negations == 0:
                return inner  # unary plus changes nothing
            if negations == 1:
                return lambda ctx: NEGATE(inner(ctx))
            # Negating twice is not the identity (it turns numeric text into a number), so an even run negates
            # twice and an odd run once: the same value as negating `negations` times.
            times = 2 - negations % 2

            def signs(ctx: Ctx) -> Any:
                value = inner(ctx)
                for _ in range(times):
                    value = NEGATE(value)
                return value

            return signs
        if kind is Postfix:
            inner = self._node(node.operand, sheet, row, col, refs, depth)
            return lambda ctx: PERCENT(inner(ctx))
        if kind is Lit:
            constant = node.value
            return lambda ctx: constant
        if kind is ArrayLit:
            block = Rng([list(r) for r in node.rows])
            return lambda ctx: block
        if kind is Missing:
            return lambda ctx: None
        raise Unsupported(f"unknown syntax {node!r}")

    def _function(self, node: Func, sheet: str, row: int, col: int, refs: list[tuple[str | None, RefSpec]],
                  depth: int) -> Node:
        name = excel_name(node.name)
        if name in UNEVALUABLE_FUNCTIONS:
            raise Unsupported(f"{name} is not evaluated by the embedded engine")
        nodes = list(node.args)
        if name in ("ROW", "COLUMN"):
            return self._position(name, nodes, row, col)
        args = [self._node(arg, sheet, row, col, refs, depth) for arg in nodes]
        fn = lookup_function(name)
        if fn is None:
            if is_excel_function(name):
                raise UnsupportedFunction(f"{name} is an Excel function the embedded engine does not implement")
            return lambda ctx: NAME
        first_reference_arg = REFERENCE_AWARE.get(name)
        if first_reference_arg is not None and name in FUNCTIONS:
            # SUM(H1) skips text in H1 but SUM("5") counts 5: a single-cell reference reaches the function as a
            # 1x1 range so it is told apart from a value typed into the call.
            args = [_as_range(arg) if i >= first_reference_arg and type(node_) is Ref else arg
                    for i, (arg, node_) in enumerate(zip(args, nodes))]
        if not _accepts(name, fn, len(args), lazy=name in LAZY):
            return lambda ctx: VALUE
        if name in LAZY:
            count = len(args)

            def lazy(ctx: Ctx) -> Any:
                try:
                    return fn(lambda i: args[i](ctx), count)
                except ErrorRaised as raised:
                    return raised.error

            return lazy

        def call(ctx: Ctx) -> Any:
            values = [arg(ctx) for arg in args]
            try:
                return fn(*values)
            except ErrorRaised as raised:
                return raised.error
            except ZeroDivisionError:
                return XLError("#DIV/0!")
            except (OverflowError, ValueError):
                return XLError("#NUM!")

        return call

    def _position(self, name: str, nodes: list[Any], row: int, col: int) -> Node:
        if not nodes:
            return (lambda ctx: ctx.row) if name == "ROW" else (lambda ctx: ctx.col)
        target = nodes[0]
        if type(target) is not Ref or len(nodes) > 1:
            raise Unsupported(f"{name} of a computed reference")
        spec = parse_reference(split_sheet(target.address)[1], row, col)
        if spec is None:
            raise Unsupported(f"{name} of a name")
        if name == "ROW":
            return lambda ctx: spec.resolve(ctx.row, ctx.col)[0]
        return lambda ctx: spec.resolve(ctx.row, ctx.col)[1]

    def _reference(self, address: str, sheet: str, row: int, col: int, refs: list[tuple[str | None, RefSpec]],
                   depth: int) -> Node:
        spec = parse_reference(address, row, col)
        if spec is not None:
            return self._read_reference(spec, refs)
        qualifier, local = split_sheet(address)
        if "[" in address:
            raise Unsupported(f"external reference {address!r} is not evaluated")
        scope = (qualifier or sheet).upper()
        definition = self._sheet_names.get((scope, local.upper()))
        if definition is None and qualifier is None:
            definition = self._names.get(local.upper())
        if definition is None:
            if ":" in local:
                raise Unsupported(f"reference {address!r} is not supported")
            return lambda ctx: NAME
        return self._name(definition, sheet, row, col, refs, depth)

    def _name(self, definition: str, sheet: str, row: int, col: int, refs: list[tuple[str | None, RefSpec]],
              depth: int) -> Node:
        text = definition.strip().lstrip("=")
        if text.startswith("#REF!") or "!#REF!" in text:
            return lambda ctx: REF
        spec = parse_reference(text, 0, 0)
        if spec is not None:
            # Defined names are absolute: an offset from (0, 0) is the position itself.
            absolute = RefSpec(spec.sheet, spec.r1, True, spec.c1, True, spec.r2, True, spec.c2, True, spec.single)
            if absolute.sheet is None:
                raise Unsupported(f"name {definition!r} without a sheet")
            return self._read_reference(absolute, refs)
        if depth >= MAX_NAME_DEPTH:
            raise Unsupported("defined names nested too deeply (a name refers to itself?)")
        if "," in text and "(" not in text:
            raise Unsupported(f"multi-area name {definition!r} is not supported")
        compiled = self._compile_formula("=" + text, sheet, row, col, depth + 1)
        if compiled.problem is not None or compiled.fn is None:
            raise Unsupported(compiled.problem.message if compiled.problem else "name cannot be evaluated")
        refs.extend(compiled.refs)
        return compiled.fn

    def _read_reference(self, spec: RefSpec, refs: list[tuple[str | None, RefSpec]]) -> Node:
        target = None
        if spec.sheet is not None:
            target = self._sheet_by_upper.get(spec.sheet.upper())
            if target is None:
                if ":" in spec.sheet:
                    raise Unsupported(f"3-D reference across sheets {spec.sheet!r} is not supported")
                return lambda ctx: REF
        refs.append((target, spec))
        memo_get = self._memo_get
        if spec.single:
            r, c = spec.r1, spec.c1
            if spec.r1_abs and spec.c1_abs:
                if target is not None:
                    key = (target, r, c)
                    return lambda ctx: memo_get(key)
                return lambda ctx: memo_get((ctx.sheet, r, c))
            if not spec.r1_abs and not spec.c1_abs:
                if target is not None:
                    return lambda ctx: memo_get((target, ctx.row + r, ctx.col + c))
                return lambda ctx: memo_get((ctx.sheet, ctx.row + r, ctx.col + c))

            def mixed(ctx: Ctx) -> Any:
                return memo_get((target or ctx.sheet, r if spec.r1_abs else ctx.row + r,
                                 c if spec.c1_abs else ctx.col + c))

            return mixed

        def block(ctx: Ctx) -> Any:
            sheet = target or ctx.sheet
            bounds = self._bounds(sheet, spec, ctx.row, ctx.col)
            if bounds is None:
                return REF
            r1, c1, r2, c2 = bounds
            get = self.memo.get
            cols = range(c1, c2 + 1)
            return Rng([[get((sheet, r, c)) for c in cols] for r in range(r1, r2 + 1)], r1, c1)

        return block

    def _memo_get(self, key: Key) -> Any:
        return self.memo.get(key)

    def _bounds(self, sheet: str, spec: RefSpec, row: int, col: int) -> tuple[int, int, int, int] | None:
        r1, c1, r2, c2 = spec.resolve(row, col)
        used_rows, used_cols = self._extent.get(sheet, (0, 0))
        if r2 is None:
            r2 = used_rows
        elif r2 - r1 >= CLIP_ROWS and r2 > used_rows:
            r2 = max(used_rows, r1)
        if c2 is None:
            c2 = used_cols
        elif c2 - c1 >= CLIP_COLS and c2 > used_cols:
            c2 = max(used_cols, c1)
        if r1 > r2:
            r1, r2 = r2, r1
        if c1 > c2:
            c1, c2 = c2, c1
        if r1 < 1 or c1 < 1 or r2 > MAX_ROW or c2 > MAX_COL:
            return None
        return r1, c1, r2, c2

    # ------------------------------------------------------------------ dependency graph

    def _find_precedents(self, key: Key) -> tuple[Key, ...]:
        sheet, row, col = key
        compiled = self._cell_compiled[key]
        found: dict[Key, None] = {}
        for target, spec in compiled.refs:
            ref_sheet = target or sheet
            if spec.single:
                r = spec.r1 if spec.r1_abs else row + spec.r1
                c = spec.c1 if spec.c1_abs else col + spec.c1
                if (ref_sheet, r, c) in self.formulas:
                    found[(ref_sheet, r, c)] = None
                continue
            bounds = self._bounds(ref_sheet, spec, row, col)
            if bounds is None:
                continue
            r1, c1, r2, c2 = bounds
            for c in range(c1, c2 + 1):
                rows = self._formula_rows.get((ref_sheet, c))
                if not rows:
                    continue
                for r in rows[bisect.bisect_left(rows, r1) : bisect.bisect_right(rows, r2)]:
                    found[(ref_sheet, r, c)] = None
        return tuple(found)

    # ------------------------------------------------------------------ evaluation

    def set_value(self, key: str, value: Value | dt.date | dt.datetime) -> None:
        """Set a cell to a constant (replacing a formula there) for a what-if recalculation."""
        sheet_text, coord = split_sheet(key)
        sheet = self._sheet_by_upper.get((sheet_text or "").upper())
        if sheet is None:
            raise KeyError(f"unknown sheet in {key!r}; sheets are {self.sheets}")
        row, col = parse_coordinate(coord)
        cell = (sheet, row, col)
        if cell in self.formulas:
            del self.formulas[cell]
            self._cell_compiled.pop(cell, None)
            self._precedents.pop(cell, None)
        if isinstance(value, str) and value in ERROR_CODES:
            self.constants[cell] = XLError(value)
        elif value is None:
            self.constants.pop(cell, None)
        else:
            self.constants[cell] = self._constant(value, "n")
        used_rows, used_cols = self._extent.get(sheet, (0, 0))
        self._extent[sheet] = (max(used_rows, row), max(used_cols, col))

    def evaluate(self) -> Evaluation:
        """Recalculate every formula once, in dependency order, from the current constants."""
        self.memo = dict(self.constants)
        self.evaluation_count = 0
        problems: dict[Key, CellProblem] = {}
        for component in self._components():
            if len(component) > 1 or component[0] in self._precedents.get(component[0], ()):
                members = ", ".join(_key(k) for k in component[:5]) + (" ..." if len(component) > 5 else "")
                for member in component:
                    problems[member] = CellProblem(kind="circular", message=_short(f"circular reference: {members}"))
                continue
            key = component[0]
            problem = self._evaluate_cell(key, problems)
            if problem is not None:
                problems[key] = problem
        return self._evaluation(problems)

    def _components(self) -> list[list[Key]]:
        """Strongly connected components of the formula graph, dependencies first (iterative Tarjan)."""
        formulas, precedents = self.formulas, self._precedents
        index: dict[Key, int] = {}
        low: dict[Key, int] = {}
        on_stack: set[Key] = set()
        stack: list[Key] = []
        out: list[list[Key]] = []
        counter = 0
        for root in formulas:
            if root in index:
                continue
            index[root] = low[root] = counter
            counter += 1
            stack.append(root)
            on_stack.add(root)
            work = [(root, iter(precedents.get(root, ())))]
            while work:
                node, successors = work[-1]
                descended = False
                for nxt in successors:
                    if nxt not in formulas:
                        continue
                    if nxt not in index:
                        index[nxt] = low[nxt] = counter
                        counter += 1
                        stack.append(nxt)
                        on_stack.add(nxt)
                        work.append((nxt, iter(precedents.get(nxt, ()))))
                        descended = True
                        break
                    if nxt in on_stack and index[nxt] < low[node]:
                        low[node] = index[nxt]
                if descended:
                    continue
                work.pop()
                if work:
                    parent = work[-1][0]
                    if low[node] < low[parent]:
                        low[parent] = low[node]
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    out.append(component)
        return out

    def _evaluate_cell(self, key: Key, problems: dict[Key, CellProblem]) -> CellProblem | None:
        compiled = self._cell_compiled[key]
        if compiled.problem is not None:
            return compiled.problem
        for precedent in self._precedents.get(key, ()):
            upstream = problems.get(precedent)
            if upstream is not None:
                return CellProblem(kind="unevaluable",
                                   message=_short(f"depends on {_key(precedent)} ({upstream.kind})"))
        sheet, row, col = key
        self.evaluation_count += 1
        assert compiled.fn is not None
        try:
            value = compiled.fn(Ctx(sheet, row, col))
        except ErrorRaised as raised:
            value = raised.error
        except Unsupported as exc:
            return CellProblem(kind="unevaluable", message=_short(str(exc)))
        except RecursionError:
            return CellProblem(kind="engine_error", message="formula nested too deeply to evaluate")
        except Exception as exc:  # a bug or an unhandled edge in a function: report it on this cell, keep going
            return CellProblem(kind="engine_error", message=_short(f"{type(exc).__name__}: {exc}"))
        self.memo[key] = _result(value, row, col)
        return None

    def _evaluation(self, problems: dict[Key, CellProblem]) -> Evaluation:
        values: dict[str, Value] = {}
        for key, value in self.memo.items():
            if key in problems:
                continue
            values[_key(key)] = value.code if isinstance(value, XLError) else value
        formula_keys = [*self.formulas]
        return Evaluation(
            engine="embedded",
            values=values,
            formula_cells=[_key(k) for k in formula_keys],
            problems={_key(k): p for k, p in problems.items()},
        )

    def formula(self, key: str) -> str | None:
        """The formula text of a cell ('=...'), or None for a constant or blank cell."""
        sheet_text, coord = split_sheet(key)
        sheet = self._sheet_by_upper.get((sheet_text or "").upper())
        if sheet is None:
            return None
        row, col = parse_coordinate(coord)
        return self.formulas.get((sheet, row, col))


def _cells(ws: Any) -> Any:
    """(row, col), cell for every stored cell; read-only worksheets have no cell dict and are streamed."""
    cells = getattr(ws, "_cells", None)
    if cells is not None:
        return cells.items()
    return (((cell.row, cell.column), cell) for row in ws.iter_rows() for cell in row if hasattr(cell, "column"))


def _as_range(arg: Node) -> Node:
    def wrapped(ctx: Ctx) -> Any:
        value = arg(ctx)
        return value if isinstance(value, Rng) else Rng([[value]])

    return wrapped


def _accepts(name: str, fn: Callable[..., Any], count: int, lazy: bool) -> bool:
    if lazy:
        return count >= 1
    if name not in _ARITY:
        try:
            _ARITY[name] = inspect.signature(fn)
        except (TypeError, ValueError):
            _ARITY[name] = None
    signature = _ARITY[name]
    if signature is None:
        return True
    try:
        signature.bind(*range(count))
    except TypeError:
        return False
    return True


def _result(value: Any, row: int, col: int) -> Any:
    """A cell's value from a formula result: arrays reduced (1x1, or the implicit intersection with a range on the
    formula's row/column), numpy to Python, NaN/inf to #NUM!, a blank to 0 as Excel shows `=A1` for blank A1."""
    if isinstance(value, Rng):
        rows = value.rows
        if len(rows) == 1 and len(rows[0]) == 1:
            value = rows[0][0]
        elif value.top and len(rows[0]) == 1 and value.top <= row < value.top + len(rows):
            value = rows[row - value.top][0]
        elif value.left and len(rows) == 1 and value.left <= col < value.left + len(rows[0]):
            value = rows[0][col - value.left]
        else:
            return VALUE
    if value is None:
        return 0
    if type(value) is float:
        return value if math.isfinite(value) else XLError("#NUM!")
    if type(value) in (int, str, bool) or isinstance(value, XLError):
        return value
    value = _python(value)
    if isinstance(value, float) and not math.isfinite(value):
        return XLError("#NUM!")
    return value if not isinstance(value, Rng) else VALUE


def _key(key: Key) -> str:
    sheet, row, col = key
    return cell_key(sheet, coordinate(row, col))


def load_model(source: openpyxl.Workbook | str | Path) -> Model:
    """Compile a workbook (an openpyxl Workbook loaded with formulas, or a path to an .xlsx) for recalculation."""
    if isinstance(source, (str, Path)):
        with warnings.catch_warnings():
            # openpyxl warns about workbook features it drops (data validation, conditional formats): irrelevant
            # to values.
            warnings.simplefilter("ignore")
            workbook = openpyxl.load_workbook(source, data_only=False)
    else:
        workbook = source
    return Model(workbook)


def evaluate_workbook(source: openpyxl.Workbook | str | Path) -> Evaluation:
    """Load and recalculate a workbook in one call."""
    return load_model(source).evaluate()


EmbeddedModel = Model

__all__ = ["EmbeddedModel", "Model", "build_namespace", "evaluate_workbook", "load_model", "lookup_function"]
