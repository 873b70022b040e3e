"""A user's own table of pre-training runs as a backend (name "table"): replay a sweep by lookup.

The table (CSV; Parquet when pyarrow is installed) has one row per logged checkpoint with columns
- the five proportions, named by `TRAIN_DOMAINS` (wikipedia, stackexchange, github, arxiv, book), each
  row summing to 1 within 1e-3 (rounded logs are fine; rows are renormalised),
- `size_m` (model size in millions of parameters, an integer) and `steps` (a positive integer),
- any subset of `METRICS` (loss_* and acc_*); empty or NaN cells mean "not logged". Columns that look like
  metrics (loss_*/acc_*) but are not in `METRICS` are rejected as likely typos; other columns are ignored.

Rows with the same size and mixture form one run (its checkpoints); duplicate (size, mixture, steps) rows
(seed replicates) are averaged.

Lookup rule (`lookup`, `observe`, `true_values`):
1. the size must be one the table holds (an error lists them);
2. the run at that size whose mixture is nearest in Euclidean distance on the proportions (ties: first in
   the file); the distance is reported by `lookup`;
3. within that run, the largest logged step <= the requested step; if the request precedes every logged
   step, the run's earliest step (the nearest). Requests beyond the last step logged at that size are
   rejected by `validate`, since replaying a shorter run as a longer one would fake a target run.
For a single metric (`true_values`, `optimum`), only runs and checkpoints where that metric is logged count.

The values are real observations already, so `observe` adds no noise (seed and run_id are ignored) and
returns the same numbers as `true_values`. `optimum` is the best logged run at that size and step (under the
same step rule). `cost` is the nominal cost model of `testbeds_mixopt.cost.run_cost` (6ND with the paper's
token layout, in full-1B-run units), since a user's table carries no FLOP counts.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field
from testbeds_serving.errors import InvalidArgument, NotFound

from ..cost import run_cost
from ..domains import METRICS, N_DOMAINS, TRAIN_DOMAINS, default_direction
from ..models import check_mixture

TABLE_SUM_TOLERANCE = 1e-3
SIZE_COLUMN, STEPS_COLUMN = "size_m", "steps"
REQUIRED_COLUMNS: tuple[str, ...] = TRAIN_DOMAINS + (SIZE_COLUMN, STEPS_COLUMN)
PARQUET_SUFFIXES = (".parquet", ".pq")
_CHUNK = 4096


class TableMatch(BaseModel):
    """The logged checkpoint that answers a request, and how far it is from what was asked."""

    mixture: list[float] = Field(description="The logged run's proportions (TRAIN_DOMAINS order).")
    size_m: int
    steps: int = Field(description="The logged step used.")
    requested_steps: int
    distance: float = Field(description="Euclidean distance between the requested and the logged mixture.")
    metrics: dict[str, float] = Field(description="Metrics logged at that checkpoint (averaged over duplicates).")
    rows: list[int] = Field(description="1-based data rows of the table behind this checkpoint.")


class _Run:
    """One run: a size and a mixture, with its checkpoints in increasing step order."""

    def __init__(self, size_m: int, mixture: np.ndarray) -> None:
        self.size_m = size_m
        self.mixture = mixture
        self.steps: np.ndarray = np.empty(0, dtype=int)
        self.values: np.ndarray = np.empty((0, len(METRICS)))
        self.rows: list[list[int]] = []

    def step_index(self, steps: int, finite: np.ndarray | None = None) -> int | None:
        """Index of the largest logged step <= `steps` (else the earliest) among checkpoints where `finite`."""
        candidates = np.arange(len(self.steps)) if finite is None else np.flatnonzero(finite)
        if len(candidates) == 0:
            return None
        before = candidates[self.steps[candidates] <= steps]
        return int(before[-1]) if len(before) else int(candidates[0])


class TableBackend:
    """A user's table of runs as a `Backend`; `source` is a CSV/Parquet path or a sequence of row mappings."""

    name = "table"

    def __init__(self, source: str | os.PathLike[str] | Sequence[Mapping[str, object]]) -> None:
        if isinstance(source, (str, os.PathLike)):
            path = Path(source).expanduser()
            self.source = str(path)
            records = _read_table(path)
        else:
            self.source = "<records>"
            records = [dict(r) for r in source]
        self._build(records)

    # --- loading -------------------------------------------------------------------------------------------

    def _build(self, records: list[dict[str, object]]) -> None:
        if not records:
            raise InvalidArgument(f"the table {self.source} has no rows")
        columns = {str(k).strip(): k for k in records[0]}
        lowered = {c.lower(): c for c in columns}
        missing = [c for c in REQUIRED_COLUMNS if c not in lowered]
        if missing:
            raise InvalidArgument(f"the table {self.source} lacks the columns {', '.join(missing)}; it needs "
                                  f"{', '.join(REQUIRED_COLUMNS)} and metric columns among {', '.join(METRICS)}")
        unknown = [c for c in columns if c.lower().startswith(("loss_", "acc_")) and c.lower() not in METRICS]
        if unknown:
            raise InvalidArgument(f"unknown metric columns {', '.join(unknown)} in {self.source}; metric columns "
                                  f"must be among {', '.join(METRICS)}")
        metric_columns = [m for m in METRICS if m in lowered]
        if not metric_columns:
            raise InvalidArgument(f"the table {self.source} has no metric column; add any of {', '.join(METRICS)}")
        self.metrics: tuple[str, ...] = tuple(metric_columns)
        key_of = {name: columns[lowered[name]] for name in REQUIRED_COLUMNS + self.metrics}

        grouped: dict[tuple[int, tuple[float, ...]], dict[int, list[tuple[int, list[float]]]]] = {}
        mixtures: dict[tuple[int, tuple[float, ...]], np.ndarray] = {}
        for number, record in enumerate(records, start=1):
            where = f"row {number} of {self.source}"
            props = [_number(record.get(key_of[d]), f"{where}, column {d}") for d in TRAIN_DOMAINS]
            if any(p is None for p in props):
                raise InvalidArgument(f"{where}: every proportion column ({', '.join(TRAIN_DOMAINS)}) needs a value")
            mixture = _table_mixture([float(p) for p in props if p is not None], where)
            size = _positive_int(record.get(key_of[SIZE_COLUMN]), f"{where}, column {SIZE_COLUMN}")
            step = _positive_int(record.get(key_of[STEPS_COLUMN]), f"{where}, column {STEPS_COLUMN}")
            values = [math.nan] * len(METRICS)
            for m in self.metrics:
                v = _number(record.get(key_of[m]), f"{where}, column {m}")
                if v is not None:
                    values[METRICS.index(m)] = v
            key = (size, tuple(np.round(mixture, 9).tolist()))
            mixtures.setdefault(key, mixture)
            grouped.setdefault(key, {}).setdefault(step, []).append((number, values))

        self._runs: list[_Run] = []
        for key, by_step in grouped.items():
            run = _Run(key[0], mixtures[key])
            steps = sorted(by_step)
            run.steps = np.asarray(steps, dtype=int)
            run.values = np.asarray([_nanmean(np.asarray([v for _, v in by_step[s]])) for s in steps])
            run.rows = [[n for n, _ in by_step[s]] for s in steps]
            self._runs.append(run)
        self.sizes_m: tuple[int, ...] = tuple(sorted({r.size_m for r in self._runs}))
        self._max_steps = {s: max(int(r.steps[-1]) for r in self._runs if r.size_m == s) for s in self.sizes_m}

    # --- the Backend protocol ------------------------------------------------------------------------------

    def validate(self, size_m: float, steps: int) -> None:
        """Raise `InvalidArgument` unless the table holds `size_m` and `steps` is within its logged range."""
        size = self._check_size(size_m)
        if not float(steps).is_integer() or steps < 1:
            raise InvalidArgument(f"steps must be a positive integer; got {steps!r}")
        if steps > self._max_steps[size]:
            raise InvalidArgument(f"the table logs {size}M runs up to step {self._max_steps[size]}; "
                                  f"got {steps!r} (it cannot replay a longer run)")

    def cost(self, size_m: float, steps: int) -> float:
        """Nominal training cost from step 0 to `steps` in full-target-run units (`cost.run_cost`)."""
        return float(run_cost(size_m, steps))

    def lookup(self, mixture: Sequence[float] | np.ndarray, size_m: float, steps: int,
               metric: str | None = None) -> TableMatch:
        """The logged checkpoint answering (mixture, size, steps) under the module's lookup rule, with the
        mixture distance; with `metric`, only checkpoints that logged it count."""
        mix = _request_mixture(mixture)
        self.validate(size_m, steps)
        size, step = self._check_size(size_m), int(steps)
        column = None if metric is None else self._metric_column(metric)
        runs = self._runs_with(size, column)
        distances = np.sqrt(((np.asarray([r.mixture for r in runs]) - mix) ** 2).sum(axis=1))
        best = int(np.argmin(distances))
        run = runs[best]
        finite = None if column is None else np.isfinite(run.values[:, column])
        index = run.step_index(step, finite)
        assert index is not None  # _runs_with keeps only runs with a logged value
        logged = {m: float(run.values[index, METRICS.index(m)]) for m in self.metrics
                  if math.isfinite(run.values[index, METRICS.index(m)])}
        return TableMatch(mixture=[float(v) for v in run.mixture], size_m=size, steps=int(run.steps[index]),
                          requested_steps=step, distance=float(distances[best]), metrics=logged,
                          rows=list(run.rows[index]))

    def observe(self, mixture: np.ndarray, size_m: float, steps: int, *, seed: int = 0,
                run_id: int = 0) -> dict[str, float]:
        """The metrics logged at the nearest checkpoint (no added noise: the table holds real observations)."""
        return self.lookup(mixture, size_m, steps).metrics

    def true_values(self, mixtures: np.ndarray, size_m: float, steps: int, metric: str) -> np.ndarray:
        """`metric` at the nearest logged run and checkpoint for each row of `mixtures` (vectorised)."""
        column = self._metric_column(metric)
        self.validate(size_m, steps)
        arr = np.atleast_2d(np.asarray(mixtures, dtype=float))
        if arr.ndim != 2 or arr.shape[1] != N_DOMAINS or not np.all(np.isfinite(arr)):
            raise InvalidArgument(f"mixtures must be finite with shape (n, {N_DOMAINS}); got {np.shape(mixtures)}")
        runs = self._runs_with(self._check_size(size_m), column)
        centres = np.asarray([r.mixture for r in runs])
        values = np.asarray([self._run_value(r, column, int(steps)) for r in runs])
        out = np.empty(len(arr))
        for start in range(0, len(arr), _CHUNK):
            block = arr[start:start + _CHUNK]
            # Squared distances without the block's own norm, which does not change the argmin.
            score = (centres ** 2).sum(axis=1)[None, :] - 2.0 * block @ centres.T
            out[start:start + _CHUNK] = values[np.argmin(score, axis=1)]
        return out

    def optimum(self, metric: str, size_m: float, steps: int) -> tuple[np.ndarray, float]:
        """The best logged run at this size (value at `steps` under the step rule): its mixture and value."""
        column = self._metric_column(metric)
        self.validate(size_m, steps)
        runs = self._runs_with(self._check_size(size_m), column)
        values = np.asarray([self._run_value(r, column, int(steps)) for r in runs])
        best = int(np.argmin(values) if default_direction(metric) == "minimize" else np.argmax(values))
        return runs[best].mixture.copy(), float(values[best])

    # --- helpers -------------------------------------------------------------------------------------------

    def _check_size(self, size_m: float) -> int:
        for s in self.sizes_m:
            if float(size_m) == float(s):
                return s
        raise InvalidArgument(f"the table logs runs at sizes {', '.join(f'{s}M' for s in self.sizes_m)} only "
                              f"(size_m in millions); got {size_m!r}")

    def _metric_column(self, metric: str) -> int:
        if metric not in self.metrics:
            raise InvalidArgument(f"the table does not log {metric!r}; it logs {', '.join(self.metrics)}")
        return METRICS.index(metric)

    def _runs_with(self, size: int, column: int | None) -> list[_Run]:
        runs = [r for r in self._runs if r.size_m == size
                and (column is None or bool(np.isfinite(r.values[:, column]).any()))]
        if not runs:
            raise InvalidArgument(f"the table logs no {METRICS[column] if column is not None else ''} values "
                                  f"at {size}M; sizes with values: "
                                  f"{', '.join(f'{s}M' for s in self._sizes_logging(column))}")
        return runs

    def _sizes_logging(self, column: int | None) -> list[int]:
        return sorted({r.size_m for r in self._runs if column is None or np.isfinite(r.values[:, column]).any()})

    @staticmethod
    def _run_value(run: _Run, column: int, steps: int) -> float:
        index = run.step_index(steps, np.isfinite(run.values[:, column]))
        assert index is not None
        return float(run.values[index, column])


