"""Excel functions the embedded engine evaluates natively, registered over xlcalculator's function table.

xlcalculator 0.5.0 lacks or mis-evaluates many functions finance models use (VLOOKUP returns the wrong column,
IRR gives NaN, SUMIF needs pandas' removed `applymap`, AVERAGE counts blanks, IFERROR is missing ...). Every name
here replaces or adds to its table; names only xlcalculator has are called through an adapter in `evaluator.py`.

Conventions: arguments arrive evaluated (`Rng` for ranges) except for lazy functions (IF, IFERROR, IFNA, IFS,
SWITCH, CHOOSE), which receive `arg(i)` to evaluate argument i on demand and `n`, the argument count. Errors are
raised as `ErrorRaised`; finance follows Excel's signs (money paid out is negative), via numpy-financial.
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
import re
import statistics
from collections.abc import Callable
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Any

import numpy as np
import numpy_financial as npf

from .operands import (
    DIV0,
    NA,
    NUM,
    VALUE,
    ErrorRaised,
    Rng,
    XLError,
    boolean,
    check,
    compare,
    fail,
    finite,
    from_serial,
    integer,
    iter_args,
    num,
    numbers,
    scalar,
    text,
    text_to_number,
    to_serial,
)

Function = Callable[..., Any]

FUNCTIONS: dict[str, Function] = {}
LAZY: set[str] = set()


def register(*names: str, lazy: bool = False) -> Callable[[Function], Function]:
    """Add a function to the table under one or more Excel names (upper case, without `_xlfn.`)."""

    def decorate(fn: Function) -> Function:
        for name in names:
            FUNCTIONS[name] = fn
            if lazy:
                LAZY.add(name)
        return fn

    return decorate


# ---------------------------------------------------------------- logical (lazy where Excel is lazy)


@register("IF", lazy=True)
def if_(arg: Callable[[int], Any], n: int) -> Any:
    if n < 1 or n > 3:
        fail(VALUE)
    if boolean(check(scalar(arg(0)))):
        return arg(1) if n >= 2 else True
    return arg(2) if n >= 3 else False


@register("IFERROR", lazy=True)
def iferror(arg: Callable[[int], Any], n: int) -> Any:
    value = arg(0)
    return arg(1) if isinstance(value, XLError) else value


@register("IFNA", lazy=True)
def ifna(arg: Callable[[int], Any], n: int) -> Any:
    value = arg(0)
    return arg(1) if value is NA else value


@register("IFS", lazy=True)
def ifs(arg: Callable[[int], Any], n: int) -> Any:
    if n % 2:
        fail(VALUE)
    for i in range(0, n, 2):
        if boolean(check(scalar(arg(i)))):
            return arg(i + 1)
    return NA


@register("SWITCH", lazy=True)
def switch(arg: Callable[[int], Any], n: int) -> Any:
    if n < 3:
        fail(VALUE)
    subject = check(scalar(arg(0)))
    pairs, has_default = divmod(n - 1, 2)
    for i in range(pairs):
        candidate = check(scalar(arg(1 + 2 * i)))
        if _equal(subject, candidate):
            return arg(2 + 2 * i)
    return arg(n - 1) if has_default else NA


@register("CHOOSE", lazy=True)
def choose(arg: Callable[[int], Any], n: int) -> Any:
    index = integer(scalar(arg(0)))
    if index < 1 or index >= n:
        fail(VALUE)
    return arg(index)


@register("AND")
def and_(*args: Any) -> bool:
    found = _logicals(args)
    if not found:
        fail(VALUE)
    return all(found)


@register("OR")
def or_(*args: Any) -> bool:
    found = _logicals(args)
    if not found:
        fail(VALUE)
    return any(found)


@register("XOR")
def xor(*args: Any) -> bool:
    found = _logicals(args)
    if not found:
        fail(VALUE)
    return sum(found) % 2 == 1


def _logicals(args: tuple[Any, ...]) -> list[bool]:
    out = []
    for value, in_range in iter_args(args):
        check(value)
        if in_range and (value is None or isinstance(value, str)):
            continue
        out.append(boolean(value))
    return out


@register("NOT")
def not_(value: Any) -> bool:
    return not boolean(check(scalar(value)))


@register("TRUE")
def true_() -> bool:
    return True


@register("FALSE")
def false_() -> bool:
    return False


# ---------------------------------------------------------------- information


@register("ISERROR")
def iserror(value: Any) -> bool:
    return isinstance(scalar_or_first(value), XLError)


@register("ISERR")
def iserr(value: Any) -> bool:
    value = scalar_or_first(value)
    return isinstance(value, XLError) and value is not NA


@register("ISNA")
def isna(value: Any) -> bool:
    return scalar_or_first(value) is NA


@register("ISBLANK")
def isblank(value: Any) -> bool:
    return scalar_or_first(value) is None


@register("ISNUMBER")
def isnumber(value: Any) -> bool:
    value = scalar_or_first(value)
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@register("ISTEXT")
def istext(value: Any) -> bool:
    return isinstance(scalar_or_first(value), str)


@register("ISNONTEXT")
def isnontext(value: Any) -> bool:
    return not isinstance(scalar_or_first(value), str)


@register("ISLOGICAL")
def islogical(value: Any) -> bool:
    return isinstance(scalar_or_first(value), bool)


@register("NA")
def na_() -> Any:
    return NA


@register("N")
def n_(value: Any) -> Any:
    value = check(scalar_or_first(value))
    if isinstance(value, bool):
        return int(value)
    return value if isinstance(value, (int, float)) else 0


def scalar_or_first(value: Any) -> Any:
    if isinstance(value, Rng):
        return value.rows[0][0] if value.rows and value.rows[0] else None
    return value


# ---------------------------------------------------------------- maths


@register("SUM")
def sum_(*args: Any) -> float | int:
    return math.fsum(numbers(args)) if args else 0


@register("PRODUCT")
def product(*args: Any) -> float | int:
    found = numbers(args)
    return math.prod(found) if found else 0


@register("SUMPRODUCT")
def sumproduct(*arrays: Any) -> float:
    if not arrays:
        fail(VALUE)
    blocks = [a if isinstance(a, Rng) else Rng([[a]]) for a in arrays]
    shape = (blocks[0].nrows, blocks[0].ncols)
    if any((b.nrows, b.ncols) != shape for b in blocks):
        fail(VALUE)
    total = 0.0
    columns = [list(b.flat()) for b in blocks]
    for values in zip(*columns):
        term = 1.0
        for value in values:
            check(value)
            # Non-numbers (text, blanks, logicals) count as 0, as in Excel: `--(cond)` is the idiom for booleans.
            term *= value if isinstance(value, (int, float)) and not isinstance(value, bool) else 0
        total += term
    return total


@register("ABS")
def abs_(value: Any) -> float | int:
    return abs(num(value))


@register("SIGN")
def sign(value: Any) -> int:
    x = num(value)
    return (x > 0) - (x < 0)


@register("SQRT")
def sqrt(value: Any) -> float:
    x = num(value)
    if x < 0:
        fail(NUM)
    return math.sqrt(x)


@register("EXP")
def exp(value: Any) -> float:
    try:
        return math.exp(num(value))
    except OverflowError:
        fail(NUM)
    return 0.0


@register("LN")
def ln(value: Any) -> float:
    x = num(value)
    if x <= 0:
        fail(NUM)
    return math.log(x)


@register("LOG")
def log(value: Any, base: Any = 10) -> float:
    x, b = num(value), num(base)
    if x <= 0 or b <= 0:
        fail(NUM)
    if b == 1:
        fail(DIV0)
    return math.log(x) / math.log(b)


@register("LOG10")
def log10(value: Any) -> float:
    x = num(value)
    if x <= 0:
        fail(NUM)
    return math.log10(x)


@register("POWER")
def power(base: Any, exponent: Any) -> float:
    from .operands import INFIX

    result = INFIX["^"](base, exponent)
    return check(result)


@register("PI")
def pi() -> float:
    return math.pi


@register("INT")
def int_(value: Any) -> int:
    return math.floor(num(value))


@register("TRUNC")
def trunc(value: Any, digits: Any = 0) -> float:
    return _round(num(value), integer(digits), "DOWN")


@register("MOD")
def mod(value: Any, divisor: Any) -> float:
    x, d = num(value), num(divisor)
    if d == 0:
        fail(DIV0)
    return x - d * math.floor(x / d)


def _round(x: float, digits: int, mode: str) -> float | int:
    # Excel rounds the shortest decimal form of the double (ROUND(2.675, 2) = 2.68), so go through Decimal(repr).
    if not math.isfinite(x):
        fail(NUM)
    quantum = Decimal(1).scaleb(-digits)
    d = Decimal(repr(float(x)))
    if mode == "HALF":
        rounded = d.quantize(quantum, rounding=ROUND_HALF_UP)
    elif mode == "UP":
        rounded = abs(d).quantize(quantum, rounding=ROUND_CEILING).copy_sign(d)
    else:
        rounded = abs(d).quantize(quantum, rounding=ROUND_FLOOR).copy_sign(d)
    result = float(rounded)
    return int(result) if digits <= 0 and abs(result) < 2**53 else result


@register("ROUND")
def round_(value: Any, digits: Any = 0) -> float | int:
    return _round(num(value), integer(digits), "HALF")


@register("ROUNDUP")
def roundup(value: Any, digits: Any = 0) -> float | int:
    return _round(num(value), integer(digits), "UP")


@register("ROUNDDOWN")
def rounddown(value: Any, digits: Any = 0) -> float | int:
    return _round(num(value), integer(digits), "DOWN")


@register("MROUND")
def mround(value: Any, multiple: Any) -> float:
    x, m = num(value), num(multiple)
    if m == 0:
        return 0
    if (x > 0) != (m > 0) and x != 0:
        fail(NUM)
    return float(_round(x / m, 0, "HALF")) * m


@register("CEILING", "CEILING.MATH", "CEILING.PRECISE")
def ceiling(value: Any, significance: Any = 1, *_: Any) -> float:
    x, s = num(value), num(significance)
    if s == 0:
        return 0
    return math.ceil(x / abs(s)) * abs(s) if x >= 0 or s > 0 else -math.ceil(-x / -s) * -s


@register("FLOOR", "FLOOR.MATH", "FLOOR.PRECISE")
def floor(value: Any, significance: Any = 1, *_: Any) -> float:
    x, s = num(value), num(significance)
    if s == 0:
        fail(DIV0)
    return math.floor(x / abs(s)) * abs(s)


@register("MAX")
def max_(*args: Any) -> float | int:
    found = numbers(args)
    return max(found) if found else 0


@register("MIN")
def min_(*args: Any) -> float | int:
    found = numbers(args)
    return min(found) if found else 0


@register("AVERAGE")
def average(*args: Any) -> float:
    found = numbers(args)
    if not found:
        fail(DIV0)
    return math.fsum(found) / len(found)


@register("AVERAGEA")
def averagea(*args: Any) -> float:
    # Unlike AVERAGE, text and logicals in references count (text as 0, TRUE as 1); blanks are still skipped.
    found: list[float | int] = []
    for value, in_range in iter_args(args):
        if isinstance(value, XLError):
            raise ErrorRaised(value)
        if value is None:
            continue
        if isinstance(value, bool):
            found.append(int(value))
        elif isinstance(value, str) and in_range:
            found.append(0)
        else:
            found.append(num(value))
    if not found:
        fail(DIV0)
    return math.fsum(found) / len(found)


@register("QUOTIENT")
def quotient(numerator: Any, denominator: Any) -> int:
    a, b = num(scalar_or_first(numerator)), num(scalar_or_first(denominator))
    if b == 0:
        fail(DIV0)
    return math.trunc(a / b)


@register("COUNT")
def count(*args: Any) -> int:
    total = 0
    for value, in_range in iter_args(args):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            total += 1
        elif not in_range and isinstance(value, bool):
            total += 1
        elif not in_range and isinstance(value, str) and text_to_number(value) is not None:
            total += 1
    return total


@register("COUNTA")
def counta(*args: Any) -> int:
    return sum(1 for value, in_range in iter_args(args) if value is not None or not in_range)


@register("COUNTBLANK")
def countblank(block: Any) -> int:
    if not isinstance(block, Rng):
        block = Rng([[block]])
    return sum(1 for value in block.flat() if value is None or value == "")


@register("MEDIAN")
def median(*args: Any) -> float:
    found = numbers(args)
    if not found:
        fail(NUM)
    return statistics.median(found)


@register("LARGE")
def large(block: Any, k: Any) -> float:
    found = sorted(numbers([block]), reverse=True)
    index = math.ceil(num(k))
    if index < 1 or index > len(found):
        fail(NUM)
    return found[index - 1]


@register("SMALL")
def small(block: Any, k: Any) -> float:
    found = sorted(numbers([block]))
    index = math.ceil(num(k))
    if index < 1 or index > len(found):
        fail(NUM)
    return found[index - 1]


@register("STDEV", "STDEV.S")
def stdev_s(*args: Any) -> float:
    found = numbers(args)
    if len(found) < 2:
        fail(DIV0)
    return statistics.stdev(found)


@register("STDEVP", "STDEV.P")
def stdev_p(*args: Any) -> float:
    found = numbers(args)
    if not found:
        fail(DIV0)
    return statistics.pstdev(found)


@register("VAR", "VAR.S")
def var_s(*args: Any) -> float:
    found = numbers(args)
    if len(found) < 2:
        fail(DIV0)
    return statistics.variance(found)


@register("VARP", "VAR.P")
def var_p(*args: Any) -> float:
    found = numbers(args)
    if not found:
        fail(DIV0)
    return statistics.pvariance(found)


# ---------------------------------------------------------------- criteria (SUMIF family)

_CRITERION_OP = re.compile(r"^(<=|>=|<>|=|<|>)?(.*)$", re.S)


def criterion(value: Any) -> Callable[[Any], bool]:
    """A predicate for SUMIF-style criteria: 5, ">=5", "<>", "=", "North", "N*", "<>x"."""
    value = check(scalar(value))
    if isinstance(value, bool):
        return lambda cell: isinstance(cell, bool) and cell == value
    if isinstance(value, (int, float)):
        return lambda cell: _criterion_number(cell) == value
    if value is None:
        value = ""
    match = _CRITERION_OP.match(value)
    assert match is not None
    op, operand = match.group(1) or "", match.group(2)
    number = text_to_number(operand) if operand else None
    if number is not None:
        target: float = number
        tests: dict[str, Callable[[float], bool]] = {
            "": lambda x: x == target, "=": lambda x: x == target, "<>": lambda x: x != target,
            "<": lambda x: x < target, ">": lambda x: x > target,
            "<=": lambda x: x <= target, ">=": lambda x: x >= target,
        }
        test = tests[op]
        if op == "<>":
            return lambda cell: (n := _criterion_number(cell)) is None or test(n)
        return lambda cell: (n := _criterion_number(cell)) is not None and test(n)
    upper = operand.upper()
    if upper in ("TRUE", "FALSE"):
        flag = upper == "TRUE"
        if op == "<>":
            return lambda cell: not (isinstance(cell, bool) and cell == flag)
        return lambda cell: isinstance(cell, bool) and cell == flag
    if operand == "":
        if op == "<>":
            return lambda cell: cell is not None and cell != ""
        return lambda cell: cell is None or cell == ""
    if op in ("", "=", "<>"):
        pattern = wildcard(operand)
        if op == "<>":
            return lambda cell: not (isinstance(cell, str) and pattern.match(cell) is not None)
        return lambda cell: isinstance(cell, str) and pattern.match(cell) is not None
    sign_test: dict[str, Callable[[int], bool]] = {
        "<": lambda c: c < 0, ">": lambda c: c > 0, "<=": lambda c: c <= 0, ">=": lambda c: c >= 0,
    }
    order = sign_test[op]
    return lambda cell: isinstance(cell, str) and order(compare(cell, operand))


def _criterion_number(cell: Any) -> float | None:
    if isinstance(cell, bool) or cell is None:
        return None
    if isinstance(cell, (int, float)):
        return cell
    if isinstance(cell, str):
        return text_to_number(cell)
    return None


def wildcard(pattern: str) -> re.Pattern[str]:
    """Excel's `*`, `?` and `~` escapes as an anchored, case-insensitive regex."""
    out = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "~" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if char == "*" else "." if char == "?" else re.escape(char))
        i += 1
    return re.compile("^" + "".join(out) + "$", re.I | re.S)


