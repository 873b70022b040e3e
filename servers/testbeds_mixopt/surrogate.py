"""The surrogate of MFMS-GP: features, a linear mean in (log size, log steps), and a scikit-optimize GP
on the residuals (design note mixopt.md §2-3).

    y = b0 + b1 u + b2 v + g(x) + e,   x = (phi(r), u, v),   g ~ GP(0, s_f^2 ARD-RBF), e ~ N(0, s_n^2)

Hyperparameters are refitted only when the number of observations crosses a milestone (every
observation up to 16, then every ~25%), always on the first m observations in history order (an even
stride of at most 120 of them, with restarts only up to 64: the fit's cost stays ~0.3 s however long
the study), so a model is a pure function of (observations, options, seed): a study reloaded from
disk gets exactly the same surrogate. Between milestones the fitted kernel is reused with
`optimizer=None` (a few ms), with the observation noise restored from `noise_` (skopt zeroes it in
`kernel_` after fitting).
"""

from __future__ import annotations

import hashlib
import math
import threading
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.linalg import solve_triangular
from scipy.special import ndtr
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from skopt.learning import GaussianProcessRegressor
from skopt.learning.gaussian_process.kernels import (
    RBF,
    ConstantKernel,
    Kernel,
    Matern,
    Sum,
    WhiteKernel,
)

from .domains import MIN_STEPS, SIZES_M
from .models import StudySpec

Phi = Literal["identity", "sqrt"]
KernelName = Literal["rbf", "matern"]


@dataclass(frozen=True)
class SurrogateOptions:
    """How the surrogate is built. `fidelity=False` gives the single-fidelity GP on phi(r) only."""

    phi: Phi = "identity"
    kernel: KernelName = "rbf"
    noise: Literal["gaussian"] | None = "gaussian"
    fidelity: bool = True
    n_restarts: int = 1
    restarts_up_to: int = 64
    hyper_max_points: int = 120
    refit_all_below: int = 16
    refit_growth: float = 1.25


@dataclass(frozen=True)
class FidelityScale:
    """Maps size and steps to [0, 1] on log scales: u = 0 at the smallest size, 1 at the target."""

    n_min: float
    n_target: float
    s_min: float
    s_target: float

    @classmethod
    def for_spec(cls, spec: StudySpec) -> FidelityScale:
        n_min = float(min(min(SIZES_M), min(spec.sizes_m), spec.target_size_m))
        return cls(n_min, float(spec.target_size_m), float(min(MIN_STEPS, spec.target_steps)),
                   float(spec.target_steps))

    def u(self, size_m: np.ndarray | float) -> np.ndarray:
        span = math.log(self.n_target / self.n_min) or 1.0
        return (np.log(np.asarray(size_m, dtype=float)) - math.log(self.n_min)) / span

    def v(self, steps: np.ndarray | float) -> np.ndarray:
        span = math.log(self.s_target / self.s_min) or 1.0
        return (np.log(np.asarray(steps, dtype=float)) - math.log(self.s_min)) / span


def phi(mixtures: np.ndarray, kind: Phi = "identity") -> np.ndarray:
    """The mixture embedding: r itself (the paper's choice) or sqrt(r) (Hellinger; spreads points near
    faces)."""
    m = np.clip(np.array(mixtures, dtype=float, ndmin=2), 0.0, None)
    return np.sqrt(m) if kind == "sqrt" else m


def encode(mixtures: np.ndarray, size_m: np.ndarray | float, steps: np.ndarray | float, *,
           scale: FidelityScale, options: SurrogateOptions) -> np.ndarray:
    """Feature rows x = (phi(r), u, v), or phi(r) alone for a single-fidelity surrogate."""
    f = phi(mixtures, options.phi)
    if not options.fidelity:
        return f
    n = f.shape[0]
    u = np.broadcast_to(scale.u(size_m), (n,))
    v = np.broadcast_to(scale.v(steps), (n,))
    return np.column_stack([f, u, v])


def expected_improvement(mu: np.ndarray, sd: np.ndarray, best: np.ndarray | float, xi: float = 0.0) -> np.ndarray:
    """EI for minimisation: (best - mu - xi) Phi(z) + sd phi(z), z = (best - mu - xi) / sd; the plain
    improvement where sd = 0. Same formula as `skopt.acquisition.gaussian_ei`, vectorised over `best`."""
    mu, sd = np.asarray(mu, dtype=float), np.asarray(sd, dtype=float)
    imp = np.asarray(best, dtype=float) - mu - xi
    pos = sd > 0
    safe = np.where(pos, sd, 1.0)
    z = imp / safe
    ei = imp * ndtr(z) + safe * np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
    return np.where(pos, ei, np.maximum(imp, 0.0))