def _read_table(path: Path) -> list[dict[str, object]]:
    if not path.is_file():
        raise NotFound(f"no table of runs at {str(path)!r}; give a CSV (or Parquet) file with columns "
                       f"{', '.join(REQUIRED_COLUMNS)} and metric columns")
    if path.suffix.lower() in PARQUET_SUFFIXES:
        try:
            import pyarrow.parquet as pq
        except ImportError as exc:
            raise InvalidArgument(f"reading {path.name} needs pyarrow, which is not installed; install it "
                                  "(pip install pyarrow) or save the table as CSV") from exc
        return list(pq.read_table(path).to_pylist())
    with path.open(newline="", encoding="utf-8-sig") as handle:
        return [dict(row) for row in csv.DictReader(handle)]


def _number(value: object, where: str) -> float | None:
    """A finite float, None for an empty/NaN cell, or `InvalidArgument` for text or infinities."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if text == "" or text.lower() in ("nan", "na", "n/a", "null", "none"):
            return None
        try:
            number = float(text)
        except ValueError:
            raise InvalidArgument(f"{where}: {value!r} is not a number") from None
    elif isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        number = float(value)
    else:
        raise InvalidArgument(f"{where}: {value!r} is not a number")
    if math.isnan(number):
        return None
    if not math.isfinite(number):
        raise InvalidArgument(f"{where}: values must be finite; got {value!r}")
    return number


def _positive_int(value: object, where: str) -> int:
    number = _number(value, where)
    if number is None or number <= 0 or not number.is_integer():
        raise InvalidArgument(f"{where}: needs a positive integer; got {value!r}")
    return int(number)


def _table_mixture(props: list[float], where: str) -> np.ndarray:
    if min(props) < 0:
        raise InvalidArgument(f"{where}: proportions must be >= 0; got {props}")
    total = sum(props)
    if abs(total - 1.0) > TABLE_SUM_TOLERANCE:
        raise InvalidArgument(f"{where}: proportions must sum to 1 (within {TABLE_SUM_TOLERANCE:g}); "
                              f"they sum to {total:.6g}")
    return np.asarray(props, dtype=float) / total


def _request_mixture(mixture: Sequence[float] | np.ndarray) -> np.ndarray:
    try:
        return np.asarray(check_mixture([float(v) for v in np.asarray(mixture, dtype=float).ravel()]))
    except ValueError as exc:
        raise InvalidArgument(str(exc)) from None


def _nanmean(block: np.ndarray) -> np.ndarray:
    """Column means ignoring NaN; NaN where a column has no value (without numpy's empty-slice warning)."""
    counts = np.isfinite(block).sum(axis=0)
    sums = np.where(np.isfinite(block), block, 0.0).sum(axis=0)
    return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