def _block(value: Any) -> Rng:
    return value if isinstance(value, Rng) else Rng([[value]])


def _matching(pairs: tuple[Any, ...]) -> list[bool]:
    """Which positions satisfy every (range, criterion) pair; ranges must share a shape."""
    if not pairs or len(pairs) % 2:
        fail(VALUE)
    mask: list[bool] | None = None
    shape = None
    for i in range(0, len(pairs), 2):
        block = _block(pairs[i])
        if shape is None:
            shape = (block.nrows, block.ncols)
        elif (block.nrows, block.ncols) != shape:
            fail(VALUE)
        test = criterion(pairs[i + 1])
        hits = [test(cell) for cell in block.flat()]
        mask = hits if mask is None else [a and b for a, b in zip(mask, hits)]
    return mask or []


def _selected(target: Any, mask: list[bool]) -> list[float | int]:
    block = _block(target)
    values = list(block.flat())
    if len(values) != len(mask):
        fail(VALUE)
    out: list[float | int] = []
    for hit, value in zip(mask, values):
        if hit:
            check(value)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                out.append(value)
    return out


def _with_shape(target: Any, like: Any) -> Any:
    """SUMIF's sum range takes the shape of the criteria range from its top-left cell (Excel's resizing)."""
    block, shape = _block(target), _block(like)
    if (block.nrows, block.ncols) == (shape.nrows, shape.ncols):
        return block
    rows = [[block.rows[i][j] if i < block.nrows and j < block.ncols else None for j in range(shape.ncols)]
            for i in range(shape.nrows)]
    return Rng(rows)


