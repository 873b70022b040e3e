"""The paper's network backend, read from ../shared/data/mixopt (never bundled)."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import shared_data
from testbeds_mixopt.backends.network import (
    NetworkSimulator,
    loss_noise_sd,
    simplex_pool,
)
from testbeds_mixopt.domains import METRICS
from testbeds_serving.errors import InvalidArgument, NotFound

# ../shared/data/mixopt relative to the repository root.
DATA = shared_data("mixopt")
pytestmark = pytest.mark.skipif(not (DATA / "surrogate_mlp.npz").is_file(), reason="paper's network data absent")

UNIFORM = np.full((1, 5), 0.2)
SMALL_POOL = 20_000


@pytest.fixture(scope="module")
def net() -> NetworkSimulator:
    return NetworkSimulator(DATA)


def test_the_uniform_mixture_matches_the_measured_losses(net: NetworkSimulator) -> None:
    assert net.true_values(UNIFORM, 1000, 19_500, "loss_commoncrawl")[0] == pytest.approx(2.618, abs=1e-3)
    assert net.true_values(UNIFORM, 1000, 19_500, "loss_stackexchange")[0] == pytest.approx(0.904, abs=1e-3)
    assert net.true_values(UNIFORM, 20, 19_500, "loss_commoncrawl")[0] == pytest.approx(3.494, abs=1e-3)


def test_outputs_map_to_the_metric_names_and_keep_train_loss_apart(net: NetworkSimulator) -> None:
    outputs = net.outputs(UNIFORM, 1000, 19_500)
    assert list(outputs) == ["loss_train", *METRICS]
    assert net.metrics == METRICS
    assert 0.25 < outputs["acc_hellaswag"][0] < 0.5 and 0.5 < outputs["acc_piqa"][0] < 0.8
    assert "loss_train" not in net.observe(UNIFORM[0], 1000, 19_500, seed=0, run_id=0)


def test_true_values_are_vectorised_over_mixture_rows(net: NetworkSimulator) -> None:
    pool = np.random.default_rng(0).dirichlet(np.ones(5), 1000)
    batch = net.true_values(pool, 300, 6_000, "loss_github")
    singles = [net.true_values(pool[i:i + 1], 300, 6_000, "loss_github")[0] for i in (0, 500, 999)]
    assert batch.shape == (1000,)
    assert np.allclose(batch[[0, 500, 999]], singles, atol=1e-12)


@pytest.mark.parametrize("size_m", [40, 3000, 0, 1000.5])
def test_untrained_sizes_are_rejected_naming_the_valid_ones(net: NetworkSimulator, size_m: float) -> None:
    with pytest.raises(InvalidArgument, match="20M, 60M, 150M, 300M, 500M, 700M, 1000M"):
        net.true_values(UNIFORM, size_m, 19_500, "loss_commoncrawl")
    with pytest.raises(InvalidArgument):
        net.validate(size_m, 19_500)


@pytest.mark.parametrize("steps", [0, 50, 150, 19_600, 20_000])
def test_steps_off_the_grid_are_rejected(net: NetworkSimulator, steps: int) -> None:
    with pytest.raises(InvalidArgument, match="100..19500"):
        net.observe(UNIFORM[0], 1000, steps, seed=0, run_id=0)


def test_cost_is_the_flop_ratio_to_the_full_1b_run_and_linear_in_steps(net: NetworkSimulator) -> None:
    assert net.cost(1000, 19_500) == pytest.approx(1.0, abs=1e-12)
    assert net.cost(20, 19_500) == pytest.approx(0.0130, abs=1e-4)
    assert net.cost(700, 19_500) == pytest.approx(0.2983, abs=1e-4)
    for size in (20, 150, 1000):
        assert net.cost(size, 6_000) == pytest.approx(2 * net.cost(size, 3_000), rel=1e-12)
        # A resume from 6,000 to 19,500 pays the increment only.
        assert net.cost(size, 19_500) - net.cost(size, 6_000) == pytest.approx(net.cost(size, 13_500), rel=1e-9)
    assert net.cost(60, 0) == 0.0


def test_observations_are_noisy_seeded_and_independent_of_continuation(net: NetworkSimulator) -> None:
    mix = np.array([0.1, 0.3, 0.2, 0.1, 0.3])
    a = net.observe(mix, 150, 6_000, seed=3, run_id=7)
    assert a == net.observe(mix, 150, 6_000, seed=3, run_id=7)
    assert a != net.observe(mix, 150, 6_000, seed=3, run_id=8)
    assert a != net.observe(mix, 150, 6_000, seed=4, run_id=7)
    truth = net.outputs(mix[None, :], 150, 6_000)
    assert all(isinstance(v, float) for v in a.values())
    assert a["loss_commoncrawl"] != truth["loss_commoncrawl"][0]
    # Accuracies are binomial over the benchmark's items.
    assert round(a["acc_piqa"] * 1_838) == pytest.approx(a["acc_piqa"] * 1_838, abs=1e-6)


def test_noise_has_the_documented_scale_and_grows_at_small_scale(net: NetworkSimulator) -> None:
    assert loss_noise_sd(1000, 19_500) == pytest.approx(0.005)
    assert loss_noise_sd(20, 19_500) > 3.5 * loss_noise_sd(1000, 19_500)
    mix = np.full(5, 0.2)
    truth = net.true_values(mix[None, :], 20, 19_500, "loss_commoncrawl")[0]
    errors = np.array([net.observe(mix, 20, 19_500, seed=0, run_id=i)["loss_commoncrawl"] - truth
                       for i in range(300)])
    expected = loss_noise_sd(20, 19_500) * np.sqrt(1 + 0.3**2)
    assert abs(errors.mean()) < 4 * expected / np.sqrt(300)
    assert errors.std() == pytest.approx(expected, rel=0.2)


def test_the_pool_holds_vertices_edges_and_sparse_draws() -> None:
    pool = simplex_pool(20_000, np.random.default_rng(0))
    assert pool.shape == (20_000, 5)
    assert np.allclose(pool.sum(axis=1), 1.0) and pool.min() >= 0
    for vertex in np.eye(5):
        assert (pool == vertex).all(axis=1).any()
    assert ((pool > 0).sum(axis=1) == 2).sum() >= 10 * 99


def test_polished_optimum_is_no_worse_than_the_pool_minimum(net: NetworkSimulator) -> None:
    for metric, sign in (("loss_stackexchange", 1.0), ("acc_arc_easy", -1.0)):
        pool = net.candidate_pool(metric, 1000, 19_500, SMALL_POOL)
        pool_best = (sign * net.true_values(pool, 1000, 19_500, metric)).min()
        mix, value = net.optimum(metric, 1000, 19_500, pool_size=SMALL_POOL, polish=10)
        assert sign * value <= pool_best
        assert net.true_values(mix[None, :], 1000, 19_500, metric)[0] == pytest.approx(value, abs=1e-12)
        assert mix.min() >= 0 and mix.sum() == pytest.approx(1.0, abs=1e-12)
        assert isinstance(value, float)


def test_the_commoncrawl_optimum_at_1b_matches_the_measured_one(net: NetworkSimulator) -> None:
    mix, value = net.optimum("loss_commoncrawl", 1000, 19_500, pool_size=SMALL_POOL, polish=10)
    assert value == pytest.approx(2.273, abs=2e-3)
    assert np.abs(mix - np.array([0.0, 0.05, 0.0, 0.04, 0.91])).sum() / 2 < 0.05


def test_the_optimum_is_cached_in_memory_and_on_disk(tmp_path: Path) -> None:
    cache = tmp_path / "optima.json"
    first = NetworkSimulator(DATA, cache_path=cache)
    _mix, value = first.optimum("loss_book", 60, 2_000, pool_size=2_000, polish=2)
    stored = json.loads(cache.read_text())
    assert len(stored["entries"]) == 1
    # A fresh instance answers from the file: prove it by planting a marker value there.
    key = next(iter(stored["entries"]))
    stored["entries"][key]["value"] = 123.0
    cache.write_text(json.dumps(stored))
    second = NetworkSimulator(DATA, cache_path=cache)
    assert second.optimum("loss_book", 60, 2_000, pool_size=2_000, polish=2)[1] == 123.0
    assert first.optimum("loss_book", 60, 2_000, pool_size=2_000, polish=2)[1] == value
    # A corrupt cache is recomputed, not trusted.
    cache.write_text("{not json")
    third = NetworkSimulator(DATA, cache_path=cache)
    assert third.optimum("loss_book", 60, 2_000, pool_size=2_000, polish=2)[1] == pytest.approx(value, abs=1e-12)


def test_a_directory_without_the_files_gets_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="surrogate_mlp.npz and flops_dataset.csv"):
        NetworkSimulator(tmp_path)


def test_unknown_metrics_and_bad_mixtures_are_rejected(net: NetworkSimulator) -> None:
    with pytest.raises(InvalidArgument, match="loss_commoncrawl"):
        net.true_values(UNIFORM, 1000, 19_500, "perplexity")
    with pytest.raises(InvalidArgument, match="sum to 1"):
        net.true_values(np.array([[0.5, 0.5, 0.5, 0.0, 0.0]]), 1000, 19_500, "loss_c4")
    with pytest.raises(InvalidArgument, match="shape"):
        net.true_values(np.ones((2, 4)) / 4, 1000, 19_500, "loss_c4")
