"""The embedded engine's run-time values: Excel errors, 2-D arrays (evaluated ranges) and Excel's coercion rules.

Values inside the engine are plain Python (`float`, `int`, `str`, `bool`, `None` for blank), `XLError` for an error
and `Rng` for an evaluated range or array constant. Functions signal an error by raising `ErrorRaised`; the caller
turns it into the error value, so an error deep in a chain stays one short code instead of a growing message.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from .values import ERROR_CODES


class XLError:
    """An Excel error value such as #DIV/0!; one shared instance per code (compare with `is` or `==`)."""

    __slots__ = ("code",)
    _cache: dict[str, XLError] = {}

    def __new__(cls, code: str) -> XLError:
        found = cls._cache.get(code)
        if found is None:
            found = super().__new__(cls)
            found.code = code
            cls._cache[code] = found
        return found

    def __repr__(self) -> str:
        return f"XLError({self.code!r})"


DIV0 = XLError("#DIV/0!")
VALUE = XLError("#VALUE!")
NA = XLError("#N/A")
NUM = XLError("#NUM!")
REF = XLError("#REF!")
NAME = XLError("#NAME?")
NULL = XLError("#NULL!")


class ErrorRaised(Exception):
    """Raised inside functions and operators to return an Excel error value from the current call."""

    def __init__(self, error: XLError) -> None:
        super().__init__(error.code)
        self.error = error


class Unsupported(Exception):
    """A construct the embedded engine cannot evaluate faithfully (OFFSET, INDIRECT, array formulas, ...)."""


class Rng:
    """A rectangular block of values: an evaluated range (`top`/`left` set) or an array result/constant."""

    __slots__ = ("rows", "top", "left")

    def __init__(self, rows: list[list[Any]], top: int = 0, left: int = 0) -> None:
        self.rows = rows
        self.top = top
        self.left = left

    @property
    def nrows(self) -> int:
        return len(self.rows)

    @property
    def ncols(self) -> int:
        return len(self.rows[0]) if self.rows else 0

    def flat(self) -> Iterator[Any]:
        for row in self.rows:
            yield from row

    def column(self, index: int) -> list[Any]:
        return [row[index] for row in self.rows]

    def vector(self) -> list[Any]:
        """The values of a single row or column (row-major for a block)."""
        if self.nrows == 1:
            return list(self.rows[0])
        return list(self.flat())

    def __repr__(self) -> str:
        return f"Rng({self.rows!r})"


def fail(error: XLError) -> None:
    raise ErrorRaised(error)


EXCEL_EPOCH = dt.datetime(1899, 12, 30)


def to_serial(value: dt.datetime | dt.date | dt.time) -> float | int:
    """Excel's serial number of a date (days since 1899-12-30; the fraction is the time of day)."""
    if isinstance(value, dt.datetime):
        delta = value - EXCEL_EPOCH
        serial = delta.days + delta.seconds / 86400 + delta.microseconds / 86400e6
        return int(serial) if serial == int(serial) else serial
    if isinstance(value, dt.date):
        return (value - EXCEL_EPOCH.date()).days
    if isinstance(value, dt.time):
        return (value.hour * 3600 + value.minute * 60 + value.second + value.microsecond / 1e6) / 86400
    raise TypeError(value)


def from_serial(serial: float) -> dt.date:
    """The date of an Excel serial number (whole days)."""
    if serial < 0 or serial > 2958465:
        fail(NUM)
    return EXCEL_EPOCH.date() + dt.timedelta(days=int(serial))