@register("SUMIF")
def sumif(block: Any, crit: Any, sum_block: Any = None) -> float:
    target = block if sum_block is None else _with_shape(sum_block, block)
    return math.fsum(_selected(target, _matching((block, crit))))


@register("SUMIFS")
def sumifs(sum_block: Any, *pairs: Any) -> float:
    return math.fsum(_selected(sum_block, _matching(pairs)))


@register("COUNTIF")
def countif(block: Any, crit: Any) -> int:
    return sum(_matching((block, crit)))


@register("COUNTIFS")
def countifs(*pairs: Any) -> int:
    return sum(_matching(pairs))


@register("AVERAGEIF")
def averageif(block: Any, crit: Any, avg_block: Any = None) -> float:
    target = block if avg_block is None else _with_shape(avg_block, block)
    found = _selected(target, _matching((block, crit)))
    if not found:
        fail(DIV0)
    return math.fsum(found) / len(found)


@register("AVERAGEIFS")
def averageifs(avg_block: Any, *pairs: Any) -> float:
    found = _selected(avg_block, _matching(pairs))
    if not found:
        fail(DIV0)
    return math.fsum(found) / len(found)


@register("MAXIFS")
def maxifs(max_block: Any, *pairs: Any) -> float:
    found = _selected(max_block, _matching(pairs))
    return max(found) if found else 0


