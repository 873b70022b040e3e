"""The three baselines, on the same ledger as MFMS-GP (design note mixopt.md §2 "Baselines"):

- `RandomSearch`: target-scale runs of Dirichlet(1) mixtures (the paper's softmax-of-uniform-logits
  sampler as an option); recommends the best observed.
- `GPEI`: single-fidelity GP-EI at the target: the same surrogate on phi(r) only, the same pools and
  polish, 5 initial Dirichlet(1) runs; only target observations are used.
- `Hyperband`: steps-only multi-fidelity at the target size: R = S*, eta = 3, s_max = 4, rungs on the
  100-step grid, configurations promoted by resuming their run (paying only the new steps), random
  Dirichlet(1) proposals; recommends the best observed at the largest rung reached.

All are stateless: the state (e.g. Hyperband's brackets and rungs) is replayed from (seed, runs, points).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from testbeds_serving.errors import InvalidArgument

from .advisor import BUDGET_EPS, CostFn, History, MFMSAdvisor, stream
from .domains import MIN_STEPS, STEP_GRID
from .models import Point, Recommendation, RunRecord, RunRequest, StudySpec
from .simplex import clean, dirichlet, logit_sampler
from .surrogate import SurrogateOptions


def _best_observed(name: str, h: History, mask: np.ndarray) -> Recommendation:
    if not np.any(mask):
        raise InvalidArgument(f"{name}: no observation at the target size ({h.spec.target_size_m}M) yet; run "
                              "suggested configurations and observe their results first")
    idx = np.flatnonzero(mask)
    i = int(idx[np.argmin(h.y[idx])])  # first best in history order on ties
    mixture = clean(h.mixtures[i])[0]
    # No model: the prediction is the observation itself and no uncertainty is claimed.
    return Recommendation(mixture=[float(v) for v in mixture], predicted=float(h.sign * h.y[i]), sd=0.0,
                          trained_at_target=h.trained_at_target(mixture))


class RandomSearch:
    """Random mixtures trained at the target size and steps."""

    name = "random"

    def __init__(self, *, seed: int, cost: CostFn, sampler: Literal["dirichlet", "logit"] = "dirichlet") -> None:
        self.seed, self.cost, self.sampler = int(seed), cost, sampler

    def suggest(self, spec: StudySpec, points: list[Point], runs: list[RunRecord], q: int = 1) -> list[RunRequest]:
        """q fresh random mixtures at the target (as many as the budget left pays for)."""
        h = History(spec, points, runs, self.cost)
        rng = stream(self.seed, self.name, len(runs))
        q = max(1, int(q))
        mixtures = logit_sampler(rng, q) if self.sampler == "logit" else dirichlet(rng, q, 1.0)
        out: list[RunRequest] = []
        left = h.remaining
        for mix in mixtures:
            if h.target_cost > left + BUDGET_EPS:
                break
            req, price = h.request(mix, spec.target_size_m, spec.target_steps,
                                   reason=f"random search ({self.sampler}) at the target")
            out.append(req)
            left -= price
        return out

    def recommend(self, spec: StudySpec, points: list[Point], runs: list[RunRecord]) -> Recommendation:
        """The best observation at the target size and steps."""
        h = History(spec, points, runs, self.cost)
        return _best_observed(self.name, h, h.at_target())


class GPEI(MFMSAdvisor):
    """Single-fidelity GP-EI at the target: MFMS machinery with one fidelity and no size/steps features."""

    name = "gp_ei"

    def __init__(self, *, seed: int, cost: CostFn, phi: Literal["identity", "sqrt"] = "identity",
                 kernel: Literal["rbf", "matern"] = "rbf", n_init: int = 5, stage2: int = 50, n_polish: int = 3,
                 n_restarts: int = 1, min_distance: float = 0.02) -> None:
        super().__init__(seed=seed, cost=cost, phi=phi, kernel=kernel, n_init=n_init, stage2=stage2,
                         n_polish=n_polish, n_restarts=n_restarts, min_distance=min_distance)
        self.options = SurrogateOptions(phi=phi, kernel=kernel, n_restarts=n_restarts, fidelity=False)

    def _training_mask(self, h: History) -> np.ndarray:
        return h.at_target()

    def _fidelities(self, spec: StudySpec) -> list[tuple[int, int]]:
        return [(spec.target_size_m, spec.target_steps)]

    def _exponent(self, t: int) -> float:
        return 0.0  # one fidelity, one price: plain EI

    def _initial(self, h: History, q: int) -> list[RunRequest] | None:
        """Dirichlet(1) runs at the target until `n_init` distinct mixtures were observed there."""
        spec = h.spec
        seen = len(np.unique(h.group[h.at_target()]))
        if seen >= self.n_init:
            return None
        out: list[RunRequest] = []
        left = h.remaining
        for i, mix in enumerate(dirichlet(stream(self.seed, "gp_ei-init"), self.n_init + 16, 1.0)):
            if len(out) >= min(q, self.n_init - seen) and out:
                break
            if h.index.find(mix) is not None:
                continue
            if h.target_cost > left + BUDGET_EPS:
                break
            req, price = h.request(mix, spec.target_size_m, spec.target_steps,
                                   reason=f"initial design {i + 1}/{self.n_init} at the target")
            out.append(req)
            left -= price
        return out


@dataclass(frozen=True)
class Bracket:
    """One Hyperband bracket: rung i trains n[i] configurations to steps[i]."""

    s: int
    n: tuple[int, ...]
    steps: tuple[int, ...]

    @property
    def budget_steps(self) -> int:
        """Steps trained by the whole bracket when promotions resume their runs (pay new steps only)."""
        prev = (0,) + self.steps[:-1]
        return int(sum(n * (s - p) for n, s, p in zip(self.n, self.steps, prev)))


def hyperband_brackets(R: int, eta: int = 3, s_max: int = 4, grid: int = STEP_GRID,
                       min_steps: int = MIN_STEPS) -> list[Bracket]:
    """Brackets s = s_max..0: n_s = ceil((s_max+1)/(s+1) eta^s) configurations at R eta^-s steps (nearest
    multiple of `grid`, at least `min_steps`), successive halving keeping floor(n/eta) at eta times
    the steps; the last rung is R itself."""
    out = []
    for s in range(s_max, -1, -1):
        n = [math.ceil((s_max + 1) / (s + 1) * eta ** s)]
        steps = []
        for i in range(s + 1):
            if i > 0:
                n.append(n[-1] // eta)
            raw = R * float(eta) ** (i - s)
            steps.append(R if i == s else max(min_steps, math.floor(raw / grid + 0.5) * grid))
        out.append(Bracket(s, tuple(n), tuple(steps)))
    return out


class Hyperband:
    """Steps-only Hyperband at the target size with random proposals (brackets cycle s_max..0)."""

    name = "hyperband"

    def __init__(self, *, seed: int, cost: CostFn, eta: int = 3, s_max: int = 4) -> None:
        self.seed, self.cost, self.eta, self.s_max = int(seed), cost, eta, s_max

    def _values(self, h: History) -> dict[tuple[int, int], dict[int, float]]:
        """(mixture group, size) -> {steps: internal value} (the last observation wins)."""
        out: dict[tuple[int, int], dict[int, float]] = {}
        for g, n, s, y in zip(h.group.tolist(), h.sizes.tolist(), h.steps.tolist(), h.y.tolist()):
            out.setdefault((g, int(n)), {})[int(s)] = y
        return out

    def suggest(self, spec: StudySpec, points: list[Point], runs: list[RunRecord], q: int = 1) -> list[RunRequest]:
        """The next q jobs of the Hyperband schedule, replayed from the runs: new configurations at a
        bracket's first rung, or promotions (resumes) once a rung is complete. A bracket waiting on
        results is skipped for the next one; nothing that the budget left cannot pay for."""
        h = History(spec, points, runs, self.cost)
        q = max(1, int(q))
        size, R = spec.target_size_m, spec.target_steps
        brackets = hyperband_brackets(R, self.eta, self.s_max)
        values = self._values(h)
        out: list[RunRequest] = []
        left = h.remaining
        k = 0
        while len(out) < q:
            b = brackets[k % len(brackets)]
            configs = dirichlet(stream(self.seed, self.name, k), b.n[0], 1.0)
            members = list(range(b.n[0]))
            scores: dict[int, float] = {}
            for i, steps in enumerate(b.steps):
                if i > 0:  # successive halving: the best of the previous rung (ties: earlier config)
                    previous = scores
                    members = sorted(members, key=lambda c: (previous[c], c))[: b.n[i]]
                scores = {}
                waiting: list[int] = []
                for c in members:
                    group = h.index.find(configs[c])
                    run = h.longest_run(group, size)
                    obs = values.get((group, size), {}) if group is not None else {}
                    if run is not None and run.steps >= steps and obs:
                        at = [s for s in obs if s <= steps]
                        scores[c] = obs[max(at)] if at else obs[min(obs)]
                    else:
                        waiting.append(c)
                if waiting:
                    for c in waiting:
                        if len(out) >= q or h.price(configs[c], size, steps) is None:
                            continue
                        price = h.price(configs[c], size, steps)
                        assert price is not None
                        if price[0] > left + BUDGET_EPS:
                            return out
                        req, paid = h.request(configs[c], size, steps,
                                              reason=f"hyperband bracket {k} (s={b.s}), rung {i}: {steps} steps")
                        out.append(req)
                        left -= paid
                    break
            k += 1
        return out

    def recommend(self, spec: StudySpec, points: list[Point], runs: list[RunRecord]) -> Recommendation:
        """The best observation at the largest number of steps reached at the target size."""
        h = History(spec, points, runs, self.cost)
        at_size = h.sizes == spec.target_size_m
        if not np.any(at_size):
            return _best_observed(self.name, h, at_size)
        top = h.steps[at_size].max()
        return _best_observed(self.name, h, at_size & (h.steps == top))
