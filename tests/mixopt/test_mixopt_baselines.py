"""Baselines: random search, single-fidelity GP-EI and steps-only Hyperband, on a small analytic
objective (a quadratic bowl in the mixture plus a learning curve in steps)."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import json

import numpy as np
import pytest
from testbeds_mixopt.advisor import make_method
from testbeds_mixopt.baselines import GPEI, Hyperband, RandomSearch, hyperband_brackets
from testbeds_mixopt.domains import checkpoints_of
from testbeds_mixopt.models import Point, RunRecord, RunRequest, StudySpec
from testbeds_serving.errors import InvalidArgument
from threadpoolctl import threadpool_limits

BEST = np.array([0.0, 0.8, 0.2, 0.0, 0.0])


def cost(size_m: float, steps: int) -> float:
    return (size_m / 1000) * steps / 19_500


def value(mix: list[float], size_m: int, steps: int) -> float:
    return 1.0 + float(np.sum((np.asarray(mix) - BEST) ** 2)) + 0.3 * (1000 / size_m) ** 0.2 + (steps / 100) ** -0.5


class Ledger:
    """Runs and points as the study loop keeps them (resumes pay the increment; checkpoints free)."""

    def __init__(self) -> None:
        self.runs: list[RunRecord] = []
        self.points: list[Point] = []

    def apply(self, req: RunRequest) -> None:
        if req.resume_run is not None:
            run = self.runs[req.resume_run]
            assert req.steps > run.steps
            already = run.steps
            run.cost += cost(req.size_m, req.steps) - cost(req.size_m, run.steps)
            run.steps = req.steps
        else:
            already = 0
            run = RunRecord(run_id=len(self.runs), mixture=req.mixture, size_m=req.size_m, steps=req.steps,
                            cost=cost(req.size_m, req.steps))
            self.runs.append(run)
        for s in checkpoints_of(req.steps, already):
            self.points.append(Point(run_id=run.run_id, mixture=run.mixture, size_m=req.size_m, steps=s,
                                     value=value(run.mixture, req.size_m, s), checkpoint=s != req.steps))

    @property
    def spent(self) -> float:
        return sum(r.cost for r in self.runs)


def _on_simplex(req: RunRequest) -> bool:
    m = np.asarray(req.mixture)
    return bool(np.all(m >= 0) and abs(m.sum() - 1.0) <= 1e-9)


SPEC = StudySpec(metric="loss_stackexchange", budget=60.0, seed=0)


def test_hyperband_brackets_for_the_full_target_run() -> None:
    brackets = hyperband_brackets(19_500, eta=3, s_max=4)
    assert [b.s for b in brackets] == [4, 3, 2, 1, 0]
    assert [b.n for b in brackets] == [(81, 27, 9, 3, 1), (34, 11, 3, 1), (15, 5, 1), (8, 2), (5,)]
    assert [b.steps for b in brackets] == [(200, 700, 2_200, 6_500, 19_500), (700, 2_200, 6_500, 19_500),
                                           (2_200, 6_500, 19_500), (6_500, 19_500), (19_500,)]
    # Steps trained when promotions resume: e.g. 81*200 + 27*500 + 9*1500 + 3*4300 + 1*13000.
    assert [b.budget_steps for b in brackets] == [69_100, 66_200, 67_500, 78_000, 97_500]
    assert sum(b.budget_steps for b in brackets) / 19_500 == pytest.approx(19.4, abs=0.01)


def test_hyperband_brackets_stay_on_the_step_grid() -> None:
    for b in hyperband_brackets(6_000, eta=3, s_max=4):
        assert all(s % 100 == 0 and 100 <= s <= 6_000 for s in b.steps)
        assert b.steps[-1] == 6_000 and list(b.steps) == sorted(b.steps)


def test_hyperband_runs_its_first_bracket_by_successive_halving_with_resumes() -> None:
    ledger = Ledger()
    method = Hyperband(seed=3, cost=cost)
    rungs = []
    for q in (81, 27, 9, 3, 1):
        batch = method.suggest(SPEC, ledger.points, ledger.runs, q=q)
        rungs.append(batch)
        before = {r.run_id: (r.steps, value(r.mixture, 1000, r.steps)) for r in ledger.runs}
        for req in batch:
            ledger.apply(req)
        if q < 81:
            # The promoted runs are the best of the previous rung.
            promoted = {req.resume_run for req in batch}
            last = max(s for s, _ in before.values())
            ranked = sorted((v, rid) for rid, (s, v) in before.items() if s == last)
            assert promoted == {rid for _, rid in ranked[:q]}
    assert [len(b) for b in rungs] == [81, 27, 9, 3, 1]
    assert [{r.steps for r in b} for b in rungs] == [{200}, {700}, {2_200}, {6_500}, {19_500}]
    assert all(r.resume_run is None for r in rungs[0])
    assert all(r.resume_run is not None for b in rungs[1:] for r in b)
    assert all(r.size_m == 1000 and _on_simplex(r) for b in rungs for r in b)
    assert ledger.spent == pytest.approx(69_100 / 19_500)
    # Then the next bracket (s = 3) starts 34 fresh configurations at 700 steps.
    nxt = method.suggest(SPEC, ledger.points, ledger.runs, q=40)
    assert len(nxt) == 40
    assert [r.steps for r in nxt[:34]] == [700] * 34 and all(r.resume_run is None for r in nxt[:34])
    assert {r.steps for r in nxt[34:]} == {2_200}  # bracket s = 2 fills the rest of the batch


def test_hyperband_one_at_a_time_replays_the_same_schedule_as_in_batches() -> None:
    batched, single = Ledger(), Ledger()
    method = Hyperband(seed=3, cost=cost)
    for req in method.suggest(SPEC, [], [], q=81) + []:
        batched.apply(req)
    for req in method.suggest(SPEC, batched.points, batched.runs, q=27):
        batched.apply(req)
    for _ in range(81 + 27):
        (req,) = method.suggest(SPEC, single.points, single.runs)
        single.apply(req)
    assert [r.model_dump() for r in single.runs] == [r.model_dump() for r in batched.runs]


def test_hyperband_recommends_the_best_at_the_largest_rung() -> None:
    ledger = Ledger()
    method = Hyperband(seed=1, cost=cost)
    for q in (81, 27):
        for req in method.suggest(SPEC, ledger.points, ledger.runs, q=q):
            ledger.apply(req)
    rec = method.recommend(SPEC, ledger.points, ledger.runs)
    at_700 = [r for r in ledger.runs if r.steps == 700]
    best = min(at_700, key=lambda r: value(r.mixture, 1000, 700))
    assert rec.mixture == pytest.approx(best.mixture)
    assert rec.predicted == pytest.approx(value(best.mixture, 1000, 700))
    assert rec.trained_at_target is False
    json.dumps(rec.model_dump())


def test_hyperband_stops_at_the_budget() -> None:
    spec = StudySpec(metric="loss_stackexchange", budget=1.0, seed=0)
    batch = Hyperband(seed=0, cost=cost).suggest(spec, [], [], q=200)
    assert sum(cost(r.size_m, r.steps) for r in batch) <= 1.0 + 1e-9
    # Bracket s=4 starts 81 runs at 200 steps; bracket s=3's 700-step runs fill what is left.
    assert len(batch) == 81 + int((1.0 - 81 * cost(1000, 200)) / cost(1000, 700))


def test_random_search_trains_uniform_mixtures_at_the_target_within_budget() -> None:
    spec = StudySpec(metric="loss_stackexchange", budget=2.5, seed=0)
    method = RandomSearch(seed=7, cost=cost)
    batch = method.suggest(spec, [], [], q=5)
    assert len(batch) == 2
    assert all(_on_simplex(r) and (r.size_m, r.steps) == (1000, 19_500) for r in batch)
    assert [r.model_dump() for r in batch] == [r.model_dump() for r in RandomSearch(seed=7, cost=cost).suggest(
        spec, [], [], q=5)]
    assert batch[0].mixture != RandomSearch(seed=8, cost=cost).suggest(spec, [], [])[0].mixture
    draws = np.array([r.mixture for r in method.suggest(StudySpec(budget=1_000.0), [], [], q=400)])
    assert np.mean(draws[:, 4] > 0.5) == pytest.approx(1 / 16, abs=0.03)  # P(r_j > 1/2) = (1/2)^4
    logits = np.array([r.mixture for r in RandomSearch(seed=7, cost=cost, sampler="logit").suggest(
        StudySpec(budget=1_000.0), [], [], q=400)])
    assert np.all(logits > 0) and np.all(np.abs(logits.sum(axis=1) - 1) <= 1e-9)


def test_random_search_recommends_its_best_target_observation() -> None:
    ledger = Ledger()
    method = RandomSearch(seed=0, cost=cost)
    with pytest.raises(InvalidArgument, match="no observation"):
        method.recommend(SPEC, [], [])
    for req in method.suggest(SPEC, [], [], q=6):
        ledger.apply(req)
    rec = method.recommend(SPEC, ledger.points, ledger.runs)
    best = min(ledger.runs, key=lambda r: value(r.mixture, 1000, 19_500))
    assert rec.mixture == pytest.approx(best.mixture)
    assert rec.trained_at_target and rec.sd == 0.0


def test_gp_ei_starts_with_five_target_runs_then_follows_ei_at_the_target() -> None:
    ledger = Ledger()
    with threadpool_limits(1):
        method = GPEI(seed=0, cost=cost)
        initial = method.suggest(SPEC, [], [], q=8)
        assert len(initial) == 5 and all(r.reason.startswith("initial design") for r in initial)
        for req in initial:
            ledger.apply(req)
        for _ in range(6):
            (req,) = method.suggest(SPEC, ledger.points, ledger.runs)
            assert (req.size_m, req.steps) == (1000, 19_500) and _on_simplex(req) and "EI" in req.reason
            ledger.apply(req)
        rec = method.recommend(SPEC, ledger.points, ledger.runs)
    first = min(value(r.mixture, 1000, 19_500) for r in ledger.runs[:5])
    assert value(rec.mixture, 1000, 19_500) < first
    assert rec.trained_at_target


def test_gp_ei_never_starts_a_near_copy_of_a_mixture_it_already_ran() -> None:
    # A noisy optimum on a vertex: EI alone would keep re-sampling it from 1e-7 away.
    ledger = Ledger()
    vertex = [0.0, 0.0, 0.0, 0.0, 1.0]
    ledger.apply(RunRequest(mixture=vertex, size_m=1000, steps=19_500))
    with threadpool_limits(1):
        method = GPEI(seed=0, cost=cost, n_init=3)
        for _ in range(7):
            for req in method.suggest(SPEC, ledger.points, ledger.runs):
                ledger.apply(req)
    mixes = np.array([r.mixture for r in ledger.runs])
    gaps = np.abs(mixes[:, None, :] - mixes[None, :, :]).sum(axis=2) + 9 * np.eye(len(mixes))
    assert len(mixes) == 8 and gaps.min() >= 0.02


def test_gp_ei_ignores_observations_away_from_the_target() -> None:
    ledger = Ledger()
    with threadpool_limits(1):
        method = GPEI(seed=0, cost=cost)
        for req in method.suggest(SPEC, [], [], q=6):
            ledger.apply(req)
        plain = method.recommend(SPEC, ledger.points, ledger.runs)
        ledger.apply(RunRequest(mixture=list(BEST), size_m=20, steps=6_000))  # the optimum, but at 20M
        with_small = method.recommend(SPEC, ledger.points, ledger.runs)
    assert plain == with_small


@pytest.mark.parametrize("name", ["random", "gp_ei", "hyperband"])
def test_every_baseline_speaks_the_common_interface(name: str) -> None:
    ledger = Ledger()
    with threadpool_limits(1):
        method = make_method(name, seed=0, cost=cost)
        assert method.name == name
        for _ in range(7):
            for req in method.suggest(SPEC, ledger.points, ledger.runs, q=1):
                assert _on_simplex(req)
                ledger.apply(req)
        rec = method.recommend(SPEC, ledger.points, ledger.runs)
    json.dumps(rec.model_dump())
    assert sum(abs(v) for v in rec.mixture) == pytest.approx(1.0, abs=1e-9)
