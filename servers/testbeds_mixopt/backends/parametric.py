"""Our parametric simulator of pre-training runs (the default backend, name "parametric").

Form (design note mixopt.md §4). Per validation domain d, with n = N/1e9, D = S × tokens_per_step(N)
(2^19 below 1B, 2^20 at 1B) and D* = 19,500 × 2^20:

    L_d = E_d + A_d n^-alpha_d + B_d (D/D*)^-beta_d + n^kappa_d Σ_j c_dj exp(-lambda_dj n^-gamma_d r_j)

The mixture term is a sum of saturating gains, so every loss is convex in r and its exact optimum is
water-filling: r_j = max(0, ln(c_j l_j / mu) / l_j) with l_j = lambda_j n^-gamma and mu set by bisection
so that Σ r_j = 1 (then solved in closed form on the active set). gamma > 0 makes small models saturate
sooner, so small-scale optima are more diverse and move with scale; kappa shrinks the mixture effect at
small scale without moving the optimum. Steps enter only through the additive data term, so the noise-free
ranking of mixtures at one size does not depend on the step (observation noise does).

Accuracies (chance a0, ceiling a1, items K):
    acc = a0 + (a1 - a0) sigmoid(k (m - Σ_d v_d L_d)) + h0 (n/0.02)^-p (w · r)
The last term favours other domains at small scale and decays with size; on HellaSwag it reproduces the
rank reversal between 20M and 1B. Its optimum is found numerically (SLSQP with analytic gradients from the
vertices, an edge grid, sparse and uniform Dirichlet draws and the loss optima; best of all kept), not
in closed form.

Noise. A run's losses carry an offset z × s0 n^-0.35 (D/D*)^-0.25 (s0 = 0.005 nats, ~0.023 at 20M) with z
standard normal keyed by (seed, run_id) (half shared across the seven losses, half per loss, as a run that
is lucky on one domain tends to be lucky on all), plus a per-checkpoint term 0.4 times as large keyed by
(seed, run_id, step). Accuracies are computed from the noisy losses, then binomially sampled on their item
counts (HellaSwag 10,042, PIQA 1,838, ARC-Easy 2,376) keyed by (seed, run_id, step). Nothing depends on a
later step, so a run's value at S is the same whether or not it continues.

Parameters and calibration. CommonCrawl and StackExchange mixture terms (c, lambda, gamma) are the fits of
the design note; everything else is ours. The other domains' mixture terms were fitted (Nelder-Mead) to
match, on the paper's network at 19,500 steps, the Dirichlet(1) range relative to the uniform mixture at 20M
and 1B, the 1B optimum, the 1B regret of the 20M optimum and (loosely) Spearman rho 20M vs 1B, then
rounded. C4 is CommonCrawl's mixture term scaled by 0.52 (the network's C4 and CC share their 1B optimum).
kappa narrows the 20M landscape: the note's CC fit is 0.93 nats wide at 20M with kappa = 0 (measured 0.50);
kappa = 0.16 would match the width but halve the median gap (5.4% measured), so CC uses 0.10 (0.63 wide,
gap 3.7%). E, A, alpha, B, beta were then fitted per domain by least squares to the network's
uniform-mixture learning curves (1k, 2k, 6k, 12k, 19.5k steps at 20M and 1B, the final step weighted 3x,
plus the 19.5k values at the five middle sizes at weight 0.5). Accuracy laws: k, m (and the small-size
amplitude) fitted to the 20M and 1B Dirichlet ranges and, for HellaSwag, rho 20M vs 1B.

Evidence (this simulator, 19,500 steps, 200k Dirichlet(1) mixtures; `calibration_report()` recomputes it;
measured targets from the note in brackets):

    metric, size  best           optimum (wiki se gh ax bk)    range        gap   P(1%)   regret  TV   rho
    CC 20M        3.424 [3.342]  .12 .22 .09 .09 .49 [5 dom.]  3.42-4.05    3.7%  2.2e-1  8.1%    .51  .99
                                                               [3.34-3.84]  [5.4] [3e-2]  [8.9]   [.33][.96]
    CC 1B         2.287 [2.273]  0 0 0 0 1 [0 .05 0 .04 .91]   2.30-2.78    16%   3.5e-5
                                                               [2.28-2.86]  [16]  [6e-5]
    SE 20M        1.250 [1.186]  0 .44 .24 .10 .22             1.25-1.65    9.0%  1.9e-2  5.7%    .38  .91
                                 [0 .47 .19 0 .34]             [1.19-1.60]  [12]  [9e-4]  [5.7]   [.35][.85]
    SE 1B         0.802 [0.806]  0 .83 .17 0 0 [same]          0.80-1.02    15%   1.9e-4
                                                               [0.81-1.14]  [12]  [9e-5]

Other metrics, 20M and 1B Dirichlet ranges, 1B optimum, rho 20M vs 1B, 1B regret of the 20M optimum:
    C4          1.91-2.23 [1.87-2.11]  1.33-1.58 [1.32-1.62]  pure Book [Book-heavy .91]  .99 [.97]  7.3% [4.7]
    Wikipedia   1.54-2.11 [1.49-2.10]  0.80-1.38 [0.87-1.42]  pure Wiki [same]            1.0 [.90]  3.7% [3.2]
    GitHub      0.87-1.37 [0.86-1.32]  0.58-0.81 [0.54-0.80]  0 0 .99 0 .01 [.98/.02]     .93 [.89]  1.7% [1.7]
    ArXiv       1.82-2.43 [1.80-2.40]  1.36-1.70 [1.33-1.73]  pure ArXiv [same]           .98 [.62]  1.4% [1.4]
    Book        3.44-4.31 [3.42-4.31]  2.32-3.16 [2.28-3.15]  pure Book [same]            1.0 [.98]  0.8% [0.6]
    HellaSwag   .255-.269 [.254-.268]  .289-.409 [.29-.41]    pure Book [Book-heavy .91] -.91 [-.91] 27% [27]
    PIQA        .526-.574 [.53-.57]    .600-.716 [.60-.72]    pure Book [same]            1.0 [.98]  0.4% [0]
    ARC-Easy    .268-.347 [.30-.34]    .412-.558 [.40-.56]    pure Book [Book-heavy .91]  .98 [.77]  1.0% [1.1]

Uniform-mixture curves (CC/SE) at 1k, 2k, 6k, 12k, 19.5k steps are within 0.11 nats of the targets
(within 0.015 at 19.5k); the misfit is at 1B's early steps, because one power law in D is shared by all
sizes while the network's 20M curve is about twice as steep. Known departures: noise-free rho between 20M
and 1B is above 0.9 for every loss (the network's ArXiv has 0.62) and rho between steps at one size is 1;
from 300M up CommonCrawl's optimum is already pure Book (the network's 300M optimum has 3.2% regret), so
mid-size runs transfer better here than on the network; HellaSwag's within-1% set at 1B is tighter than
the network's (no Dirichlet(1) draw in 200k reaches it).
"""

