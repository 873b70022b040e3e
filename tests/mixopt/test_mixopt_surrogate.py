"""The MFMS-GP surrogate: features, skopt's noise handling, fixed-kernel refits, EI."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import itertools
import warnings

import numpy as np
import pytest
from skopt.acquisition import gaussian_ei
from skopt.learning import GaussianProcessRegressor
from skopt.learning.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel
from testbeds_mixopt.models import StudySpec
from testbeds_mixopt.surrogate import (
    FidelityScale,
    LinearMean,
    SurrogateOptions,
    encode,
    expected_improvement,
    fit_surrogate,
    fixed_gp,
    hyper_milestone,
    with_noise_restored,
)
from threadpoolctl import threadpool_limits


def _data(n: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Noisy observations of a smooth function of (mixture, size, steps) features."""
    rng = np.random.default_rng(seed)
    mix = rng.dirichlet(np.ones(5), n)
    sizes = rng.choice([20, 60, 150, 1000], n)
    steps = rng.choice([2_000, 6_000, 19_500], n)
    X = encode(mix, sizes, steps, scale=FidelityScale.for_spec(StudySpec()), options=SurrogateOptions())
    y = 3.0 - 0.8 * X[:, 5] - 0.5 * X[:, 6] + np.sin(4 * X[:, 1]) * 0.3 + 0.02 * rng.standard_normal(n)
    return X, y


def test_features_are_the_mixture_and_log_scaled_size_and_steps() -> None:
    spec = StudySpec(target_size_m=1000, target_steps=19_500)
    scale = FidelityScale.for_spec(spec)
    mix = np.array([[0.25, 0.0, 0.0, 0.0, 0.75]] * 3)
    X = encode(mix, np.array([20, 1000, 141.42]), np.array([100, 19_500, 1_000]), scale=scale,
               options=SurrogateOptions())
    np.testing.assert_allclose(X[:, :5], mix)
    np.testing.assert_allclose(X[:, 5], [0.0, 1.0, 0.5], atol=1e-4)
    np.testing.assert_allclose(X[:, 6], [0.0, 1.0, np.log(10) / np.log(195)])
    root = encode(mix, 1000, 19_500, scale=scale, options=SurrogateOptions(phi="sqrt"))
    np.testing.assert_allclose(root[0, :5], [0.5, 0, 0, 0, np.sqrt(0.75)])
    single = encode(mix, 1000, 19_500, scale=scale, options=SurrogateOptions(fidelity=False))
    assert single.shape == (3, 5)


def test_gaussian_noise_is_fitted_and_excluded_from_the_predictive_sd() -> None:
    X, y = _data()
    kernel = ConstantKernel(1.0) * RBF(np.ones(7)) + WhiteKernel(0.01)
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        noisy = GaussianProcessRegressor(kernel=kernel, noise="gaussian", normalize_y=True, random_state=0).fit(X, y)
        plain = GaussianProcessRegressor(kernel=kernel, noise=None, normalize_y=True, random_state=0).fit(X, y)
    assert noisy.noise_ is not None and noisy.noise_ > 0
    _, sd_noisy = noisy.predict(X, return_std=True)
    _, sd_plain = plain.predict(X, return_std=True)
    assert np.all(sd_noisy < sd_plain)


def test_a_fixed_kernel_refit_keeps_the_noise_and_reproduces_the_fit() -> None:
    X, y = _data()
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gp = GaussianProcessRegressor(kernel=ConstantKernel() * RBF(np.ones(7)), noise="gaussian", normalize_y=True,
                                      random_state=0).fit(X, y)
        options = SurrogateOptions()
        restored = fixed_gp(with_noise_restored(gp), options).fit(X, y)
        # The pitfall: kernel_ as stored has the noise zeroed, so reusing it interpolates the noise.
        naive = GaussianProcessRegressor(kernel=gp.kernel_, optimizer=None, normalize_y=True).fit(X, y)
    np.testing.assert_allclose(restored.predict(X), gp.predict(X), rtol=1e-7, atol=1e-9)
    assert restored.noise_ == pytest.approx(gp.noise_)
    assert np.max(np.abs(naive.predict(X) - y)) < 0.1 * np.max(np.abs(gp.predict(X) - y))


