"""Converting numpy, pydantic and other Python values to plain JSON."""

from __future__ import annotations

import datetime as dt
import enum
import json
from pathlib import Path

import numpy as np
import pytest
from pydantic import BaseModel
from testbeds_evals.jsonable import dumps, to_jsonable


class Colour(enum.Enum):
    RED = "red"


class Point(BaseModel):
    x: int
    y: float


def test_numpy_scalars_become_python_numbers() -> None:
    converted = to_jsonable({"i": np.int64(3), "f": np.float32(0.5), "b": np.bool_(False)})
    assert converted == {"i": 3, "f": 0.5, "b": False}
    assert [type(v) for v in converted.values()] == [int, float, bool]


def test_numpy_arrays_become_nested_lists() -> None:
    assert to_jsonable(np.arange(4).reshape(2, 2)) == [[0, 1], [2, 3]]


def test_non_finite_floats_become_null_so_the_json_stays_strict() -> None:
    assert to_jsonable([float("nan"), np.inf, -np.inf, 1.0]) == [None, None, None, 1.0]
    assert json.loads(dumps({"x": float("nan")})) == {"x": None}


def test_models_enums_paths_dates_and_tuples_convert() -> None:
    value = {
        "p": Point(x=1, y=np.float64(2.5)),
        "c": Colour.RED,
        "path": Path("/tmp/a"),
        "d": dt.date(2025, 1, 2),
        "t": (1, 2),
        3: "int key",
    }
    assert to_jsonable(value) == {
        "p": {"x": 1, "y": 2.5},
        "c": "red",
        "path": "/tmp/a",
        "d": "2025-01-02",
        "t": [1, 2],
        "3": "int key",
    }


def test_an_unconvertible_object_raises_a_type_error_naming_its_type() -> None:
    with pytest.raises(TypeError, match="object"):
        to_jsonable({"x": object()})


def test_dumps_keeps_non_ascii_text() -> None:
    assert dumps({"name": "Zürich"}) == '{"name":"Zürich"}'