@register("MINIFS")
def minifs(min_block: Any, *pairs: Any) -> float:
    found = _selected(min_block, _matching(pairs))
    return min(found) if found else 0


# ---------------------------------------------------------------- lookup


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    if isinstance(a, str) != isinstance(b, str):
        return False
    return compare(a, b) == 0


def _exact_position(key: Any, values: list[Any], reverse: bool = False) -> int | None:
    if isinstance(key, str) and any(c in key for c in "*?~"):
        pattern = wildcard(key)
        tests: Callable[[Any], bool] = lambda v: isinstance(v, str) and pattern.match(v) is not None  # noqa: E731
    else:
        tests = lambda v: v is not None and _equal(key, v)  # noqa: E731
    order = range(len(values) - 1, -1, -1) if reverse else range(len(values))
    for i in order:
        if tests(values[i]):
            return i
    return None


def _sorted_position(key: Any, values: list[Any], descending: bool = False) -> int | None:
    """Excel's approximate match on sorted data: the last value <= key (ascending) or >= key (descending), among
    values of the key's type."""
    found = None
    rank = isinstance(key, str), isinstance(key, bool)
    for i, value in enumerate(values):
        if value is None or isinstance(value, XLError) or (isinstance(value, str), isinstance(value, bool)) != rank:
            continue
        order = compare(value, key)
        if (order <= 0) if not descending else (order >= 0):
            found = i
        else:
            break
    return found


@register("VLOOKUP")
def vlookup(key: Any, table: Any, col: Any, approximate: Any = True) -> Any:
    key, table = check(scalar(key)), _block(table)
    index = integer(col)
    if index < 1:
        fail(VALUE)
    if index > table.ncols:
        fail(XLError("#REF!"))
    keys = table.column(0)
    approx = boolean(approximate) if approximate is not None else False
    position = _sorted_position(key, keys) if approx else _exact_position(key, keys)
    if position is None:
        return NA
    return table.rows[position][index - 1]


@register("HLOOKUP")
def hlookup(key: Any, table: Any, row: Any, approximate: Any = True) -> Any:
    key, table = check(scalar(key)), _block(table)
    index = integer(row)
    if index < 1:
        fail(VALUE)
    if index > table.nrows:
        fail(XLError("#REF!"))
    keys = list(table.rows[0])
    approx = boolean(approximate) if approximate is not None else False
    position = _sorted_position(key, keys) if approx else _exact_position(key, keys)
    if position is None:
        return NA
    return table.rows[index - 1][position]


def _vector(value: Any) -> list[Any]:
    block = _block(value)
    if block.nrows != 1 and block.ncols != 1:
        fail(NA)
    return block.vector()


@register("MATCH")
def match(key: Any, lookup: Any, match_type: Any = 1) -> Any:
    key = check(scalar(key))
    values = _vector(lookup)
    kind = integer(match_type) if match_type is not None else 1
    if kind == 0:
        position = _exact_position(key, values)
    else:
        position = _sorted_position(key, values, descending=kind < 0)
    return NA if position is None else position + 1


@register("INDEX")
def index(block: Any, row: Any = None, col: Any = None) -> Any:
    table = _block(block)
    r = integer(row) if row is not None else 0
    c = integer(col) if col is not None else 0
    if col is None and table.nrows == 1 and table.ncols > 1:
        r, c = 1, r
    if r < 0 or c < 0 or r > table.nrows or c > table.ncols:
        fail(XLError("#REF!"))
    if r == 0 and c == 0:
        return table
    if r == 0:
        return Rng([[row_values[c - 1]] for row_values in table.rows])
    if c == 0:
        if table.ncols == 1:
            return table.rows[r - 1][0]
        return Rng([list(table.rows[r - 1])])
    return table.rows[r - 1][c - 1]


def _xmatch_position(key: Any, values: list[Any], mode: int, search: int) -> int | None:
    if mode == 2 or mode == 0:
        if mode == 0 and isinstance(key, str):
            plain = [v for v in values]
            return _exact_position_plain(key, plain, reverse=search < 0)
        return _exact_position(key, values, reverse=search < 0)
    if mode not in (-1, 1):
        fail(VALUE)
    exact = _exact_position_plain(key, values, reverse=search < 0)
    if exact is not None:
        return exact
    best = None
    order = range(len(values) - 1, -1, -1) if search < 0 else range(len(values))
    for i in order:
        value = values[i]
        if value is None or isinstance(value, XLError) or isinstance(value, bool) != isinstance(key, bool):
            continue
        if isinstance(value, str) != isinstance(key, str):
            continue
        if mode == -1 and compare(value, key) < 0 and (best is None or compare(value, values[best]) > 0):
            best = i
        if mode == 1 and compare(value, key) > 0 and (best is None or compare(value, values[best]) < 0):
            best = i
    return best


def _exact_position_plain(key: Any, values: list[Any], reverse: bool = False) -> int | None:
    order = range(len(values) - 1, -1, -1) if reverse else range(len(values))
    for i in order:
        if values[i] is not None and _equal(key, values[i]):
            return i
    return None


