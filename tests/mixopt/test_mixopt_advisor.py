"""MFMS-GP advisor: valid and budget-aware suggestions, determinism, recommendations, and a small
end-to-end study on an analytic objective where it beats random search on cost.

The objective is a data-mixing/scaling-law toy of the shipped simulator's form (design note §4) with
the StackExchange-like mixture term: its optimum at 1B, (0, .825, .175, 0, 0), moves with scale.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import json
import math

import numpy as np
import pytest
from testbeds_mixopt import surrogate
from testbeds_mixopt.advisor import History, MFMSAdvisor, fresh_rows, make_method
from testbeds_mixopt.domains import checkpoints_of, default_direction, tokens_per_step
from testbeds_mixopt.models import Point, RunRecord, RunRequest, StudySpec
from testbeds_serving.errors import InvalidArgument
from threadpoolctl import threadpool_limits

C = np.array([0.021, 0.383, 0.153, 0.045, 0.100])
LAM = np.array([1.20, 0.92, 1.37, 1.09, 0.78])
GAMMA = 0.48


def cost(size_m: float, steps: int) -> float:
    """6ND in target-run units, the paper's token layout."""
    return (size_m / 1000) * steps * tokens_per_step(size_m) / (19_500 * 2**20)


def true_value(mix: np.ndarray, size_m: float, steps: int) -> np.ndarray:
    n = size_m / 1000
    d = steps * tokens_per_step(size_m) / (19_500 * 2**20)
    mix = np.atleast_2d(mix)
    return 0.45 + 0.3 * n**-0.3 + 0.1 * d**-0.3 + n**0.1 * (C * np.exp(-LAM * n**-GAMMA * mix)).sum(axis=1)


def optimum(size_m: float, steps: int) -> tuple[np.ndarray, float]:
    """Water-filling: r_j = max(0, ln(c_j l_j / mu) / l_j), mu by bisection so that sum r = 1."""
    lam = LAM * (size_m / 1000) ** -GAMMA
    lo, hi = 1e-12, float((C * lam).max())
    for _ in range(200):
        mu = math.sqrt(lo * hi)
        r = np.maximum(0.0, np.log(C * lam / mu) / lam)
        lo, hi = (mu, hi) if r.sum() > 1 else (lo, mu)
    r = r / r.sum()
    return r, float(true_value(r, size_m, steps)[0])


class ToyStudy:
    """The study loop of the lead's harness in miniature: runs, resumes, free checkpoints, noise keyed
    by (seed, run) so a value at a step does not depend on whether the run continues."""

    def __init__(self, spec: StudySpec, noise: float = 0.005) -> None:
        self.spec, self.noise = spec, noise
        self.runs: list[RunRecord] = []
        self.points: list[Point] = []

    def value(self, mix: list[float], size_m: int, steps: int, run_id: int) -> float:
        n = size_m / 1000
        d = steps * tokens_per_step(size_m) / (19_500 * 2**20)
        offset = np.random.default_rng([self.spec.seed, run_id]).standard_normal() * self.noise * n**-0.35
        jitter = np.random.default_rng([self.spec.seed, run_id, steps]).standard_normal() * 0.001
        sign = 1.0 if (self.spec.direction or default_direction(self.spec.metric)) == "minimize" else -1.0
        return sign * float(true_value(np.array(mix), size_m, steps)[0] + offset * d**-0.25 + jitter)

    def apply(self, req: RunRequest) -> float:
        if req.resume_run is not None:
            run = self.runs[req.resume_run]
            already, price = run.steps, cost(req.size_m, req.steps) - cost(req.size_m, run.steps)
            run.steps, run.cost = req.steps, run.cost + price
        else:
            already, price = 0, cost(req.size_m, req.steps)
            run = RunRecord(run_id=len(self.runs), mixture=req.mixture, size_m=req.size_m, steps=req.steps,
                            cost=price)
            self.runs.append(run)
        for s in checkpoints_of(req.steps, already):
            self.points.append(Point(run_id=run.run_id, mixture=run.mixture, size_m=req.size_m, steps=s,
                                     value=self.value(run.mixture, req.size_m, s, run.run_id),
                                     checkpoint=s != req.steps))
        return price

    @property
    def spent(self) -> float:
        return sum(r.cost for r in self.runs)


