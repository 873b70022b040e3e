"""What every simulator backend provides. Domain code: no mcp import."""

from __future__ import annotations

from typing import Protocol

import numpy as np


class Backend(Protocol):
    """A simulator of pre-training runs: metrics of a model of `size_m` million parameters trained
    `steps` steps on `mixture` (5 proportions in TRAIN_DOMAINS order)."""

    name: str
    metrics: tuple[str, ...]
    sizes_m: tuple[int, ...]  # the sizes this backend answers (the advisor's candidate scales)

    def validate(self, size_m: float, steps: int) -> None:
        """Raise `InvalidArgument` (testbeds_serving.errors) naming the valid sizes/steps if out of range."""

    def cost(self, size_m: float, steps: int) -> float:
        """Training cost of a run from step 0 to `steps`, in target-run units (full 1B, 19,500 steps = 1)."""

    def true_values(self, mixtures: np.ndarray, size_m: float, steps: int, metric: str) -> np.ndarray:
        """Noise-free metric for each row of `mixtures` (shape (n, 5)); vectorised for pools."""

    def observe(self, mixture: np.ndarray, size_m: float, steps: int, *, seed: int, run_id: int) -> dict[str, float]:
        """Every metric with observation noise keyed by (seed, run_id) (and the step): the value at a step
        does not depend on whether the run continues, so a resumed run reports consistent checkpoints."""

    def optimum(self, metric: str, size_m: float, steps: int) -> tuple[np.ndarray, float]:
        """Ground truth (evaluator only): the best mixture and its noise-free value."""