@register("XLOOKUP")
def xlookup(key: Any, lookup: Any, result: Any, if_not_found: Any = NA, mode: Any = 0, search: Any = 1) -> Any:
    key = check(scalar(key))
    source, target = _block(lookup), _block(result)
    values = _vector(source)
    position = _xmatch_position(key, values, integer(mode) if mode is not None else 0,
                                integer(search) if search is not None else 1)
    if position is None:
        return NA if if_not_found is None else if_not_found
    if source.ncols == 1 and source.nrows > 1 or (source.nrows == source.ncols == 1):
        if target.nrows != source.nrows:
            fail(VALUE)
        row = target.rows[position]
        return row[0] if len(row) == 1 else Rng([list(row)])
    if target.ncols != source.ncols:
        fail(VALUE)
    column = [r[position] for r in target.rows]
    return column[0] if len(column) == 1 else Rng([[v] for v in column])


@register("XMATCH")
def xmatch(key: Any, lookup: Any, mode: Any = 0, search: Any = 1) -> Any:
    key = check(scalar(key))
    position = _xmatch_position(key, _vector(lookup), integer(mode) if mode is not None else 0,
                                integer(search) if search is not None else 1)
    return NA if position is None else position + 1


@register("ROWS")
def rows(block: Any) -> int:
    return _block(block).nrows


@register("COLUMNS")
def columns(block: Any) -> int:
    return _block(block).ncols


@register("TRANSPOSE")
def transpose(block: Any) -> Rng:
    table = _block(block)
    return Rng([list(col) for col in zip(*table.rows)])


@register("ARRAY")
def array(*rows_: Any) -> Rng:
    out = []
    for row in rows_:
        out.append(list(row.rows[0]) if isinstance(row, Rng) else [row])
    if len({len(r) for r in out}) > 1:
        fail(VALUE)
    return Rng(out)


@register("ARRAYROW")
def arrayrow(*values: Any) -> Rng:
    return Rng([list(values)])


# ---------------------------------------------------------------- finance (Excel signs)


def _when(type_: Any) -> str:
    return "begin" if type_ is not None and num(type_) != 0 else "end"


def _opt(value: Any, default: float = 0.0) -> float:
    return default if value is None else num(value)


# At rate 0 the annuity formulas divide by zero; Excel uses their limits (straight-line payments). numpy-financial
# gets NPER's sign wrong there, so every rate-0 case is computed here. `+ 0.0` turns -0.0 into 0.


@register("PMT")
def pmt(rate: Any, nper: Any, pv: Any, fv: Any = None, type_: Any = None) -> float:
    r, n = num(rate), num(nper)
    if n == 0:
        fail(NUM)
    if r == 0:
        return -(num(pv) + _opt(fv)) / n + 0.0
    if r <= -1:
        fail(NUM)
    # (1+r)^n - 1 through log1p/expm1: numpy-financial's direct power loses ~1e-14, which a 60-period corkscrew
    # grows into a closing balance of 1e-8 where Excel and LibreOffice give 1e-10.
    g, p, f = math.log1p(r), num(pv), _opt(fv)
    if _when(type_) == "begin":  # ((1+r)^n - 1)(1+r) = (1+r)^(n+1) - 1 - r
        return finite(-(f + p * math.exp(n * g)) * r / (math.expm1((n + 1) * g) - r))
    return finite(-(f + p * math.exp(n * g)) * r / math.expm1(n * g))


@register("PV")
def pv(rate: Any, nper: Any, payment: Any, fv: Any = None, type_: Any = None) -> float:
    r = num(rate)
    if r == 0:
        return finite(-(_opt(fv) + num(payment) * num(nper)) + 0.0)
    return finite(npf.pv(r, num(nper), num(payment), _opt(fv), _when(type_)))


@register("FV")
def fv(rate: Any, nper: Any, payment: Any, pv_: Any = None, type_: Any = None) -> float:
    r = num(rate)
    if r == 0:
        return finite(-(_opt(pv_) + num(payment) * num(nper)) + 0.0)
    return finite(npf.fv(r, num(nper), num(payment), _opt(pv_), _when(type_)))


@register("NPER")
def nper(rate: Any, payment: Any, pv_: Any, fv_: Any = None, type_: Any = None) -> float:
    r, p = num(rate), num(payment)
    if r == 0:
        if p == 0:
            fail(NUM)
        return -(num(pv_) + _opt(fv_)) / p + 0.0
    with np.errstate(all="ignore"):
        return finite(npf.nper(r, p, num(pv_), _opt(fv_), _when(type_)))


@register("IPMT")
def ipmt(rate: Any, per: Any, nper_: Any, pv_: Any, fv_: Any = None, type_: Any = None) -> float:
    r, p, n = num(rate), num(per), num(nper_)
    if p < 1 or p > n:
        fail(NUM)
    if r == 0:
        return 0.0  # no interest accrues at rate 0
    with np.errstate(all="ignore"):
        return finite(npf.ipmt(r, p, n, num(pv_), _opt(fv_), _when(type_)))


@register("PPMT")
def ppmt(rate: Any, per: Any, nper_: Any, pv_: Any, fv_: Any = None, type_: Any = None) -> float:
    r, p, n = num(rate), num(per), num(nper_)
    if p < 1 or p > n:
        fail(NUM)
    if r == 0:
        return -(num(pv_) + _opt(fv_)) / n + 0.0  # all of the payment is principal
    with np.errstate(all="ignore"):
        return finite(npf.ppmt(r, p, n, num(pv_), _opt(fv_), _when(type_)))


@register("RATE")
def rate(nper_: Any, payment: Any, pv_: Any, fv_: Any = None, type_: Any = None, guess: Any = None) -> float:
    with np.errstate(all="ignore"):
        result = npf.rate(num(nper_), num(payment), num(pv_), _opt(fv_), _when(type_), _opt(guess, 0.1))
    return finite(result)


@register("NPV")
def npv(rate_: Any, *values: Any) -> float:
    r = num(rate_)
    if r == -1:
        fail(DIV0)
    flows = numbers(values)
    return math.fsum(v / (1 + r) ** (i + 1) for i, v in enumerate(flows))


def _newton(f: Callable[[float], float], df: Callable[[float], float], guess: float) -> float | None:
    x = guess
    for _ in range(100):
        try:
            fx, dfx = f(x), df(x)
        except (OverflowError, ZeroDivisionError):
            return None
        if not (math.isfinite(fx) and math.isfinite(dfx)) or dfx == 0:
            return None
        step = fx / dfx
        x -= step
        if x <= -1:
            x = (x + step - 1) / 2  # stay inside the domain (rate > -100%)
        if abs(step) < 1e-12 * max(1.0, abs(x)):
            return x
    return None