def _design(X: np.ndarray, options: SurrogateOptions) -> np.ndarray:
    """Columns of the linear mean: (u, v) when the surrogate has fidelities, none otherwise."""
    return X[:, -2:] if options.fidelity else X[:, :0]


@dataclass(frozen=True)
class LinearMean:
    """b0 + b . z fitted by least squares on centred columns; a column without spread gets slope 0, so
    observations at a single size never invent a size trend."""

    intercept: float
    slopes: np.ndarray

    @classmethod
    def fit(cls, Z: np.ndarray, y: np.ndarray) -> LinearMean:
        slopes = np.zeros(Z.shape[1])
        if len(y) == 0:
            return cls(0.0, slopes)
        z_mean = Z.mean(axis=0)
        Zc = Z - z_mean
        spread = Zc.std(axis=0) > 1e-9
        if np.any(spread) and len(y) > 1:
            sol, *_ = np.linalg.lstsq(Zc[:, spread], y - y.mean(), rcond=None)
            slopes[spread] = sol
        return cls(float(y.mean() - z_mean @ slopes), slopes)

    def __call__(self, Z: np.ndarray) -> np.ndarray:
        return self.intercept + Z @ self.slopes


def _initial_kernel(d: int, options: SurrogateOptions) -> Kernel:
    base = (RBF(np.ones(d), length_scale_bounds=(1e-2, 1e2)) if options.kernel == "rbf"
            else Matern(np.ones(d), length_scale_bounds=(1e-2, 1e2), nu=2.5))
    kernel = ConstantKernel(1.0, constant_value_bounds=(1e-3, 1e3)) * base
    if options.noise == "gaussian":
        kernel = kernel + WhiteKernel(noise_level=1e-2, noise_level_bounds=(1e-6, 1.0))
    return kernel


def with_noise_restored(gp: GaussianProcessRegressor) -> Kernel:
    """The fitted kernel with its observation noise put back (skopt zeroes the WhiteKernel in `kernel_`
    and keeps the level in `noise_`; reusing `kernel_` as is would silently interpolate the noise)."""
    kernel = clone(gp.kernel_)
    if gp.noise_ is not None and isinstance(kernel, Sum) and isinstance(kernel.k2, WhiteKernel):
        kernel = Sum(kernel.k1, WhiteKernel(noise_level=float(gp.noise_), noise_level_bounds="fixed"))
    return kernel


def _quiet_fit(gp: GaussianProcessRegressor, X: np.ndarray, y: np.ndarray) -> GaussianProcessRegressor:
    # A length-scale at its bound is normal here (e.g. an irrelevant domain): not worth a warning,
    # and pytest turns warnings into errors.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return gp.fit(X, y)


def fixed_gp(kernel: Kernel, options: SurrogateOptions) -> GaussianProcessRegressor:
    """A GP that keeps `kernel`'s hyperparameters (optimizer=None): refitting costs one Cholesky."""
    return GaussianProcessRegressor(kernel=clone(kernel), optimizer=None, normalize_y=True,
                                    noise=options.noise)


def hyper_milestone(n: int, options: SurrogateOptions = SurrogateOptions()) -> int:
    """The number of (leading) observations the hyperparameters are fitted on when there are n."""
    if n <= options.refit_all_below:
        return n
    m = float(options.refit_all_below)
    while math.floor(m * options.refit_growth) <= n:
        m = math.floor(m * options.refit_growth)
    return int(m)


_HYPER_CACHE: OrderedDict[str, Kernel] = OrderedDict()
_HYPER_CACHE_SIZE = 256
_HYPER_LOCK = threading.Lock()  # the server may suggest for several studies from threads