_NUMERIC_TEXT = re.compile(r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*%?\s*$")


def text_to_number(text: str) -> float | None:
    """The number a text holds as Excel reads it in arithmetic ('12', ' 1.5e3 ', '5%'), else None."""
    if not _NUMERIC_TEXT.match(text):
        return None
    stripped = text.strip()
    if stripped.endswith("%"):
        return float(stripped[:-1]) / 100
    return float(stripped)


def scalar(value: Any) -> Any:
    """A single value from a 1x1 array; a larger array cannot be used where one value is needed."""
    if isinstance(value, Rng):
        if value.nrows == 1 and value.ncols == 1:
            return value.rows[0][0]
        fail(VALUE)
    return value


def num(value: Any) -> float | int:
    """A number as arithmetic sees it: blank is 0, TRUE is 1, numeric text converts, other text is #VALUE!."""
    if type(value) is float or type(value) is int:
        return value
    if value is None:
        return 0
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, XLError):
        raise ErrorRaised(value)
    if isinstance(value, str):
        parsed = text_to_number(value)
        if parsed is None:
            fail(VALUE)
        return parsed  # type: ignore[return-value]
    if isinstance(value, Rng):
        return num(scalar(value))
    if isinstance(value, (int, float)):
        return float(value)
    fail(VALUE)
    return 0


def integer(value: Any) -> int:
    """An integer argument: Excel truncates toward zero."""
    return int(num(value))


def check(value: Any) -> Any:
    """Raise when the value is an error; return it otherwise."""
    if isinstance(value, XLError):
        raise ErrorRaised(value)
    return value


def general(value: float | int) -> str:
    """A number as Excel's General format shows it in text (at most 15 significant digits)."""
    if isinstance(value, float):
        if value == int(value) and abs(value) < 1e15:
            return str(int(value))
        text = f"{value:.15g}"
        if "e" in text:
            mantissa, _, exponent = text.partition("e")
            return f"{mantissa}E{'+' if not exponent.startswith('-') else '-'}{exponent.lstrip('+-').zfill(2)}"
        return text
    return str(value)


def text(value: Any) -> str:
    """A value as text for `&` and text functions."""
    value = scalar(value)
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, XLError):
        raise ErrorRaised(value)
    return general(value)


def boolean(value: Any) -> bool:
    """A logical argument: numbers are TRUE unless 0; 'TRUE'/'FALSE' text converts; other text is #VALUE!."""
    value = scalar(value)
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    if isinstance(value, (int, float)):
        return value != 0
    if isinstance(value, XLError):
        raise ErrorRaised(value)
    if isinstance(value, str):
        upper = value.strip().upper()
        if upper in ("TRUE", "FALSE"):
            return upper == "TRUE"
    fail(VALUE)
    return False


def iter_args(args: Iterable[Any]) -> Iterator[tuple[Any, bool]]:
    """Each value of the arguments with whether it came from a range (ranges hide text and logicals)."""
    for arg in args:
        if isinstance(arg, Rng):
            for value in arg.flat():
                yield value, True
        else:
            yield arg, False


def numbers(args: Iterable[Any]) -> list[float | int]:
    """The numbers SUM-like functions use: numbers in ranges (blank, text, logicals skipped), and direct arguments
    coerced (TRUE is 1, numeric text converts); any error raises."""
    out: list[float | int] = []
    for value, in_range in iter_args(args):
        kind = type(value)
        if kind is float or kind is int:
            out.append(value)
        elif isinstance(value, XLError):
            raise ErrorRaised(value)
        elif in_range or value is None:
            continue
        else:
            out.append(num(value))
    return out


def _type_rank(value: Any) -> int:
    if isinstance(value, bool):
        return 2
    if isinstance(value, str):
        return 1
    return 0


def compare(left: Any, right: Any) -> int:
    """Excel's ordering: numbers < text < logicals; text case-insensitive; blank is 0, "" or FALSE by the other side."""
    if left is None:
        left = "" if isinstance(right, str) else False if isinstance(right, bool) else 0
    if right is None:
        right = "" if isinstance(left, str) else False if isinstance(left, bool) else 0
    rank_left, rank_right = _type_rank(left), _type_rank(right)
    if rank_left != rank_right:
        return -1 if rank_left < rank_right else 1
    if rank_left == 1:
        left, right = left.lower(), right.lower()
    if left < right:
        return -1
    return 1 if left > right else 0