@register("IRR")
def irr(values: Any, guess: Any = None) -> float:
    flows = numbers([values])
    if not any(v > 0 for v in flows) or not any(v < 0 for v in flows):
        fail(NUM)

    def f(r: float) -> float:
        return sum(v / (1 + r) ** i for i, v in enumerate(flows))

    def df(r: float) -> float:
        return sum(-i * v / (1 + r) ** (i + 1) for i, v in enumerate(flows))

    # Newton from Excel's guess picks the root Excel picks when there are several; numpy's polynomial roots are
    # the fallback when Newton wanders off. NaN never escapes: no root is #NUM!.
    root = _newton(f, df, _opt(guess, 0.1))
    if root is None:
        with np.errstate(all="ignore"):
            fallback = float(npf.irr(flows))
        if not math.isfinite(fallback):
            fail(NUM)
        root = fallback
    return finite(root)


def _dates(values: Any) -> list[float]:
    out = []
    for value, _ in iter_args([values]):
        out.append(math.floor(num(check(value))))
    return out


@register("XNPV")
def xnpv(rate_: Any, values: Any, dates: Any) -> float:
    r = num(rate_)
    flows, days = [num(check(v)) for v, _ in iter_args([values])], _dates(dates)
    if len(flows) != len(days) or not flows:
        fail(NUM)
    if r <= -1:
        fail(NUM)
    return math.fsum(v / (1 + r) ** ((d - days[0]) / 365) for v, d in zip(flows, days))


@register("XIRR")
def xirr(values: Any, dates: Any, guess: Any = None) -> float:
    flows, days = [num(check(v)) for v, _ in iter_args([values])], _dates(dates)
    if len(flows) != len(days) or not any(v > 0 for v in flows) or not any(v < 0 for v in flows):
        fail(NUM)
    years = [(d - days[0]) / 365 for d in days]

    def f(r: float) -> float:
        return sum(v / (1 + r) ** t for v, t in zip(flows, years))

    def df(r: float) -> float:
        return sum(-t * v / (1 + r) ** (t + 1) for v, t in zip(flows, years))

    root = _newton(f, df, _opt(guess, 0.1))
    if root is None:
        low, high = -0.999999, 100.0
        try:
            f_low, f_high = f(low), f(high)
        except (OverflowError, ZeroDivisionError):
            fail(NUM)
        if f_low * f_high > 0:
            fail(NUM)
        for _ in range(300):
            mid = (low + high) / 2
            if f(mid) * f_low > 0:
                low, f_low = mid, f(mid)
            else:
                high = mid
        root = (low + high) / 2
    return finite(root)


@register("MIRR")
def mirr(values: Any, finance_rate: Any, reinvest_rate: Any) -> float:
    flows = numbers([values])
    if not any(v > 0 for v in flows) or not any(v < 0 for v in flows):
        fail(DIV0)
    with np.errstate(all="ignore"):
        return finite(npf.mirr(flows, num(finance_rate), num(reinvest_rate)))


@register("EFFECT")
def effect(nominal: Any, npery: Any) -> float:
    r, p = num(nominal), integer(npery)
    if r <= 0 or p < 1:
        fail(NUM)
    return (1 + r / p) ** p - 1


@register("NOMINAL")
def nominal(effect_rate: Any, npery: Any) -> float:
    r, p = num(effect_rate), integer(npery)
    if r <= 0 or p < 1:
        fail(NUM)
    return p * ((1 + r) ** (1 / p) - 1)


@register("RRI")
def rri(periods: Any, present: Any, future: Any) -> float:
    n, p, f = num(periods), num(present), num(future)
    if n <= 0 or p == 0:
        fail(NUM)
    return finite((f / p) ** (1 / n) - 1)


def _cumulative(part: Callable[..., Any], rate_: Any, nper_: Any, pv_: Any, start: Any, end: Any, type_: Any) -> float:
    r, n, present = num(rate_), num(nper_), num(pv_)
    first, last, kind = integer(start), integer(end), integer(type_)
    if r <= 0 or n <= 0 or present <= 0 or first < 1 or last < first or last > n or kind not in (0, 1):
        fail(NUM)
    when = "begin" if kind else "end"
    with np.errstate(all="ignore"):
        return finite(math.fsum(float(part(r, p, n, present, 0, when)) for p in range(first, last + 1)))


@register("CUMIPMT")
def cumipmt(rate_: Any, nper_: Any, pv_: Any, start: Any, end: Any, type_: Any) -> float:
    return _cumulative(npf.ipmt, rate_, nper_, pv_, start, end, type_)


@register("CUMPRINC")
def cumprinc(rate_: Any, nper_: Any, pv_: Any, start: Any, end: Any, type_: Any) -> float:
    return _cumulative(npf.ppmt, rate_, nper_, pv_, start, end, type_)


@register("SLN")
def sln(cost: Any, salvage: Any, life: Any) -> float:
    life_ = num(life)
    if life_ == 0:
        fail(DIV0)
    return (num(cost) - num(salvage)) / life_


@register("SYD")
def syd(cost: Any, salvage: Any, life: Any, per: Any) -> float:
    c, s, n, p = num(cost), num(salvage), num(life), num(per)
    if n <= 0 or p <= 0 or p > n or s < 0:
        fail(NUM)
    return (c - s) * (n - p + 1) * 2 / (n * (n + 1))


@register("DDB")
def ddb(cost: Any, salvage: Any, life: Any, period: Any, factor: Any = None) -> float:
    c, s, n, p, f = num(cost), num(salvage), num(life), num(period), _opt(factor, 2.0)
    if c < 0 or s < 0 or n <= 0 or p <= 0 or p > n or f <= 0:
        fail(NUM)
    # Declining balance without a switch to straight line (VDB switches), never below salvage.
    taken = 0.0
    charge = 0.0
    for _ in range(math.ceil(p)):
        charge = max(0.0, min((c - taken) * f / n, c - s - taken))
        taken += charge
    return charge


