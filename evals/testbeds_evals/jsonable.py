"""Conversion of Python, numpy and pydantic values to plain JSON values.

Suites compute metrics with numpy and tools return pydantic models; both must be turned into
plain JSON before they reach SQLite or a JSONL file, or `json.dumps` fails far from the cause.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import math
import pathlib
import sys
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel


def to_jsonable(value: Any) -> Any:
    """Return `value` as nested dicts, lists, str, int, float, bool and None.

    numpy scalars become Python numbers, arrays become lists, pydantic models and dataclasses
    become dicts, sets and tuples become lists, paths and dates become strings. Non-finite floats
    (NaN, infinities) become None: strict JSON and SQLite's JSON functions reject them, and a
    metric that could not be computed is best read as missing. Anything else raises TypeError.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)  # flattens IntEnum and bool-like subclasses to a plain int
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    # A numpy value can only exist once numpy is imported, so there is no need to import it here.
    np = sys.modules.get("numpy")
    if np is not None:
        if isinstance(value, np.ndarray):
            return [to_jsonable(v) for v in value.tolist()]
        if isinstance(value, np.generic):
            return to_jsonable(value.item())
    if isinstance(value, BaseModel):
        return to_jsonable(value.model_dump(mode="python"))
    if isinstance(value, Mapping):
        return {_key(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return [to_jsonable(v) for v in items]
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(dataclasses.asdict(value))
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, pathlib.PurePath):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    raise TypeError(
        f"cannot convert {type(value).__name__} to JSON; convert it to a dict, list or number first"
    )


def _key(key: Any) -> str:
    if isinstance(key, str):
        return key
    converted = to_jsonable(key)
    return converted if isinstance(converted, str) else json.dumps(converted)


def dumps(value: Any) -> str:
    """Serialise `value` (after `to_jsonable`) as compact JSON text, keeping non-ASCII characters."""
    return json.dumps(to_jsonable(value), ensure_ascii=False, separators=(",", ":"), allow_nan=False)
