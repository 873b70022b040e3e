"""Candidate mixtures on the probability simplex, and small helpers to keep them exact.

Optima of pre-training mixtures often sit on faces, edges or vertices of the simplex, where a uniform
Dirichlet puts almost no mass (design note mixopt.md §6). Pools therefore mix structured points
(vertices, edge and face grids) with dense and sparse random draws and local draws around good
mixtures; the acquisition scores them all, and SLSQP polishes the best few.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import numpy as np
from scipy.optimize import minimize

from .domains import N_DOMAINS

# Proportions below this are set to exactly zero: an optimiser's 1e-12 is a zero the user meant.
SNAP_BELOW = 1e-7


def clean(mixtures: np.ndarray) -> np.ndarray:
    """Rows made non-negative, tiny entries snapped to 0, renormalised to sum to 1 (within ~1e-15)."""
    m = np.array(mixtures, dtype=float, ndmin=2)
    m = np.where(np.isfinite(m), m, 0.0)
    m[m < SNAP_BELOW] = 0.0
    totals = m.sum(axis=1, keepdims=True)
    empty = totals[:, 0] <= 0
    if np.any(empty):  # nothing left: fall back to the centroid rather than divide by zero
        m[empty] = 1.0
        totals = m.sum(axis=1, keepdims=True)
    return m / totals


def vertices(k: int = N_DOMAINS) -> np.ndarray:
    """The k pure mixtures."""
    return np.eye(k)


def edge_grid(k: int = N_DOMAINS, step: float = 0.05) -> np.ndarray:
    """Interior points of every edge on a grid of `step` (two domains, the rest zero)."""
    ts = np.arange(1, round(1 / step)) * step
    rows = []
    for i, j in itertools.combinations(range(k), 2):
        for t in ts:
            r = np.zeros(k)
            r[i], r[j] = t, 1 - t
            rows.append(r)
    return np.array(rows).reshape(-1, k)


def face_grid(k: int = N_DOMAINS, step: float = 0.1) -> np.ndarray:
    """Interior points of every 2-face (three domains) on a grid of `step`."""
    n = round(1 / step)
    rows = []
    for i, j, l in itertools.combinations(range(k), 3):
        for a in range(1, n):
            for b in range(1, n - a):
                r = np.zeros(k)
                r[i], r[j], r[l] = a / n, b / n, (n - a - b) / n
                rows.append(r)
    return np.array(rows).reshape(-1, k)


def dirichlet(rng: np.random.Generator, n: int, alpha: float = 1.0, k: int = N_DOMAINS) -> np.ndarray:
    """n draws from a symmetric Dirichlet(alpha); alpha = 1 is uniform on the simplex, alpha < 1 sparse."""
    if n <= 0:
        return np.zeros((0, k))
    return clean(rng.dirichlet(np.full(k, alpha), size=n))


def sparse_dirichlet(rng: np.random.Generator, n: int, k: int = N_DOMAINS, max_support: int = 3) -> np.ndarray:
    """n mixtures with exact zeros: a random support of 1..max_support domains, uniform on that face."""
    if n <= 0:
        return np.zeros((0, k))
    size = rng.integers(1, max_support + 1, size=n)
    rank = np.argsort(rng.random((n, k)), axis=1).argsort(axis=1)  # a random permutation per row
    gamma = rng.standard_gamma(1.0, size=(n, k)) * (rank < size[:, None])
    return clean(gamma)


def local_dirichlet(rng: np.random.Generator, centers: np.ndarray, n_per: int,
                    kappas: Sequence[float] = (30.0, 150.0)) -> np.ndarray:
    """Draws around each centre r from Dirichlet(kappa r + 0.01), kappa alternating over `kappas`
    (larger is tighter); near-zero proportions of the centre stay near zero, so draws keep to its face."""
    centers = np.array(centers, dtype=float, ndmin=2)
    if n_per <= 0 or centers.size == 0:
        return np.zeros((0, centers.shape[1] if centers.size else N_DOMAINS))
    kappa = np.resize(np.asarray(kappas, dtype=float), n_per)
    alpha = (kappa[None, :, None] * centers[:, None, :] + 0.01).reshape(-1, centers.shape[1])
    return clean(rng.standard_gamma(alpha))


def logit_sampler(rng: np.random.Generator, n: int, k: int = N_DOMAINS, bound: float = 3.0) -> np.ndarray:
    """The paper's random-search sampler: softmax of logits uniform in [-bound, bound] (not uniform on
    the simplex; it favours near-uniform mixtures)."""
    z = rng.uniform(-bound, bound, size=(n, k))
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def candidate_pool(rng: np.random.Generator, centers: np.ndarray | None = None, *, n_uniform: int = 600,
                   n_sparse_alpha: int = 500, n_sparse_support: int = 300, n_local: int = 300,
                   edge_step: float = 0.05, face_step: float | None = None, k: int = N_DOMAINS) -> np.ndarray:
    """A pool of ~2,000 candidate mixtures: vertices, an edge grid, optionally a face grid, Dirichlet(1),
    Dirichlet(0.2), random sparse supports, and local Dirichlet draws around `centers` (split evenly).
    Vertices come first, so callers can rely on them being rows 0..k-1."""
    parts = [vertices(k), edge_grid(k, edge_step)]
    if face_step is not None:
        parts.append(face_grid(k, face_step))
    parts += [dirichlet(rng, n_uniform, 1.0, k), dirichlet(rng, n_sparse_alpha, 0.2, k),
              sparse_dirichlet(rng, n_sparse_support, k)]
    if centers is not None and len(centers) > 0 and n_local > 0:
        centers = np.array(centers, dtype=float, ndmin=2)
        parts.append(local_dirichlet(rng, centers, max(1, n_local // len(centers))))
    return clean(np.vstack(parts))


def maximin_design(rng: np.random.Generator, n: int, *, first: np.ndarray | None = None,
                   pool_size: int = 2_000, k: int = N_DOMAINS) -> np.ndarray:
    """n space-filling mixtures: greedy maximin (L1 distance) selection from a Dirichlet(1) pool,
    starting from `first` (default: the centroid)."""
    pool = dirichlet(rng, pool_size, 1.0, k)
    chosen = [np.full(k, 1.0 / k) if first is None else np.asarray(first, dtype=float)]
    dist = np.abs(pool - chosen[0]).sum(axis=1)
    while len(chosen) < n:
        i = int(np.argmax(dist))
        chosen.append(pool[i])
        dist = np.minimum(dist, np.abs(pool - pool[i]).sum(axis=1))
    return clean(np.array(chosen[:n]))


def unique_rows(mixtures: np.ndarray, tol: float = 1e-8) -> tuple[np.ndarray, np.ndarray]:
    """Distinct mixtures (first occurrence order) and, for every input row, the index of its group."""
    m = np.array(mixtures, dtype=float, ndmin=2)
    index = MixtureIndex(tol)
    groups = np.array([index.add(r) for r in m], dtype=int)
    return np.array(index.items).reshape(-1, m.shape[1] if m.size else N_DOMAINS), groups


class MixtureIndex:
    """Looks mixtures up with a tolerance (a run's stored mixture may differ from a suggestion in its
    last bits after renormalisation)."""

    def __init__(self, tol: float = 1e-8) -> None:
        self.tol = tol
        self.items: list[np.ndarray] = []
        self._buckets: dict[tuple[int, ...], list[int]] = {}

    def _key(self, r: np.ndarray) -> tuple[int, ...]:
        return tuple(np.floor(r * 1e5).astype(int).tolist())

    def find(self, r: Sequence[float] | np.ndarray) -> int | None:
        """The index of a stored mixture within `tol` of r (max-abs), or None."""
        r = np.asarray(r, dtype=float)
        base = np.floor(r * 1e5).astype(int)
        # A near-equal mixture may fall in a neighbouring bucket; look in those with floor +-1 that
        # r could round into (only the coordinates within tol of a bucket boundary).
        near = [(b - 1, b) if (r[i] * 1e5 - b) * 1e-5 < self.tol else
                (b, b + 1) if (b + 1 - r[i] * 1e5) * 1e-5 < self.tol else (b,)
                for i, b in enumerate(base.tolist())]
        for key in itertools.product(*near):
            for idx in self._buckets.get(tuple(key), ()):
                if np.max(np.abs(self.items[idx] - r)) <= self.tol:
                    return idx
        return None

    def add(self, r: Sequence[float] | np.ndarray) -> int:
        """Store r unless an equal mixture is stored; return its index."""
        found = self.find(r)
        if found is not None:
            return found
        r = np.asarray(r, dtype=float)
        self.items.append(r)
        self._buckets.setdefault(self._key(r), []).append(len(self.items) - 1)
        return len(self.items) - 1


def polish(objective: Callable[[np.ndarray], np.ndarray], starts: np.ndarray, *, maxiter: int = 40,
           h: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """Minimise a vectorised objective (rows of mixtures -> values) over the simplex from each start by
    SLSQP (bounds [0, 1], sum = 1). Gradients are forward differences evaluated in one batched call.
    Returns the polished mixtures (cleaned: >= 0, sum 1) and their objective values; a start is kept
    where polishing did not improve it."""
    starts = np.array(starts, dtype=float, ndmin=2)
    k = starts.shape[1]
    eye = np.eye(k) * h

    def fun_and_grad(x: np.ndarray) -> tuple[float, np.ndarray]:
        x = np.clip(x, 0.0, 1.0)
        batch = np.vstack([x, x + eye])
        vals = objective(batch)
        return float(vals[0]), (vals[1:] - vals[0]) / h

    out = starts.copy()
    for i, x0 in enumerate(starts):
        res = minimize(fun_and_grad, x0, jac=True, method="SLSQP", bounds=[(0.0, 1.0)] * k,
                       constraints=[{"type": "eq", "fun": lambda x: np.sum(x) - 1.0,
                                     "jac": lambda x: np.ones_like(x)}],
                       options={"maxiter": maxiter, "ftol": 1e-10})
        out[i] = clean(res.x)[0]
    values = objective(out)
    start_values = objective(starts)
    worse = values > start_values
    out[worse] = starts[worse]
    values[worse] = start_values[worse]
    return out, values
