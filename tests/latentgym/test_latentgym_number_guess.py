"""number_guess: reward rules, the latent space, the exact planner and the design note's worked numbers."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
from testbeds_latentgym.envs import get_env
from testbeds_latentgym.envs.base import InvalidAction, TaskView
from testbeds_latentgym.inference import belief_after, predictive
from testbeds_latentgym.latent import HintModel, SparseLaw, build_prior, entropy_bits
from testbeds_latentgym.models import SequenceSettings
from testbeds_latentgym.policies import RandomPolicy, make_policy
from testbeds_latentgym.sequence import Sequence

env = get_env("number_guess")
UNIFORM = np.full(100, 0.01)


def guess(n: int) -> dict:
    return {"type": "guess", "number": n}


def z_of(*numbers: int) -> int:
    """The hypothesis whose allowed targets are exactly `numbers` (found from the law, not by name)."""
    law = env.law(0)
    cols = np.array(numbers) - 1
    hits = np.bincount(law.rows[np.isin(law.cols, cols)], minlength=law.n_z)
    sizes = np.bincount(law.rows, minlength=law.n_z)
    (z,) = np.flatnonzero((hits == len(numbers)) & (sizes == len(numbers)))
    return int(z)


def sequence(thetas: list[int], n_tasks: int | None = None, feedback: str = "outcome") -> Sequence:
    """A sequence under the no-structure control with the targets forced (1-based)."""
    settings = SequenceSettings(env="number_guess", n_tasks=n_tasks or len(thetas), feedback=feedback,
                                structure="none")
    return Sequence(settings, 0, thetas=[t - 1 for t in thetas])


def type_shares(belief: np.ndarray) -> dict[str, float]:
    names, index = env.family_index
    return dict(zip(names, np.bincount(index, weights=belief, minlength=len(names))))


def play_out(p0: np.ndarray, target: int, k: int = 0) -> float:
    """The reward of the planner (planning with p0) against a fixed target (θ index)."""
    view = TaskView(k, {})
    while True:
        action, _ = env.best_action(p0, view)
        result, done, reward = env.step(target, None, view, action)
        view.steps.append((action, result))
        if done:
            return reward


# -- rules ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("t", "reward"), [(1, 1.0), (2, 0.875), (5, 0.5), (8, 0.125)])
def test_finding_the_target_at_guess_t_pays_one_minus_t_minus_one_eighths(t: int, reward: float) -> None:
    seq = sequence([50], n_tasks=1)
    wrong = [g for g in (10, 20, 30, 40, 60, 70, 80)][: t - 1]
    for g in wrong:
        assert seq.act(guess(g))["task_done"] is False
    out = seq.act(guess(50))
    assert out["result"] == {"result": "correct", "turns_left": 8 - t}
    assert out["task_done"] and out["feedback"]["reward"] == reward and seq.true_rewards == [reward]


def test_eight_misses_end_the_task_with_zero() -> None:
    seq = sequence([50, 3])
    for g in (1, 2, 3, 4, 5, 6, 7):
        assert seq.act(guess(g))["task_done"] is False
    out = seq.act(guess(8))
    assert out["result"] == {"result": "higher", "turns_left": 0}
    assert out["task_done"] and out["feedback"]["reward"] == 0.0 and seq.true_rewards == [0.0]
    assert out["next"]["task"] == 2 and out["next"]["state"]["turns_left"] == 8


def test_higher_and_lower_say_where_the_target_is_relative_to_the_guess() -> None:
    seq = sequence([37], n_tasks=1)
    assert seq.act(guess(50))["result"] == {"result": "lower", "turns_left": 7}
    assert seq.act(guess(20))["result"] == {"result": "higher", "turns_left": 6}
    state = seq.observation()["state"]
    assert state["target_at_least"] == 21 and state["target_at_most"] == 49 and state["turns_left"] == 6
    assert state["guesses"] == [{"number": 50, "result": "lower"}, {"number": 20, "result": "higher"}]


def test_a_repeated_guess_is_invalid_and_costs_no_turn() -> None:
    seq = sequence([37], n_tasks=1)
    seq.act(guess(50))
    with pytest.raises(InvalidAction, match="already guessed 50"):
        seq.act(guess(50))
    assert len(seq.current.steps) == 1 and len(seq.invalid_actions) == 1
    assert {"type": "guess", "number": 50} not in env.legal_actions(seq.current)
    assert len(env.legal_actions(seq.current)) == 99


@pytest.mark.parametrize("raw", [{"type": "guess", "number": 0}, {"type": "guess", "number": 101},
                                 {"type": "guess", "number": 4.5}, {"type": "guess", "number": True},
                                 {"type": "guess"}, {"type": "guess", "number": 4, "x": 1},
                                 {"type": "pick", "number": 4}, {"number": 4}, "42", 42])
def test_malformed_guesses_are_rejected_with_the_allowed_form(raw: object) -> None:
    with pytest.raises(InvalidAction, match='"type": "guess", "number"'):
        env.parse_action(TaskView(0, {}), raw)


def test_guesses_are_normalised_to_an_integer_number() -> None:
    for raw in ({"number": 42, "type": "guess"}, {"type": " Guess ", "number": "42"},
                {"type": "guess", "number": 42.0}):
        assert env.parse_action(TaskView(0, {}), raw) == {"type": "guess", "number": 42}


def test_the_step_likelihood_is_a_probability_over_the_possible_results() -> None:
    view = TaskView(0, {}, [(guess(50), {"result": "lower", "turns_left": 7})])
    for g in (1, 25, 50, 100):
        results = env.possible_results(view, guess(g))
        total = sum(env.step_likelihood(view, guess(g), r) for r in results)
        np.testing.assert_array_equal(total, np.ones(100))
    for theta in (0, 24, 48, 99):
        result, _, _ = env.step(theta, None, view, guess(25))
        assert result in env.possible_results(view, guess(25))
        assert env.step_likelihood(view, guess(25), result)[theta] == 1.0


def test_the_reward_vector_is_what_step_would_pay_under_every_target() -> None:
    guesses = [50, 25, 37, 31, 34, 32, 33, 36]
    for theta in range(100):
        view = TaskView(0, {})
        for g in guesses:
            result, done, reward = env.step(theta, None, view, guess(g))
            view.steps.append((guess(g), result))
            if done:
                break
        assert env.reward_vector(view)[theta] == reward


# -- latent space ---------------------------------------------------------------------------------------
def test_the_latent_space_has_the_designed_families_and_the_generic_prior_and_hints() -> None:
    hyps = env.hypotheses
    assert len(hyps) == 166_845 == env.law(0).n_z
    counts: dict[tuple[str, str], int] = {}
    for h in hyps:
        counts[h.family, h.subfamily] = counts.get((h.family, h.subfamily), 0) + 1
    assert counts == {("range", "width 10"): 91, ("range", "width 20"): 81, ("residue", "mod 5"): 5,
                      ("residue", "mod 7"): 7, ("residue", "mod 10"): 10, ("set", "2-set"): 4_950,
                      ("set", "3-set"): 161_700, ("none", ""): 1}
    np.testing.assert_array_equal(env.prior, build_prior(hyps))
    generic = HintModel.by_family(hyps, env.families)
    assert env.hint_model.statements == generic.statements
    np.testing.assert_array_equal(env.hint_model.truth, generic.truth)
    for z in (0, 91, 172, 180, 193, 194, 5_000, 166_843, 166_844):
        h = hyps[z]
        row = env.law(0).row(z)
        allowed = {x + 1 for x in np.flatnonzero(row)}
        if h.family == "range":
            assert allowed == set(range(h.params[0], h.params[1] + 1))
        elif h.family == "residue":
            assert allowed == {x for x in range(1, 101) if x % h.params[0] == h.params[1]}
        elif h.family == "set":
            assert allowed == set(h.params)
        else:
            assert allowed == set(range(1, 101))
        np.testing.assert_allclose(row[row > 0], 1 / len(allowed))


def test_the_block_law_agrees_with_the_generic_sparse_law() -> None:
    law = env.law(0)
    generic = SparseLaw(law.rows, law.cols, law.vals, law.n_z, law.n_theta)
    rng = np.random.default_rng(0)
    v, w = rng.random(100), rng.random(law.n_z)
    np.testing.assert_allclose(law.lik(v), generic.lik(v), rtol=1e-13)
    np.testing.assert_allclose(law.mix(w), generic.mix(w), rtol=1e-13)
    for z in rng.integers(law.n_z, size=50).tolist() + [0, 172, 193, 194, law.n_z - 1]:
        np.testing.assert_array_equal(law.row(z), generic.row(z))


def test_rule_types_split_sets_by_size_for_type_entropy() -> None:
    names, _ = env.family_index
    assert names == ["range", "residue", "2-set", "3-set", "none"]
    assert entropy_bits(env.prior) == pytest.approx(9.35, abs=0.005)
    assert entropy_bits(np.array(list(type_shares(env.prior).values()))) == pytest.approx(2.26, abs=0.005)


# -- planner --------------------------------------------------------------------------------------------
@cache
def brute_value(p: tuple[float, ...], lo: int, hi: int, d: int) -> float:
    """Optimal expected reward (mass-weighted) with the target in [lo, hi] (θ indices) and d guesses left,
    trying every guess, zero-mass ones and wasted ones included."""
    if d == 0 or lo > hi:
        return 0.0
    best = brute_value(p, lo, hi, d - 1)  # a guess outside the interval
    for g in range(lo, hi + 1):
        best = max(best, p[g] * d / 8 + brute_value(p, lo, g - 1, d - 1) + brute_value(p, g + 1, hi, d - 1))
    return best


def test_the_planner_matches_brute_force_on_small_supports() -> None:
    rng = np.random.default_rng(3)
    for trial in range(4):
        p0 = np.zeros(100)
        support = rng.choice(18, size=rng.integers(1, 16), replace=False)
        p0[support] = rng.random(len(support))
        p0 /= p0.sum()
        key = tuple(p0[:18])
        steps = [] if trial % 2 == 0 else [(guess(60), {"result": "lower", "turns_left": 7})]
        view = TaskView(0, {}, steps)
        d = 8 - len(steps)
        for g in range(1, 101):
            if g == 60 and steps:
                continue
            q = env.q_value(p0, view, guess(g))
            t = g - 1
            expected = (p0[t] * d / 8 + brute_value(key, 0, t - 1, d - 1) + brute_value(key, t + 1, 17, d - 1)
                        if t < 18 else brute_value(key, 0, 17, d - 1))
            assert q == pytest.approx(expected, abs=1e-12)
        action, value = env.best_action(p0, view)
        assert value == pytest.approx(brute_value(key, 0, 17, d), abs=1e-12)
        assert env.q_value(p0, view, action) == value


def test_the_planner_value_is_what_its_play_earns() -> None:
    p0 = predictive(env, env.prior, 0)
    earned = sum(p0[t] * play_out(p0, t) for t in range(100))
    assert earned == pytest.approx(env.best_action(p0, TaskView(0, {}))[1], abs=1e-12)


def test_a_uniform_target_takes_about_5_8_guesses_worth_0_400_and_no_transfer_gets_0_403() -> None:
    assert env.best_action(UNIFORM, TaskView(0, {}))[1] == pytest.approx(0.400, abs=1e-12)
    no_transfer = predictive(env, env.prior, 0)
    assert env.best_action(no_transfer, TaskView(0, {}))[1] == pytest.approx(0.403, abs=5e-4)


@pytest.mark.parametrize(("support", "value"), [
    ((37, 67), 0.9375), ((5, 50, 95), 0.9167),
    (tuple(range(31, 41)), 0.7625), (tuple(range(7, 101, 10)), 0.7625),
    (tuple(range(31, 51)), 0.6625), (tuple(range(2, 101, 5)), 0.6625),
])
def test_the_oracle_values_match_the_design(support: tuple[int, ...], value: float) -> None:
    oracle = env.law(0).row(z_of(*support))
    assert env.best_action(oracle, TaskView(0, {}))[1] == pytest.approx(value, abs=5e-5)


def test_plans_are_cached_per_task_start_prior() -> None:
    assert env.plan(UNIFORM) is env.plan(UNIFORM.copy())
    assert env.plan(UNIFORM) is not env.plan(predictive(env, env.prior, 0))


def test_the_random_policy_picks_untried_numbers_and_earns_about_0_045() -> None:
    # Uniform over the untried numbers, it hits at each guess with chance exactly 1/100:
    # Σ_t (9 − t)/800 = .045.
    rng = np.random.default_rng(5)
    policy = RandomPolicy(env, seed=5)
    rewards = []
    for _ in range(1_500):
        theta, view = int(rng.integers(100)), TaskView(0, {})
        while True:
            action = policy.act([view])
            assert action["number"] not in env.guessed(view)
            result, done, reward = env.step(theta, None, view, action)
            view.steps.append((action, result))
            if done:
                rewards.append(reward)
                break
    se = np.std(rewards) / np.sqrt(len(rewards))
    assert abs(np.mean(rewards) - 0.045) < 3 * se


# -- the design's worked example ------------------------------------------------------------------------
def test_targets_37_then_67_give_the_design_posteriors_and_bayes_opens_task_3_with_37() -> None:
    seq = sequence([37, 67, 5])
    bayes = make_policy("bayes", env)
    while len(seq.true_rewards) < 2:
        seq.act(bayes.act(seq.views))
    after_37 = belief_after(env, seq.views[:1])
    shares = type_shares(after_37)
    assert shares["none"] == pytest.approx(0.192, abs=5e-4)
    assert shares["range"] == pytest.approx(0.299, abs=5e-4)
    assert shares["residue"] == pytest.approx(0.252, abs=5e-4)
    assert shares["2-set"] + shares["3-set"] == pytest.approx(0.256, abs=5e-4)
    assert entropy_bits(after_37) == pytest.approx(6.51, abs=0.005)
    assert entropy_bits(np.array(list(shares.values()))) == pytest.approx(2.24, abs=0.005)

    after_67 = belief_after(env, seq.views[:2])
    shares = type_shares(after_67)
    assert shares["none"] == pytest.approx(0.118, abs=5e-4)
    assert shares["range"] == 0.0
    assert shares["residue"] == pytest.approx(0.789, abs=5e-4)
    assert after_67[z_of(*range(7, 101, 10))] == pytest.approx(0.526, abs=5e-4)
    assert after_67[z_of(*range(2, 101, 5))] == pytest.approx(0.263, abs=5e-4)
    assert shares["2-set"] + shares["3-set"] == pytest.approx(0.093, abs=5e-4)
    assert entropy_bits(after_67) == pytest.approx(2.12, abs=0.005)
    assert entropy_bits(np.array(list(shares.values()))) == pytest.approx(1.05, abs=0.006)  # 1.0445

    p3 = predictive(env, after_67, 2)
    assert p3[36] == p3[66] == pytest.approx(0.1045, abs=5e-5)
    others = [x for x in range(7, 98, 10) if x not in (37, 67)]
    np.testing.assert_allclose(p3[np.array(others) - 1], 0.0671, atol=5e-5)
    rest = np.delete(p3, np.array([*others, 37, 67]) - 1)
    assert rest.max() <= 0.0145 + 5e-5
    action, value = env.best_action(p3, TaskView(2, {}))
    assert action == guess(37) and value == pytest.approx(0.698, abs=5e-4)
    assert bayes.act(seq.views) == guess(37)


def test_a_second_37_raises_the_entropy_over_z_but_lowers_it_over_rule_types() -> None:
    solved_37 = [(guess(37), {"result": "correct", "turns_left": 7})]
    views = [TaskView(k, {}, list(solved_37), done=True, reward=1.0) for k in range(2)]
    b = belief_after(env, views)
    assert entropy_bits(b) == pytest.approx(9.13, abs=0.005)
    assert entropy_bits(np.array(list(type_shares(b).values()))) == pytest.approx(1.90, abs=0.005)


def test_under_no_structure_the_37_opening_costs_0_041_in_task_2() -> None:
    first = [TaskView(0, {}, [(guess(37), {"result": "correct", "turns_left": 7})], done=True, reward=1.0)]
    p2 = predictive(env, belief_after(env, first), 1)
    assert env.best_action(p2, TaskView(1, {}))[0] == guess(37)
    bayes_under_none = np.mean([play_out(p2, t, k=1) for t in range(100)])
    assert 0.400 - bayes_under_none == pytest.approx(0.041, abs=5e-4)