@register("DB")
def db(cost: Any, salvage: Any, life: Any, period: Any, month: Any = None) -> float:
    c, s, n, p = num(cost), num(salvage), num(life), integer(period)
    m = integer(month) if month is not None else 12
    if c < 0 or s < 0 or n <= 0 or p <= 0 or m < 1 or m > 12 or p > n + (1 if m < 12 else 0):
        fail(NUM)
    if c == 0:
        return 0.0
    rate_ = round(1 - (s / c) ** (1 / n), 3)
    taken = c * rate_ * m / 12
    charge = taken
    for period_ in range(2, p + 1):
        if period_ == n + 1:
            charge = (c - taken) * rate_ * (12 - m) / 12
        else:
            charge = (c - taken) * rate_
        taken += charge
    return charge


@register("VDB")
def vdb(cost: Any, salvage: Any, life: Any, start: Any, end: Any, factor: Any = None, no_switch: Any = None) -> float:
    c, s, n = num(cost), num(salvage), num(life)
    a, b, f = num(start), num(end), _opt(factor, 2.0)
    switch_off = boolean(no_switch) if no_switch is not None else False
    if c < 0 or s < 0 or n <= 0 or a < 0 or b < a or b > n or f <= 0:
        fail(NUM)
    # Charges per whole period with Excel's switch to straight line once it gives more; fractional start and end
    # take the same share of their period's charge.
    charges = []
    taken = 0.0
    for _ in range(math.ceil(n)):
        declining = (c - taken) * f / n
        remaining = n - len(charges)
        straight = (c - s - taken) / remaining if remaining > 0 else 0.0
        charge = declining if switch_off or declining >= straight else straight
        charge = max(0.0, min(charge, c - s - taken))
        charges.append(charge)
        taken += charge
    total = 0.0
    for i, charge in enumerate(charges):
        overlap = max(0.0, min(b, i + 1) - max(a, i))
        total += charge * overlap
    return total


# ---------------------------------------------------------------- dates (serial numbers)


def _serial(value: Any) -> float:
    value = check(scalar(value))
    if isinstance(value, str):
        parsed = _parse_date_text(value)
        if parsed is None:
            fail(VALUE)
        return parsed  # type: ignore[return-value]
    return num(value)


def _parse_date_text(value: str) -> float | None:
    for fmt in ("%Y-%m-%d", "%m/%d/%Y", "%d-%b-%Y", "%d %B %Y", "%Y/%m/%d"):
        try:
            return to_serial(dt.datetime.strptime(value.strip(), fmt))
        except ValueError:
            continue
    return text_to_number(value)


def _date_serial(year: int, month: int, day: int) -> int:
    if 0 <= year < 1900:
        year += 1900
    year += (month - 1) // 12
    month = (month - 1) % 12 + 1
    if year < 1900 or year > 9999:
        fail(NUM)
    base = dt.date(year, month, 1)
    return to_serial(base) + day - 1  # type: ignore[return-value]


@register("DATE")
def date(year: Any, month: Any, day: Any) -> int:
    return _date_serial(integer(year), integer(month), integer(day))


@register("YEAR")
def year(value: Any) -> int:
    return from_serial(_serial(value)).year


@register("MONTH")
def month(value: Any) -> int:
    return from_serial(_serial(value)).month


@register("DAY")
def day(value: Any) -> int:
    return from_serial(_serial(value)).day


@register("EDATE")
def edate(start: Any, months: Any) -> int:
    d = from_serial(_serial(start))
    total = d.month - 1 + integer(months)
    y, m = d.year + total // 12, total % 12 + 1
    last = calendar.monthrange(y, m)[1]
    return to_serial(dt.date(y, m, min(d.day, last)))  # type: ignore[return-value]


@register("EOMONTH")
def eomonth(start: Any, months: Any) -> int:
    d = from_serial(_serial(start))
    total = d.month - 1 + integer(months)
    y, m = d.year + total // 12, total % 12 + 1
    if y < 1900:
        fail(NUM)
    return to_serial(dt.date(y, m, calendar.monthrange(y, m)[1]))  # type: ignore[return-value]


@register("DAYS")
def days(end: Any, start: Any) -> int:
    return math.floor(_serial(end)) - math.floor(_serial(start))


@register("WEEKDAY")
def weekday(value: Any, kind: Any = 1) -> int:
    d = from_serial(_serial(value))
    k = integer(kind) if kind is not None else 1
    iso = d.isoweekday()  # Monday 1 .. Sunday 7
    if k == 1:
        return iso % 7 + 1
    if k == 2:
        return iso
    if k == 3:
        return iso - 1
    fail(NUM)
    return 0


@register("TODAY")
def today() -> int:
    return to_serial(dt.date.today())  # type: ignore[return-value]


@register("NOW")
def now() -> float:
    return float(to_serial(dt.datetime.now()))


def _days360(a: dt.date, b: dt.date, european: bool) -> int:
    d1, d2 = a.day, b.day
    if european:
        d1, d2 = min(d1, 30), min(d2, 30)
    else:
        last_feb = a.month == 2 and d1 == calendar.monthrange(a.year, 2)[1]
        if last_feb and b.month == 2 and d2 == calendar.monthrange(b.year, 2)[1]:
            d2 = 30
        if last_feb:
            d1 = 30
        if d2 == 31 and d1 >= 30:
            d2 = 30
        if d1 == 31:
            d1 = 30
    return (b.year - a.year) * 360 + (b.month - a.month) * 30 + (d2 - d1)


@register("DAYS360")
def days360(start: Any, end: Any, method: Any = False) -> int:
    a, b = from_serial(_serial(start)), from_serial(_serial(end))
    return _days360(a, b, boolean(method) if method is not None else False)


@register("YEARFRAC")
def yearfrac(start: Any, end: Any, basis: Any = 0) -> float:
    s, e = _serial(start), _serial(end)
    if s > e:
        s, e = e, s
    a, b = from_serial(s), from_serial(e)
    kind = integer(basis) if basis is not None else 0
    if kind == 0:
        return _days360(a, b, european=False) / 360
    if kind == 4:
        return _days360(a, b, european=True) / 360
    span = math.floor(e) - math.floor(s)
    if kind == 2:
        return span / 360
    if kind == 3:
        return span / 365
    if kind == 1:
        if a.year == b.year or (b.year == a.year + 1 and (b.month, b.day) <= (a.month, a.day)):
            leap = calendar.isleap(a.year) if a.year == b.year else (
                (calendar.isleap(a.year) and (a.month, a.day) <= (2, 29))
                or (calendar.isleap(b.year) and (b.month, b.day) >= (2, 29)))
            return span / (366 if leap else 365)
        years = range(a.year, b.year + 1)
        average_len = sum(366 if calendar.isleap(y) else 365 for y in years) / len(years)
        return span / average_len
    fail(NUM)
    return 0.0