def _fitted_kernel(X: np.ndarray, y: np.ndarray, options: SurrogateOptions, seed: int) -> Kernel:
    """Hyperparameters fitted by maximum likelihood (L-BFGS-B, seeded restarts), cached by content."""
    key = hashlib.sha256(b"".join([np.ascontiguousarray(X).tobytes(), np.ascontiguousarray(y).tobytes(),
                                   repr(options).encode(), str(seed).encode()])).hexdigest()
    with _HYPER_LOCK:
        if key in _HYPER_CACHE:
            _HYPER_CACHE.move_to_end(key)
            return _HYPER_CACHE[key]
    random_state = int(np.random.SeedSequence([seed, len(y)]).generate_state(1)[0])
    restarts = options.n_restarts if len(y) <= options.restarts_up_to else 0
    gp = GaussianProcessRegressor(kernel=_initial_kernel(X.shape[1], options), normalize_y=True,
                                  noise=options.noise, n_restarts_optimizer=restarts, random_state=random_state)
    kernel = with_noise_restored(_quiet_fit(gp, X, y))
    with _HYPER_LOCK:
        _HYPER_CACHE[key] = kernel
        while len(_HYPER_CACHE) > _HYPER_CACHE_SIZE:
            _HYPER_CACHE.popitem(last=False)
    return kernel


class Surrogate:
    """A fitted surrogate: `predict` gives the posterior mean and sd (excluding observation noise)."""

    def __init__(self, gp: GaussianProcessRegressor, mean: LinearMean, options: SurrogateOptions,
                 residuals: np.ndarray) -> None:
        self.gp = gp
        self.mean = mean
        self.options = options
        self.residuals = residuals

    @property
    def n(self) -> int:
        return len(self.residuals)

    @property
    def noise_sd(self) -> float:
        """Fitted observation-noise sd in the objective's units (0 without a noise model)."""
        noise = self.gp.noise_ or 0.0
        return float(math.sqrt(noise) * float(self.gp.y_train_std_))

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and sd of f at feature rows X. A triangular solve on `L_` (not skopt's
        einsum over K_inv_): about 3x faster, and no warning path for tiny negative variances."""
        gp = self.gp
        K = gp.kernel_(X, gp.X_train_)
        y_std = float(gp.y_train_std_)
        mu = (K @ gp.alpha_) * y_std + float(gp.y_train_mean_) + self.mean(_design(X, self.options))
        w = solve_triangular(gp.L_, K.T, lower=True, check_finite=False)
        var = gp.kernel_.diag(X) - np.einsum("ij,ij->j", w, w)
        return mu, np.sqrt(np.clip(var, 0.0, None)) * y_std

    def with_points(self, X_new: np.ndarray, y_new: np.ndarray) -> Surrogate:
        """The same model (hyperparameters and mean kept) conditioned on extra observations: the
        kriging believer's fantasies."""
        X = np.vstack([self.gp.X_train_, X_new])
        r = np.concatenate([self.residuals, np.asarray(y_new, dtype=float) - self.mean(_design(X_new, self.options))])
        gp = _quiet_fit(fixed_gp(with_noise_restored(self.gp), self.options), X, r)
        return Surrogate(gp, self.mean, self.options, r)


def fit_surrogate(X: np.ndarray, y: np.ndarray, *, options: SurrogateOptions = SurrogateOptions(),
                  seed: int = 0) -> Surrogate:
    """Fit the surrogate to feature rows X (from `encode`) and values y (to be minimised).

    Hyperparameters come from the first `hyper_milestone(len(y))` observations (cached); the linear
    mean and the GP's posterior use all of them."""
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    if len(y) == 0:
        raise ValueError("fit_surrogate needs at least one observation")
    m = hyper_milestone(len(y), options)
    head = np.unique(np.linspace(0, m - 1, min(m, options.hyper_max_points)).round().astype(int))
    Xh, yh = X[head], y[head]
    head_mean = LinearMean.fit(_design(Xh, options), yh)
    kernel = _fitted_kernel(Xh, yh - head_mean(_design(Xh, options)), options, seed)
    mean = LinearMean.fit(_design(X, options), y)
    residuals = y - mean(_design(X, options))
    gp = _quiet_fit(fixed_gp(kernel, options), X, residuals)
    return Surrogate(gp, mean, options, residuals)


def surrogate_options(**overrides: object) -> SurrogateOptions:
    """SurrogateOptions with keyword overrides (validated names)."""
    fields = SurrogateOptions.__dataclass_fields__
    unknown = sorted(set(overrides) - set(fields))
    if unknown:
        raise ValueError(f"unknown surrogate option(s) {unknown}; valid: {sorted(fields)}")
    return SurrogateOptions(**overrides)  # type: ignore[arg-type]

