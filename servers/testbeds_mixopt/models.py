"""Pydantic models of mixopt: studies, run requests, observations, recommendations."""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .domains import (
    MAX_STEPS,
    METRICS,
    MIN_STEPS,
    N_DOMAINS,
    SIZES_M,
    TARGET_SIZE_M,
    TARGET_STEPS,
    Direction,
)

SUM_TOLERANCE = 1e-6


def check_mixture(values: list[float]) -> list[float]:
    """5 finite, non-negative proportions summing to 1 within 1e-6 (renormalised exactly)."""
    if len(values) != N_DOMAINS:
        raise ValueError(f"a mixture has {N_DOMAINS} proportions (wikipedia, stackexchange, github, arxiv, "
                         f"book); got {len(values)}")
    if not all(math.isfinite(v) for v in values):
        raise ValueError("mixture proportions must be finite numbers")
    if min(values) < 0:
        raise ValueError(f"mixture proportions must be >= 0; got {values}")
    total = sum(values)
    if abs(total - 1.0) > SUM_TOLERANCE:
        raise ValueError(f"mixture proportions must sum to 1 (within {SUM_TOLERANCE:g}); they sum to {total:.9g}")
    return [v / total for v in values]


class RunRequest(BaseModel):
    """A training run to perform: train `mixture` at `size_m` to `steps`, or resume run `resume_run` to `steps`."""

    model_config = ConfigDict(extra="forbid")

    mixture: list[float] = Field(description="Proportions of wikipedia, stackexchange, github, arxiv, book.")
    size_m: int = Field(description="Model size in millions of parameters.")
    steps: int = Field(ge=MIN_STEPS, le=MAX_STEPS, description="Train up to this step.")
    resume_run: int | None = Field(None, description="Continue this earlier run (pays only the new steps).")
    reason: str = Field("", description="Why the method chose it (e.g. 'EI/cost 0.31 at 150M, 6000 steps').")

    @field_validator("mixture")
    @classmethod
    def _valid_mixture(cls, v: list[float]) -> list[float]:
        return check_mixture(v)


class Point(BaseModel):
    """One observation the surrogate learns from (a run's end or one of its free checkpoints)."""

    run_id: int
    mixture: list[float]
    size_m: float
    steps: int
    value: float
    checkpoint: bool = False


class RecordedRun(BaseModel):
    """Every metric of one run at one reported step."""

    run_id: int
    mixture: list[float]
    size_m: float
    steps: int
    metrics: dict[str, float]


class RunRecord(BaseModel):
    """A run of the study: its configuration, how far it was trained, what it cost."""

    run_id: int
    mixture: list[float]
    size_m: int
    steps: int
    cost: float
    metrics: dict[str, float] = Field(default_factory=dict, description="Every metric at the run's last step.")
    source: str = Field("simulator", description="simulator, or user for results the user observed.")


class StudySpec(BaseModel):
    """What to optimise and at what price."""

    model_config = ConfigDict(extra="forbid")

    metric: str = Field("loss_commoncrawl", description="The objective: one of " + ", ".join(METRICS))
    direction: Direction | None = Field(None, description="minimize or maximize; default by metric kind.")
    target_size_m: int = TARGET_SIZE_M
    target_steps: int = TARGET_STEPS
    budget: float = Field(20.0, gt=0, description="Total cost allowed, in target-run units.")
    sizes_m: list[int] = Field(default_factory=lambda: list(SIZES_M),
                               description="Candidate model sizes (fidelities), in millions of parameters.")
    steps_options: list[int] = Field(default_factory=lambda: [6_000, 12_000, TARGET_STEPS],
                                     description="Candidate training lengths (fidelities).")
    seed: int = Field(0, ge=0)
    batch: int = Field(1, ge=1, le=16, description="Runs proposed per suggest call.")

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, v: str) -> str:
        if v not in METRICS:
            raise ValueError(f"unknown metric {v!r}; choose one of {', '.join(METRICS)}")
        return v


class Recommendation(BaseModel):
    mixture: list[float]
    predicted: float = Field(description="Predicted metric at the target size and steps.")
    sd: float = Field(description="Predictive standard deviation (excluding observation noise).")
    trained_at_target: bool = Field(description="Whether this mixture was already trained at the target.")
