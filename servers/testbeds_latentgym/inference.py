"""Exact inference over the latent z from the visible record.

log b_k(z) = log π0(z) + Σ_{j≤k} [log L_j(z) + log P(h_j|z)] − logsumexp(·), with
L_j(z) = Σ_θ P(θ|z,j) Π_t P(o_{j,t}|θ,a_{j,t}) F_j(θ). The feedback factor F (outcome, revealed answer)
multiplies inside the sum over θ: as a separate factor on z a solved task's answer would count twice.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from .envs.base import LatentEnv, TaskView
from .latent import entropy_bits


class InconsistentRecord(ValueError):
    """The visible record has probability zero under every hypothesis: env and likelihood disagree."""


def normalise_log(logw: np.ndarray) -> np.ndarray:
    top = logw.max()
    if not np.isfinite(top):
        raise InconsistentRecord("every hypothesis has zero likelihood for the visible record")
    w = np.exp(logw - top)
    return w / w.sum()


def safe_log(x: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log(x)


def feedback_factor(env: LatentEnv, view: TaskView, *, outcome: bool = True, reveal: bool = True) -> np.ndarray:
    """F_k(θ): 1 where θ agrees with the shown reward and revealed answer of a finished task."""
    factor = np.ones(env.n_theta)
    if outcome and view.reward is not None:
        factor = factor * np.isclose(env.reward_vector(view), view.reward, atol=1e-9)
    if reveal and view.answer is not None:
        factor = factor * env.reveal_mask(view, view.answer)
    return factor


@dataclass
class InferenceEvent:
    """One update of the belief over z, in the order the agent saw it."""

    task: int
    tag: str  # "agent" (an action's result) or "feedback" (outcome, reveal, hint)
    kind: str  # "step", "outcome", "reveal", "hint"
    step: int | None
    belief: np.ndarray


def task_log_likelihood(env: LatentEnv, view: TaskView) -> np.ndarray:
    """log L_k(z) of a finished task, feedback included (hints excluded)."""
    v = env.theta_likelihood(view) * feedback_factor(env, view)
    return safe_log(env.law(view.index).lik(v))


def hint_log_likelihood(env: LatentEnv, view: TaskView) -> np.ndarray:
    if view.hint is None:
        return np.zeros(len(env.prior))
    return safe_log(env.hint_model.likelihood(view.hint))


def belief_after(env: LatentEnv, finished: Sequence[TaskView], prior: np.ndarray | None = None) -> np.ndarray:
    """b_k(z) after the finished tasks (their steps, feedback and hints)."""
    logb = safe_log(env.prior if prior is None else prior)
    for view in finished:
        logb = logb + task_log_likelihood(env, view) + hint_log_likelihood(env, view)
    return normalise_log(logb)


def predictive(env: LatentEnv, belief: np.ndarray, k: int) -> np.ndarray:
    """P(θ_k | h_{k-1}) = Σ_z b(z) P(θ|z,k): the planner's task-start prior."""
    p = env.law(k).mix(belief)
    return p / p.sum()


def events(env: LatentEnv, views: Sequence[TaskView]) -> Iterator[InferenceEvent]:
    """Every belief update of the record, tagged agent or feedback; the last task may be unfinished."""
    logb = safe_log(env.prior)
    for view in views:
        law = env.law(view.index)
        lik = np.ones(env.n_theta)
        for t, (action, result) in enumerate(view.steps):
            lik = lik * env.step_likelihood(view.prefix(t), action, result)
            yield InferenceEvent(view.index, "agent", "step", t, normalise_log(logb + safe_log(law.lik(lik))))
        if not view.done:
            return
        if view.reward is not None:
            lik = lik * feedback_factor(env, view, reveal=False)
            yield InferenceEvent(view.index, "feedback", "outcome", None,
                                 normalise_log(logb + safe_log(law.lik(lik))))
        if view.answer is not None:
            lik = lik * feedback_factor(env, view, outcome=False)
            yield InferenceEvent(view.index, "feedback", "reveal", None,
                                 normalise_log(logb + safe_log(law.lik(lik))))
        logb = logb + safe_log(law.lik(lik))
        if view.hint is not None:
            logb = logb + hint_log_likelihood(env, view)
            yield InferenceEvent(view.index, "feedback", "hint", None, normalise_log(logb))


def expected_information_gain(env: LatentEnv, belief_before_task: np.ndarray, view: TaskView,
                              action: dict) -> float:
    """EIG = I(Z; O | h) in bits for `action` taken in the in-task state `view` (finite outcomes)."""
    law = env.law(view.index)
    base = env.theta_likelihood(view)
    joint_now = law.lik(base) * belief_before_task  # ∝ P(z, h_in-task)
    total = joint_now.sum()
    h_now = entropy_bits(joint_now / total)
    eig = 0.0
    for result in env.possible_results(view, action):
        joint = law.lik(base * env.step_likelihood(view, action, result)) * belief_before_task
        p_o = joint.sum() / total
        if p_o > 1e-15:
            eig += p_o * (h_now - entropy_bits(joint / joint.sum()))
    return eig
