"""Cost to target (design note mixopt.md §5): what a method spent until its own recommendation first came
within a tolerance of the best achievable value at the target scale, plus one confirmation run at the target
if that mixture was never trained there. Shared by the scorer (from a recording) and the benchmark (in process).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .study import Study


@dataclass(frozen=True)
class Checkpoint:
    """A method's recommendation after some spending, judged on noise-free values."""

    spent: float
    true_value: float
    trained_at_target: bool


def relative_gap(value: float, best: float, direction: str) -> float:
    """How far `value` falls short of `best`, relative to |best| (0 at the optimum, positive when worse)."""
    shortfall = value - best if direction == "minimize" else best - value
    return shortfall / abs(best)


def cost_to_target(trajectory: Sequence[Checkpoint], best: float, direction: str, tolerance: float) -> float | None:
    """Spending at the first recommendation within `tolerance`, + 1 if it still needs its confirmation run;
    None if never reached (censored)."""
    for point in trajectory:
        if relative_gap(point.true_value, best, direction) <= tolerance:
            return point.spent + (0.0 if point.trained_at_target else 1.0)
    return None


def run_method(study: Study, method, *, q: int = 1, stop: Callable[[Checkpoint], bool] | None = None,
               max_rounds: int = 10_000) -> list[Checkpoint]:
    """The advisor loop in process (suggest, run, recommend) until the method has nothing affordable left or
    `stop` says so; the trajectory of recommendations. The MCP agent runs the same loop over tools."""
    spec = study.spec
    trajectory: list[Checkpoint] = []
    for _ in range(max_rounds):
        requests = method.suggest(spec, list(study.points), list(study.runs), q)
        if not requests:
            break
        for request in requests:
            study.execute(request)
        rec = method.recommend(spec, list(study.points), list(study.runs))
        value = float(study.backend.true_values(np.asarray([rec.mixture]), spec.target_size_m, spec.target_steps,
                                                spec.metric)[0])
        trajectory.append(Checkpoint(study.spent, value, rec.trained_at_target))
        if stop is not None and stop(trajectory[-1]):
            break
    return trajectory
