"""Number-format parsing: what a cell's `number_format` shows (percent, separators, parentheses, precision).

A format has up to four sections (positive;negative;zero;text). Literal text ("m", \\x), padding (_x, *x) and
bracketed colours or conditions are removed before testing for ',' and '%'; `[$$-409]` and `[$€-x]` mark currency.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

_CURRENCY_CHARS = "$€£¥₹"


def split_sections(fmt: str) -> list[str]:
    """The sections of a format, split on ';' outside quotes and brackets."""
    sections, buf, quoted, bracket, i = [], [], False, False, 0
    while i < len(fmt):
        ch = fmt[i]
        if ch == "\\" and not quoted and i + 1 < len(fmt):
            buf.append(fmt[i:i + 2])
            i += 2
            continue
        if ch == '"':
            quoted = not quoted
        elif ch == "[" and not quoted:
            bracket = True
        elif ch == "]" and not quoted:
            bracket = False
        if ch == ";" and not quoted and not bracket:
            sections.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
        i += 1
    sections.append("".join(buf))
    return sections


def strip_literals(section: str) -> tuple[str, bool]:
    """(the section without quoted text, escapes, padding and brackets; whether a currency mark was seen)."""
    currency = False
    out, i, n = [], 0, len(section)
    while i < n:
        ch = section[i]
        if ch == '"':
            j = section.find('"', i + 1)
            j = n if j < 0 else j
            currency |= any(c in section[i + 1:j] for c in _CURRENCY_CHARS)
            i = j + 1
        elif ch == "\\":
            currency |= i + 1 < n and section[i + 1] in _CURRENCY_CHARS
            i += 2
        elif ch in "_*":
            i += 2
        elif ch == "[":
            j = section.find("]", i)
            j = n if j < 0 else j
            inner = section[i + 1:j]
            currency |= inner.startswith("$") and len(inner) > 1 and inner[1] != "-" or inner.startswith("$$")
            i = j + 1
        else:
            if ch in _CURRENCY_CHARS:
                currency = True
            out.append(ch)
            i += 1
    return "".join(out), currency


@dataclass(frozen=True)
class NumberFormat:
    text: str
    general: bool
    percent: bool
    thousands: bool  # a thousands separator or a thousands scaling (#,##0 or 0.0,,)
    decimals: int
    currency: bool
    date: bool
    negative_parentheses: bool
    negative_section: bool


@lru_cache(maxsize=4096)
def parse(fmt: str | None) -> NumberFormat:
    """What `fmt` shows; None and 'General' are general."""
    text = fmt or "General"
    if text.strip().lower() == "general":
        return NumberFormat(text, True, False, False, -1, False, False, False, False)
    sections = split_sections(text)
    cleaned = [strip_literals(s) for s in sections]
    pos, currency = cleaned[0]
    currency = currency or any(c for _, c in cleaned[1:2])
    low = pos.lower()
    date = bool(re.search(r"[dmyhs]", low)) and not re.search(r"[0#?]", low.replace("e+", ""))
    percent = "%" in pos
    thousands = bool(re.search(r"[0#?],[0#?]", pos)) or bool(re.search(r"[0#?.],+(?![0#?])", pos))
    m = re.search(r"\.([0#?]+)", pos)
    decimals = len(m.group(1)) if m else 0
    neg = cleaned[1][0] if len(cleaned) > 1 else ""
    negative_parentheses = ("(" in neg and ")" in neg) or (len(cleaned) > 1 and "(" in sections[1])
    return NumberFormat(text, False, percent, thousands, decimals, currency, date, negative_parentheses,
                        len(cleaned) > 1)