from __future__ import annotations

import functools
import math
import zlib
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize
from scipy.stats import spearmanr
from testbeds_serving.errors import InvalidArgument

from ..cost import run_cost
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
    TRAIN_DOMAINS,
)
from ..models import check_mixture
from ..noise import data_ratio, loss_noise_sd

MIN_SIZE_M, MAX_SIZE_M = 20.0, 1000.0
CHECKPOINT_NOISE_SHARE = 0.4  # per-checkpoint sd relative to the per-run offset sd
SHARED_OFFSET_SHARE = 0.5     # share of the per-run offset variance common to all losses of a run
_STREAM = zlib.crc32(b"testbeds_mixopt.parametric")


@dataclass(frozen=True)
class LossLaw:
    """Validation loss of one domain: scale terms plus a saturating mixture term (module docstring)."""

    E: float
    A: float
    alpha: float
    B: float
    beta: float
    kappa: float
    gamma: float
    c: tuple[float, ...]
    lam: tuple[float, ...]

    def scale_term(self, n: float, x: float) -> float:
        """E + A n^-alpha + B x^-beta with x = D/D*: the part that does not depend on the mixture."""
        return self.E + self.A * n ** -self.alpha + self.B * x ** -self.beta

    def rates(self, n: float) -> np.ndarray:
        """l_j = lambda_j n^-gamma: how fast domain j's gain saturates at this size."""
        return np.asarray(self.lam) * n ** -self.gamma

    def mixture_term(self, mixtures: np.ndarray, n: float) -> np.ndarray:
        """n^kappa Σ_j c_j exp(-l_j r_j) for each row of `mixtures`."""
        return n ** self.kappa * (np.exp(-mixtures * self.rates(n)) @ np.asarray(self.c))

    def mixture_gradient(self, mixture: np.ndarray, n: float) -> np.ndarray:
        """d(mixture_term)/dr for one mixture."""
        rates = self.rates(n)
        return -n ** self.kappa * np.asarray(self.c) * rates * np.exp(-mixture * rates)

    def values(self, mixtures: np.ndarray, n: float, x: float) -> np.ndarray:
        return self.scale_term(n, x) + self.mixture_term(mixtures, n)

    def optimum(self, n: float) -> np.ndarray:
        """The exact minimiser on the simplex (water-filling); it does not depend on steps."""
        return water_filling(np.asarray(self.c), self.rates(n))


