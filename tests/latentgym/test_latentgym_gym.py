"""The Gymnasium adapter: check_env, seeding, invalid actions, rewards, info hygiene and registration."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import entry_points
from typing import Any

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from testbeds_latentgym.envs import get_env
from testbeds_latentgym.gym import LatentGymEnv, action_name, fixed_actions, gym_ids, register_envs
from testbeds_latentgym.models import ENV_NAMES, SequenceSettings
from testbeds_latentgym.policies import make_policy
from testbeds_latentgym.sequence import Sequence

ENVS = list(ENV_NAMES)
ALL_IDS = {"number_guess": "testbeds/NumberGuess-v0", "bandit": "testbeds/Bandit-v0",
           "mastermind": "testbeds/Mastermind-v0", "recommender": "testbeds/Recommender-v0",
           "secretary": "testbeds/Secretary-v0"}
ACTION_COUNTS = {"number_guess": 100, "bandit": 10, "mastermind": 360, "recommender": 9, "secretary": 2}
STEP_INFO_KEYS = {"task", "task_done", "tasks_done", "invalid_action", "action_mask"}


def make(name: str, **kwargs: Any) -> LatentGymEnv:
    env = gymnasium.make(ALL_IDS[name], **kwargs).unwrapped
    assert isinstance(env, LatentGymEnv)
    return env


def rollout(env: LatentGymEnv, seed: int, policy: str = "random",
            policy_seed: int = 0) -> list[tuple[Any, ...]]:
    """Play the whole episode with a reference policy (random over the action mask, or the latentgym oracle,
    which knows z and wins often); every (action, obs, reward, terminated, truncated, info) step."""
    rng = np.random.default_rng(policy_seed)
    obs, info = env.reset(seed=seed)
    oracle = make_policy("oracle", env.sequence.env, z=env.sequence.z) if policy == "oracle" else None
    steps: list[tuple[Any, ...]] = [(None, obs, 0.0, False, False, info)]
    terminated = truncated = False
    while not (terminated or truncated):
        if oracle is None:
            action = int(rng.choice(np.flatnonzero(info["action_mask"])))
        else:
            action = env.action_names.index(action_name(oracle.act(env.sequence.views)))
        obs, reward, terminated, truncated, info = env.step(action)
        steps.append((action, obs, reward, terminated, truncated, info))
    return steps


def same_steps(a: list[tuple[Any, ...]], b: list[tuple[Any, ...]]) -> bool:
    return len(a) == len(b) and all(
        x[:5] == y[:5] and x[5].keys() == y[5].keys()
        and all(np.array_equal(x[5][k], y[5][k]) if k == "action_mask" else x[5][k] == y[5][k] for k in x[5])
        for x, y in zip(a, b))


@pytest.mark.parametrize("action_format", ["discrete", "text"])
@pytest.mark.parametrize("name", ENVS)
def test_check_env_passes_on_every_id(name: str, action_format: str) -> None:
    check_env(make(name, action_format=action_format))


def test_every_env_is_registered_under_its_class_gym_id_with_a_2NT_step_cap() -> None:
    assert gym_ids() == {ALL_IDS[name]: name for name in ENV_NAMES}
    for name in ENVS:
        spec = gymnasium.spec(ALL_IDS[name])
        assert get_env(name).gym_id == ALL_IDS[name]
        assert spec.kwargs == {"env": name}
        assert spec.max_episode_steps == 2 * 10 * get_env(name).max_steps
        assert make(name, n_tasks=3).max_episode_steps == 2 * 3 * get_env(name).max_steps


@pytest.mark.parametrize("name", ENVS)
def test_the_discrete_actions_are_the_full_fixed_list_and_all_legal_at_a_task_start(name: str) -> None:
    env = make(name)
    assert len(env.action_names) == ACTION_COUNTS[name] == env.action_space.n
    assert len(set(env.action_names)) == len(env.action_names)
    assert [json.loads(n) for n in env.action_names] == fixed_actions(name)
    _, info = env.reset(seed=3)
    assert info["action_mask"].tolist() == [1] * ACTION_COUNTS[name]


@pytest.mark.parametrize("name", ENVS)
def test_the_return_equals_the_sum_of_task_rewards_paid_on_each_tasks_last_step(name: str) -> None:
    env = make(name, n_tasks=4)
    total = 0.0
    for seed in range(3):
        steps = rollout(env, seed, policy="oracle")
        rewards = [s[2] for s in steps[1:]]
        ends = [i for i, s in enumerate(steps[1:]) if s[5]["task_done"]]
        assert len(ends) == 4
        assert [rewards[i] for i in ends] == env.sequence.true_rewards
        assert all(r == 0.0 for i, r in enumerate(rewards) if i not in ends)
        assert sum(rewards) == pytest.approx(sum(env.sequence.true_rewards))
        assert [s[3] for s in steps[1:]] == [False] * (len(steps) - 2) + [True]
        assert [steps[1 + i][5]["task"] for i in ends] == [1, 2, 3, 4]
        assert [steps[1 + i][5]["tasks_done"] for i in ends] == [1, 2, 3, 4]
        total += sum(rewards)
    assert total > 0  # the oracle wins tasks, so the rewards compared above were not all zero


@pytest.mark.parametrize("name", ENVS)
def test_the_action_mask_marks_exactly_the_legal_actions_along_an_episode(name: str) -> None:
    env = make(name, n_tasks=2)
    rng = np.random.default_rng(6)
    _, info = env.reset(seed=6)
    terminated = False
    while not terminated:
        expected = {action_name(a) for a in env.sequence.env.legal_actions(env.sequence.current)}
        assert expected <= set(env.action_names)
        assert [n for n, m in zip(env.action_names, info["action_mask"]) if m] == \
            [n for n in env.action_names if n in expected]
        _, _, terminated, _, info = env.step(int(rng.choice(np.flatnonzero(info["action_mask"]))))
    assert info["action_mask"].sum() == 0


@pytest.mark.parametrize("name", ENVS)
def test_a_seeded_reset_plays_that_seeds_sequence_and_replays_it_exactly(name: str) -> None:
    env = make(name, n_tasks=3)
    first = rollout(env, seed=11)
    assert env.sequence.seed == 11
    assert same_steps(first, rollout(env, seed=11))
    # The same actions on a directly built Sequence(11) give the same rewards: the episode is sequence 11.
    direct = Sequence(SequenceSettings(env=name, n_tasks=3), 11)
    for action, *_ in first[1:]:
        direct.act(json.loads(env.action_names[action]))
    assert direct.true_rewards == env.sequence.true_rewards
    assert (direct.z, direct.thetas) == (env.sequence.z, env.sequence.thetas)


def test_reset_without_a_seed_draws_the_next_sequence_from_the_seeded_generator() -> None:
    env = make("secretary", n_tasks=3)
    env.reset(seed=5)
    env.reset()
    drawn = env.sequence.seed
    env.reset(seed=5)
    env.reset()
    assert env.sequence.seed == drawn != 5
    env.reset()
    assert env.sequence.seed != drawn


def test_different_seeds_give_different_sequences() -> None:
    env = make("secretary", n_tasks=3)
    answers = set()
    for seed in range(8):
        env.reset(seed=seed)
        answers.add(tuple(env.sequence.latent()["answers"]))
    assert len(answers) > 1


@pytest.mark.parametrize("name", ENVS)
def test_invalid_actions_return_an_error_cost_nothing_and_never_raise(name: str) -> None:
    text_env = make(name, action_format="text", n_tasks=2)
    discrete_env = make(name, n_tasks=2)
    bad_text = ["not json", "[1, 2]", "7", '{"type": "no such action"}', 42, None]
    bad_discrete = [-1, ACTION_COUNTS[name], 2.5, "0", True]
    for env, bad_actions in ((text_env, bad_text), (discrete_env, bad_discrete)):
        before, _ = env.reset(seed=1)
        for bad in bad_actions:
            obs, reward, terminated, truncated, info = env.step(bad)
            payload = json.loads(obs)
            assert isinstance(payload.pop("error"), str) and payload == json.loads(before)
            assert (reward, terminated, truncated, info["invalid_action"]) == (0.0, False, False, True)
            assert obs in env.observation_space
        # Refused before or by the sequence, every one is counted where the sequence metrics look.
        assert len(env.sequence.invalid_actions) == len(bad_actions)


@pytest.mark.parametrize("name", ENVS)
def test_interleaved_invalid_actions_change_nothing_in_the_sequence(name: str) -> None:
    clean = make(name, action_format="text", n_tasks=2)
    noisy = make(name, action_format="text", n_tasks=2)
    clean.reset(seed=4)
    noisy.reset(seed=4)
    rng = np.random.default_rng(0)
    done = False
    while not done:
        legal = clean.action_mask()
        action = clean.action_names[int(rng.choice(np.flatnonzero(legal)))]
        noisy.step('{"type": "bogus"}')
        got_clean, got_noisy = clean.step(action), noisy.step(action)
        assert got_clean[:4] == got_noisy[:4]
        assert got_noisy[4]["invalid_action"] is False
        done = got_clean[2]
    assert noisy.sequence.true_rewards == clean.sequence.true_rewards
    assert clean.sequence.invalid_actions == []
    valid_steps = sum(len(view.steps) for view in noisy.sequence.views)
    assert len(noisy.sequence.invalid_actions) == valid_steps  # one bogus action before each valid one


def test_continuing_past_the_last_secretary_candidate_is_refused() -> None:
    env = make("secretary", n_tasks=1)
    env.reset(seed=0)
    cont = env.action_names.index(json.dumps({"type": "continue"}))
    for _ in range(9):
        env.step(cont)
    assert env.action_mask().tolist() == [1 if n == json.dumps({"type": "accept"}) else 0
                                          for n in env.action_names]
    obs, reward, terminated, _, info = env.step(cont)
    assert "must be accepted" in json.loads(obs)["error"]
    assert (reward, terminated, info["invalid_action"]) == (0.0, False, True)


def test_a_text_action_is_a_json_object_string_or_a_dict() -> None:
    env = make("secretary", action_format="text", n_tasks=2)
    env.reset(seed=0)
    _, _, _, _, info = env.step('{"type": "continue"}')
    assert (info["invalid_action"], "action_mask" in info) == (False, False)
    _, _, _, _, info = env.step({"type": "accept"})
    assert (info["invalid_action"], info["task_done"], info["tasks_done"]) == (False, True, 1)
    assert [a for a, _ in env.sequence.views[0].steps] == [{"type": "continue"}, {"type": "accept"}]


def test_a_step_after_the_sequence_ended_is_an_invalid_action() -> None:
    env = make("secretary", n_tasks=1)
    env.reset(seed=0)
    accept = env.action_names.index(json.dumps({"type": "accept"}))
    assert env.step(accept)[2] is True
    obs, reward, terminated, _, info = env.step(accept)
    assert json.loads(obs)["sequence_done"] is True and "error" in json.loads(obs)
    assert (reward, terminated, info["invalid_action"]) == (0.0, True, True)
    assert info["action_mask"].sum() == 0


def test_the_episode_truncates_after_2NT_steps() -> None:
    env = make("secretary", action_format="text", n_tasks=2)
    env.reset(seed=0)
    cap = 2 * 2 * get_env("secretary").max_steps
    flags = [env.step("garbage")[2:4] for _ in range(cap)]
    assert flags == [(False, False)] * (cap - 1) + [(False, True)]


def test_the_step_before_reset_raises_reset_needed() -> None:
    with pytest.raises(gymnasium.error.ResetNeeded):
        make("secretary").step(0)


def test_bad_settings_fail_at_construction() -> None:
    with pytest.raises(ValueError):
        make("secretary", feedback="everything")
    with pytest.raises(ValueError):
        make("secretary", action_format="binary")
    with pytest.raises(ValueError):
        make("secretary").reset(seed=-1)


@pytest.mark.parametrize("name", ENVS)
def test_the_observation_is_the_mcp_observation_and_the_brief_is_in_the_reset_info(name: str) -> None:
    env = make(name, n_tasks=2)
    obs, info = env.reset(seed=2)
    payload = json.loads(obs)
    assert payload == {**env.sequence.observation(), "last": None}
    assert info["brief"]["rules"] == get_env(name).rules
    assert "observation" not in info["brief"]
    assert get_env(name).rules not in obs
    step = rollout(env, seed=2)[1]
    last = json.loads(step[1])["last"]
    assert last["task"] == 1 and last["action"] == json.loads(env.action_names[step[0]])


def test_constructor_settings_reach_the_sequence() -> None:
    env = make("secretary", n_tasks=2, feedback="reveal_answer", prompt="full_info", structure="none")
    _, info = env.reset(seed=0)
    assert env.sequence.settings.n_tasks == 2
    assert env.sequence.latent()["family"] == "none"
    assert get_env("secretary").family_doc in info["brief"]["context"]
    accept = env.action_names.index(json.dumps({"type": "accept"}))
    obs = json.loads(env.step(accept)[0])
    assert obs["last"]["feedback"]["answer"] == env.sequence.latent()["answers"][0]


@pytest.mark.parametrize("name", ENVS)
def test_info_holds_task_boundaries_and_no_ground_truth(name: str) -> None:
    env = make(name, n_tasks=2, feedback="latent_hint", prompt="full_info")
    steps = rollout(env, seed=9)
    assert set(steps[0][5]) == STEP_INFO_KEYS | {"brief"}
    assert set(steps[0][5]["brief"]) == {"environment", "n_tasks", "feedback", "rules", "actions", "context"}
    for *_, info in steps[1:]:
        assert set(info) == STEP_INFO_KEYS
        assert all(type(info[k]) is bool for k in ("task_done", "invalid_action"))
        assert all(type(info[k]) is int for k in ("task", "tasks_done"))
    # The brief is the same whatever the hidden z: only the prior is described, never the draw.
    other = make(name, n_tasks=2, feedback="latent_hint", prompt="full_info", structure="none")
    assert other.reset(seed=9)[1]["brief"] == steps[0][5]["brief"]


def test_register_envs_is_idempotent() -> None:
    before = {gid: gymnasium.spec(gid) for gid in gym_ids()}
    register_envs()  # warnings are errors here, so re-registering would fail the test
    register_envs()
    assert {gid: gymnasium.spec(gid) for gid in gym_ids()} == before


def test_the_entry_point_is_declared_in_the_installed_distribution() -> None:
    (ep,) = [ep for ep in entry_points(group="gymnasium.envs") if ep.name == "testbeds"]
    assert ep.value == "testbeds_latentgym.gym:register_envs"
    assert ep.load() is register_envs


def test_the_package_import_leaves_gymnasium_alone_and_make_with_the_module_prefix_registers() -> None:
    script = """
import sys
import testbeds_latentgym
assert "gymnasium" not in sys.modules, "import testbeds_latentgym imported gymnasium"
import gymnasium
assert not [i for i in gymnasium.registry if i.startswith("testbeds/")], "ids registered without the adapter"
env = gymnasium.make("testbeds_latentgym.gym:testbeds/Secretary-v0")
obs, info = env.reset(seed=0)
assert info["task"] == 1
print("ok")
"""
    out = subprocess.run([sys.executable, "-W", "error", "-c", script], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
