"""Training cost of simulated runs, in target-run units (one full 1B run of 19,500 steps = 1).

We use the nominal compute 6·N·D with the paper's token layout (`domains.tokens_per_step`: 2^19 tokens
per step below 1B, 2^20 at 1B), normalised by the target run. Full runs then cost 0.010 (20M), 0.030
(60M), 0.075 (150M), 0.150 (300M), 0.250 (500M), 0.350 (700M) and 1 (1B). The paper's FLOP table
(`flops_dataset.csv`) is also exactly linear in steps and within 30% of these ratios (its 20M run is
0.0130); the ratios, not absolute FLOPs, are what the advisor uses, so the nominal form is the default.

Cost is linear in steps, a checkpoint read from a run costs nothing, and resuming a run from step a to
step b pays only the increment, `run_cost(size, b - a)`.
"""

from __future__ import annotations

import math

from testbeds_serving.errors import InvalidArgument

from .domains import TARGET_SIZE_M, TARGET_STEPS, tokens_per_step


def run_cost(size_m: float, steps: int) -> float:
    """Cost of training a `size_m`-million-parameter model from step 0 to `steps`, in target-run units.

    6·N·D / (6·N*·D*), with D = steps × tokens_per_step(size). `run_cost(1000, 19_500) == 1.0` exactly.
    """
    size = _positive(size_m, "size_m")
    n_steps = _non_negative(steps, "steps")
    # Factor by factor so that the target run is exactly 1.0 and the cost exactly linear in steps.
    return float((size / TARGET_SIZE_M) * (n_steps / TARGET_STEPS)
                 * (tokens_per_step(size) / tokens_per_step(TARGET_SIZE_M)))


def resume_cost(size_m: float, from_steps: int, to_steps: int) -> float:
    """Cost of continuing a run from checkpoint `from_steps` to `to_steps`: the new steps only."""
    start = _non_negative(from_steps, "from_steps")
    end = _non_negative(to_steps, "to_steps")
    if end < start:
        raise InvalidArgument(f"a resumed run must train forward: to_steps ({end:g}) is below from_steps ({start:g})")
    return run_cost(size_m, end - start)


def _positive(value: float, name: str) -> float:
    v = float(value)
    if not math.isfinite(v) or v <= 0:
        raise InvalidArgument(f"{name} must be a positive number of millions of parameters; got {value!r}")
    return v


def _non_negative(value: float, name: str) -> float:
    v = float(value)
    if not math.isfinite(v) or v < 0:
        raise InvalidArgument(f"{name} must be a non-negative number of steps; got {value!r}")
    return v
