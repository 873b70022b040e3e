"""Observation noise shared by the simulator backends (design note mixopt.md §4): a per-run loss offset whose sd
grows at small scale and early in training, sd = s0 · n^-0.35 · (D/D*)^-0.25 with s0 = 0.005 nats, n the size in
billions and D/D* the tokens seen relative to a full target run."""

from __future__ import annotations

from .domains import TARGET_SIZE_M, TARGET_STEPS, tokens_per_step

NOISE_S0 = 0.005
NOISE_SIZE_EXPONENT = 0.35
NOISE_DATA_EXPONENT = 0.25


def data_ratio(size_m: float, steps: int) -> float:
    """Tokens of `steps` steps at this size over the tokens of a full target run (D/D*)."""
    return steps * tokens_per_step(size_m) / (TARGET_STEPS * tokens_per_step(TARGET_SIZE_M))


def loss_noise_sd(size_m: float, steps: int) -> float:
    """Standard deviation of the per-run loss offset at this size and step count (nats)."""
    return float(NOISE_S0 * (float(size_m) / 1000.0) ** -NOISE_SIZE_EXPONENT
                 * data_ratio(float(size_m), int(steps)) ** -NOISE_DATA_EXPONENT)