def cost_to_target(method_name: str, spec: StudySpec, cap: float, q: int = 1) -> float:
    """Cost until the method's own recommendation is within 1% of the optimum (noise-free), plus one
    target run if it was never trained there; inf if the cap is reached first."""
    method = make_method(method_name, seed=spec.seed, cost=cost)
    study = ToyStudy(spec)
    f_star = optimum(spec.target_size_m, spec.target_steps)[1]
    while study.spent < cap:
        reqs = method.suggest(spec, study.points, study.runs, q=q)
        if not reqs:
            break
        for req in reqs:
            study.apply(req)
        rec = method.recommend(spec, study.points, study.runs)
        if true_value(np.array(rec.mixture), spec.target_size_m, spec.target_steps)[0] <= 1.01 * f_star:
            return study.spent + (0.0 if rec.trained_at_target else cost(spec.target_size_m, spec.target_steps))
    return math.inf


def drive(method: MFMSAdvisor, study: ToyStudy, n: int, q: int = 1) -> list[RunRequest]:
    out = []
    for _ in range(n):
        reqs = method.suggest(study.spec, study.points, study.runs, q=q)
        for req in reqs:
            study.apply(req)
        out += reqs
    return out


def _on_simplex(req: RunRequest) -> bool:
    m = np.asarray(req.mixture)
    return bool(np.all(m >= 0) and abs(m.sum() - 1.0) <= 1e-9)


SPEC = StudySpec(metric="loss_stackexchange", budget=20.0, seed=1)


def test_the_toy_objective_has_its_optimum_where_water_filling_says() -> None:
    r, f = optimum(1000, 19_500)
    np.testing.assert_allclose(r, [0, 0.825, 0.175, 0, 0], atol=2e-3)
    draws = np.random.default_rng(0).dirichlet(np.ones(5), 20_000)
    assert true_value(draws, 1000, 19_500).min() >= f - 1e-12
    assert np.mean(true_value(draws, 1000, 19_500) <= 1.01 * f) < 3e-3


def test_the_initial_design_is_cheap_runs_at_the_smallest_sizes() -> None:
    with threadpool_limits(1):
        reqs = drive(MFMSAdvisor(seed=0, cost=cost), ToyStudy(SPEC), 8)
    assert len(reqs) == 8
    assert {r.size_m for r in reqs} == {20, 60}
    assert all(r.reason.startswith("initial design") for r in reqs)
    np.testing.assert_allclose(reqs[0].mixture, 0.2)
    assert sum(cost(r.size_m, r.steps) for r in reqs) < 0.2


def test_suggestions_are_exact_mixtures_at_candidate_fidelities() -> None:
    study = ToyStudy(SPEC)
    with threadpool_limits(1):
        method = MFMSAdvisor(seed=0, cost=cost)
        drive(method, study, 10)
        batch = method.suggest(SPEC, study.points, study.runs, q=4)
    assert len(batch) == 4
    assert all(_on_simplex(r) for r in batch)
    fids = {(n, s) for n in SPEC.sizes_m for s in SPEC.steps_options}
    assert all((r.size_m, r.steps) in fids for r in batch)
    keys = {(tuple(np.round(r.mixture, 9)), r.size_m) for r in batch}
    assert len(keys) == 4  # the kriging believer never repeats a run within a batch
    assert all("EI/cost" in r.reason for r in batch)
    json.dumps([r.model_dump() for r in batch])


def test_the_same_seed_gives_the_same_suggestions_from_a_reloaded_study() -> None:
    study = ToyStudy(SPEC)
    with threadpool_limits(1):
        drive(MFMSAdvisor(seed=5, cost=cost), study, 9)
        first = MFMSAdvisor(seed=5, cost=cost).suggest(SPEC, study.points, study.runs, q=2)
        surrogate._HYPER_CACHE.clear()  # as after a restart: nothing carried over but the history
        second = MFMSAdvisor(seed=5, cost=cost).suggest(SPEC, list(study.points), list(study.runs), q=2)
        other = MFMSAdvisor(seed=6, cost=cost).suggest(SPEC, study.points, study.runs, q=2)
    assert [r.model_dump() for r in first] == [r.model_dump() for r in second]
    assert [r.model_dump() for r in first] != [r.model_dump() for r in other]


def test_the_recommendation_is_an_observed_mixture_with_its_prediction_at_the_target() -> None:
    study = ToyStudy(SPEC)
    with threadpool_limits(1):
        method = MFMSAdvisor(seed=0, cost=cost)
        drive(method, study, 9)
        rec = method.recommend(SPEC, study.points, study.runs)
    observed = np.array([r.mixture for r in study.runs])
    assert np.min(np.abs(observed - np.array(rec.mixture)).max(axis=1)) < 1e-12
    assert rec.trained_at_target is False
    assert rec.sd > 0 and math.isfinite(rec.predicted)
    json.dumps(rec.model_dump())


