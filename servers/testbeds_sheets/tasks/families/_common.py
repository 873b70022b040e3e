"""Helpers shared by the family modules: seeded choices and the recurring row shapes."""

from __future__ import annotations

import random
from collections.abc import Sequence

from ..graph import Graph, Sign
from ..model import Unit


def pick(rng: random.Random, options: Sequence[float]) -> float:
    """One of a family's realistic, rounded values."""
    return options[rng.randrange(len(options))]


def years(n: int) -> list[str]:
    return [f"Y{i}" for i in range(1, n + 1)]


def growth_row(g: Graph, id: str, label: str, unit: Unit, base: str, rate: str, *, negate: bool = False,
               sign: Sign | None = None, decimals: int | None = None, start: int = 0) -> str:
    """A row starting at an input (negated for a payment) and growing at a rate each period after the first."""
    minus = "-" if negate else ""
    factor = -1.0 if negate else 1.0
    return g.row(id, label, unit, f"{{{id}@prev}}*(1+{{{rate}}})",
                 lambda v, t: v(id, t - 1) * (1 + v(rate)),
                 first=f"{minus}{{{base}}}", py_first=lambda v, t: factor * v(base), sign=sign, decimals=decimals,
                 start=start)


def running_total(g: Graph, id: str, label: str, unit: Unit, flow: str, *, opening: str | None = None,
                  sign: Sign | None = None) -> str:
    """A corkscrew: the running sum of `flow`, starting from an opening input when given."""
    first = f"{{{opening}}}+{{{flow}}}" if opening else f"{{{flow}}}"
    return g.row(id, label, unit, f"{{{id}@prev}}+{{{flow}}}", lambda v, t: v(id, t - 1) + v(flow, t),
                 first=first, py_first=lambda v, t: (v(opening) if opening else 0.0) + v(flow, t), sign=sign)
