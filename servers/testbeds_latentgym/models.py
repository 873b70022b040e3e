"""Pydantic models of latentgym's settings and tool outputs (agent face and evaluator face)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

EnvName = Literal["number_guess", "bandit", "mastermind", "recommender", "secretary"]
Feedback = Literal["none", "outcome", "reveal_answer", "latent_hint"]
PromptLevel = Literal["no_info", "some_info", "full_info"]
Structure = Literal["prior", "latent", "none"]
HandoffPolicy = Literal["bayes", "no_transfer", "oracle", "random"]
ENV_NAMES: tuple[str, ...] = ("number_guess", "bandit", "mastermind", "recommender", "secretary")


class SequenceSettings(BaseModel):
    """How one sequence is set up. The seed and structure are harness settings, never echoed to the agent."""

    model_config = ConfigDict(extra="forbid")

    env: EnvName = Field(description="Which environment: " + ", ".join(ENV_NAMES) + ".")
    n_tasks: int = Field(10, ge=1, le=100, description="Tasks in the sequence; 1 is the single-task control.")
    seed: int | None = Field(None, ge=0, le=2**63 - 1,
                             description="Episode seed; omit to let the server draw one (kept hidden).")
    feedback: Feedback = Field("outcome", description="What is shown after each task: none, outcome (the "
                               "reward), reveal_answer (outcome + answer) or latent_hint (outcome + a hint).")
    prompt: PromptLevel = Field("some_info", description="How much the brief says about cross-task structure.")
    structure: Structure = Field("prior", description="prior: z drawn from the prior; latent: a structured z; "
                                 "none: the no-structure control.")
    handoff_from: HandoffPolicy | None = Field(None, description="Hand-off protocol: a reference policy plays "
                                               "the first handoff_at tasks, then you continue.")
    handoff_at: int = Field(0, ge=0, description="How many tasks handoff_from plays before you take over.")

    @model_validator(mode="after")
    def _handoff_fits(self) -> SequenceSettings:
        if (self.handoff_from is None) != (self.handoff_at == 0):
            raise ValueError("handoff_from and handoff_at go together: name a policy and a number of tasks >= 1")
        if self.handoff_at >= self.n_tasks:
            raise ValueError(f"handoff_at must leave at least one task to play (n_tasks is {self.n_tasks})")
        return self


class EnvironmentInfo(BaseModel):
    name: str
    summary: str
    rules: str
    actions: str
    tasks_default: int = 10
    feedback_modes: list[str]


class EnvironmentList(BaseModel):
    environments: list[EnvironmentInfo]


class Brief(BaseModel):
    """What the agent is told at the start of a sequence."""

    handle: str = Field(description="Pass this to observe, act and task_history.")
    environment: str
    n_tasks: int
    feedback: str
    rules: str
    actions: str
    context: str
    observation: dict[str, Any]


class Observation(BaseModel):
    task: int | None = Field(description="1-based index of the current task; null once the sequence is done.")
    n_tasks: int
    sequence_done: bool
    opening: dict[str, Any] = Field(default_factory=dict, description="What the current task showed at its start.")
    state: dict[str, Any] = Field(default_factory=dict, description="The current task as you see it.")


class ActResult(BaseModel):
    task: int
    number: int = Field(description="1-based number of this action in the sequence.")
    action: dict[str, Any] = Field(description="The action as the environment understood it.")
    result: dict[str, Any]
    task_done: bool
    feedback: dict[str, Any] | None = Field(None, description="After a task ends: what the feedback mode shows.")
    sequence_done: bool
    next: dict[str, Any] | None = Field(None, description="The next task's opening observation, if any.")


class TaskRecord(BaseModel):
    task: int
    start: dict[str, Any]
    steps: list[dict[str, Any]]
    feedback: dict[str, Any] | None = None


class History(BaseModel):
    n_tasks: int
    tasks: list[TaskRecord]