def test_a_maximised_metric_is_recommended_at_its_largest_prediction() -> None:
    spec = StudySpec(metric="acc_hellaswag", budget=20.0, seed=1)
    study = ToyStudy(spec)  # values negated: the best accuracy is the toy's lowest loss
    with threadpool_limits(1):
        method = MFMSAdvisor(seed=0, cost=cost)
        drive(method, study, 12)
        rec = method.recommend(spec, study.points, study.runs)
        h = History(spec, study.points, study.runs, cost)
        model, observed, scale = method._fit(h)  # type: ignore[misc]
        mu, _ = method._predict(model, scale, observed, 1000, 19_500)
    assert rec.predicted == pytest.approx(float(-mu.min()))
    assert rec.predicted < 0  # raw units: a negated loss, not the internal minimised value


def test_recommending_without_observations_says_what_to_do() -> None:
    with pytest.raises(InvalidArgument, match="no observations"):
        MFMSAdvisor(seed=0, cost=cost).recommend(SPEC, [], [])


def test_nothing_is_suggested_beyond_the_budget_and_the_last_run_confirms_at_the_target() -> None:
    spec = StudySpec(metric="loss_stackexchange", budget=1.2, seed=1)
    study = ToyStudy(spec)
    with threadpool_limits(1):
        method = MFMSAdvisor(seed=0, cost=cost)
        reqs: list[RunRequest] = []
        for _ in range(200):
            batch = method.suggest(spec, study.points, study.runs)
            if not batch:
                break
            for req in batch:
                if req.reason.startswith("confirmation"):
                    rec = method.recommend(spec, study.points, study.runs)
                    assert not rec.trained_at_target
                    np.testing.assert_allclose(req.mixture, rec.mixture, atol=1e-12)
                before = study.spent
                price = study.apply(req)
                assert price <= spec.budget - before + 1e-9
            reqs += batch
    assert study.spent <= spec.budget + 1e-9
    confirmations = [r for r in reqs if r.reason.startswith("confirmation")]
    assert len(confirmations) == 1
    assert (confirmations[0].size_m, confirmations[0].steps) == (1000, 19_500)
    # Until the confirmation, the method held back its cost; afterwards it spends what is left.
    k = reqs.index(confirmations[0])
    assert sum(cost(r.size_m, r.steps) for r in reqs[:k]) <= spec.budget - 1.0 + 1e-9
    assert spec.budget - study.spent < 0.01


def test_a_shorter_run_of_the_same_mixture_is_resumed_at_its_increment() -> None:
    mix = [0.0, 0.6, 0.4, 0.0, 0.0]
    runs = [RunRecord(run_id=0, mixture=mix, size_m=60, steps=6_000, cost=cost(60, 6_000))]
    points = [Point(run_id=0, mixture=mix, size_m=60, steps=6_000, value=1.0)]
    h = History(SPEC, points, runs, cost)
    assert h.price(np.array(mix), 60, 6_000) is None
    price = h.price(np.array(mix), 60, 19_500)
    assert price is not None and price[1] == 0
    assert price[0] == pytest.approx(cost(60, 19_500) - cost(60, 6_000))
    req, paid = h.request(np.array(mix) + 1e-12, 60, 12_000, reason="test")
    assert req.resume_run == 0 and paid == pytest.approx(cost(60, 12_000) - cost(60, 6_000))
    assert h.price(np.array(mix), 60, 12_000) is None  # now pending in this batch
    assert h.remaining == pytest.approx(SPEC.budget - cost(60, 6_000))


def test_pool_rows_are_distinct_and_new() -> None:
    pool = np.vstack([np.eye(5), np.eye(5), [[0.2] * 5]])
    seen = np.array([[0.0, 0.0, 0.0, 0.0, 1.0], [0.2 + 1e-10, 0.2, 0.2, 0.2, 0.2 - 1e-10]])
    np.testing.assert_array_equal(fresh_rows(pool, seen), np.eye(5)[:4])
    assert len(fresh_rows(pool, np.zeros((0, 5)))) == 6


def test_unknown_methods_are_rejected_with_the_valid_names() -> None:
    assert {make_method(n, seed=0, cost=cost).name for n in ("mfms", "random", "gp_ei", "hyperband")} == {
        "mfms", "random", "gp_ei", "hyperband"}
    with pytest.raises(InvalidArgument, match="mfms, random, gp_ei, hyperband"):
        make_method("smac", seed=0, cost=cost)


def test_the_advisor_reaches_a_near_optimum_cheaper_than_random_search() -> None:
    spec = StudySpec(metric="loss_stackexchange", budget=5.0, seed=1)
    with threadpool_limits(1):
        ours = cost_to_target("mfms", spec, cap=5.0)
    random = cost_to_target("random", spec, cap=5.0)
    assert ours < 2.0  # a fraction of the exploration at small scale, plus at most one target run
    assert ours < random
