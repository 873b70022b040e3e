"""Reference policies over the visible record: bayes, no_transfer, oracle, random.

All but `random` run the environment's task-greedy planner; they differ only in the task-start prior over
θ_k they plan with: the exact posterior predictive (bayes), the prior predictive reset every task
(no_transfer), or the law under the true z (oracle; θ_k itself stays unknown). Later tasks' information is
given no value (declared approximation: the planners are task-greedy).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from .envs.base import Action, LatentEnv, TaskView
from .inference import belief_after, predictive
from .seeding import rng_for

POLICIES = ("bayes", "no_transfer", "oracle", "random")


class Policy(Protocol):
    name: str

    def act(self, views: Sequence[TaskView]) -> Action:
        """The next action given the visible record (the last view is the running task)."""
        ...


class PlannerPolicy:
    """Plans each task with p0 = the task-start prior this policy believes."""

    def __init__(self, env: LatentEnv, name: str) -> None:
        self.env = env
        self.name = name
        self._p0: dict[int, np.ndarray] = {}

    def task_prior(self, views: Sequence[TaskView]) -> np.ndarray:
        raise NotImplementedError

    def act(self, views: Sequence[TaskView]) -> Action:
        k = views[-1].index
        if k not in self._p0:
            self._p0 = {k: self.task_prior(views)}
        return self.env.best_action(self._p0[k], views[-1])[0]


class Bayes(PlannerPolicy):
    def __init__(self, env: LatentEnv) -> None:
        super().__init__(env, "bayes")

    def task_prior(self, views: Sequence[TaskView]) -> np.ndarray:
        return predictive(self.env, belief_after(self.env, views[:-1]), views[-1].index)


class NoTransfer(PlannerPolicy):
    def __init__(self, env: LatentEnv) -> None:
        super().__init__(env, "no_transfer")

    def task_prior(self, views: Sequence[TaskView]) -> np.ndarray:
        return predictive(self.env, self.env.prior, views[-1].index)


class Oracle(PlannerPolicy):
    def __init__(self, env: LatentEnv, z: int) -> None:
        super().__init__(env, "oracle")
        self.z = z

    def task_prior(self, views: Sequence[TaskView]) -> np.ndarray:
        return self.env.law(views[-1].index).row(self.z)


class RandomPolicy:
    """Uniform over legal actions, from its own seeded stream."""

    def __init__(self, env: LatentEnv, seed: int) -> None:
        self.env = env
        self.name = "random"
        self.rng = rng_for(seed, "policy", "random")

    def act(self, views: Sequence[TaskView]) -> Action:
        legal = self.env.legal_actions(views[-1])
        return legal[int(self.rng.integers(len(legal)))]


def make_policy(name: str, env: LatentEnv, *, seed: int = 0, z: int | None = None) -> Policy:
    if name == "bayes":
        return Bayes(env)
    if name == "no_transfer":
        return NoTransfer(env)
    if name == "oracle":
        if z is None:
            raise ValueError("the oracle policy needs the true latent z")
        return Oracle(env, z)
    if name == "random":
        return RandomPolicy(env, seed)
    raise ValueError(f"unknown policy {name!r}; choose one of {', '.join(POLICIES)}")
