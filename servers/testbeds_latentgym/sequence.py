"""One sequence of N tasks sharing a hidden z: the server-side runtime.

Everything random is drawn up front from the episode seed (z, then θ_k and ξ_k per task, hints per task),
so the same seed and the same actions give the same bytes. What the agent sees is derived from the
visible record (`TaskView`) only; the hidden parts (z, θ, ξ, true rewards) stay on this object.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .envs import get_env
from .envs.base import Action, InvalidAction, LatentEnv, TaskView
from .models import SequenceSettings
from .seeding import rng_for

SOME_INFO = ("The tasks in this sequence may or may not follow a hidden pattern that carries over from task "
             "to task. What you learn in one task may help in later ones.")


def draw_latent(env: LatentEnv, settings: SequenceSettings, seed: int) -> int:
    """z from the prior, from the prior given structure (`latent`), or the no-structure control."""
    prior = env.prior
    # The cached family index, not a pass over env.hypotheses: number_guess has 166,845 of them.
    names, family = env.family_index
    is_none = family == names.index("none")
    if settings.structure == "none":
        return int(np.flatnonzero(is_none)[0])
    if settings.structure == "latent":
        prior = np.where(is_none, 0.0, prior)
        prior = prior / prior.sum()
    return int(rng_for(seed, "z").choice(len(prior), p=prior))


def context_text(env: LatentEnv, settings: SequenceSettings) -> str:
    if settings.prompt == "no_info":
        return ""
    if settings.prompt == "some_info":
        return SOME_INFO
    text = (SOME_INFO + " Exactly one of these holds for the whole sequence, with these prior probabilities: "
            + env.family_doc)
    if settings.structure == "latent":
        # Stating the prior unchanged would be false here; the null control (structure "none") keeps the
        # prior's wording on purpose, so that it stays indistinguishable from a structured sequence.
        text += " In this sequence a pattern is known to exist: rule out 'no pattern' and renormalise."
    return text


def feedback_text(settings: SequenceSettings) -> str:
    return {
        "none": "After each task you are told only that it ended.",
        "outcome": "After each task you are told its reward.",
        "reveal_answer": "After each task you are told its reward and its answer.",
        "latent_hint": "After each task but the last you are told its reward and a hint of the form "
                       "'the pattern is NOT ...'.",
    }[settings.feedback]


def view_to_public(view: TaskView) -> dict[str, Any]:
    """A finished or running task as the agent sees it (1-based task number)."""
    out: dict[str, Any] = {
        "task": view.index + 1,
        "start": view.start,
        "steps": [{"action": a, "result": r} for a, r in view.steps],
    }
    if view.done:
        out["feedback"] = feedback_public(view)
    return out


def feedback_public(view: TaskView) -> dict[str, Any]:
    fb: dict[str, Any] = {"task_done": True}
    if view.reward is not None:
        fb["reward"] = view.reward
    if view.answer is not None:
        fb["answer"] = view.answer
    return fb


def view_from_public(record: dict[str, Any], hint_index: int | None = None) -> TaskView:
    """Rebuild a visible record from what the agent was shown (the inverse of `view_to_public`)."""
    fb = record.get("feedback")
    return TaskView(
        index=int(record["task"]) - 1,
        start=record.get("start", {}),
        steps=[(s["action"], s["result"]) for s in record.get("steps", [])],
        done=fb is not None,
        reward=None if fb is None else fb.get("reward"),
        answer=None if fb is None else fb.get("answer"),
        hint=hint_index,
    )


@dataclass
class Sequence:
    """The runtime of one sequence. `act` is the only mutator; an invalid action changes nothing."""

    settings: SequenceSettings
    seed: int
    z: int | None = None
    thetas: list[int] | None = None
    env: LatentEnv = field(init=False)
    views: list[TaskView] = field(init=False)
    xis: list[Any] = field(init=False)
    true_rewards: list[float] = field(init=False, default_factory=list)
    invalid_actions: list[dict[str, Any]] = field(init=False, default_factory=list)
    act_log: list[tuple[Action, dict[str, Any]]] = field(init=False, default_factory=list)  # (action, act result)

    def __post_init__(self) -> None:
        self.env = get_env(self.settings.env)
        n = self.settings.n_tasks
        if self.z is None:
            self.z = draw_latent(self.env, self.settings, self.seed)
        if self.thetas is None:
            self.thetas = [self.env.draw_theta(self.z, k, rng_for(self.seed, "theta", k)) for k in range(n)]
        self.xis = [self.env.draw_nuisance(self.thetas[k], k, rng_for(self.seed, "xi", k)) for k in range(n)]
        self.views = [TaskView(0, self.env.task_start(self.thetas[0], self.xis[0]))]

    # -- agent face --------------------------------------------------------------------------------------
    @property
    def done(self) -> bool:
        return len(self.true_rewards) == self.settings.n_tasks

    @property
    def current(self) -> TaskView:
        return self.views[-1]

    def observation(self) -> dict[str, Any]:
        if self.done:
            return {"task": None, "n_tasks": self.settings.n_tasks, "sequence_done": True, "opening": {},
                    "state": {}}
        return {"task": self.current.index + 1, "n_tasks": self.settings.n_tasks, "sequence_done": False,
                "opening": self.current.start, "state": self.env.observation(self.current)}

    def brief(self) -> dict[str, Any]:
        env = self.env
        return {"environment": env.name, "n_tasks": self.settings.n_tasks,
                "feedback": feedback_text(self.settings), "rules": env.rules, "actions": env.actions_doc,
                "context": context_text(env, self.settings), "observation": self.observation()}

    def act(self, raw: Any) -> dict[str, Any]:
        """Apply one action. Raises `InvalidAction` (state unchanged) for an illegal one."""
        if self.done:
            raise InvalidAction("the sequence is over; every task has been played. Read task_history, or "
                                "start a new sequence.")
        view = self.current
        k = view.index
        try:
            action = self.env.parse_action(view, raw)
        except InvalidAction as exc:
            self.invalid_actions.append({"task": k + 1, "step": len(view.steps), "action": raw,
                                         "error": str(exc)})
            raise
        result, task_done, reward = self.env.step(self.thetas[k], self.xis[k], view, action)
        view.steps.append((action, result))
        # The action number is assigned under the caller's lock, so a recording whose results were written
        # out of order (parallel calls) can still be replayed in the order they were applied.
        out: dict[str, Any] = {"task": k + 1, "number": len(self.act_log) + 1, "action": action, "result": result,
                               "task_done": task_done, "feedback": None, "sequence_done": False, "next": None}
        if task_done:
            self._finish_task(view, reward)
            out["feedback"] = self._feedback(view)
            out["sequence_done"] = self.done
            if not self.done:
                out["next"] = self.observation()
        self.act_log.append((action, out))
        return out

    def _finish_task(self, view: TaskView, reward: float) -> None:
        k = view.index
        mode = self.settings.feedback
        view.done = True
        self.true_rewards.append(float(reward))
        if mode != "none":
            view.reward = float(reward)
        if mode == "reveal_answer":
            view.answer = self.env.reveal(self.thetas[k], self.xis[k])
        if mode == "latent_hint" and k < self.settings.n_tasks - 1:
            view.hint = self.env.hint_model.draw(self.z, rng_for(self.seed, "hint", k))
        if k + 1 < self.settings.n_tasks:
            self.views.append(TaskView(k + 1, self.env.task_start(self.thetas[k + 1], self.xis[k + 1])))

    def _feedback(self, view: TaskView) -> dict[str, Any]:
        fb = feedback_public(view)
        if view.hint is not None:
            fb["hint"] = hint_public(self.env, view.hint)
        return fb

    def history(self) -> list[dict[str, Any]]:
        """Finished tasks as they were shown, hints included."""
        out = []
        for view in self.views:
            if view.done:
                record = view_to_public(view)
                if view.hint is not None:
                    record["feedback"]["hint"] = hint_public(self.env, view.hint)
                out.append(record)
        return out

    # -- evaluator face ----------------------------------------------------------------------------------
    def latent(self) -> dict[str, Any]:
        h = self.env.hypotheses[self.z]
        return {"index": self.z, "name": h.name, "family": h.family, "subfamily": h.subfamily,
                "answers": [self.env.theta_label(t) for t in self.thetas], "seed": self.seed}

    def replay_action(self, action: Action, expected: dict[str, Any]) -> None:
        """Apply a recorded action and insist on the recorded result (byte-identical replays for fork)."""
        got = self.act(action)
        if got != expected:
            raise ValueError(f"replay diverged at task {got['task']}: recorded {expected!r}, replayed {got!r}")


def hint_public(env: LatentEnv, statement: int) -> dict[str, str]:
    name = env.hint_model.statements[statement]
    return {"not": name, "text": f"The pattern is NOT: {env.hint_text(name)}."}


def hint_from_public(env: LatentEnv, hint: dict[str, Any] | None) -> int | None:
    if not hint:
        return None
    return env.hint_model.statements.index(hint["not"])


class VisibleRecord:
    """The agent-side rebuild of the visible record from a brief and the act results that followed.

    Reference policies running inside an agent use it: they see exactly what any other agent sees."""

    def __init__(self, env: LatentEnv, observation: dict[str, Any], history: list[dict[str, Any]] = ()) -> None:
        """Start from the finished tasks (`task_history`) and an observation of the current task taken before
        any action in it (the brief's, or `observe`'s)."""
        self.env = env
        obs = observation
        self.views = [view_from_public(t, hint_from_public(env, t["feedback"].get("hint"))) for t in history]
        if not obs["sequence_done"]:
            self.views.append(TaskView(obs["task"] - 1, obs["opening"]))
        self.done = bool(obs["sequence_done"])

    def apply(self, result: dict[str, Any]) -> None:
        """Add one successful act result."""
        view = self.views[-1]
        view.steps.append((result["action"], result["result"]))
        if result["task_done"]:
            fb = result.get("feedback") or {}
            view.done = True
            view.reward = fb.get("reward")
            view.answer = fb.get("answer")
            view.hint = hint_from_public(self.env, fb.get("hint"))
            nxt = result.get("next")
            if nxt:
                self.views.append(TaskView(nxt["task"] - 1, nxt["opening"]))
        self.done = bool(result["sequence_done"])
