"""MFMS-GP: multi-fidelity, multi-scale BO of data mixtures (design note mixopt.md §2), and the common
`Method` interface the study loop and the MCP server call (`make_method`).

Each `suggest` rebuilds everything from (seed, spec, points, runs): the study may be reloaded from
disk between calls. Only the GP hyperparameter fits are cached, by content (surrogate.py).

One suggestion:
1. Fewer than `n_init` runs: a space-filling initial design of cheap runs at the two smallest sizes.
2. Fit the surrogate to every observation (free checkpoints included) on x = (phi(r), u, v).
3. Stage 1: EI at the target fidelity over a pool of ~2,000 mixtures (simplex.candidate_pool).
4. Stage 2: the top `stage2` mixtures, plus the best observed ones (which can be resumed), at every
   candidate fidelity (spec.sizes_m x spec.steps_options), scored by EI / cost^a_t, a_t = 0.99^t,
   with y+ = best posterior mean over observed mixtures at that fidelity (or the paper's global best).
   A run already trained to those steps is not a candidate; a shorter one is resumed at its increment.
5. SLSQP polishes the best few (mixture, fidelity) pairs; a batch of q grows by kriging believer.
6. Budget: nothing costing more than what is left, and the cost of confirming the recommended mixture
   at the target is held back; once nothing else fits, the confirmation run is the suggestion.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
from testbeds_serving.errors import InvalidArgument

from .domains import N_DOMAINS, default_direction
from .models import Point, Recommendation, RunRecord, RunRequest, StudySpec
from .simplex import MixtureIndex, candidate_pool, clean, maximin_design, polish
from .surrogate import (
    FidelityScale,
    Surrogate,
    SurrogateOptions,
    encode,
    expected_improvement,
    fit_surrogate,
)

CostFn = Callable[[float, int], float]
# Budgets are sums of floats: a run costing exactly what is left must still fit.
BUDGET_EPS = 1e-9
METHOD_NAMES: tuple[str, ...] = ("mfms", "random", "gp_ei", "hyperband")


class Method(Protocol):
    """What the study loop calls. `points` are raw metric values (the method handles the direction)."""

    name: str

    def suggest(self, spec: StudySpec, points: list[Point], runs: list[RunRecord], q: int = 1) -> list[RunRequest]:
        """Up to q runs to perform next (fewer, or none, when the budget does not allow more)."""
        ...

    def recommend(self, spec: StudySpec, points: list[Point], runs: list[RunRecord]) -> Recommendation:
        """The best mixture at the target size and steps so far."""
        ...


def make_method(name: str, *, seed: int, cost: CostFn) -> Method:
    """A method by name: "mfms" (ours), "random", "gp_ei" or "hyperband". `cost(size_m, steps)` is a
    run's cost from scratch in target-run units."""
    from .baselines import (  # baselines build on this module
        GPEI,
        Hyperband,
        RandomSearch,
    )

    factories: dict[str, Callable[[], Method]] = {
        "mfms": lambda: MFMSAdvisor(seed=seed, cost=cost),
        "random": lambda: RandomSearch(seed=seed, cost=cost),
        "gp_ei": lambda: GPEI(seed=seed, cost=cost),
        "hyperband": lambda: Hyperband(seed=seed, cost=cost),
    }
    if name not in factories:
        raise InvalidArgument(f"unknown method {name!r}; choose one of {', '.join(METHOD_NAMES)}")
    return factories[name]()


