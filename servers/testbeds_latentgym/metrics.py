"""Evaluator metrics of one recorded sequence: reward, exploration bits, exploitation regret.

Computed from the visible record (`TaskView`s) plus the true z and true rewards; never shown to the agent.
- Exploration: every belief update is tagged `agent` (an action's result) or `feedback` (outcome, reveal,
  hint). I_agent = Σ_agent ΔH and I_fb = Σ_feedback ΔH (ΔH = H_before − H_after, in bits) sum exactly to
  H(π0) − H(b_E): the updates telescope and none is skipped.
- Exploitation: G_t = Q_ref(b, s_t, a_ref) − Q_ref(b, s_t, a_t), with Q_ref the planner's expected rest-of-task
  reward under the agent's own exact posterior b; |G| < 1e-9 counts as 0.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel

from .envs.base import TIE, LatentEnv, TaskView
from .inference import events, expected_information_gain, predictive
from .latent import entropy_bits
from .sequence import Sequence as LatentSequence


class EventMetrics(BaseModel):
    task: int  # 1-based
    step: int | None  # 0-based step within the task, for agent events
    tag: str  # agent | feedback
    kind: str  # step | outcome | reveal | hint
    entropy_bits: float
    type_entropy_bits: float
    delta_bits: float  # H_before − H_after: information gained (can be negative)
    posterior_true: float  # b(z*)
    action: dict[str, Any] | None = None
    eig_bits: float | None = None
    reference_action: dict[str, Any] | None = None
    q_reference: float | None = None
    q_action: float | None = None
    regret: float | None = None
    neglect: bool | None = None
    answer_posterior_true: float | None = None  # P(θ_k = true answer | what the agent has seen), agent events


class TaskMetrics(BaseModel):
    task: int
    reward: float
    agent_bits: float
    feedback_bits: float
    regret: float
    posterior_true: float  # b_k(z*) after the task
    value_of_information: float  # V_ref(b_{k-1}): what the planner expects from the task's start belief


class SequenceMetrics(BaseModel):
    env: str
    n_tasks: int
    tasks_played: int
    latent_family: str
    rewards: list[float]
    cumulative_reward: float
    mean_reward: float
    first_reward: float
    last_reward: float
    gain: float
    prior_entropy_bits: float
    final_entropy_bits: float
    agent_bits: float
    feedback_bits: float
    type_prior_entropy_bits: float
    type_final_entropy_bits: float
    log2_posterior_ratio_true: float  # log2 b_E(z*) − log2 π0(z*)
    regret: float  # Σ G
    mean_regret: float
    decisions: int
    neglect_share: float
    first_confident_task: int | None  # first k with b_k(z*) ≥ 0.9
    value_of_information: float  # IV = Σ_k V_ref(b_{k-1})
    invalid_actions: int = 0
    tasks: list[TaskMetrics]
    events: list[EventMetrics]


def _type_entropy(env: LatentEnv, belief: np.ndarray) -> float:
    names, index = env.family_index
    return entropy_bits(np.bincount(index, weights=belief, minlength=len(names)))


def evaluate(env: LatentEnv, views: Sequence[TaskView], z: int, rewards: Sequence[float],
             invalid_actions: int = 0, n_tasks: int | None = None, *, first_task: int = 0,
             thetas: Sequence[int] | None = None) -> SequenceMetrics:
    """All metrics of a (possibly unfinished) record. `rewards` are the true rewards of finished tasks.

    `first_task` (0-based) starts the player's part under the hand-off protocol: the aggregates (reward, bits,
    regret, neglect) cover tasks from there on, and `prior_entropy_bits` is the entropy of the belief the player
    inherited, so the information identity holds for the player's part alone. With the true answers `thetas`,
    each agent event also reports the posterior probability of the current task's answer."""
    prior = env.prior
    committed = {0: prior}  # b_{k-1} by task index k
    p0_cache: dict[int, np.ndarray] = {}
    st_cache: dict[int, np.ndarray] = {}
    prev = prior
    event_rows: list[EventMetrics] = []
    by_view = {v.index: v for v in views}
    for ev in events(env, views):
        h_before, h_after = entropy_bits(prev), entropy_bits(ev.belief)
        row = EventMetrics(task=ev.task + 1, step=ev.step, tag=ev.tag, kind=ev.kind, entropy_bits=h_after,
                           type_entropy_bits=_type_entropy(env, ev.belief), delta_bits=h_before - h_after,
                           posterior_true=float(ev.belief[z]))
        if ev.kind == "step":
            k = ev.task
            view = by_view[k]
            before = view.prefix(ev.step)
            action = view.steps[ev.step][0]
            b = committed[k]
            if k not in p0_cache:
                p0_cache[k] = predictive(env, b, k)
                st_cache[k] = predictive(env, prior, k)
            p0, st = p0_cache[k], st_cache[k]
            ref_action, q_ref = env.best_action(p0, before)
            regret = q_ref - env.q_value(p0, before, action)
            _, best_st = env.best_action(st, before)
            row.action = action
            row.eig_bits = expected_information_gain(env, b, before, action)
            row.reference_action = ref_action
            row.q_reference = q_ref
            row.q_action = q_ref - regret
            row.regret = 0.0 if abs(regret) < TIE else regret
            # Neglect: the action is optimal for a player who forgot earlier tasks, but not under b (any of
            # several tied optima under the reset belief counts).
            row.neglect = bool(row.regret > 0 and env.q_value(st, before, action) >= best_st - TIE)
            if thetas is not None:
                after = view.prefix(ev.step + 1)
                row.answer_posterior_true = float(env.in_task_posterior(p0, after)[thetas[k]])
        event_rows.append(row)
        prev = ev.belief
        committed[ev.task + 1] = ev.belief  # the last event of task k is b_k
    finished = [v for v in views if v.done]
    task_rows = []
    for view, reward in zip(finished, rewards, strict=False):
        mine = [e for e in event_rows if e.task == view.index + 1]
        if view.index not in p0_cache:
            p0_cache[view.index] = predictive(env, committed[view.index], view.index)
        task_rows.append(TaskMetrics(
            task=view.index + 1, reward=float(reward),
            agent_bits=sum(e.delta_bits for e in mine if e.tag == "agent"),
            feedback_bits=sum(e.delta_bits for e in mine if e.tag == "feedback"),
            regret=sum(e.regret or 0.0 for e in mine),
            posterior_true=float(committed[view.index + 1][z]),
            value_of_information=env.best_action(p0_cache[view.index], TaskView(view.index, view.start))[1],
        ))
    final = prev
    start = committed.get(first_task, prior)
    own_events = [e for e in event_rows if e.task > first_task]
    own_tasks = [t for t in task_rows if t.task > first_task]
    decisions = [e for e in own_events if e.kind == "step"]
    own_rewards = [float(r) for r in rewards][first_task:]
    confident = next((t.task for t in own_tasks if t.posterior_true >= 0.9), None)
    names, family_of = env.family_index
    return SequenceMetrics(
        env=env.name, n_tasks=n_tasks or len(views), tasks_played=len(own_tasks),
        latent_family=names[family_of[z]],
        rewards=own_rewards, cumulative_reward=sum(own_rewards),
        mean_reward=float(np.mean(own_rewards)) if own_rewards else 0.0,
        first_reward=own_rewards[0] if own_rewards else 0.0, last_reward=own_rewards[-1] if own_rewards else 0.0,
        gain=(own_rewards[-1] - own_rewards[0]) if own_rewards else 0.0,
        prior_entropy_bits=entropy_bits(start), final_entropy_bits=entropy_bits(final),
        agent_bits=sum(e.delta_bits for e in own_events if e.tag == "agent"),
        feedback_bits=sum(e.delta_bits for e in own_events if e.tag == "feedback"),
        type_prior_entropy_bits=_type_entropy(env, start), type_final_entropy_bits=_type_entropy(env, final),
        log2_posterior_ratio_true=float(np.log2(final[z]) - np.log2(start[z])) if final[z] > 0 else float("-inf"),
        regret=sum(e.regret or 0.0 for e in decisions),
        mean_regret=float(np.mean([e.regret for e in decisions])) if decisions else 0.0,
        decisions=len(decisions),
        neglect_share=float(np.mean([bool(e.neglect) for e in decisions])) if decisions else 0.0,
        first_confident_task=confident,
        value_of_information=sum(t.value_of_information for t in own_tasks),
        invalid_actions=invalid_actions,
        tasks=task_rows, events=event_rows,
    )


