"""Our parametric simulator: exact ground truth, calibration, noise, validation (design note §4, §7)."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.stats import spearmanr
from testbeds_mixopt.backends.parametric import LOSS_LAWS, ParametricSimulator, water_filling
from testbeds_mixopt.domains import ACCURACY_METRICS, LOSS_METRICS, METRICS, SIZES_M
from testbeds_serving.errors import InvalidArgument

CC, SE = "loss_commoncrawl", "loss_stackexchange"
SIM = ParametricSimulator()


def _dirichlet(n: int, seed: int = 0, alpha: float = 1.0) -> np.ndarray:
    return np.random.default_rng(seed).dirichlet(np.full(5, alpha), n)


def _slsqp_min(f, start: np.ndarray) -> np.ndarray:
    res = minimize(f, start, method="SLSQP", bounds=[(0.0, 1.0)] * 5,
                   constraints=[{"type": "eq", "fun": lambda r: r.sum() - 1.0}],
                   options={"ftol": 1e-14, "maxiter": 500})
    r = np.clip(res.x, 0.0, None)
    return r / r.sum()


def test_the_simulator_presents_itself_as_the_parametric_backend() -> None:
    assert SIM.name == "parametric"
    assert SIM.metrics == METRICS
    assert SIM.sizes_m == SIZES_M


@pytest.mark.parametrize("metric", [CC, SE])
@pytest.mark.parametrize("size_m", [20, 150, 1000])
def test_water_filling_matches_brute_force_search(metric: str, size_m: int) -> None:
    r_opt, best = SIM.optimum(metric, size_m, 19_500)
    assert r_opt.min() >= 0 and r_opt.sum() == pytest.approx(1.0, abs=1e-12)
    pool = np.vstack([_dirichlet(100_000, seed=size_m), _dirichlet(20_000, seed=size_m + 1, alpha=0.2), np.eye(5)])
    values = SIM.true_values(pool, size_m, 19_500, metric)
    assert best <= values.min() + 1e-12

    def f(r: np.ndarray) -> float:
        return float(SIM.true_values(np.clip(r, 0, None)[None, :] / max(np.clip(r, 0, None).sum(), 1e-12),
                                     size_m, 19_500, metric)[0])

    polished = [_slsqp_min(f, pool[i]) for i in np.argsort(values)[:5]]
    polished_values = [f(r) for r in polished]
    assert best <= min(polished_values) + 1e-10
    assert min(polished_values) == pytest.approx(best, abs=1e-7)
    winner = polished[int(np.argmin(polished_values))]
    assert 0.5 * np.abs(winner - r_opt).sum() < 0.01


def test_water_filling_satisfies_the_kkt_conditions() -> None:
    law = LOSS_LAWS[SE]
    for n in (0.02, 0.3, 1.0):
        rates = law.rates(n)
        r = water_filling(np.asarray(law.c), rates)
        marginal = np.asarray(law.c) * rates * np.exp(-rates * r)
        mu = marginal[r > 0]
        assert np.ptp(mu) < 1e-9 * mu.max()  # equal marginal gain on the support
        assert np.all(marginal[r == 0] <= mu.min() + 1e-12)  # and no better gain off it


def test_the_20m_commoncrawl_optimum_is_far_from_and_clearly_worse_than_the_1b_one() -> None:
    r_small, _ = SIM.optimum(CC, 20, 19_500)
    r_big, best_big = SIM.optimum(CC, 1000, 19_500)
    assert 0.5 * np.abs(r_small - r_big).sum() > 0.2
    at_big = SIM.true_values(r_small[None, :], 1000, 19_500, CC)[0]
    assert (at_big - best_big) / best_big >= 0.03


def test_the_1b_optima_match_the_measured_tables_in_shape() -> None:
    pure = {"loss_wikipedia": 0, "loss_arxiv": 3, "loss_book": 4}
    for metric, j in pure.items():
        assert SIM.optimum(metric, 1000, 19_500)[0][j] == pytest.approx(1.0)
    github, _ = SIM.optimum("loss_github", 1000, 19_500)
    assert github[2] > 0.95 and github[4] > 0
    stack, _ = SIM.optimum(SE, 1000, 19_500)
    assert stack[1] == pytest.approx(0.83, abs=0.03) and stack[2] == pytest.approx(0.17, abs=0.03)
    # C4 shares CommonCrawl's optimum at every size.
    for size in (20, 150, 1000):
        np.testing.assert_allclose(SIM.optimum("loss_c4", size, 19_500)[0], SIM.optimum(CC, size, 19_500)[0],
                                   atol=1e-9)


# Uniform-mixture learning curves measured on the paper's network (design note §4), at 1k..19.5k steps.
UNIFORM_TARGETS = {
    (CC, 1000): (3.40, 3.13, 2.84, 2.71, 2.62), (SE, 1000): (1.24, 1.13, 0.99, 0.94, 0.90),
    (CC, 20): (5.19, 4.33, 3.71, 3.55, 3.49), (SE, 20): (2.43, 1.75, 1.42, 1.33, 1.29),
}


@pytest.mark.parametrize(("metric", "size_m"), list(UNIFORM_TARGETS))
def test_uniform_mixture_learning_curves_are_close_to_the_measured_ones(metric: str, size_m: int) -> None:
    uniform = np.full((1, 5), 0.2)
    got = [SIM.true_values(uniform, size_m, s, metric)[0] for s in (1_000, 2_000, 6_000, 12_000, 19_500)]
    target = UNIFORM_TARGETS[(metric, size_m)]
    # One power law in tokens is shared by all sizes, so early steps at 1B miss by up to ~0.1 nats.
    assert np.max(np.abs(np.subtract(got, target))) < 0.12
    assert abs(got[-1] - target[-1]) < 0.02
    assert all(a > b for a, b in itertools.pairwise(got))  # more training never hurts


def test_the_best_losses_at_the_target_are_near_the_measured_ones() -> None:
    assert SIM.optimum(CC, 1000, 19_500)[1] == pytest.approx(2.273, abs=0.03)
    assert SIM.optimum(SE, 1000, 19_500)[1] == pytest.approx(0.806, abs=0.03)


def test_hellaswag_ranks_reverse_between_20m_and_1b() -> None:
    pool = _dirichlet(5_000, seed=3)
    small = SIM.true_values(pool, 20, 19_500, "acc_hellaswag")
    big = SIM.true_values(pool, 1000, 19_500, "acc_hellaswag")
    assert spearmanr(small, big)[0] < -0.7
    assert 0.25 < small.min() and small.max() < 0.28  # barely above chance at 20M
    assert big.max() > 0.38


@pytest.mark.parametrize("metric", ACCURACY_METRICS)
def test_the_numerical_accuracy_optimum_beats_a_large_pool(metric: str) -> None:
    for size in (20, 1000):
        r_opt, best = SIM.optimum(metric, size, 19_500)
        assert r_opt.min() >= 0 and r_opt.sum() == pytest.approx(1.0, abs=1e-12)
        pool = np.vstack([_dirichlet(50_000, seed=7), _dirichlet(20_000, seed=8, alpha=0.2), np.eye(5)])
        assert best >= SIM.true_values(pool, size, 19_500, metric).max() - 1e-12
        assert SIM.true_values(r_opt[None, :], size, 19_500, metric)[0] == pytest.approx(best, abs=1e-12)


def test_true_values_are_vectorised_and_agree_with_single_rows() -> None:
    pool = _dirichlet(100_000, seed=11)
    for metric in (CC, "acc_piqa"):
        values = SIM.true_values(pool, 150, 6_000, metric)
        assert values.shape == (100_000,) and np.all(np.isfinite(values))
        for i in (0, 17, 99_999):
            assert SIM.true_values(pool[i:i + 1], 150, 6_000, metric)[0] == pytest.approx(values[i], abs=1e-12)


def test_a_runs_value_at_a_step_does_not_depend_on_whether_it_continues() -> None:
    mixture = [0.1, 0.3, 0.2, 0.1, 0.3]
    stopped = ParametricSimulator().observe(mixture, 60, 6_000, seed=4, run_id=9)
    continued = ParametricSimulator()
    continued.observe(mixture, 60, 19_500, seed=4, run_id=9)
    continued.observe(mixture, 60, 12_000, seed=4, run_id=9)
    assert continued.observe(mixture, 60, 6_000, seed=4, run_id=9) == stopped


def test_noise_is_seeded_reproducible_and_differs_between_runs_and_seeds() -> None:
    mixture = np.full(5, 0.2)
    first = ParametricSimulator().observe(mixture, 150, 12_000, seed=1, run_id=2)
    assert ParametricSimulator().observe(mixture, 150, 12_000, seed=1, run_id=2) == first
    assert ParametricSimulator().observe(mixture, 150, 12_000, seed=1, run_id=3) != first
    assert ParametricSimulator().observe(mixture, 150, 12_000, seed=2, run_id=2) != first
    assert all(type(v) is float for v in first.values())
    json.dumps(first)


def test_loss_noise_has_the_documented_scale_and_grows_at_small_scale() -> None:
    mixture = np.array([0.2, 0.2, 0.2, 0.2, 0.2])
    for size in (20, 1000):
        truth = SIM.true_values(mixture[None, :], size, 19_500, CC)[0]
        errors = np.array([SIM.observe(mixture, size, 19_500, seed=5, run_id=i)[CC] - truth for i in range(600)])
        expected = SIM.noise_sd(size, 19_500) * np.sqrt(1 + 0.4**2)
        assert abs(errors.mean()) < 4 * expected / np.sqrt(600)
        assert errors.std() == pytest.approx(expected, rel=0.15)
    assert SIM.noise_sd(20, 19_500) == pytest.approx(0.005 * 0.02**-0.35 * 0.5**-0.25)
    assert SIM.noise_sd(1000, 19_500) == pytest.approx(0.005)


def test_observed_accuracies_are_fractions_of_their_item_counts() -> None:
    items = {"acc_hellaswag": 10_042, "acc_piqa": 1_838, "acc_arc_easy": 2_376}
    out = SIM.observe([0.0, 0.0, 0.0, 0.0, 1.0], 1000, 19_500, seed=0, run_id=1)
    for metric, count in items.items():
        assert out[metric] * count == pytest.approx(round(out[metric] * count), abs=1e-6)
        truth = SIM.true_values(np.eye(5)[4:], 1000, 19_500, metric)[0]
        assert abs(out[metric] - truth) < 5 * np.sqrt(truth * (1 - truth) / count) + 0.01
    assert set(out) == set(METRICS)


@pytest.mark.parametrize("size_m", [10, 19.9, 1000.5, 3000, float("nan"), "big", True])
def test_sizes_outside_20m_to_1b_are_rejected_naming_the_valid_range(size_m: object) -> None:
    with pytest.raises(InvalidArgument, match=r"between 20 and 1000.*20, 60, 150, 300, 500, 700, 1000"):
        SIM.true_values(np.full((1, 5), 0.2), size_m, 19_500, CC)  # type: ignore[arg-type]


@pytest.mark.parametrize("steps", [0, 50, 150, 19_600, 100.5, -100, True])
def test_steps_off_the_grid_are_rejected_naming_the_valid_grid(steps: object) -> None:
    with pytest.raises(InvalidArgument, match=r"multiple of 100 from 100 to 19,500"):
        SIM.observe(np.full(5, 0.2), 150, steps, seed=0, run_id=0)  # type: ignore[arg-type]


def test_continuous_sizes_and_grid_steps_are_accepted() -> None:
    value = SIM.true_values(np.full((1, 5), 0.2), 237.5, 4_300, CC)[0]
    between = [SIM.true_values(np.full((1, 5), 0.2), s, 4_300, CC)[0] for s in (150, 300)]
    assert between[1] < value < between[0]


def test_bad_mixtures_metrics_and_run_ids_are_rejected_with_a_reason() -> None:
    with pytest.raises(InvalidArgument, match="shape"):
        SIM.true_values(np.full((3, 4), 0.25), 150, 1_000, CC)
    with pytest.raises(InvalidArgument, match="sum to 1"):
        SIM.true_values(np.full((2, 5), 0.3), 150, 1_000, CC)
    with pytest.raises(InvalidArgument, match="sum to 1"):
        SIM.observe([0.5, 0.5, 0.5, 0.0, 0.0], 150, 1_000, seed=0, run_id=0)
    with pytest.raises(InvalidArgument, match="loss_commoncrawl"):
        SIM.true_values(np.full((1, 5), 0.2), 150, 1_000, "loss_pile")
    with pytest.raises(InvalidArgument, match="non-negative integer"):
        SIM.observe(np.full(5, 0.2), 150, 1_000, seed=0, run_id=-1)


def test_loss_optima_do_not_depend_on_steps() -> None:
    for metric in LOSS_METRICS:
        np.testing.assert_allclose(SIM.optimum(metric, 60, 1_000)[0], SIM.optimum(metric, 60, 19_500)[0], atol=1e-9)


def test_the_calibration_report_has_the_tables_columns_and_is_json_ready() -> None:
    report = SIM.calibration_report(summary_metrics=("acc_hellaswag",), n_samples=5_000, rho_samples=2_000)
    json.dumps(report)
    rows = report["per_size"][CC]
    assert [row["size_m"] for row in rows] == list(SIZES_M)
    columns = {"best", "optimum", "k", "range", "median_gap", "p_within_1pct", "regret_at_1b", "tv_to_1b",
               "spearman_with_1b"}
    assert columns <= set(rows[0])
    assert rows[0]["regret_at_1b"] > 0.03 and rows[-1]["regret_at_1b"] == 0.0
    assert report["summary"]["acc_hellaswag"]["spearman_20m_vs_1b"] < -0.7
    assert report["uniform_curves"][SE]["1000"]["19500"] == pytest.approx(0.90, abs=0.02)
