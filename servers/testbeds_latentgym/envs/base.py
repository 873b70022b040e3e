"""The interface every latentgym environment implements.

An environment is a core game plus an explicit latent space. Everything the evaluator and the reference
policies compute is a function of the *visible* record (`TaskView`) through the methods below, so the
posterior is, by construction, a function of exactly what the agent has seen.

Invariant (DESIGN.md, latentgym §2): given θ_k, nothing visible depends on z except hints. Environments
keep it by drawing ξ_k (nuisance randomness) from a law that may depend on θ_k but never on z.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar

import numpy as np
from testbeds_serving.errors import UserError

from ..latent import HintModel, Hypothesis, SparseLaw, build_prior

Action = dict[str, Any]
Result = dict[str, Any]


@dataclass
class TaskView:
    """What the agent saw of one task: the opening, each valid action with its result, and the feedback.

    `reward`, `answer` and `hint` are filled only when the sequence's feedback mode shows them.
    """

    index: int
    start: dict[str, Any]
    steps: list[tuple[Action, Result]] = field(default_factory=list)
    done: bool = False
    reward: float | None = None
    answer: Any = None
    hint: int | None = None

    def prefix(self, n_steps: int) -> TaskView:
        """The view as it was after `n_steps` steps, before any feedback."""
        return TaskView(self.index, self.start, self.steps[:n_steps])


class LatentEnv(ABC):
    """Base class: subclasses fill the class attributes and the abstract methods."""

    name: ClassVar[str]
    gym_id: ClassVar[str]
    summary: ClassVar[str]
    rules: ClassVar[str]
    actions_doc: ClassVar[str]
    # Unit of the latent's rule families, as named in hints and the full-info prompt.
    families: ClassVar[tuple[str, ...]]
    family_doc: ClassVar[str]
    max_steps: ClassVar[int]  # the most valid actions one task can take (for the Gym step cap)
    n_theta: int
    # Plain-language text of each hint statement ("the pattern is NOT <text>"), keyed by statement name.
    statement_text: ClassVar[dict[str, str]] = {}

    def hint_text(self, statement: str) -> str:
        if statement == "none":
            return "no pattern at all (each task is drawn independently)"
        return self.statement_text.get(statement, statement)

    # -- latent space -------------------------------------------------------------------------------
    @cached_property
    def hypotheses(self) -> list[Hypothesis]:
        return self.build_hypotheses()

    @abstractmethod
    def build_hypotheses(self) -> list[Hypothesis]: ...

    @cached_property
    def prior(self) -> np.ndarray:
        return build_prior(self.hypotheses)

    @cached_property
    def hint_model(self) -> HintModel:
        return HintModel.by_family(self.hypotheses, self.families)

    @cached_property
    def family_index(self) -> tuple[list[str], np.ndarray]:
        """Rule families (with "none") and each hypothesis's family number, for type-level entropy."""
        names = [*self.families, "none"]
        return names, np.array([names.index(h.family) for h in self.hypotheses])

    @abstractmethod
    def law(self, k: int) -> SparseLaw:
        """P(θ_k | z) for task k (0-based). Cache it: it is called on every inference event."""

    def draw_theta(self, z: int, k: int, rng: np.random.Generator) -> int:
        row = self.law(k).row(z)
        return int(rng.choice(self.n_theta, p=row))

    @abstractmethod
    def theta_label(self, theta: int) -> Any:
        """A JSON-able name of θ (what `reveal_answer` shows)."""

    # -- one task -------------------------------------------------------------------------------------
    @abstractmethod
    def draw_nuisance(self, theta: int, k: int, rng: np.random.Generator) -> Any:
        """ξ_k: pre-drawn randomness of the task (pulls, orderings, catalogues); its law never depends on z."""

    @abstractmethod
    def task_start(self, theta: int, xi: Any) -> dict[str, Any]:
        """The visible opening of a task (may be empty)."""

    @abstractmethod
    def parse_action(self, view: TaskView, raw: Any) -> Action:
        """Validate and normalise an action for the current in-task state, or raise `InvalidAction`
        saying what is allowed. Must not depend on θ or z, so an error never leaks them."""

    @abstractmethod
    def step(self, theta: int, xi: Any, view: TaskView, action: Action) -> tuple[Result, bool, float]:
        """Apply a valid action: the visible result, whether the task ended, and the task reward (0 until done)."""

    @abstractmethod
    def observation(self, view: TaskView) -> dict[str, Any]:
        """The agent's current view of the task, derived from the visible record only."""

    # -- likelihoods over θ, from visible data only ---------------------------------------------------
    @abstractmethod
    def step_likelihood(self, view: TaskView, action: Action, result: Result) -> np.ndarray:
        """P(result | θ, action, earlier steps of `view`) for every θ (a proper probability)."""

    @abstractmethod
    def possible_results(self, view: TaskView, action: Action) -> list[Result]:
        """Every result `action` can have in this state (for expected information gain)."""

    def theta_likelihood(self, view: TaskView) -> np.ndarray:
        """Π_t P(o_t | θ, a_t) over the steps of `view`."""
        lik = np.ones(self.n_theta)
        for t, (action, result) in enumerate(view.steps):
            lik = lik * self.step_likelihood(view.prefix(t), action, result)
        return lik

    @abstractmethod
    def reward_vector(self, view: TaskView) -> np.ndarray:
        """The reward the finished task's actions would have earned for every possible θ."""

    def reveal_mask(self, view: TaskView, shown: Any) -> np.ndarray:
        """Which θ are consistent with the revealed answer."""
        return np.array([self.theta_label(t) == shown for t in range(self.n_theta)], dtype=float)

    def reveal(self, theta: int, xi: Any) -> Any:
        return self.theta_label(theta)

    # -- the task-greedy planner -------------------------------------------------------------------------
    @abstractmethod
    def q_value(self, p0: np.ndarray, view: TaskView, action: Action) -> float:
        """Expected rest-of-task reward of `action` now, with the planner continuing, when θ_k ~ p0 a priori
        (p0 = the task-start predictive; the in-task steps in `view` are conditioned on inside)."""

    @abstractmethod
    def best_action(self, p0: np.ndarray, view: TaskView) -> tuple[Action, float]:
        """The planner's action and its value. Ties go to the lowest action in the env's fixed order."""

    @abstractmethod
    def legal_actions(self, view: TaskView) -> list[Action]:
        """Every legal action in the env's fixed order (the random policy and the Gym adapter use it)."""

    def in_task_posterior(self, p0: np.ndarray, view: TaskView) -> np.ndarray:
        post = p0 * self.theta_likelihood(view)
        total = post.sum()
        if total <= 0:
            raise ValueError(f"{self.name}: the visible steps have zero probability under p0")
        return post / total


TIE = 1e-9  # values closer than this are ties, broken by the env's fixed action order


def pick_best(scored: list[tuple[Action, float]]) -> tuple[Action, float]:
    """The first action (in the env's fixed order) whose value is within TIE of the best."""
    top = max(v for _, v in scored)
    return next((a, v) for a, v in scored if v >= top - TIE)


ECHO_LIMIT = 120


def clip_repr(raw: Any) -> str:
    """An action as echoed in an error: its repr, cut short so a huge payload is not sent back."""
    text = repr(raw)
    return text if len(text) <= ECHO_LIMIT else text[:ECHO_LIMIT] + "..."


class InvalidAction(UserError):
    """Raised by `parse_action`; the message tells the agent what is allowed. Costs no turn."""
