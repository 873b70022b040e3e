"""Formula-writing rules: the `_xlfn.` prefixes Excel needs, validation before a formula is written, and what counts
as formula text typed as a value. Pure functions over strings: nothing here reads or writes a workbook.

Why: Excel shows `#NAME?` for a post-2007 function stored without its `_xlfn.` prefix, and "repairs" (deletes)
formulas it cannot parse when it opens a file; LibreOffice is more tolerant, so a file that passes there can still
break in Excel. Validation happens before writing, with a message that says what to do instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from openpyxl.formula.tokenizer import Token, Tokenizer, TokenizerError
from openpyxl.utils import FORMULAE
from testbeds_serving.errors import InvalidArgument

from .engine.catalog import MODERN_FUNCTIONS
from .engine.functions import FUNCTIONS
from .engine.parser import ParseError, parse
from .engine.references import (
    COLS_RE,
    MAX_COL,
    MAX_ROW,
    column_index,
    coordinate,
    parse_coordinate,
    parse_reference,
    split_sheet,
)
from .engine.values import cell_key

MAX_FORMULA_LENGTH = 8192
MAX_NESTING = 64
MAX_PREFIX_RUN = 64  # consecutive signs ('=----1'); nothing real needs more, and a long run costs the parser depth
SMALL_RANGE = 256

# Dynamic-array worksheet functions carry a second namespace.
XLWS_FUNCTIONS = frozenset({"FILTER", "SORT"})
_ENGINE_PSEUDO = frozenset({"ARRAY", "ARRAYROW"})
NEEDS_PREFIX = frozenset(
    name for name in (MODERN_FUNCTIONS | set(FUNCTIONS)) - _ENGINE_PSEUDO if name not in FORMULAE
)

# Functions that reach outside the workbook (web, XML, DLLs): a grading sandbox must never call them.
BLOCKED_FUNCTIONS = frozenset({"WEBSERVICE", "FILTERXML", "CALL", "REGISTER.ID", "REGISTER", "DDE", "RTD",
                               "EXEC", "IMAGE", "STOCKHISTORY"})

_LITERAL_RE = re.compile(r"\"(?:[^\"]|\"\")*\"|'(?:[^']|'')*'")
_FUNCTION_RE = re.compile(r"(?<![\w.])((?:_xlfn\.|_xlws\.)*)([A-Za-z][A-Za-z0-9_.]*)(\s*\()", re.I)
_PREFIX_RE = re.compile(r"_xlfn\._xlws\.|_xlfn\.|_xlws\.|_xlpm\.", re.I)


def _outside_literals(formula: str, transform: Callable[[str], str]) -> str:
    parts: list[str] = []
    position = 0
    for literal in _LITERAL_RE.finditer(formula):
        parts.append(transform(formula[position : literal.start()]))
        parts.append(literal.group(0))
        position = literal.end()
    parts.append(transform(formula[position:]))
    return "".join(parts)


def to_stored(formula: str) -> str:
    """The formula as Excel stores it: `_xlfn.` before functions newer than Excel 2007 (`_xlfn._xlws.` for FILTER
    and SORT). Idempotent: already prefixed names are left as they are."""

    def prefix(match: re.Match[str]) -> str:
        name = match.group(2)
        upper = name.upper()
        if upper in XLWS_FUNCTIONS:
            return f"_xlfn._xlws.{name}{match.group(3)}"
        if upper in NEEDS_PREFIX:
            return f"_xlfn.{name}{match.group(3)}"
        return match.group(0)

    return _outside_literals(formula, lambda text: _FUNCTION_RE.sub(prefix, text))


def from_stored(formula: str) -> str:
    """The formula as a user writes it: `_xlfn.`, `_xlws.` and `_xlpm.` prefixes removed (outside strings)."""
    return _outside_literals(formula, lambda text: _PREFIX_RE.sub("", text))


def _tokens(formula: str) -> list[Token]:
    try:
        return Tokenizer(formula).items
    except (TokenizerError, ValueError, IndexError) as exc:
        raise InvalidArgument(f"cannot parse formula {_clip(formula)}: {exc}; check quotes, brackets and "
                              "operators") from None


def _clip(formula: str, limit: int = 80) -> str:
    return repr(formula if len(formula) <= limit else formula[: limit - 3] + "...")


def _structure(formula: str) -> None:
    """Parentheses, nesting, `;` separators and DDE links, checked outside string literals and quoted names."""
    masked = _LITERAL_RE.sub(lambda m: "x" * len(m.group(0)), formula)
    depth = deepest = braces = 0
    for char in masked:
        if char == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise InvalidArgument(f"formula {_clip(formula)} closes a parenthesis it never opened; remove the "
                                      "extra ')'")
        elif char == "{":
            braces += 1
        elif char == "}":
            braces -= 1
        elif char == ";" and braces == 0:
            raise InvalidArgument(f"formula {_clip(formula)} separates arguments with ';'; use ',' (Excel's "
                                  "stored formulas always use commas)")
        elif char == "|":
            raise InvalidArgument(f"formula {_clip(formula)} looks like a DDE link ('|'); external links are not "
                                  "allowed: put the data in the workbook")
    if depth > 0:
        raise InvalidArgument(f"formula {_clip(formula)} has {depth} unclosed parenthesis(es); add ')' where each "
                              "call or group ends")
    if deepest > MAX_NESTING:
        raise InvalidArgument(f"formula nests {deepest} levels deep; Excel allows {MAX_NESTING}: split it into "
                              "helper cells")


def _is_external(operand: str) -> bool:
    lowered = operand.lower()
    return (
        "[" in operand
        or re.match(r"^'?[a-z]:[\\/]", lowered) is not None
        or lowered.lstrip("'").startswith(("http:", "https:", "\\\\", "file:", "ftp:"))
    )


def _bounds(local: str, row: int, col: int) -> tuple[int, int, int, int] | None:
    spec = parse_reference(local, row, col)
    if spec is None:
        return None
    r1, c1, r2, c2 = spec.resolve(row, col)
    return r1, c1, MAX_ROW if r2 is None else r2, MAX_COL if c2 is None else c2


def validate_formula(formula: str, cell: str, sheet: str, sheet_names: set[str], defined_names: set[str]) -> None:
    """Raise `InvalidArgument` (saying what is wrong and what to do) for a formula Excel would reject or repair, or
    that cannot be graded: unbalanced parentheses, `;` separators, a range containing its own cell, an unknown sheet
    or name, an external link, a blocked function (WEBSERVICE, FILTERXML, CALL, REGISTER.ID, DDE), more than 8,192
    characters or 64 nesting levels. `cell` is where the formula goes ('B5'), on `sheet`."""
    if not formula.startswith("="):
        raise InvalidArgument(f"a formula starts with '=': got {_clip(formula)}; write e.g. '=SUM(B2:B4)'")
    if len(formula) > MAX_FORMULA_LENGTH:
        raise InvalidArgument(f"formula is {len(formula)} characters; Excel allows {MAX_FORMULA_LENGTH}: split it "
                              "into helper cells")
    if formula.strip() == "=":
        raise InvalidArgument("formula is empty; write an expression after '='")
    _structure(formula)
    tokens = _tokens(formula)
    _check_syntax(formula, tokens)
    row, col = parse_coordinate(cell)
    sheets_upper = {name.upper() for name in sheet_names}
    names_upper = {name.upper() for name in defined_names}
    for token in tokens:
        if token.type == Token.FUNC and token.subtype == Token.OPEN:
            name = from_stored(token.value[:-1]).upper()
            if name in BLOCKED_FUNCTIONS:
                raise InvalidArgument(f"{name} reaches outside the workbook and is not allowed; put the data in a "
                                      "sheet instead")
            continue
        if token.type != Token.OPERAND or token.subtype != Token.RANGE:
            continue
        operand = token.value
        if _is_external(operand):
            raise InvalidArgument(f"{operand!r} links to another file or the web; external links are not allowed: "
                                  "copy the data into this workbook")
        qualifier, local = split_sheet(operand)
        if qualifier is not None:
            if ":" in qualifier:
                raise InvalidArgument(f"{operand!r} spans several sheets (3-D reference); refer to each sheet's "
                                      "range separately")
            if qualifier.upper() not in sheets_upper:
                known = ", ".join(sorted(sheet_names)) or "none"
                raise InvalidArgument(f"{operand!r} refers to sheet {qualifier!r}, which does not exist (sheets: "
                                      f"{known}); create it first or fix the name")
        bounds = _bounds(local, row, col)
        if bounds is None:
            if local.upper() not in names_upper and local.upper() not in ("TRUE", "FALSE"):
                known = ", ".join(sorted(defined_names)) or "none"
                raise InvalidArgument(f"{local!r} is neither a cell reference nor a defined name (names: {known}); "
                                      "use a reference like B3 or define the name first")
            continue
        same_sheet = qualifier is None or qualifier.upper() == sheet.upper()
        r1, c1, r2, c2 = bounds
        if same_sheet and r1 <= row <= r2 and c1 <= col <= c2:
            where = cell.replace("$", "").upper()
            if r1 == r2 and c1 == c2:
                raise InvalidArgument(f"the formula in {where} refers to {where} itself (a circular reference); "
                                      "refer to the cells it should be computed from")
            raise InvalidArgument(f"range {local!r} contains {where}, the formula's own cell (a circular "
                                  f"reference); end the range before {where}, e.g. "
                                  f"{_suggest(r1, c1, r2, c2, row, col)}")


def _check_syntax(formula: str, tokens: list[Token]) -> None:
    """Refuse what the engine's parser cannot read (`=1+`, `=1 2`, `=SUM(=SUM(1))`): Excel would "repair" such a
    formula away when opening the file, and the grader could not evaluate it."""
    run = 0
    for token in tokens:
        if token.type == Token.WSPACE:
            continue
        run = run + 1 if token.type == Token.OP_PRE else 0
        if run > MAX_PREFIX_RUN:
            raise InvalidArgument(f"formula {_clip(formula)} has more than {MAX_PREFIX_RUN} signs in a row; write "
                                  "the sign once (e.g. '=-B2')")
    try:
        parse(formula)
    except ParseError as exc:
        raise InvalidArgument(f"cannot parse formula {_clip(formula)}: {exc}; check operators, operands, commas "
                              "and brackets (e.g. '=B2+B3', '=SUM(B2:B4)')") from None
    except RecursionError:
        raise InvalidArgument(f"formula {_clip(formula)} is nested too deeply to read; split it into helper "
                              "cells") from None


def _suggest(r1: int, c1: int, r2: int, c2: int, row: int, col: int) -> str:
    if c1 == c2 and row > r1:
        return f"{coordinate(r1, c1)}:{coordinate(row - 1, c1)}"
    if r1 == r2 and col > c1:
        return f"{coordinate(r1, c1)}:{coordinate(r1, col - 1)}"
    return "a range that stops short of it"


_LOTUS_CALL = re.compile(r"^[+@]\s*(?:[A-Za-z_][\w.]*\(|\$?[A-Za-z]{1,3}\$?\d+\b)")


def looks_like_formula_text(value: str) -> bool:
    """True for text that a spreadsheet user would read as a formula that was stored as plain text.

    The rule: after leading whitespace (incl. non-breaking spaces) the text starts with `=` followed by something
    an expression can start with (a letter, digit, `$`, `'`, `(`, `_`, `[`, `-`, `+`, `"`), e.g. "=A1+B1 ",
    " =SUM(A1)", "=-B2"; or it starts with `+`/`@` followed by a function call or a cell reference, the Lotus-style
    entries Excel turns into formulas ("+A1+B1", "@SUM(A1:A3)"). Plain numbers and signs ("+5%", "-3"), rules like
    "== Totals ==" and an "=" alone are ordinary text. "= see note" counts as formula-like (Excel would try to parse
    it too): write such notes without the leading "=".
    """
    stripped = value.lstrip(" \t\r\n\u00a0")
    if not stripped:
        return False
    if stripped[0] == "=":
        rest = stripped[1:].lstrip(" \u00a0")
        return bool(rest) and (rest[0].isalnum() or rest[0] in "$'(_[-+\"") and not rest.startswith("=")
    return _LOTUS_CALL.match(stripped) is not None


def referenced_cells(formula: str, sheet: str, max_expand: int = SMALL_RANGE) -> list[str]:
    """Keys ('Sheet!A1') of the cells a formula reads, in order of appearance without repeats. Ranges of at most
    `max_expand` cells are expanded; larger ones (and whole columns or rows) are kept as one key ('Sheet!A1:A500',
    'Sheet!F:F'). Names and external references are skipped (they need the workbook to resolve)."""
    found: dict[str, None] = {}
    for token in _tokens(formula):
        if token.type != Token.OPERAND or token.subtype != Token.RANGE or _is_external(token.value):
            continue
        qualifier, local = split_sheet(token.value)
        target = qualifier or sheet
        spec = parse_reference(local, 0, 0)
        if spec is None:
            continue
        if spec.single:
            found[cell_key(target, local)] = None
            continue
        if spec.r2 is None or spec.c2 is None or COLS_RE.match(local):
            found[f"{target}!{local.replace('$', '').upper()}"] = None
            continue
        r1, r2 = sorted((spec.r1, spec.r2))
        c1, c2 = sorted((spec.c1, spec.c2))
        if (r2 - r1 + 1) * (c2 - c1 + 1) > max_expand:
            found[f"{target}!{coordinate(r1, c1)}:{coordinate(r2, c2)}"] = None
            continue
        for r in range(r1, r2 + 1):
            for c in range(c1, c2 + 1):
                found[cell_key(target, coordinate(r, c))] = None
    return list(found)


__all__ = [
    "BLOCKED_FUNCTIONS",
    "MODERN_FUNCTIONS",
    "NEEDS_PREFIX",
    "column_index",
    "from_stored",
    "looks_like_formula_text",
    "referenced_cells",
    "to_stored",
    "validate_formula",
]