def water_filling(c: np.ndarray, rates: np.ndarray) -> np.ndarray:
    """argmin_r Σ c_j exp(-l_j r_j) on the simplex: r_j = max(0, ln(c_j l_j / mu) / l_j), Σ r = 1.

    Bisection on ln mu brackets the active set; mu is then solved in closed form on that set, so the
    result is exact to rounding (KKT: c_j l_j exp(-l_j r_j) = mu on the support, <= mu off it).
    """
    c = np.asarray(c, dtype=float)
    rates = np.asarray(rates, dtype=float)
    with np.errstate(divide="ignore"):
        a = np.log(c * rates)  # -inf for domains with no gain: never active
    hi = float(a.max())
    lo = hi - float(rates.max())  # the top domain alone already gets r >= 1 here
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if np.maximum(0.0, (a - mid) / rates).sum() > 1.0:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-13:
            break
    mu = 0.5 * (lo + hi)
    active = a > mu - 1e-12
    mu = (np.sum(a[active] / rates[active]) - 1.0) / np.sum(1.0 / rates[active])
    r = np.where(active, np.maximum(0.0, (a - mu) / rates), 0.0)
    return r / r.sum()


@dataclass(frozen=True)
class AccuracyLaw:
    """Downstream accuracy from the losses (module docstring)."""

    chance: float
    ceiling: float
    k: float
    m: float
    loss_weights: tuple[tuple[str, float], ...]
    items: int
    small_amp: float = 0.0
    small_power: float = 0.0
    small_pref: tuple[float, ...] = field(default=(0.0,) * N_DOMAINS)

    def small_scale(self, n: float) -> float:
        """Amplitude of the small-size term: h0 (n/0.02)^-p."""
        return self.small_amp * (n / 0.02) ** -self.small_power if self.small_amp else 0.0


# Fitted per domain; order of c and lam: TRAIN_DOMAINS (wikipedia, stackexchange, github, arxiv, book).
_CC_C = (0.027, 0.066, 0.018, 0.018, 0.873)
_CC_LAM = (1.34, 0.93, 1.42, 0.89, 0.87)
LOSS_LAWS: dict[str, LossLaw] = {
    "loss_commoncrawl": LossLaw(E=-0.7195, A=2.4510, alpha=0.1257, B=0.0612, beta=0.9202, kappa=0.10,
                                gamma=0.62, c=_CC_C, lam=_CC_LAM),
    "loss_c4": LossLaw(E=-0.2763, A=1.3023, alpha=0.1226, B=0.0416, beta=0.8261, kappa=0.11, gamma=0.62,
                       c=tuple(round(0.52 * v, 6) for v in _CC_C), lam=_CC_LAM),
    "loss_wikipedia": LossLaw(E=-2.5917, A=2.5700, alpha=0.0949, B=0.0276, beta=1.0657, kappa=0.10,
                              gamma=0.18, c=(0.98, 0.02, 0.09, 0.20, 0.12), lam=(1.0, 2.9, 3.6, 1.6, 2.7)),
    "loss_stackexchange": LossLaw(E=-0.1006, A=0.4297, alpha=0.2705, B=0.0072, beta=1.3798, kappa=0.065,
                                  gamma=0.48, c=(0.021, 0.383, 0.153, 0.045, 0.100),
                                  lam=(1.20, 0.92, 1.37, 1.09, 0.78)),
    "loss_github": LossLaw(E=-1.0083, A=0.7635, alpha=0.1812, B=0.0026, beta=1.7514, kappa=0.06, gamma=0.35,
                           c=(0.02, 0.09, 0.71, 0.155, 0.095), lam=(0.65, 2.2, 0.44, 1.3, 2.2)),
    "loss_arxiv": LossLaw(E=0.2802, A=0.2395, alpha=0.3568, B=0.0053, beta=1.5640, kappa=0.0, gamma=0.23,
                          c=(0.12, 0.22, 0.025, 0.74, 0.09), lam=(2.0, 1.0, 0.77, 0.66, 2.8)),
    "loss_book": LossLaw(E=1.0735, A=1.0201, alpha=0.1945, B=0.0666, beta=0.9321, kappa=0.02, gamma=0.18,
                         c=(0.02, 0.025, 0.01, 0.01, 0.95), lam=(1.0, 7.0, 4.5, 3.0, 2.35)),
}

