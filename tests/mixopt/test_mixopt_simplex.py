"""Candidate pools on the simplex: exact mixtures, structured points, polish."""

from __future__ import annotations

import numpy as np
from testbeds_mixopt.simplex import (
    MixtureIndex,
    candidate_pool,
    clean,
    dirichlet,
    edge_grid,
    face_grid,
    local_dirichlet,
    logit_sampler,
    maximin_design,
    polish,
    sparse_dirichlet,
    unique_rows,
)


def _assert_on_simplex(m: np.ndarray) -> None:
    assert m.ndim == 2 and m.shape[1] == 5
    assert np.all(m >= 0)
    assert np.all(np.abs(m.sum(axis=1) - 1.0) <= 1e-9)


def test_the_pool_contains_every_vertex_and_only_exact_mixtures() -> None:
    rng = np.random.default_rng(0)
    centers = np.array([[0.0, 0.83, 0.17, 0.0, 0.0], [0.2] * 5])
    pool = candidate_pool(rng, centers)
    _assert_on_simplex(pool)
    assert np.array_equal(pool[:5], np.eye(5))
    assert 1_500 <= len(pool) <= 2_500


def test_the_pool_contains_edges_sparse_mixtures_and_draws_near_the_centres() -> None:
    rng = np.random.default_rng(1)
    center = np.array([0.0, 0.83, 0.17, 0.0, 0.0])
    pool = candidate_pool(rng, center[None, :])
    support = (pool > 0).sum(axis=1)
    assert np.sum(support == 2) >= 190  # the edge grid at least
    assert np.sum(support <= 3) >= 300
    tv = 0.5 * np.abs(pool - center).sum(axis=1)
    assert np.sum(tv < 0.05) >= 50


def test_edge_and_face_grids_have_two_and_three_domains() -> None:
    edges, faces = edge_grid(step=0.05), face_grid(step=0.1)
    _assert_on_simplex(edges)
    _assert_on_simplex(faces)
    assert len(edges) == 10 * 19 and np.all((edges > 0).sum(axis=1) == 2)
    assert len(faces) == 10 * 36 and np.all((faces > 0).sum(axis=1) == 3)


def test_random_samplers_stay_on_the_simplex() -> None:
    rng = np.random.default_rng(2)
    for m in (dirichlet(rng, 500, 1.0), dirichlet(rng, 500, 0.2), sparse_dirichlet(rng, 500),
              local_dirichlet(rng, np.eye(5)[:2], 50), logit_sampler(rng, 500)):
        _assert_on_simplex(m)
    sparse = sparse_dirichlet(rng, 2_000, max_support=3)
    assert set(np.unique((sparse > 0).sum(axis=1))) == {1, 2, 3}


def test_uniform_dirichlet_rarely_reaches_a_corner_that_sparse_draws_reach() -> None:
    rng = np.random.default_rng(3)
    near_book = lambda m: np.mean(m[:, 4] > 0.9)
    assert near_book(dirichlet(rng, 20_000, 1.0)) < 1e-3
    assert near_book(dirichlet(rng, 20_000, 0.2)) > 0.02


def test_clean_snaps_tiny_and_negative_proportions_to_zero() -> None:
    m = clean(np.array([[0.5, 0.5 + 1e-12, -1e-9, 1e-9, 0.0]]))
    _assert_on_simplex(m)
    assert m[0, 2] == 0.0 and m[0, 3] == 0.0


def test_polish_finds_a_minimum_on_an_edge() -> None:
    # ||r - p||^2 with p outside the simplex: the minimiser is p's projection, (0.6, 0.4, 0, 0, 0).
    p = np.array([0.7, 0.5, -0.1, -0.05, -0.05])

    def objective(rows: np.ndarray) -> np.ndarray:
        return np.sum((rows - p) ** 2, axis=1)

    starts = np.array([[0.2] * 5, [0.1, 0.1, 0.6, 0.1, 0.1]])
    best, values = polish(objective, starts)
    _assert_on_simplex(best)
    np.testing.assert_allclose(best, np.tile([0.6, 0.4, 0.0, 0.0, 0.0], (2, 1)), atol=1e-5)
    assert np.all(values <= objective(starts))


def test_polish_never_returns_something_worse_than_its_start() -> None:
    def bumpy(rows: np.ndarray) -> np.ndarray:
        return np.sin(40 * rows[:, 0]) + np.cos(31 * rows[:, 3])

    starts = dirichlet(np.random.default_rng(4), 5)
    best, values = polish(bumpy, starts, maxiter=3)
    _assert_on_simplex(best)
    assert np.all(values <= bumpy(starts) + 1e-12)


def test_the_mixture_index_matches_within_tolerance_only() -> None:
    index = MixtureIndex(tol=1e-8)
    r = np.array([0.1, 0.2, 0.3, 0.25, 0.15])
    assert index.add(r) == 0
    assert index.find(r + np.array([1e-10, -1e-10, 0, 0, 0])) == 0
    assert index.find(r + np.array([1e-6, -1e-6, 0, 0, 0])) is None
    # A value on a bucket boundary still finds its near-equal twin in the next bucket.
    s = np.array([0.3, 0.7, 0.0, 0.0, 0.0])
    j = index.add(s)
    assert index.find(s - np.array([1e-12, -1e-12, 0, 0, 0])) == j
    uniq, groups = unique_rows(np.vstack([r, s, r + 1e-11]))
    assert len(uniq) == 2 and groups.tolist() == [0, 1, 0]


def test_the_maximin_design_starts_at_the_centroid_and_spreads_out() -> None:
    design = maximin_design(np.random.default_rng(5), 8)
    _assert_on_simplex(design)
    np.testing.assert_allclose(design[0], 0.2)
    gaps = [np.abs(design[i] - design[j]).sum() for i in range(8) for j in range(i)]
    random = dirichlet(np.random.default_rng(5), 8)
    random_gaps = [np.abs(random[i] - random[j]).sum() for i in range(8) for j in range(i)]
    assert min(gaps) > min(random_gaps)