def metrics_of(seq: LatentSequence) -> SequenceMetrics:
    """The metrics of a live or replayed sequence (the player's part under the hand-off protocol)."""
    return evaluate(seq.env, seq.views, seq.z, seq.true_rewards, invalid_actions=len(seq.invalid_actions),
                    n_tasks=seq.settings.n_tasks, first_task=seq.settings.handoff_at, thetas=seq.thetas)


def posterior_trace(seq: LatentSequence) -> str:
    """The belief over z after every event (top hypotheses), and over the current task's answer after each
    action (top answers), as the evaluator sees them."""
    env = seq.env
    trace = []
    committed = {0: env.prior}  # b_{k-1} by task: the last event of each task is its committed belief
    p0_cache: dict[int, np.ndarray] = {}
    for ev in events(env, seq.views):
        top = ev.belief.argsort()[::-1][:10]
        row: dict[str, Any] = {"task": ev.task + 1, "tag": ev.tag, "kind": ev.kind, "step": ev.step,
                               "true": float(ev.belief[seq.z]),
                               "top": [{"z": env.hypotheses[i].name, "p": float(ev.belief[i])}
                                       for i in top if ev.belief[i] > 0]}
        if ev.kind == "step":
            view = seq.views[ev.task]
            if ev.task not in p0_cache:
                p0_cache[ev.task] = predictive(env, committed[ev.task], ev.task)
            p0 = p0_cache[ev.task]
            answer = env.in_task_posterior(p0, view.prefix(ev.step + 1))
            best = answer.argsort()[::-1][:5]
            row["answer_true"] = float(answer[seq.thetas[ev.task]])
            row["answer_top"] = [{"answer": env.theta_label(int(t)), "p": float(answer[t])}
                                 for t in best if answer[t] > 0]
        trace.append(row)
        committed[ev.task + 1] = ev.belief
    return json.dumps({"latent": env.hypotheses[seq.z].name, "events": trace})