ACCURACY_LAWS: dict[str, AccuracyLaw] = {
    # Small models: a bonus for every domain but Book, gone by 1B (20M-vs-1B rank correlation -0.91).
    "acc_hellaswag": AccuracyLaw(chance=0.25, ceiling=1.0, k=3.28, m=1.90,
                                 loss_weights=(("loss_commoncrawl", 1.0),), items=10_042,
                                 small_amp=0.018, small_power=1.5, small_pref=(1.0, 1.0, 1.0, 1.0, 0.0)),
    "acc_piqa": AccuracyLaw(chance=0.5, ceiling=1.0, k=1.33, m=2.12, loss_weights=(("loss_book", 1.0),),
                            items=1_838),
    # The small-size term lifts 20M to the measured level and keeps its optimum Book-heavy (1B regret ~1%).
    "acc_arc_easy": AccuracyLaw(chance=0.25, ceiling=1.0, k=1.92, m=2.11,
                                loss_weights=(("loss_commoncrawl", 1.0),), items=2_376,
                                small_amp=0.047, small_power=1.0, small_pref=(0.5, 0.5, 0.0, 0.5, 1.0)),
}


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # overflow-free logistic


class ParametricSimulator:
    """The shipped simulator: losses on seven SlimPajama validation domains and three downstream
    accuracies for any size in [20, 1000] M parameters and steps 100..19,500 on the 100-step grid."""

    name = "parametric"
    metrics: tuple[str, ...] = METRICS
    sizes_m: tuple[int, ...] = SIZES_M

    # ----- validation and cost -----

    def validate(self, size_m: float, steps: int) -> None:
        """Reject sizes outside [20, 1000] M and steps off the 100..19,500 grid, naming what is valid."""
        try:
            size = float(size_m)
        except (TypeError, ValueError):
            size = math.nan
        if isinstance(size_m, bool) or not (MIN_SIZE_M <= size <= MAX_SIZE_M):
            raise InvalidArgument(
                f"size_m must be between {MIN_SIZE_M:g} and {MAX_SIZE_M:g} (millions of parameters; the "
                f"paper's sizes are {', '.join(map(str, SIZES_M))}); got {size_m!r}")
        ok = (not isinstance(steps, bool) and isinstance(steps, (int, np.integer, float, np.floating))
              and math.isfinite(float(steps)) and float(steps) == int(steps)
              and MIN_STEPS <= int(steps) <= MAX_STEPS and int(steps) % STEP_GRID == 0)
        if not ok:
            raise InvalidArgument(
                f"steps must be a multiple of {STEP_GRID} from {MIN_STEPS} to {MAX_STEPS:,}; got {steps!r}")

    def cost(self, size_m: float, steps: int) -> float:
        """Cost of a run from step 0 to `steps` in target-run units (nominal 6ND, see `cost.run_cost`)."""
        self.validate(size_m, steps)
        return run_cost(float(size_m), int(steps))

    # ----- noise-free values -----

    def true_values(self, mixtures: np.ndarray, size_m: float, steps: int, metric: str) -> np.ndarray:
        """Noise-free `metric` for each row of `mixtures` (shape (n, 5), rows on the simplex)."""
        self.validate(size_m, steps)
        law_kind = self._check_metric(metric)
        rows = _as_rows(mixtures)
        n, x = float(size_m) / 1000.0, data_ratio(float(size_m), int(steps))
        if law_kind == "loss":
            return LOSS_LAWS[metric].values(rows, n, x)
        return self._accuracy(metric, rows, n, x)

    def _accuracy(self, metric: str, rows: np.ndarray, n: float, x: float,
                  loss_offsets: dict[str, float] | None = None) -> np.ndarray:
        law = ACCURACY_LAWS[metric]
        weighted = np.zeros(len(rows))
        for loss, weight in law.loss_weights:
            shift = loss_offsets.get(loss, 0.0) if loss_offsets else 0.0
            weighted += weight * (LOSS_LAWS[loss].values(rows, n, x) + shift)
        acc = law.chance + (law.ceiling - law.chance) * _sigmoid(law.k * (law.m - weighted))
        if law.small_amp:
            acc = acc + law.small_scale(n) * (rows @ np.asarray(law.small_pref))
        return acc

    def _accuracy_gradient(self, metric: str, r: np.ndarray, n: float, x: float) -> np.ndarray:
        law = ACCURACY_LAWS[metric]
        weighted, grad_weighted = 0.0, np.zeros(N_DOMAINS)
        for loss, weight in law.loss_weights:
            loss_law = LOSS_LAWS[loss]
            weighted += weight * float(loss_law.values(r[None, :], n, x)[0])
            grad_weighted += weight * loss_law.mixture_gradient(r, n)
        s = float(_sigmoid(np.asarray(law.k * (law.m - weighted))))
        grad = -(law.ceiling - law.chance) * s * (1.0 - s) * law.k * grad_weighted
        return grad + law.small_scale(n) * np.asarray(law.small_pref)

    # ----- observations -----

    def noise_sd(self, size_m: float, steps: int) -> float:
        """Standard deviation of a run's loss offset: s0 n^-0.35 (D/D*)^-0.25 nats."""
        self.validate(size_m, steps)
        return loss_noise_sd(size_m, steps)

    def observe(self, mixture: np.ndarray, size_m: float, steps: int, *, seed: int, run_id: int) -> dict[str, float]:
        """Every metric of run `run_id` at `steps`, with noise keyed by (seed, run_id) and the step.

        The value at a step never depends on later steps, so a resumed run reports the same checkpoints.
        """
        self.validate(size_m, steps)
        for label, value in (("seed", seed), ("run_id", run_id)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise InvalidArgument(f"{label} must be a non-negative integer; got {value!r}")
        try:
            r = np.asarray(check_mixture([float(v) for v in np.asarray(mixture, dtype=float).ravel()]))
        except (TypeError, ValueError) as exc:
            raise InvalidArgument(str(exc)) from None
        size, n_steps = float(size_m), int(steps)
        n, x = size / 1000.0, data_ratio(size, n_steps)
        sd = loss_noise_sd(size, n_steps)

        run_rng = np.random.default_rng(np.random.SeedSequence([_STREAM, int(seed), int(run_id)]))
        shared = run_rng.standard_normal()
        own = run_rng.standard_normal(len(LOSS_METRICS))
        run_z = math.sqrt(SHARED_OFFSET_SHARE) * shared + math.sqrt(1.0 - SHARED_OFFSET_SHARE) * own
        step_rng = np.random.default_rng(np.random.SeedSequence([_STREAM, int(seed), int(run_id), n_steps]))
        step_z = step_rng.standard_normal(len(LOSS_METRICS))
        offsets = {metric: float(sd * (run_z[i] + CHECKPOINT_NOISE_SHARE * step_z[i]))
                   for i, metric in enumerate(LOSS_METRICS)}

        out: dict[str, float] = {}
        row = r[None, :]
        for metric in LOSS_METRICS:
            out[metric] = float(LOSS_LAWS[metric].values(row, n, x)[0] + offsets[metric])
        for metric in ACCURACY_METRICS:
            p = float(np.clip(self._accuracy(metric, row, n, x, offsets)[0], 0.0, 1.0))
            items = ACCURACY_LAWS[metric].items
            out[metric] = float(step_rng.binomial(items, p) / items)
        return out

    # ----- ground truth (evaluator only) -----

    def optimum(self, metric: str, size_m: float, steps: int) -> tuple[np.ndarray, float]:
        """The best mixture and its noise-free value: exact water-filling for losses, numerical
        (multi-start SLSQP) for accuracies."""
        self.validate(size_m, steps)
        self._check_metric(metric)
        r, value = _optimum_cached(metric, float(size_m), int(steps))
        return np.array(r), value

    def _check_metric(self, metric: str) -> str:
        if metric in LOSS_LAWS:
            return "loss"
        if metric in ACCURACY_LAWS:
            return "accuracy"
        raise InvalidArgument(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")

    # ----- calibration evidence -----

    def calibration_report(self, metrics: tuple[str, ...] = ("loss_commoncrawl", "loss_stackexchange"),
                           summary_metrics: tuple[str, ...] = METRICS, n_samples: int = 200_000,
                           seed: int = 0, steps: int = TARGET_STEPS, rho_samples: int = 20_000) -> dict:
        """The design note's calibration columns for this simulator (JSON-ready).

        `per_size[metric]`: for each size in SIZES_M, best value, optimum, k (domains above 1%), range over
        `n_samples` Dirichlet(1) mixtures, median relative gap, P(within 1%), and against 1B: regret of
        this size's optimum, TV to the 1B optimum, Spearman rho (on the first `rho_samples` mixtures).
        `summary[metric]`: range at 20M and 1B, the 1B optimum, P(1%) at 1B, rho 20M vs 1B and the 1B
        regret of the 20M optimum. `uniform_curves`: the uniform mixture at 1k..19.5k steps, 20M and 1B.
        """
        rng = np.random.default_rng(np.random.SeedSequence([_STREAM, int(seed), 1]))
        pool = rng.dirichlet(np.ones(N_DOMAINS), int(n_samples))
        report: dict = {"n_samples": int(n_samples), "steps": int(steps), "domains": list(TRAIN_DOMAINS),
                        "per_size": {}, "summary": {}, "uniform_curves": {}}
        for metric in metrics:
            report["per_size"][metric] = [self._size_row(metric, s, steps, pool, rho_samples) for s in SIZES_M]
        for metric in summary_metrics:
            small = self._size_row(metric, SIZES_M[0], steps, pool, rho_samples)
            big = self._size_row(metric, TARGET_SIZE_M, steps, pool, rho_samples)
            report["summary"][metric] = {
                "range_20m": small["range"], "range_1b": big["range"], "optimum_1b": big["optimum"],
                "best_1b": big["best"], "p_within_1pct_1b": big["p_within_1pct"],
                "spearman_20m_vs_1b": small["spearman_with_1b"], "regret_1b_of_20m_optimum": small["regret_at_1b"]}
        uniform = np.full((1, N_DOMAINS), 1.0 / N_DOMAINS)
        for metric in metrics:
            report["uniform_curves"][metric] = {
                str(size): {str(s): float(self.true_values(uniform, size, s, metric)[0])
                            for s in (1_000, 2_000, 6_000, 12_000, TARGET_STEPS)}
                for size in (SIZES_M[0], TARGET_SIZE_M)}
        return report

    def _size_row(self, metric: str, size_m: float, steps: int, pool: np.ndarray, rho_samples: int) -> dict:
        minimise = metric in LOSS_LAWS
        r_opt, best = self.optimum(metric, size_m, steps)
        values = self.true_values(pool, size_m, steps, metric)
        gap = (values - best) / abs(best) if minimise else (best - values) / abs(best)
        r_big, best_big = self.optimum(metric, TARGET_SIZE_M, steps)
        at_big = float(self.true_values(r_opt[None, :], TARGET_SIZE_M, steps, metric)[0])
        regret = (at_big - best_big) / abs(best_big) if minimise else (best_big - at_big) / abs(best_big)
        head = pool[:rho_samples]
        rho = spearmanr(self.true_values(head, size_m, steps, metric),
                        self.true_values(head, TARGET_SIZE_M, steps, metric))[0]
        return {"size_m": int(size_m) if float(size_m).is_integer() else float(size_m),
                "best": float(best), "optimum": [round(float(v), 4) for v in r_opt],
                "k": int(np.sum(r_opt > 0.01)), "range": [float(values.min()), float(values.max())],
                "median_gap": float(np.median(gap)), "p_within_1pct": float(np.mean(gap <= 0.01)),
                "regret_at_1b": float(max(regret, 0.0)), "tv_to_1b": float(0.5 * np.abs(r_opt - r_big).sum()),
                "spearman_with_1b": float(rho)}


def _as_rows(mixtures: np.ndarray) -> np.ndarray:
    rows = np.asarray(mixtures, dtype=float)
    if rows.ndim == 1:
        rows = rows[None, :]
    if rows.ndim != 2 or rows.shape[1] != N_DOMAINS:
        raise InvalidArgument(f"mixtures must have shape (n, {N_DOMAINS}) (proportions of "
                              f"{', '.join(TRAIN_DOMAINS)}); got shape {np.shape(mixtures)}")
    if not np.all(np.isfinite(rows)) or rows.min(initial=0.0) < -1e-9:
        raise InvalidArgument("mixture proportions must be finite and >= 0")
    if len(rows) and np.abs(rows.sum(axis=1) - 1.0).max() > 1e-6:
        raise InvalidArgument("each mixture's proportions must sum to 1 (within 1e-6)")
    return np.clip(rows, 0.0, None)


def _simplex_candidates(rng: np.random.Generator) -> np.ndarray:
    """Vertices, a 10-point grid on every edge, sparse and uniform Dirichlet draws."""
    eye = np.eye(N_DOMAINS)
    grid = np.linspace(0.1, 0.9, 9)
    edges = [t * eye[i] + (1 - t) * eye[j] for i in range(N_DOMAINS) for j in range(i + 1, N_DOMAINS) for t in grid]
    return np.vstack([eye, np.array(edges), rng.dirichlet(np.ones(N_DOMAINS), 4_000),
                      rng.dirichlet(np.full(N_DOMAINS, 0.2), 4_000)])


@functools.lru_cache(maxsize=512)
def _optimum_cached(metric: str, size_m: float, steps: int) -> tuple[tuple[float, ...], float]:
    n, x = size_m / 1000.0, data_ratio(size_m, steps)
    if metric in LOSS_LAWS:
        law = LOSS_LAWS[metric]
        r = law.optimum(n)
        return tuple(float(v) for v in r), float(law.values(r[None, :], n, x)[0])
    return _accuracy_optimum(metric, n, x)


def _accuracy_optimum(metric: str, n: float, x: float) -> tuple[tuple[float, ...], float]:
    """Maximise an accuracy on the simplex: best of a candidate pool, then SLSQP from its top points
    and from the loss optima the accuracy is built on. Numerical: no closed form exists."""
    sim = _SIM
    rng = np.random.default_rng(np.random.SeedSequence([_STREAM, zlib.crc32(metric.encode()), 7]))
    candidates = _simplex_candidates(rng)
    law = ACCURACY_LAWS[metric]
    loss_optima = np.array([LOSS_LAWS[loss].optimum(n) for loss, _ in law.loss_weights])
    candidates = np.vstack([candidates, loss_optima])
    values = sim._accuracy(metric, candidates, n, x)
    starts = candidates[np.argsort(-values)[:12]]
    starts = np.vstack([starts, loss_optima, np.full((1, N_DOMAINS), 1.0 / N_DOMAINS)])
    best_r = candidates[int(np.argmax(values))]
    best_v = float(values.max())

    def negative(r: np.ndarray) -> float:
        return -float(sim._accuracy(metric, np.clip(r, 0.0, None)[None, :], n, x)[0])

    def negative_grad(r: np.ndarray) -> np.ndarray:
        return -sim._accuracy_gradient(metric, np.clip(r, 0.0, None), n, x)

    constraint = {"type": "eq", "fun": lambda r: float(np.sum(r) - 1.0), "jac": lambda r: np.ones_like(r)}
    for start in starts:
        res = minimize(negative, start, jac=negative_grad, method="SLSQP", bounds=[(0.0, 1.0)] * N_DOMAINS,
                       constraints=[constraint], options={"ftol": 1e-13, "maxiter": 300})
        r = np.where(res.x > 1e-12, res.x, 0.0)  # SLSQP leaves 1e-18-sized residues on faces
        r = r / r.sum()
        v = -negative(r)
        if v > best_v:
            best_r, best_v = r, v
    return tuple(float(v) for v in best_r), best_v


_SIM = ParametricSimulator()