def _binary(fn: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """Lift a scalar operator to arrays (element-wise, broadcasting single rows and columns)."""

    def apply(left: Any, right: Any) -> Any:
        if isinstance(left, Rng) or isinstance(right, Rng):
            return _broadcast(fn, left, right)
        return _guarded(fn, left, right)

    return apply


def _guarded(fn: Callable[[Any, Any], Any], left: Any, right: Any) -> Any:
    try:
        return fn(left, right)
    except ErrorRaised as raised:
        return raised.error


def _broadcast(fn: Callable[[Any, Any], Any], left: Any, right: Any) -> Rng:
    lrows = left.rows if isinstance(left, Rng) else [[left]]
    rrows = right.rows if isinstance(right, Rng) else [[right]]
    nrows = max(len(lrows), len(rrows))
    ncols = max(len(lrows[0]) if lrows else 0, len(rrows[0]) if rrows else 0)

    def pick(rows: list[list[Any]], i: int, j: int) -> Any:
        if len(rows) == 1:
            i = 0
        if len(rows[0]) == 1:
            j = 0
        if i >= len(rows) or j >= len(rows[0]):
            return NA
        return rows[i][j]

    return Rng([[_guarded(fn, pick(lrows, i, j), pick(rrows, i, j)) for j in range(ncols)] for i in range(nrows)])


def _add(a: Any, b: Any) -> Any:
    return num(a) + num(b)


def _sub(a: Any, b: Any) -> Any:
    return num(a) - num(b)


def _mul(a: Any, b: Any) -> Any:
    return num(a) * num(b)


def _div(a: Any, b: Any) -> Any:
    x, y = num(a), num(b)
    if y == 0:
        fail(DIV0)
    return x / y


def _pow(a: Any, b: Any) -> Any:
    x, y = num(a), num(b)
    if x == 0 and y == 0:
        fail(NUM)
    if x == 0 and y < 0:
        fail(DIV0)
    try:
        result = x**y
    except (OverflowError, ZeroDivisionError):
        fail(NUM)
    if isinstance(result, complex) or (isinstance(result, float) and not math.isfinite(result)):
        fail(NUM)
    return result


def _concat(a: Any, b: Any) -> Any:
    return text(a) + text(b)


def _comparison(test: Callable[[int], bool]) -> Callable[[Any, Any], Any]:
    def op(a: Any, b: Any) -> bool:
        check(a)
        check(b)
        return test(compare(a, b))

    return op


INFIX: dict[str, Callable[[Any, Any], Any]] = {
    "+": _binary(_add),
    "-": _binary(_sub),
    "*": _binary(_mul),
    "/": _binary(_div),
    "^": _binary(_pow),
    "&": _binary(_concat),
    "=": _binary(_comparison(lambda c: c == 0)),
    "<>": _binary(_comparison(lambda c: c != 0)),
    "<": _binary(_comparison(lambda c: c < 0)),
    ">": _binary(_comparison(lambda c: c > 0)),
    "<=": _binary(_comparison(lambda c: c <= 0)),
    ">=": _binary(_comparison(lambda c: c >= 0)),
}


def _unary(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def apply(value: Any) -> Any:
        if isinstance(value, Rng):
            return Rng([[_guarded(lambda v, _: fn(v), v, None) for v in row] for row in value.rows])
        return _guarded(lambda v, _: fn(v), value, None)

    return apply


NEGATE = _unary(lambda v: -num(v))
PERCENT = _unary(lambda v: num(v) / 100)


def finite(value: float) -> float:
    """A float result, or #NUM! for NaN and infinities (never let NaN leak out as a value)."""
    value = float(value)
    if not math.isfinite(value):
        fail(NUM)
    return value


def is_known_error_code(text_value: str) -> bool:
    return text_value in ERROR_CODES