# ---------------------------------------------------------------- text


@register("CONCATENATE")
def concatenate(*values: Any) -> str:
    return "".join(text(v) for v in values)


@register("CONCAT")
def concat(*values: Any) -> str:
    return "".join(text(v) for v, _ in iter_args(values))


@register("TEXTJOIN")
def textjoin(delimiter: Any, ignore_empty: Any, *values: Any) -> str:
    skip = boolean(ignore_empty)
    parts = [text(v) for v, _ in iter_args(values)]
    return text(delimiter).join(p for p in parts if not (skip and p == ""))


@register("LEN")
def len_(value: Any) -> int:
    return len(text(value))


@register("LEFT")
def left(value: Any, count_: Any = 1) -> str:
    n = integer(count_)
    if n < 0:
        fail(VALUE)
    return text(value)[:n]


@register("RIGHT")
def right(value: Any, count_: Any = 1) -> str:
    n = integer(count_)
    if n < 0:
        fail(VALUE)
    return text(value)[-n:] if n else ""


@register("MID")
def mid(value: Any, start: Any, count_: Any) -> str:
    s, n = integer(start), integer(count_)
    if s < 1 or n < 0:
        fail(VALUE)
    return text(value)[s - 1 : s - 1 + n]


@register("UPPER")
def upper(value: Any) -> str:
    return text(value).upper()


@register("LOWER")
def lower(value: Any) -> str:
    return text(value).lower()


@register("TRIM")
def trim(value: Any) -> str:
    return re.sub(" +", " ", text(value).strip(" "))


@register("VALUE")
def value_(value: Any) -> float:
    value = check(scalar(value))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    parsed = text_to_number(text(value))
    if parsed is None:
        fail(VALUE)
    return parsed  # type: ignore[return-value]


_DATE_CODES = re.compile(r"yyyy|yy|mmmm|mmm|mm|m|dddd|ddd|dd|d", re.I)


@register("TEXT")
def text_(value: Any, fmt: Any) -> str:
    """Excel's TEXT for common number formats ('0.0', '#,##0', '0%', '$#,##0.00', '0.0x') and dates
    ('yyyy', 'mmm-yy', 'dd/mm/yyyy'); text passes through."""
    value, pattern = check(scalar(value)), text(fmt)
    if isinstance(value, str):
        number = text_to_number(value)
        if number is None:
            return value
        value = number
    x = num(value)
    sections = pattern.split(";")
    if len(sections) > 1 and x < 0:
        pattern, x = sections[1], abs(x)
    elif len(sections) > 2 and x == 0:
        pattern = sections[2]
    else:
        pattern = sections[0]
    if re.search(r"[yd]|m{3,}", pattern, re.I) or re.fullmatch(r"m{1,2}", pattern, re.I):
        return _format_date(x, pattern)
    return _format_number(x, pattern)


def _format_date(serial: float, pattern: str) -> str:
    d = from_serial(serial)

    def code(match: re.Match[str]) -> str:
        token = match.group(0).lower()
        return {
            "yyyy": f"{d.year:04d}", "yy": f"{d.year % 100:02d}", "mmmm": d.strftime("%B"), "mmm": d.strftime("%b"),
            "mm": f"{d.month:02d}", "m": str(d.month), "dddd": d.strftime("%A"), "ddd": d.strftime("%a"),
            "dd": f"{d.day:02d}", "d": str(d.day),
        }[token]

    return _DATE_CODES.sub(code, pattern)


def _format_number(x: float, pattern: str) -> str:
    literal = re.sub(r'"([^"]*)"', r"\1", pattern)
    match = re.search(r"[#0,]*[0#](\.[0#]+)?", literal)
    if not match:
        return literal
    core = match.group(0)
    percent = "%" in literal
    if percent:
        x *= 100
    scale = len(re.search(r",*$", core).group(0))  # type: ignore[union-attr]
    if scale:
        core = core[: len(core) - scale]
        x /= 1000**scale
    decimals = len(match.group(1)) - 1 if match.group(1) else 0
    grouped = "," in core
    rounded = _round(x, decimals, "HALF")
    body = f"{abs(rounded):,.{decimals}f}" if grouped else f"{abs(rounded):.{decimals}f}"
    if rounded < 0:
        body = "-" + body
    return literal[: match.start()] + body + literal[match.end() :]


@register("EXACT")
def exact(a: Any, b: Any) -> bool:
    return text(a) == text(b)


@register("FIND")
def find(needle: Any, haystack: Any, start: Any = 1) -> int:
    s = integer(start)
    position = text(haystack).find(text(needle), s - 1)
    if s < 1 or position < 0:
        fail(VALUE)
    return position + 1


@register("SEARCH")
def search(needle: Any, haystack: Any, start: Any = 1) -> int:
    s = integer(start)
    pattern = wildcard(text(needle)).pattern[1:-1]
    found = re.compile(pattern, re.I | re.S).search(text(haystack), s - 1) if s >= 1 else None
    if found is None:
        fail(VALUE)
    return found.start() + 1  # type: ignore[union-attr]


@register("SUBSTITUTE")
def substitute(value: Any, old: Any, new: Any, instance: Any = None) -> str:
    source, a, b = text(value), text(old), text(new)
    if not a:
        return source
    if instance is None:
        return source.replace(a, b)
    nth = integer(instance)
    if nth < 1:
        fail(VALUE)
    position = -1
    for _ in range(nth):
        position = source.find(a, position + 1)
        if position < 0:
            return source
    return source[:position] + b + source[position + len(a) :]


def excel_name(name: str) -> str:
    """The table key of a function name as written: upper case, without `_xlfn.`/`_xlws.` prefixes."""
    upper = name.upper()
    for prefix in ("_XLFN._XLWS.", "_XLFN.", "_XLWS."):
        if upper.startswith(prefix):
            upper = upper[len(prefix) :]
    return upper


__all__ = ["FUNCTIONS", "LAZY", "ErrorRaised", "excel_name", "register"]
