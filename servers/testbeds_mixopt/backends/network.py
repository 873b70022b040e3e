"""The paper's simulator: a small ReLU network fitted to 472 pre-training runs, read from a user's directory.

The network (`surrogate_mlp.npz`) and the FLOP table (`flops_dataset.csv`) carry no licence, so they are
never bundled: `NetworkSimulator(path)` reads them from a directory the user names (the project's tests and
benchmarks use `../shared/data/mixopt/`). The forward pass follows that directory's README.

Decisions recorded here:
- **Train cross-entropy.** The network's first output (training-set loss) is not one of `METRICS`, so
  `observe`, `metrics` and the advisor never see it. It stays reachable inside this backend as the extra
  metric ``"loss_train"`` of `true_values`, `outputs` and `optimum` (`EXTRA_METRICS`), for analysis only.
- **Validity.** The network extrapolates nonsensically off its training grid (uniform CommonCrawl loss at a
  "3B" model is 1.46), so only the seven trained sizes and steps 100..19,500 on the 100 grid are accepted.
- **Cost.** From the FLOP table, as a ratio to the full 1B run. The table is exactly linear in steps, so
  the per-step rate of each size is used (any step count from 0 to 19,500 is priced; 0 costs 0).
- **Noise.** The network is deterministic; `observe` adds seeded observation noise of the same form as our
  parametric simulator so that BO sees noise: per loss, a per-run offset with sd
  0.005 n^-0.35 (D/D*)^-0.25 (n = N/1e9, D = steps x tokens per step, D* = 19,500 x 2^20) whose standard
  normal draw is keyed by (seed, run_id), plus a per-checkpoint term 0.3 times as large keyed by
  (seed, run_id, step); accuracies are binomial over the benchmark's item count, keyed by
  (seed, run_id, step). A run's value at a step therefore does not depend on whether the run continues.
  `true_values` is the noise-free network output.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import json
import os
import tempfile
import warnings
import zlib
from itertools import combinations
from pathlib import Path

import numpy as np
from scipy.optimize import minimize
from testbeds_serving.errors import InvalidArgument, NotFound

from ..domains import (
    ACCURACY_METRICS,
    LOSS_METRICS,
    MAX_STEPS,
    METRICS,
    MIN_STEPS,
    N_DOMAINS,
    SIZES_M,
    STEP_GRID,
    TARGET_SIZE_M,
    TARGET_STEPS,
    default_direction,
)
from ..noise import loss_noise_sd

WEIGHTS_FILE = "surrogate_mlp.npz"
FLOPS_FILE = "flops_dataset.csv"

# The network's 11 outputs, in its order; index 0 is the training loss (see the module docstring).
EXTRA_METRICS: tuple[str, ...] = ("loss_train",)
OUTPUTS: tuple[str, ...] = EXTRA_METRICS + METRICS

# Architecture of each trained size: the network's input carries d_model and heads (then drops them after
# normalising, so they only need to be present, not right, but we keep the paper's values).
D_MODEL: dict[int, int] = {20: 256, 60: 512, 150: 768, 300: 1024, 500: 1280, 700: 1536, 1000: 2048}
N_HEADS: dict[int, int] = {20: 8, 60: 8, 150: 12, 300: 16, 500: 16, 700: 16, 1000: 16}
DROPPED_FEATURES = (6, 7)

# Observation noise (see the module docstring and design/mixopt.md section 4).
CHECKPOINT_NOISE_RATIO = 0.3
ACCURACY_ITEMS: dict[str, int] = {"acc_hellaswag": 10_042, "acc_piqa": 1_838, "acc_arc_easy": 2_376}

DEFAULT_POOL_SIZE = 200_000
DEFAULT_POLISH = 40
_CACHE_FORMAT = "mixopt-network-optimum/1"
_TAG_RUN = zlib.crc32(b"mixopt-network-run-noise")
_TAG_CHECKPOINT = zlib.crc32(b"mixopt-network-checkpoint-noise")
_TAG_POOL = zlib.crc32(b"mixopt-network-optimum-pool")
_REQUIRED_ARRAYS: dict[str, tuple[int, ...] | None] = {
    "W0": None, "b0": None, "W1": None, "b1": None, "W2": None, "b2": None, "W3": None, "b3": (11,),
    "X_mean": (9,), "X_std": (9,), "y_mean": (11,), "y_std": (11,),
}


def _size_label_to_m(label: str) -> int:
    """'20M' -> 20, '1B' -> 1000."""
    text = label.strip().upper()
    if text.endswith("B"):
        return round(float(text[:-1]) * 1000)
    if text.endswith("M"):
        return round(float(text[:-1]))
    return round(float(text))


def _valid_sizes_text() -> str:
    return ", ".join(f"{s}M" for s in SIZES_M)


def check_size(size_m: float) -> int:
    """The trained size equal to `size_m`, or `InvalidArgument` naming the seven valid sizes."""
    for s in SIZES_M:
        if float(size_m) == float(s):
            return s
    raise InvalidArgument(f"the paper's network is valid only at the trained model sizes {_valid_sizes_text()} "
                          f"(size_m in millions); got {size_m!r}")


def check_steps(steps: float) -> int:
    """`steps` as an int on the 100-step grid within 100..19,500, or `InvalidArgument` saying so."""
    ok = float(steps).is_integer() and MIN_STEPS <= steps <= MAX_STEPS and int(steps) % STEP_GRID == 0
    if not ok:
        raise InvalidArgument(f"the paper's network is valid at steps {MIN_STEPS}..{MAX_STEPS} in multiples of "
                              f"{STEP_GRID} (e.g. 1000, 6000, 19500); got {steps!r}")
    return int(steps)


def _check_mixtures(mixtures: np.ndarray) -> np.ndarray:
    arr = np.atleast_2d(np.asarray(mixtures, dtype=float))
    if arr.ndim != 2 or arr.shape[1] != N_DOMAINS:
        raise InvalidArgument(f"mixtures must have shape (n, {N_DOMAINS}) (wikipedia, stackexchange, github, "
                              f"arxiv, book); got {np.shape(mixtures)}")
    if not np.all(np.isfinite(arr)):
        raise InvalidArgument("mixture proportions must be finite numbers")
    if arr.size and (arr.min() < -1e-9 or np.max(np.abs(arr.sum(axis=1) - 1.0)) > 1e-6):
        raise InvalidArgument("each mixture must be non-negative and sum to 1 (within 1e-6)")
    return arr


def _noise_seed(*keys: int) -> np.random.SeedSequence:
    if any(int(k) < 0 for k in keys):
        raise InvalidArgument(f"seed and run_id must be non-negative integers; got {keys[1:]}")
    return np.random.SeedSequence([int(k) for k in keys])


def simplex_pool(pool_size: int, rng: np.random.Generator) -> np.ndarray:
    """Candidate mixtures where the network's optima sit: vertices, edge grids (step 1/100), triangular
    face grids (1/40), tetrahedral face grids (1/20), then half Dirichlet(1) and half Dirichlet(0.2) draws
    up to `pool_size` rows (the grids are always included)."""
    parts: list[np.ndarray] = [np.eye(N_DOMAINS)]
    for dims, resolution in ((2, 100), (3, 40), (4, 20)):
        grid = _face_grid(dims, resolution)
        for face in combinations(range(N_DOMAINS), dims):
            block = np.zeros((len(grid), N_DOMAINS))
            block[:, face] = grid
            parts.append(block)
    fixed = np.unique(np.round(np.concatenate(parts), 12), axis=0)
    remaining = max(0, pool_size - len(fixed))
    n_flat = remaining // 2
    draws = [rng.dirichlet(np.ones(N_DOMAINS), n_flat), rng.dirichlet(np.full(N_DOMAINS, 0.2), remaining - n_flat)]
    return np.concatenate([fixed, *draws])


@functools.cache
def _face_grid(dims: int, resolution: int) -> np.ndarray:
    """Points of the (dims-1)-simplex with coordinates in multiples of 1/resolution, all strictly inside
    (cached and read-only)."""
    rows: list[tuple[int, ...]] = []

    def fill(prefix: tuple[int, ...], left: int, slots: int) -> None:
        if slots == 1:
            if left > 0:
                rows.append(prefix + (left,))
            return
        for k in range(1, left - slots + 2):
            fill(prefix + (k,), left - k, slots - 1)

    fill((), resolution, dims)
    grid = np.asarray(rows, dtype=float) / resolution
    grid.flags.writeable = False
    return grid


class NetworkSimulator:
    """The paper's network as a `Backend` (name "network"), loaded from `path`, a directory holding
    `surrogate_mlp.npz` and `flops_dataset.csv`.

    `cache_path` (optional) names a small JSON file where `optimum` results are kept across processes.
    """

    name = "network"
    metrics: tuple[str, ...] = METRICS
    sizes_m: tuple[int, ...] = SIZES_M

    def __init__(self, path: str | os.PathLike[str], *, cache_path: str | os.PathLike[str] | None = None) -> None:
        directory = Path(path).expanduser()
        missing = [f for f in (WEIGHTS_FILE, FLOPS_FILE) if not (directory / f).is_file()]
        if missing:
            raise NotFound(f"the paper's network needs {WEIGHTS_FILE} and {FLOPS_FILE} in one directory; "
                           f"{', '.join(missing)} not found in {str(directory)!r}. Point the path at the "
                           "directory holding them (it is never bundled with testbeds).")
        self.path = directory
        weights_path = directory / WEIGHTS_FILE
        self._fingerprint = hashlib.sha256(weights_path.read_bytes()).hexdigest()[:16]
        self._load_weights(weights_path)
        self._load_flops(directory / FLOPS_FILE)
        self.cache_path = Path(cache_path).expanduser() if cache_path is not None else None
        self._optima: dict[str, tuple[np.ndarray, float]] = {}

    # --- loading -------------------------------------------------------------------------------------------

    def _load_weights(self, path: Path) -> None:
        try:
            with np.load(path) as data:
                arrays = {k: np.asarray(data[k], dtype=float) for k in data.files}
        except (OSError, ValueError) as exc:
            raise InvalidArgument(f"{str(path)!r} is not a readable numpy .npz file: {exc}") from exc
        absent = [k for k in _REQUIRED_ARRAYS if k not in arrays]
        if absent:
            raise InvalidArgument(f"{str(path)!r} lacks the arrays {', '.join(absent)}; expected "
                                  f"{', '.join(_REQUIRED_ARRAYS)} (see the data directory's README)")
        for key, shape in _REQUIRED_ARRAYS.items():
            if shape is not None and arrays[key].shape != shape:
                raise InvalidArgument(f"{str(path)!r}: array {key} has shape {arrays[key].shape}, expected {shape}")
        if arrays["W0"].shape[1] != 9 - len(DROPPED_FEATURES):
            raise InvalidArgument(f"{str(path)!r}: W0 takes {arrays['W0'].shape[1]} inputs, expected 7")
        x_std = np.where(arrays["X_std"] == 0, 1e-8, arrays["X_std"])
        keep = [i for i in range(9) if i not in DROPPED_FEATURES]
        self._x_mean = arrays["X_mean"][keep]
        self._x_std = x_std[keep]
        self._w = [arrays[f"W{i}"] for i in range(4)]
        self._b = [arrays[f"b{i}"] for i in range(4)]
        self._y_mean = arrays["y_mean"]
        self._y_std = arrays["y_std"]

    def _load_flops(self, path: Path) -> None:
        table: dict[int, dict[int, float]] = {}
        try:
            with path.open(newline="") as handle:
                for row in csv.DictReader(handle):
                    size = _size_label_to_m(row["model_size"])
                    table.setdefault(size, {})[round(float(row["step"]))] = float(row["flops"])
        except (KeyError, ValueError) as exc:
            raise InvalidArgument(f"{str(path)!r} must have columns model_size, step, flops: {exc}") from exc
        absent = [s for s in SIZES_M if s not in table or MAX_STEPS not in table[s]]
        if absent:
            raise InvalidArgument(f"{str(path)!r} lacks full-length rows for sizes {absent}")
        # The table is exactly linear in steps (checked to 1e-12 on the paper's file): keep the per-step rate.
        full = table[TARGET_SIZE_M][TARGET_STEPS]
        self._cost_per_step = {s: table[s][MAX_STEPS] / MAX_STEPS / full for s in SIZES_M}

    # --- the Backend protocol ------------------------------------------------------------------------------

    def validate(self, size_m: float, steps: int) -> None:
        """Raise `InvalidArgument` unless `size_m` is a trained size and `steps` is on the 100..19,500 grid."""
        check_size(size_m)
        check_steps(steps)

    def cost(self, size_m: float, steps: int) -> float:
        """FLOPs of training `size_m` from step 0 to `steps`, relative to the full 1B run (19,500 steps)."""
        size = check_size(size_m)
        if not (0 <= float(steps) <= MAX_STEPS):
            raise InvalidArgument(f"steps must be within 0..{MAX_STEPS}; got {steps!r}")
        return float(self._cost_per_step[size] * float(steps))

    def outputs(self, mixtures: np.ndarray, size_m: float, steps: int) -> dict[str, np.ndarray]:
        """All 11 noise-free network outputs (`OUTPUTS`: "loss_train" then `METRICS`) for each mixture row."""
        size, step = check_size(size_m), check_steps(steps)
        y = self._forward(_check_mixtures(mixtures), size, step)
        return {name: y[:, i].copy() for i, name in enumerate(OUTPUTS)}

    def true_values(self, mixtures: np.ndarray, size_m: float, steps: int, metric: str) -> np.ndarray:
        """Noise-free network value of `metric` (a METRICS name, or "loss_train") for each row of `mixtures`."""
        column = self._metric_index(metric)
        size, step = check_size(size_m), check_steps(steps)
        return self._forward(_check_mixtures(mixtures), size, step, column)[:, 0]

    def observe(self, mixture: np.ndarray, size_m: float, steps: int, *, seed: int, run_id: int) -> dict[str, float]:
        """Every metric of `METRICS` with seeded observation noise (see the module docstring)."""
        size, step = check_size(size_m), check_steps(steps)
        mix = _check_mixtures(np.asarray(mixture, dtype=float).reshape(1, -1))
        truth = self._forward(mix, size, step)[0, 1:]
        run_rng = np.random.default_rng(_noise_seed(_TAG_RUN, seed, run_id))
        step_rng = np.random.default_rng(_noise_seed(_TAG_CHECKPOINT, seed, run_id, step))
        # Draw every stream in a fixed order and length, so each metric's draw is stable.
        run_z = run_rng.standard_normal(len(LOSS_METRICS))
        step_z = step_rng.standard_normal(len(LOSS_METRICS))
        sd = loss_noise_sd(size, step)
        result: dict[str, float] = {}
        for i, name in enumerate(LOSS_METRICS):
            result[name] = float(truth[i] + sd * run_z[i] + CHECKPOINT_NOISE_RATIO * sd * step_z[i])
        for j, name in enumerate(ACCURACY_METRICS):
            items = ACCURACY_ITEMS[name]
            p = float(np.clip(truth[len(LOSS_METRICS) + j], 0.0, 1.0))
            result[name] = float(step_rng.binomial(items, p) / items)
        return result

    def optimum(self, metric: str, size_m: float, steps: int, *, pool_size: int = DEFAULT_POOL_SIZE,
                polish: int = DEFAULT_POLISH) -> tuple[np.ndarray, float]:
        """Best mixture and its noise-free value (evaluator only), minimising losses and maximising
        accuracies: the best of a `pool_size` pool (`simplex_pool`) and SLSQP polish of its best `polish`
        distinct points. Cached in memory and, with `cache_path`, on disk (keyed also by pool and polish)."""
        column = self._metric_index(metric)
        size, step = check_size(size_m), check_steps(steps)
        key = f"{metric}|{size}|{step}|{int(pool_size)}|{int(polish)}"
        if key in self._optima:
            mix, value = self._optima[key]
            return mix.copy(), value
        cached = self._read_cache().get(key)
        if cached is not None:
            mix, value = np.asarray(cached["mixture"], dtype=float), float(cached["value"])
        else:
            mix, value = self._search_optimum(column, metric, size, step, int(pool_size), int(polish))
            self._write_cache(key, mix, value)
        self._optima[key] = (mix, value)
        return mix.copy(), value

    # --- network -------------------------------------------------------------------------------------------

    def _metric_index(self, metric: str) -> int:
        if metric not in OUTPUTS:
            raise InvalidArgument(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)} "
                                  "(or loss_train, the network's training loss)")
        return OUTPUTS.index(metric)

    def _inputs(self, mixtures: np.ndarray, size: int, step: int) -> np.ndarray:
        z = np.empty((len(mixtures), 7))
        z[:, :N_DOMAINS] = (mixtures - self._x_mean[:N_DOMAINS]) / self._x_std[:N_DOMAINS]
        z[:, 5] = (size - self._x_mean[5]) / self._x_std[5]
        z[:, 6] = (step - self._x_mean[6]) / self._x_std[6]
        return z

    def _forward(self, mixtures: np.ndarray, size: int, step: int, column: int | None = None) -> np.ndarray:
        h = self._inputs(mixtures, size, step)
        for w, b in zip(self._w[:3], self._b[:3]):
            h = np.maximum(h @ w.T + b, 0.0)
        if column is None:
            return (h @ self._w[3].T + self._b[3]) * self._y_std + self._y_mean
        out = h @ self._w[3][column] + self._b[3][column]
        return (out * self._y_std[column] + self._y_mean[column])[:, None]

    def _value_and_gradient(self, mixture: np.ndarray, size: int, step: int, column: int) -> tuple[float, np.ndarray]:
        """One output and its gradient in the proportions (the network is piecewise linear: exact a.e.)."""
        pre: list[np.ndarray] = []
        h = self._inputs(mixture[None, :], size, step)[0]
        for w, b in zip(self._w[:3], self._b[:3]):
            a = w @ h + b
            pre.append(a)
            h = np.maximum(a, 0.0)
        value = (self._w[3][column] @ h + self._b[3][column]) * self._y_std[column] + self._y_mean[column]
        g = self._w[3][column] * self._y_std[column]
        for w, a in zip(reversed(self._w[:3]), reversed(pre)):
            g = w.T @ (g * (a > 0))
        return float(value), g[:N_DOMAINS] / self._x_std[:N_DOMAINS]

    # --- ground truth --------------------------------------------------------------------------------------

    def candidate_pool(self, metric: str, size_m: float, steps: int,
                       pool_size: int = DEFAULT_POOL_SIZE) -> np.ndarray:
        """The seeded pool `optimum` starts from (before polish), for evaluators and checks."""
        column = self._metric_index(metric)
        size, step = check_size(size_m), check_steps(steps)
        rng = np.random.default_rng(np.random.SeedSequence([_TAG_POOL, column, size, step, int(pool_size)]))
        return simplex_pool(int(pool_size), rng)

    def _search_optimum(self, column: int, metric: str, size: int, step: int, pool_size: int,
                        polish: int) -> tuple[np.ndarray, float]:
        sign = 1.0 if metric == "loss_train" or default_direction(metric) == "minimize" else -1.0
        pool = self.candidate_pool(metric, size, step, pool_size)
        scores = sign * self._forward(pool, size, step, column)[:, 0]
        order = np.argsort(scores, kind="stable")
        best_mix, best_score = pool[order[0]].copy(), float(scores[order[0]])
        starts: list[np.ndarray] = []
        for i in order:
            # Distinct starts only: many pool points share a kink of the piecewise-linear network.
            if all(np.abs(pool[i] - s).sum() / 2 > 1e-3 for s in starts):
                starts.append(pool[i])
            if len(starts) >= polish:
                break
        for start in starts:
            mix = self._polish(start, column, size, step, sign)
            for candidate in (mix, _snap(mix)):
                score = sign * float(self._forward(candidate[None, :], size, step, column)[0, 0])
                if score < best_score:
                    best_mix, best_score = candidate, score
        return best_mix, sign * best_score

    def _polish(self, start: np.ndarray, column: int, size: int, step: int, sign: float) -> np.ndarray:
        def objective(r: np.ndarray) -> tuple[float, np.ndarray]:
            value, grad = self._value_and_gradient(r, size, step, column)
            return sign * value, sign * grad

        with warnings.catch_warnings():
            # SLSQP may step marginally outside the bounds on kinks; the result is clipped and re-scored.
            warnings.simplefilter("ignore", RuntimeWarning)
            result = minimize(objective, start, jac=True, method="SLSQP", bounds=[(0.0, 1.0)] * N_DOMAINS,
                              constraints=[{"type": "eq", "fun": lambda r: float(r.sum() - 1.0),
                                            "jac": lambda r: np.ones_like(r)}],
                              options={"maxiter": 200, "ftol": 1e-12})
        mix = np.clip(np.asarray(result.x, dtype=float), 0.0, None)
        total = mix.sum()
        return mix / total if total > 0 else start.copy()

    # --- disk cache ----------------------------------------------------------------------------------------

    def _read_cache(self) -> dict[str, dict[str, object]]:
        if self.cache_path is None or not self.cache_path.is_file():
            return {}
        try:
            data = json.loads(self.cache_path.read_text())
        except (OSError, ValueError):
            return {}  # a corrupt or unreadable cache is recomputed, never trusted
        if not isinstance(data, dict) or data.get("format") != _CACHE_FORMAT \
                or data.get("weights_sha256") != self._fingerprint or not isinstance(data.get("entries"), dict):
            return {}
        return data["entries"]

    def _write_cache(self, key: str, mixture: np.ndarray, value: float) -> None:
        if self.cache_path is None:
            return
        entries = dict(self._read_cache())
        entries[key] = {"mixture": [float(v) for v in mixture], "value": float(value)}
        payload = {"format": _CACHE_FORMAT, "weights_sha256": self._fingerprint, "entries": entries}
        self.cache_path.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename, so a reader in another process never sees half a file.
        fd, tmp = tempfile.mkstemp(prefix=".optimum-", suffix=".json", dir=self.cache_path.parent)
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump(payload, handle, indent=1, sort_keys=True)
            os.replace(tmp, self.cache_path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _snap(mixture: np.ndarray, tol: float = 1e-6) -> np.ndarray:
    """Proportions below `tol` set to exactly 0 and the rest renormalised (optima sit on faces)."""
    snapped = np.where(mixture < tol, 0.0, mixture)
    return snapped / snapped.sum()
