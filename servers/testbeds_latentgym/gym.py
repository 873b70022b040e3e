"""Gymnasium adapter: one Gym episode is one latentgym sequence of N tasks.

Importing this module registers the ids (`testbeds/NumberGuess-v0`, `testbeds/Bandit-v0`,
`testbeds/Mastermind-v0`, `testbeds/Recommender-v0`, `testbeds/Secretary-v0`). Gymnasium 0.26-0.29 also
call `register_envs` through the `gymnasium.envs` entry point; 1.x ignores that group, so there use
``gymnasium.make("testbeds_latentgym.gym:testbeds/Secretary-v0")``, which imports this module first.
`import testbeds_latentgym` alone never imports gymnasium.

What the agent gets (DESIGN.md latentgym §5-6):
- observation: a JSON string (sorted keys, ASCII) of the MCP observation, plus `last` (the last valid
  action's result and, at a task's end, the feedback the sequence's mode shows) and `error` after an
  invalid action. The brief (rules, actions, feedback, context) is in the reset `info`, not the observation,
  to keep observations small and Markov.
- reward: each task's reward, paid on the task's last step, so the episode return is R = Σ r_k. The
  reward is paid under every feedback mode (it is the RL signal); `feedback` governs the observation only.
- info: task boundaries (`task`, 1-based like the observation; `task_done`; `tasks_done`),
  `invalid_action`, and in discrete mode `action_mask` (legal actions, computed from the visible record).
  Never ground truth: no z, θ, seed or anything derived from them.
"""

from __future__ import annotations

import copy
import json
import string
from functools import cache
from typing import Any, Literal

import gymnasium
import numpy as np
from gymnasium import spaces
from gymnasium.envs.registration import register, registry
from gymnasium.error import ResetNeeded

from .envs import env_names, get_env
from .envs.base import Action, InvalidAction
from .models import EnvName, Feedback, PromptLevel, SequenceSettings, Structure
from .sequence import Sequence

ActionFormat = Literal["discrete", "text"]

OBS_MAX_LENGTH = 8192
TEXT_ACTION_MAX_LENGTH = 512
DEFAULT_N_TASKS = 10
MAX_SEED = 2**63 - 1  # the range SequenceSettings accepts
ENTRY_POINT = "testbeds_latentgym.gym:LatentGymEnv"


def _jsonable(value: Any) -> Any:
    # Environments may hand back numpy scalars or arrays; JSON needs plain Python values.
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def to_text(payload: dict[str, Any]) -> str:
    """The canonical text form of an observation: sorted keys, ASCII only (fits `string.printable`)."""
    return json.dumps(payload, sort_keys=True, ensure_ascii=True, default=_jsonable)


def action_name(action: Action) -> str:
    """An action's name in `action_names`: its canonical JSON, which `action_format="text"` also accepts."""
    return json.dumps(action, sort_keys=True, ensure_ascii=True, default=_jsonable)


@cache
def _fixed_actions(env: str) -> tuple[str, ...]:
    # Every env lists its full action set as the legal actions of a fresh task (legal_actions only narrows
    # as a task goes on), and that list does not depend on θ, so any seed's first task gives it.
    seq = Sequence(SequenceSettings(env=env, n_tasks=1), seed=0)
    names = tuple(action_name(a) for a in seq.env.legal_actions(seq.current))
    if len(set(names)) != len(names):
        raise ValueError(f"{env}: legal_actions of a fresh task repeats an action")
    return names


def fixed_actions(env: str) -> list[Action]:
    """The Discrete action list of `env`, in the env's fixed order (fresh copies)."""
    return [json.loads(name) for name in _fixed_actions(env)]


