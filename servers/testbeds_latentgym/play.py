"""Playing whole sequences in process: reference runs, replays and the hand-off protocol (`fork`)."""

from __future__ import annotations

from collections.abc import Sequence as Seq
from typing import Any

from .models import SequenceSettings
from .policies import Policy, make_policy
from .sequence import Sequence


def play(seq: Sequence, policy: Policy, *, max_actions: int | None = None) -> Sequence:
    """Let `policy` play `seq` to the end (or for `max_actions` actions)."""
    n = 0
    while not seq.done and (max_actions is None or n < max_actions):
        seq.act(policy.act(seq.views))
        n += 1
    return seq


def new_sequence(settings: SequenceSettings, seed: int) -> Sequence:
    """A sequence ready for its player: under the hand-off protocol, the reference policy named by
    `handoff_from` has already played the first `handoff_at` tasks (the player sees them in its history)."""
    seq = Sequence(settings, seed)
    if settings.handoff_from is not None:
        prefix = make_policy(settings.handoff_from, seq.env, seed=seed, z=seq.z)
        while len(seq.true_rewards) < settings.handoff_at:
            seq.act(prefix.act(seq.views))
    return seq


def run_reference(settings: SequenceSettings, seed: int, policy: str) -> Sequence:
    seq = new_sequence(settings, seed)
    return play(seq, make_policy(policy, seq.env, seed=seed, z=seq.z))


def fork(settings: SequenceSettings, seed: int, recorded: Seq[tuple[dict[str, Any], dict[str, Any]]],
         at_task: int, policy: str) -> Sequence:
    """Replay the recorded (action, act-result) pairs of tasks 1..at_task byte for byte, then let a
    reference policy continue from the agent-visible history. T(X→Y) = Σ_{k>K} r_k of the result."""
    if not settings.handoff_at <= at_task <= settings.n_tasks:
        raise ValueError(f"at_task must be in {settings.handoff_at}..{settings.n_tasks}, got {at_task}")
    seq = new_sequence(settings, seed)
    for action, expected in recorded:
        if expected["task"] <= settings.handoff_at:
            continue  # played by the hand-off policy inside new_sequence
        if expected["task"] > at_task:
            break
        seq.replay_action(action, expected)
    if len(seq.true_rewards) != at_task:
        raise ValueError(f"the recording holds {len(seq.true_rewards)} finished tasks, fewer than at_task={at_task}")
    return play(seq, make_policy(policy, seq.env, seed=seed, z=seq.z))


def handoff_return(seq: Sequence, at_task: int) -> float:
    return float(sum(seq.true_rewards[at_task:]))
