"""Explicit latent spaces: hypotheses, the prior over them, the law of each task's answer, and hints.

Every environment describes its latent z as a table of hypotheses labelled by family (the rule type, e.g.
"range") and sub-family (e.g. "width 10"). The prior is built from those labels in one way for all
environments: `none` gets 0.2, the other 0.8 is split equally over families, then over sub-families,
then uniformly. Because the table is explicit, the exact posterior is computable (see inference.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

NONE = "none"
P_NONE = 0.2


@dataclass(frozen=True)
class Hypothesis:
    """One value of z. `family == "none"` is the no-structure hypothesis."""

    name: str
    family: str
    subfamily: str = ""
    params: tuple = ()


def build_prior(hypotheses: Sequence[Hypothesis]) -> np.ndarray:
    """π0 over `hypotheses`: none 0.2; the rest split equally by family, then sub-family, then uniformly."""
    prior = np.zeros(len(hypotheses))
    families: dict[str, dict[str, list[int]]] = {}
    for i, h in enumerate(hypotheses):
        if h.family == NONE:
            prior[i] = P_NONE
        else:
            families.setdefault(h.family, {}).setdefault(h.subfamily, []).append(i)
    n_none = sum(1 for h in hypotheses if h.family == NONE)
    if n_none != 1:
        raise ValueError(f"exactly one '{NONE}' hypothesis is required, got {n_none}")
    structured = 1.0 - P_NONE
    for subs in families.values():
        for members in subs.values():
            prior[members] = structured / len(families) / len(subs) / len(members)
    return prior


class SparseLaw:
    """P(θ | z) as a |Z|×|Θ| row-stochastic matrix stored by its support (COO arrays).

    Two products are all inference needs: `mix(b)` = Σ_z b(z) P(·|z) (the predictive over θ) and
    `lik(v)` = Σ_θ P(θ|z) v(θ) (a task's likelihood of each z, for v the in-task likelihood over θ).
    """

    def __init__(self, rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, n_z: int, n_theta: int) -> None:
        self.rows = np.asarray(rows, dtype=np.int64)
        self.cols = np.asarray(cols, dtype=np.int64)
        self.vals = np.asarray(vals, dtype=np.float64)
        self.n_z = n_z
        self.n_theta = n_theta
        sums = np.bincount(self.rows, weights=self.vals, minlength=n_z)
        if not np.allclose(sums, 1.0, atol=1e-9):
            raise ValueError("every row of a law P(θ|z) must sum to 1")

    @classmethod
    def from_supports(cls, supports: Sequence[Sequence[int]], n_theta: int) -> SparseLaw:
        """Uniform law over each hypothesis's support (the size principle)."""
        lengths = np.fromiter((len(s) for s in supports), dtype=np.int64, count=len(supports))
        rows = np.repeat(np.arange(len(supports)), lengths)
        cols = np.fromiter((t for s in supports for t in s), dtype=np.int64, count=int(lengths.sum()))
        vals = np.repeat(1.0 / lengths, lengths)
        return cls(rows, cols, vals, len(supports), n_theta)

    @classmethod
    def from_dense(cls, matrix: np.ndarray) -> SparseLaw:
        rows, cols = np.nonzero(matrix)
        return cls(rows, cols, matrix[rows, cols], matrix.shape[0], matrix.shape[1])

    def mix(self, weights: np.ndarray) -> np.ndarray:
        return np.bincount(self.cols, weights=self.vals * weights[self.rows], minlength=self.n_theta)

    def lik(self, theta_values: np.ndarray) -> np.ndarray:
        return np.bincount(self.rows, weights=self.vals * theta_values[self.cols], minlength=self.n_z)

    def row(self, z: int) -> np.ndarray:
        out = np.zeros(self.n_theta)
        mask = self.rows == z
        out[self.cols[mask]] = self.vals[mask]
        return out


@dataclass
class HintModel:
    """Hints "z is NOT <statement>": the statement is drawn uniformly, with replacement, from those false under z.

    `truth[z, s]` says whether statement s holds under hypothesis z. With replacement the pool never
    empties, so the absence of a hint is never itself an observation.
    """

    statements: list[str]
    truth: np.ndarray  # bool, |Z| × |S|
    n_false: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.n_false = (~self.truth).sum(axis=1)
        if (self.n_false == 0).any():
            raise ValueError("every hypothesis needs at least one false statement to hint at")

    def likelihood(self, statement: int) -> np.ndarray:
        """P(hint = "not statement" | z) for every z."""
        return (~self.truth[:, statement]) / self.n_false

    def draw(self, z: int, rng: np.random.Generator) -> int:
        false = np.flatnonzero(~self.truth[z])
        return int(false[rng.integers(len(false))])

    @classmethod
    def by_family(cls, hypotheses: Sequence[Hypothesis], families: Sequence[str]) -> HintModel:
        """Statements are the rule families plus "no pattern"; s holds under z iff z is of that family."""
        statements = [*families, NONE]
        truth = np.array([[h.family == s for s in statements] for h in hypotheses], dtype=bool)
        return cls(statements=statements, truth=truth)


def entropy_bits(p: np.ndarray) -> float:
    nz = p[p > 0]
    return float(-(nz * np.log2(nz)).sum())