class LatentGymEnv(gymnasium.Env[str, Any]):
    """One latentgym sequence as a Gymnasium episode.

    Args:
        env: the latentgym environment name (`number_guess`, `bandit`, `mastermind`, `recommender`,
            `secretary`).
        n_tasks, feedback, prompt, structure: the sequence settings (see `SequenceSettings`).
        action_format: `"discrete"` (an index into `action_names`) or `"text"` (a JSON object string, e.g.
            ``'{"type": "accept"}'``; a dict is accepted too).

    An invalid action (illegal here, unparsable, out of range, or after the sequence ended) never raises:
    it returns the unchanged observation with an `error` field, reward 0 and `info["invalid_action"]`;
    it changes nothing but counts towards the step cap. The episode truncates after `max_episode_steps` =
    2·N·T steps (T = the env's most valid actions per task); the registered ids declare the same cap for
    N = 10, so when passing a larger `n_tasks` through `gymnasium.make`, also pass
    ``max_episode_steps=2 * n_tasks * T``.
    """

    def __init__(self, env: EnvName, n_tasks: int = DEFAULT_N_TASKS, feedback: Feedback = "outcome",
                 prompt: PromptLevel = "some_info", structure: Structure = "prior",
                 action_format: ActionFormat = "discrete") -> None:
        if action_format not in ("discrete", "text"):
            raise ValueError(f"action_format must be 'discrete' or 'text', got {action_format!r}")
        self.settings = SequenceSettings(env=env, n_tasks=n_tasks, feedback=feedback, prompt=prompt,
                                         structure=structure)
        self.latent_env = get_env(env)
        self.action_format: ActionFormat = action_format
        self.action_names: list[str] = list(_fixed_actions(env))
        self._action_index = {name: i for i, name in enumerate(self.action_names)}
        self.max_episode_steps = 2 * n_tasks * self.latent_env.max_steps
        self.observation_space = spaces.Text(OBS_MAX_LENGTH, charset=string.printable)
        self.action_space: spaces.Space[Any] = (
            spaces.Discrete(len(self.action_names)) if action_format == "discrete"
            else spaces.Text(TEXT_ACTION_MAX_LENGTH, charset=string.printable))
        self._sequence: Sequence | None = None
        self._last: dict[str, Any] | None = None
        self._steps = 0

    # -- Gymnasium API ------------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        """Start sequence `seed`; without a seed, the next seed is drawn from `self.np_random`."""
        if options:
            raise ValueError(f"reset takes no options, got {sorted(options)}")
        if seed is not None and not 0 <= seed <= MAX_SEED:
            raise ValueError(f"seed must be in 0..{MAX_SEED}, got {seed}")
        super().reset(seed=seed)
        if seed is None:
            seed = int(self.np_random.integers(0, MAX_SEED, endpoint=True))
        self._sequence = Sequence(self.settings, seed)
        self._last = None
        self._steps = 0
        brief = self._sequence.brief()
        brief.pop("observation")
        info = {"brief": brief, "task": 1, "task_done": False, "tasks_done": 0, "invalid_action": False}
        return self._observe(), self._with_mask(info)

    def step(self, action: Any) -> tuple[str, float, bool, bool, dict[str, Any]]:
        """Apply one action; see the class docstring for rewards, invalid actions and truncation."""
        seq = self.sequence
        self._steps += 1
        task = seq.observation()["task"]
        result, error = self._apply(action)
        task_done = result is not None and bool(result["task_done"])
        reward = seq.true_rewards[-1] if task_done else 0.0
        if result is not None:
            self._last = {key: result[key] for key in ("task", "action", "result", "task_done", "feedback")}
        terminated = seq.done
        truncated = not terminated and self._steps >= self.max_episode_steps
        info = {"task": task, "task_done": task_done, "tasks_done": len(seq.true_rewards),
                "invalid_action": error is not None}
        return self._observe(error), float(reward), terminated, truncated, self._with_mask(info)

    # -- helpers ------------------------------------------------------------------------------------------
    @property
    def sequence(self) -> Sequence:
        """The running sequence (evaluator face: it holds z and θ; never pass it to a policy)."""
        if self._sequence is None:
            raise ResetNeeded("call reset() before step()")
        return self._sequence

    def action_mask(self) -> np.ndarray:
        """1 for each entry of `action_names` that is legal now (all 0 once the sequence is over)."""
        mask = np.zeros(len(self.action_names), dtype=np.int8)
        seq = self.sequence
        if seq.done:
            return mask
        legal = seq.env.legal_actions(seq.current)
        if len(legal) == len(self.action_names):
            # Legal actions are distinct members of the fixed list, so this is all of it; skipping the
            # lookups saves mastermind 360 JSON encodings a step.
            mask[:] = 1
            return mask
        for action in legal:
            mask[self._action_index[action_name(action)]] = 1
        return mask

    def _apply(self, action: Any) -> tuple[dict[str, Any] | None, str | None]:
        """`Sequence.act`'s result, or the message of an invalid action (which changes nothing)."""
        try:
            raw = self._decode(action)
        except InvalidAction as exc:
            self._count_invalid(action, str(exc))
            return None, str(exc)
        try:
            return self.sequence.act(raw), None
        except InvalidAction as exc:  # Sequence.act has recorded it
            return None, str(exc)

    def _count_invalid(self, action: Any, error: str) -> None:
        # Sequence.act records the invalid actions it sees; count the ones refused before it in the same
        # list, so the sequence metrics' invalid-action count covers both.
        seq = self.sequence
        if seq.done:
            return
        shown = action if isinstance(action, (str, int, float, bool, type(None))) else repr(action)
        seq.invalid_actions.append({"task": seq.current.index + 1, "step": len(seq.current.steps),
                                    "action": shown, "error": error})

    def _with_mask(self, info: dict[str, Any]) -> dict[str, Any]:
        if self.action_format == "discrete":
            info["action_mask"] = self.action_mask()
        return info

    def _observe(self, error: str | None = None) -> str:
        payload = {**self.sequence.observation(), "last": self._last}
        if error is not None:
            payload["error"] = error
        text = to_text(payload)
        if len(text) > OBS_MAX_LENGTH:
            raise ValueError(f"{self.settings.env}: observation of {len(text)} characters exceeds the "
                             f"{OBS_MAX_LENGTH} the observation space allows")
        return text

    def _decode(self, action: Any) -> Any:
        """The raw action for `Sequence.act`; raises `InvalidAction` for anything that is not one."""
        if self.action_format == "discrete":
            if isinstance(action, np.ndarray) and action.shape == ():
                action = action.item()
            if not isinstance(action, (int, np.integer)) or isinstance(action, bool) \
                    or not 0 <= action < len(self.action_names):
                raise InvalidAction(f"a discrete action is an integer in 0..{len(self.action_names) - 1} "
                                    f"(see action_names), got {action!r}")
            return json.loads(self.action_names[int(action)])
        if isinstance(action, dict):
            return copy.deepcopy(action)
        if not isinstance(action, str):
            raise InvalidAction(f"a text action is a JSON object string, got {type(action).__name__}")
        try:
            decoded = json.loads(action)
        except ValueError:
            raise InvalidAction(f"a text action must be a JSON object such as {self.action_names[0]}; "
                                f"could not parse {action[:80]!r}") from None
        if not isinstance(decoded, dict):
            raise InvalidAction(f"a text action must be a JSON object such as {self.action_names[0]}, "
                                f"got {action[:80]!r}")
        return decoded


def gym_ids() -> dict[str, str]:
    """Gym id -> latentgym environment name (the ids come from the env classes' `gym_id`)."""
    return {get_env(name).gym_id: name for name in env_names()}


def register_envs() -> None:
    """Register every environment's Gym id (idempotent: ids already registered are kept).

    This is the `gymnasium.envs` entry point; importing this module calls it. Gymnasium 0.26-0.29 call it
    while `gymnasium/__init__` is still running, hence the imports from the submodules.
    """
    for gym_id, name in gym_ids().items():
        if gym_id in registry:
            continue
        register(id=gym_id, entry_point=ENTRY_POINT, kwargs={"env": name},
                 max_episode_steps=2 * DEFAULT_N_TASKS * get_env(name).max_steps)


register_envs()