def test_the_surrogate_predicts_like_skopt_and_reports_its_noise() -> None:
    X, y = _data(60)
    with threadpool_limits(1):
        model = fit_surrogate(X, y, seed=1)
        mu, sd = model.predict(X)
        resid_mu, resid_sd = model.gp.predict(X, return_std=True)
    np.testing.assert_allclose(mu, resid_mu + model.mean(X[:, -2:]), rtol=1e-9)
    np.testing.assert_allclose(sd, resid_sd, rtol=1e-6, atol=1e-9)
    assert 0.005 < model.noise_sd < 0.1
    assert np.all(sd < model.noise_sd * 3)


def test_the_surrogate_extrapolates_a_size_trend_to_the_target() -> None:
    X, y = _data(60)
    small = X[:, 5] < 0.6
    with threadpool_limits(1):
        model = fit_surrogate(X[small], y[small], seed=1)
    assert model.mean.slopes[0] < -0.3  # bigger models reach lower loss, learned from small ones


def test_a_single_size_never_invents_a_size_trend() -> None:
    Z = np.column_stack([np.full(10, 0.3), np.linspace(0, 1, 10)])
    mean = LinearMean.fit(Z, 2.0 - 0.5 * Z[:, 1])
    assert mean.slopes[0] == 0.0
    assert mean(np.array([[1.0, 1.0]]))[0] == pytest.approx(1.5)


def test_the_surrogate_is_the_same_whether_or_not_hyperparameters_were_cached() -> None:
    from testbeds_mixopt import surrogate

    X, y = _data(50)
    with threadpool_limits(1):
        first = fit_surrogate(X, y, seed=3).predict(X[:5])
        surrogate._HYPER_CACHE.clear()
        second = fit_surrogate(X, y, seed=3).predict(X[:5])
        again = fit_surrogate(X, y, seed=3).predict(X[:5])
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    np.testing.assert_array_equal(second[0], again[0])


def test_hyperparameters_are_refitted_at_milestones_only() -> None:
    assert [hyper_milestone(n) for n in (1, 5, 16)] == [1, 5, 16]
    assert hyper_milestone(19) == 16 and hyper_milestone(20) == 20
    ms = sorted({hyper_milestone(n) for n in range(1, 201)})
    assert len(ms) < 30
    assert all(b / a <= 1.26 for a, b in itertools.pairwise(ms[15:]))


def test_a_fantasy_point_shrinks_the_sd_there_and_keeps_the_mean() -> None:
    X, y = _data(40)
    x_new = X[:1].copy()
    x_new[0, :5] = [0.0, 0.0, 0.0, 0.0, 1.0]
    with threadpool_limits(1):
        model = fit_surrogate(X, y, seed=0)
        mu, sd = model.predict(x_new)
        believer = model.with_points(x_new, mu)
        mu2, sd2 = believer.predict(x_new)
    assert sd2[0] < 0.9 * sd[0]
    assert mu2[0] == pytest.approx(mu[0], abs=0.01 * sd[0])  # up to normalize_y's re-centring
    assert believer.n == model.n + 1


def test_expected_improvement_matches_skopt_gaussian_ei() -> None:
    X, y = _data(30)
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gp = GaussianProcessRegressor(kernel=ConstantKernel() * RBF(np.ones(7)), noise="gaussian", normalize_y=True,
                                      random_state=0).fit(X, y)
    Xq = _data(20, seed=9)[0]
    mu, sd = gp.predict(Xq, return_std=True)
    best = float(np.min(y))
    np.testing.assert_allclose(expected_improvement(mu, sd, best), gaussian_ei(Xq, gp, y_opt=best, xi=0.0),
                               rtol=1e-6, atol=1e-12)
    assert expected_improvement(np.array([1.0]), np.array([0.0]), 1.5)[0] == pytest.approx(0.5)
    assert expected_improvement(np.array([2.0]), np.array([0.0]), 1.5)[0] == 0.0