def stream(seed: int, label: str, *keys: int) -> np.random.Generator:
    """A generator keyed by stable integers (never Python's salted hash)."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), zlib.crc32(label.encode()), *map(int, keys)]))


def direction_sign(spec: StudySpec) -> float:
    """+1 when minimising, -1 when maximising: methods minimise sign * value."""
    return 1.0 if (spec.direction or default_direction(spec.metric)) == "minimize" else -1.0


class History:
    """A study's observations and runs, indexed for the methods: internal values to minimise, distinct
    mixtures, run lookup by (mixture, size), resume prices and the budget left."""

    def __init__(self, spec: StudySpec, points: Sequence[Point], runs: Sequence[RunRecord], cost: CostFn) -> None:
        self.spec, self.cost, self.runs = spec, cost, list(runs)
        self.sign = direction_sign(spec)
        self.index = MixtureIndex()
        n = len(points)
        self.mixtures = np.array([p.mixture for p in points], dtype=float).reshape(n, -1) if n else np.zeros((0, N_DOMAINS))
        self.sizes = np.array([p.size_m for p in points], dtype=float)
        self.steps = np.array([p.steps for p in points], dtype=float)
        self.y = self.sign * np.array([p.value for p in points], dtype=float)
        self.group = np.array([self.index.add(m) for m in self.mixtures], dtype=int)
        self._runs_at: dict[tuple[int, int], list[RunRecord]] = {}
        for run in self.runs:
            self._runs_at.setdefault((self.index.add(run.mixture), int(run.size_m)), []).append(run)
        self.spent = float(sum(r.cost for r in self.runs))
        self.remaining = float(spec.budget) - self.spent
        self._cost_cache: dict[tuple[float, int], float] = {}
        # (group, size) -> steps already asked for in this batch, so a batch never repeats a run
        self.pending: dict[tuple[int, int], int] = {}

    def run_cost(self, size_m: float, steps: int) -> float:
        key = (float(size_m), int(steps))
        if key not in self._cost_cache:
            self._cost_cache[key] = float(self.cost(float(size_m), int(steps)))
        return self._cost_cache[key]

    @property
    def target_cost(self) -> float:
        return self.run_cost(self.spec.target_size_m, self.spec.target_steps)

    def longest_run(self, group: int | None, size_m: int) -> RunRecord | None:
        if group is None:
            return None
        runs = self._runs_at.get((group, int(size_m)), [])
        return max(runs, key=lambda r: (r.steps, -r.run_id)) if runs else None

    def price(self, mixture: np.ndarray, size_m: int, steps: int, group: int | None = -1) -> tuple[float, int | None] | None:
        """(cost, run to resume) of training `mixture` at size_m to `steps`, or None when a run of it at
        that size already reached those steps (nothing to learn, nothing to pay)."""
        if group == -1:
            group = self.index.find(mixture)
        if group is not None and self.pending.get((group, int(size_m)), -1) >= steps:
            return None
        run = self.longest_run(group, size_m)
        if run is None:
            return self.run_cost(size_m, steps), None
        if run.steps >= steps:
            return None
        return self.run_cost(size_m, steps) - self.run_cost(size_m, run.steps), run.run_id

    def request(self, mixture: np.ndarray, size_m: int, steps: int, reason: str) -> tuple[RunRequest, float]:
        """The RunRequest (a resume where a shorter run of this mixture and size exists) and its price."""
        group = self.index.find(mixture)
        run = self.longest_run(group, size_m)
        if run is not None and run.steps < steps:
            mix = list(map(float, run.mixture))
            req = RunRequest(mixture=mix, size_m=int(size_m), steps=int(steps), resume_run=run.run_id, reason=reason)
            price = self.run_cost(size_m, steps) - self.run_cost(size_m, run.steps)
        else:
            req = RunRequest(mixture=[float(v) for v in clean(mixture)[0]], size_m=int(size_m), steps=int(steps),
                             reason=reason)
            price = self.run_cost(size_m, steps)
        key = (self.index.add(np.asarray(req.mixture)), int(size_m))
        self.pending[key] = max(self.pending.get(key, 0), int(steps))
        return req, price

    def near_a_run(self, mixtures: np.ndarray, size_m: int, min_l1: float) -> np.ndarray:
        """For each row: is it within L1 distance `min_l1` of a mixture already run (or asked for in this
        batch) at `size_m`? Such a mixture should be resumed (if equal) or left alone, not started anew."""
        groups = {g for g, n in self._runs_at if n == int(size_m)} | {g for g, n in self.pending if n == int(size_m)}
        if not groups or min_l1 <= 0:
            return np.zeros(len(mixtures), dtype=bool)
        ran = np.array([self.index.items[g] for g in sorted(groups)])
        return (np.abs(mixtures[:, None, :] - ran[None, :, :]).sum(axis=2) < min_l1).any(axis=1)

    def trained_at_target(self, mixture: np.ndarray) -> bool:
        run = self.longest_run(self.index.find(mixture), self.spec.target_size_m)
        return run is not None and run.steps >= self.spec.target_steps

    def at_target(self) -> np.ndarray:
        """Mask of observations at exactly the target size and steps."""
        return (self.sizes == self.spec.target_size_m) & (self.steps == self.spec.target_steps)


def fresh_rows(pool: np.ndarray, seen: np.ndarray, tol: float = 1e-8) -> np.ndarray:
    """The distinct rows of `pool` (first occurrences, in order) not within `tol` of any row of `seen`."""
    _, first = np.unique(pool, axis=0, return_index=True)
    pool = pool[np.sort(first)]
    if len(seen) == 0:
        return pool
    near = np.zeros(len(pool), dtype=bool)
    for start in range(0, len(seen), 256):  # bounded memory for long studies
        block = seen[start:start + 256]
        near |= (np.abs(pool[:, None, :] - block[None, :, :]).max(axis=2) <= tol).any(axis=1)
    return pool[~near]


@dataclass
class _Candidate:
    mixture: np.ndarray
    size_m: int
    steps: int
    ei: float
    price: float
    score: float
    fresh: bool  # a mixture never run (SLSQP may move it)


class MFMSAdvisor:
    """Our method (see the module docstring). Options beyond the defaults are for ablations."""

    name = "mfms"

    def __init__(self, *, seed: int, cost: CostFn, phi: Literal["identity", "sqrt"] = "identity",
                 kernel: Literal["rbf", "matern"] = "rbf", incumbent: Literal["fidelity", "global"] = "fidelity",
                 cost_decay: float = 0.99, n_init: int = 8, stage2: int = 50, n_polish: int = 3,
                 n_restarts: int = 1, min_distance: float = 0.02) -> None:
        self.seed, self.cost = int(seed), cost
        # A new run closer than this (L1) to a mixture already run at its size is not proposed: a
        # near-copy teaches little that resuming or re-reading the old run would not, and EI with a noisy
        # objective otherwise keeps re-sampling 1e-7 away from its incumbent.
        self.min_distance = min_distance
        self.options = SurrogateOptions(phi=phi, kernel=kernel, n_restarts=n_restarts)
        self.incumbent, self.cost_decay = incumbent, cost_decay
        self.n_init, self.stage2, self.n_polish = n_init, stage2, n_polish

    # ---- hooks the single-fidelity baseline overrides -------------------------------------------------
    def _training_mask(self, h: History) -> np.ndarray:
        return np.ones(len(h.y), dtype=bool)

    def _fidelities(self, spec: StudySpec) -> list[tuple[int, int]]:
        fids = {(int(n), int(s)) for n in spec.sizes_m for s in spec.steps_options if s <= spec.target_steps}
        fids.add((spec.target_size_m, spec.target_steps))
        return sorted(fids)

    def _exponent(self, t: int) -> float:
        return self.cost_decay ** t

    def _initial(self, h: History, q: int) -> list[RunRequest] | None:
        """The initial design, or None once it is done: cheap full-length runs at the two smallest sizes
        (every fourth at the second), space-filling mixtures starting from the centroid."""
        spec = h.spec
        if len(h.runs) >= self.n_init and len(h.y) >= 3:
            return None
        sizes = sorted(spec.sizes_m)
        steps = max([s for s in spec.steps_options if s <= spec.target_steps] or [spec.target_steps])
        design = maximin_design(stream(self.seed, "mfms-init"), self.n_init + 16)
        out: list[RunRequest] = []
        left = h.remaining
        for i, mix in enumerate(design):
            if len(out) >= q:
                break
            size = sizes[min(1, len(sizes) - 1)] if i % 4 == 3 else sizes[0]
            if h.index.find(mix) is not None:
                continue
            price = h.run_cost(size, steps)
            if price > left + BUDGET_EPS:
                break
            req, price = h.request(mix, size, steps, reason=f"initial design {i + 1}/{self.n_init} at {size}M")
            out.append(req)
            left -= price
        return out

    # ---- model ----------------------------------------------------------------------------------------
    def _fit(self, h: History) -> tuple[Surrogate, np.ndarray, FidelityScale] | None:
        """The surrogate on the training observations, and the distinct observed mixtures."""
        mask = self._training_mask(h)
        if not np.any(mask):
            return None
        scale = FidelityScale.for_spec(h.spec)
        X = encode(h.mixtures[mask], h.sizes[mask], h.steps[mask], scale=scale, options=self.options)
        model = fit_surrogate(X, h.y[mask], options=self.options, seed=self.seed)
        groups = np.unique(h.group[mask])
        observed = np.array([h.index.items[g] for g in groups])
        return model, observed, scale

    def _predict(self, model: Surrogate, scale: FidelityScale, mixtures: np.ndarray, size_m: float,
                 steps: float) -> tuple[np.ndarray, np.ndarray]:
        return model.predict(encode(mixtures, size_m, steps, scale=scale, options=self.options))

    def recommend(self, spec: StudySpec, points: list[Point], runs: list[RunRecord]) -> Recommendation:
        """argmin over observed mixtures of the posterior mean at (target size, target steps), preferring
        mixtures already trained at the target unless another is better by two standard deviations."""
        h = History(spec, points, runs, self.cost)
        fitted = self._fit(h)
        if fitted is None:
            raise InvalidArgument(f"{self.name}: no observations to recommend from yet; run suggested configurations "
                                  "and observe their results first")
        model, observed, scale = fitted
        mu, sd = self._predict(model, scale, observed, spec.target_size_m, spec.target_steps)
        best = int(np.argmin(mu))
        # Once mixtures have been trained at the target, prefer the best of those unless an untried one is
        # better even pessimistically (mean + 2 sd): extrapolation from small runs is often overconfident,
        # and a confirmed recommendation needs no confirmation run.
        confirmed = [i for i, m in enumerate(observed) if h.trained_at_target(m)]
        if confirmed and best not in confirmed:
            tried = min(confirmed, key=lambda i: mu[i])
            if not mu[best] + 2.0 * sd[best] < mu[tried]:
                best = tried
        mixture = clean(observed[best])[0]
        return Recommendation(mixture=[float(v) for v in mixture], predicted=float(h.sign * mu[best]),
                              sd=float(sd[best]), trained_at_target=h.trained_at_target(mixture))

    # ---- suggestion -----------------------------------------------------------------------------------
    def suggest(self, spec: StudySpec, points: list[Point], runs: list[RunRecord], q: int = 1) -> list[RunRequest]:
        """Up to q runs maximising EI per unit cost (see the module docstring); [] when no run fits the
        budget left."""
        q = max(1, int(q))
        h = History(spec, points, runs, self.cost)
        if h.remaining <= BUDGET_EPS:
            return []
        initial = self._initial(h, q)
        if initial is not None:
            return initial
        fitted = self._fit(h)
        if fitted is None:
            return []
        model, observed, scale = fitted
        t = len(runs)
        a = self._exponent(t)
        rng = stream(self.seed, self.name, t)
        fids = self._fidelities(spec)
        target = (spec.target_size_m, spec.target_steps)

        mu_obs, _ = self._predict(model, scale, observed, *target)
        order = np.argsort(mu_obs, kind="stable")
        rec = observed[order[0]]
        reserve = 0.0
        if not h.trained_at_target(rec):
            conf = h.price(rec, *target)
            if conf is not None and conf[0] <= h.remaining + BUDGET_EPS:
                reserve = conf[0]

        # Stage 1: EI at the target over the pool (local draws around the 5 best observed mixtures),
        # without repeats or mixtures already run: sparse and local draws often land exactly on a
        # vertex, and a top-k full of copies of one mixture would leave nothing to suggest.
        pool = fresh_rows(candidate_pool(rng, observed[order[:5]]), np.array(h.index.items).reshape(-1, N_DOMAINS))
        crowded = np.ones(len(pool), dtype=bool)
        for n in sorted({n for n, _ in fids}):
            crowded &= h.near_a_run(pool, n, self.min_distance)
        pool = pool[~crowded]
        best_t = self._incumbent(h, mu_obs)
        mu_p, sd_p = self._predict(model, scale, pool, *target)
        ei_p = expected_improvement(mu_p, sd_p, best_t)
        top = pool[np.argsort(-ei_p, kind="stable")[: self.stage2]]
        mixtures = np.vstack([top, observed[order[:10]]])
        groups: list[int | None] = [h.index.find(m) for m in mixtures]

        out: list[RunRequest] = []
        left = h.remaining
        for _ in range(q):
            cands = self._score(model, scale, h, observed, mixtures, groups, fids, a)
            cands = self._polished(model, scale, h, observed, cands, a)
            affordable = [c for c in cands if c.price <= left - reserve + BUDGET_EPS]
            if not affordable:
                if reserve > 0 and not any(r.size_m == target[0] and r.steps >= target[1] and
                                           np.allclose(r.mixture, rec, atol=1e-8) for r in out):
                    req, price = h.request(rec, *target, reason="confirmation run of the recommended mixture "
                                           "at the target (budget nearly spent)")
                    out.append(req)
                break
            pick = max(affordable, key=lambda c: c.score)
            req, price = h.request(pick.mixture, pick.size_m, pick.steps,
                                   reason=f"EI/cost^{a:.2f} = {pick.score:.4g}: EI {pick.ei:.4g} at {pick.size_m}M, "
                                          f"{pick.steps} steps, cost {pick.price:.4g}")
            out.append(req)
            left -= price
            if len(out) < q:  # kriging believer: pretend the pick returned its posterior mean
                x = encode(np.asarray(req.mixture)[None, :], pick.size_m, pick.steps, scale=scale, options=self.options)
                model = model.with_points(x, model.predict(x)[0])
                mixtures = np.vstack([mixtures, np.asarray(req.mixture)[None, :]])
                groups = [h.index.find(m) for m in mixtures]  # the pick now has a group: never re-picked
        return out

    def _incumbent(self, h: History, mu_at_fid: np.ndarray) -> float:
        mask = self._training_mask(h)
        if self.incumbent == "global":  # the paper's rule: best observation over all fidelities
            return float(np.min(h.y[mask]))
        return float(np.min(mu_at_fid))

    def _score(self, model: Surrogate, scale: FidelityScale, h: History, observed: np.ndarray, mixtures: np.ndarray,
               groups: list[int | None], fids: list[tuple[int, int]], a: float) -> list[_Candidate]:
        """Stage 2: every mixture at every fidelity, scored EI / price^a (runs already done skipped)."""
        m = len(mixtures)
        X = np.vstack([encode(mixtures, n, s, scale=scale, options=self.options) for n, s in fids])
        mu, sd = model.predict(X)
        Xo = np.vstack([encode(observed, n, s, scale=scale, options=self.options) for n, s in fids])
        mu_o, _ = model.predict(Xo)
        cands: list[_Candidate] = []
        fresh = np.array([g is None for g in groups])
        crowded = {n: h.near_a_run(mixtures, n, self.min_distance) & fresh for n in {n for n, _ in fids}}
        for j, (n, s) in enumerate(fids):
            best = self._incumbent(h, mu_o[j * len(observed):(j + 1) * len(observed)])
            ei = expected_improvement(mu[j * m:(j + 1) * m], sd[j * m:(j + 1) * m], best)
            for i in range(m):
                if crowded[n][i]:
                    continue
                price = h.price(mixtures[i], n, s, group=groups[i])
                if price is None or price[0] <= 0:
                    continue
                cands.append(_Candidate(mixtures[i], n, s, float(ei[i]), price[0], float(ei[i]) / price[0] ** a,
                                        groups[i] is None))
        return cands

    def _polished(self, model: Surrogate, scale: FidelityScale, h: History, observed: np.ndarray,
                  cands: list[_Candidate], a: float) -> list[_Candidate]:
        """SLSQP on the mixture of the best few new-run candidates, at their fidelity (price fixed)."""
        fresh = sorted((c for c in cands if c.fresh), key=lambda c: -c.score)
        for c in fresh[: self.n_polish]:
            mu_o, _ = self._predict(model, scale, observed, c.size_m, c.steps)
            best = self._incumbent(h, mu_o)

            def neg_ei(rows: np.ndarray, n: int = c.size_m, s: int = c.steps, y_best: float = best) -> np.ndarray:
                mu, sd = self._predict(model, scale, rows, n, s)
                return -expected_improvement(mu, sd, y_best)

            mix, val = polish(neg_ei, c.mixture[None, :], maxiter=30)
            ei = float(-val[0])
            if ei > c.ei and h.index.find(mix[0]) is None and not h.near_a_run(mix, c.size_m, self.min_distance)[0]:
                cands.append(_Candidate(mix[0], c.size_m, c.steps, ei, c.price, ei / c.price ** a, True))
        return cands
