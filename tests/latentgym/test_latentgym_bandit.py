"""The bandit environment: rules, rewards, likelihoods, the exact DP planner and the design's §4 values."""

from __future__ import annotations

import json

import numpy as np
import pytest
from testbeds_latentgym.envs import get_env
from testbeds_latentgym.envs.bandit import ARMS, MAX_PULLS, Bandit, commit_reward, state_space
from testbeds_latentgym.envs.base import InvalidAction, TaskView
from testbeds_latentgym.inference import events, predictive
from testbeds_latentgym.latent import entropy_bits
from testbeds_latentgym.metrics import evaluate
from testbeds_latentgym.models import SequenceSettings
from testbeds_latentgym.play import play, run_reference
from testbeds_latentgym.policies import make_policy
from testbeds_latentgym.sequence import Sequence

RED, GREEN, BLUE, YELLOW, PURPLE = range(5)
UNIFORM = np.full(5, 0.2)


@pytest.fixture(scope="module")
def env() -> Bandit:
    bandit = get_env("bandit")
    assert isinstance(bandit, Bandit)
    return bandit


def pull(arm: str) -> dict:
    return {"type": "pull", "arm": arm}


def commit(arm: str) -> dict:
    return {"type": "commit", "arm": arm}


def hyp(env: Bandit, name: str) -> int:
    return next(i for i, h in enumerate(env.hypotheses) if h.name == name)


def view_with(env: Bandit, pulls: list[tuple[str, int]], index: int = 0) -> TaskView:
    view = TaskView(index, env.task_start(0, None))
    for n, (arm, paid) in enumerate(pulls, start=1):
        view.steps.append((pull(arm), {"reward": paid, "pulls": n}))
    return view


def xi_paying(pattern: dict[int, list[float]]) -> np.ndarray:
    """A nuisance table: u = 0.5 (pays only on the best arm) unless `pattern` sets an arm's uniforms."""
    xi = np.full((5, MAX_PULLS), 0.5)
    for arm, us in pattern.items():
        xi[arm, : len(us)] = us
    return xi


# -- latent space --------------------------------------------------------------------------------------------

def test_the_prior_gives_fixed_arms_08_rotations_04_and_none_02(env: Bandit) -> None:
    by_family: dict[str, list[float]] = {}
    for h, p in zip(env.hypotheses, env.prior):
        by_family.setdefault(h.family, []).append(p)
    assert by_family["fixed"] == pytest.approx([0.08] * 5)
    assert by_family["rotation"] == pytest.approx([0.04] * 10)
    assert by_family["none"] == pytest.approx([0.2])
    assert entropy_bits(env.prior) == pytest.approx(3.779, abs=5e-4)


def test_rotations_step_along_the_colour_order_and_fixed_arms_stay(env: Bandit) -> None:
    def answers(name: str) -> list[str]:
        z = hyp(env, name)
        return [ARMS[int(np.argmax(env.law(k).row(z)))] for k in range(7)]

    forward = ["red", "green", "blue", "yellow", "purple", "red", "green"]
    backward = ["red", "purple", "yellow", "blue", "green", "red", "purple"]
    assert answers("rotation from red, forward") == forward
    assert answers("rotation from red, backward") == backward
    assert answers("fixed blue") == ["blue"] * 7
    for k in range(7):
        assert env.law(k).row(hyp(env, "none")) == pytest.approx(UNIFORM)


def test_no_two_hypotheses_share_a_law_over_the_tasks(env: Bandit) -> None:
    laws = {tuple(np.concatenate([env.law(k).row(z) for k in range(5)])) for z in range(len(env.hypotheses))}
    assert len(laws) == len(env.hypotheses) == 16


# -- actions and rewards -------------------------------------------------------------------------------------

def test_actions_are_normalised_to_lower_case_colours_in_a_fixed_key_order(env: Bandit) -> None:
    view = view_with(env, [])
    assert env.parse_action(view, {"arm": " Red ", "type": "PULL"}) == pull("red")
    assert list(env.parse_action(view, {"arm": "purple", "type": "commit"})) == ["type", "arm"]


@pytest.mark.parametrize("raw", [
    {"type": "pull", "arm": "orange"}, {"type": "pull"}, {"type": "spin", "arm": "red"},
    {"type": "pull", "arm": "red", "times": 2}, "pull red", None, {"type": "commit", "arm": 3},
])
def test_malformed_actions_are_rejected_with_the_allowed_forms(env: Bandit, raw: object) -> None:
    with pytest.raises(InvalidAction, match="red, green, blue, yellow, purple"):
        env.parse_action(view_with(env, []), raw)


def test_a_pull_pays_one_when_its_uniform_is_below_the_arms_payout_probability(env: Bandit) -> None:
    # θ = blue: blue pays when u < 0.7, red when u < 0.3; the i-th pull of an arm reads u[arm, i].
    xi = xi_paying({RED: [0.25, 0.35], BLUE: [0.65, 0.75]})
    view = view_with(env, [])
    results = []
    for arm in ("red", "red", "blue", "blue", "green"):
        result, done, reward = env.step(BLUE, xi, view, pull(arm))
        assert (done, reward) == (False, 0.0)
        view.steps.append((pull(arm), result))
        results.append(result)
    assert results == [{"reward": 1, "pulls": 1}, {"reward": 0, "pulls": 2}, {"reward": 1, "pulls": 3},
                       {"reward": 0, "pulls": 4}, {"reward": 0, "pulls": 5}]


@pytest.mark.parametrize("n_pulls", [0, 1, 4, 9])
def test_committing_to_the_best_arm_pays_one_minus_005_per_pull(env: Bandit, n_pulls: int) -> None:
    view = view_with(env, [("green", 0)] * n_pulls)
    result, done, reward = env.step(YELLOW, xi_paying({}), view, commit("yellow"))
    assert done
    assert reward == pytest.approx(1 - 0.05 * n_pulls)
    assert reward == commit_reward(n_pulls)
    assert result == {"committed": "yellow", "pulls": n_pulls}


def test_committing_to_another_arm_pays_nothing_and_shows_the_same_result(env: Bandit) -> None:
    view = view_with(env, [("red", 1), ("blue", 0)])
    outcomes = [env.step(theta, xi_paying({}), view, commit("red")) for theta in range(5)]
    assert [reward for _, _, reward in outcomes] == [0.9, 0.0, 0.0, 0.0, 0.0]
    assert all(result == outcomes[0][0] for result, _, _ in outcomes)  # the result never says if it was right


def test_after_nine_pulls_only_a_commit_is_legal_and_it_pays_055(env: Bandit) -> None:
    view = view_with(env, [("red", 1)] * MAX_PULLS)
    assert env.legal_actions(view) == [commit(arm) for arm in ARMS]
    assert env.observation(view)["must_commit"] is True
    with pytest.raises(InvalidAction, match="commit"):
        env.parse_action(view, pull("red"))
    _, done, reward = env.step(RED, xi_paying({}), view, env.parse_action(view, commit("red")))
    assert (done, reward) == (True, 0.55)


def test_a_sequence_refuses_a_tenth_pull_without_using_a_turn() -> None:
    seq = Sequence(SequenceSettings(env="bandit", n_tasks=2), seed=3)
    for _ in range(MAX_PULLS):
        assert seq.act(pull("green"))["task_done"] is False
    before = json.dumps([seq.observation(), seq.history(), seq.current.steps])
    with pytest.raises(InvalidAction):
        seq.act(pull("green"))
    assert json.dumps([seq.observation(), seq.history(), seq.current.steps]) == before
    assert len(seq.invalid_actions) == 1
    out = seq.act(commit("green"))
    assert out["task_done"] and out["feedback"]["reward"] in (0.0, 0.55)


def test_the_observation_tallies_pulls_and_rewards_per_arm(env: Bandit) -> None:
    obs = env.observation(view_with(env, [("red", 1), ("red", 0), ("purple", 1)]))
    assert obs["by_arm"]["red"] == {"pulls": 2, "rewards": 1}
    assert obs["by_arm"]["purple"] == {"pulls": 1, "rewards": 1}
    assert obs["by_arm"]["blue"] == {"pulls": 0, "rewards": 0}
    assert (obs["pulls"], obs["pulls_left"], obs["must_commit"]) == (3, 6, False)


def test_the_reward_vector_matches_what_step_pays_under_every_answer(env: Bandit) -> None:
    rng = np.random.default_rng(0)
    for _ in range(30):
        n_pulls = int(rng.integers(10))
        view = view_with(env, [(ARMS[int(rng.integers(5))], int(rng.integers(2))) for _ in range(n_pulls)])
        action = commit(ARMS[int(rng.integers(5))])
        paid = [env.step(theta, None, view, action)[2] for theta in range(5)]
        result = env.step(0, None, view, action)[0]
        finished = TaskView(0, view.start, [*view.steps, (action, result)], done=True)
        assert env.reward_vector(finished).tolist() == paid


# -- likelihoods ---------------------------------------------------------------------------------------------

def test_step_likelihoods_sum_to_one_over_the_possible_results(env: Bandit) -> None:
    views = [view_with(env, []), view_with(env, [("blue", 1), ("red", 0)]), view_with(env, [("red", 0)] * 9)]
    for view in views:
        for action in env.legal_actions(view):
            total = sum(env.step_likelihood(view, action, r) for r in env.possible_results(view, action))
            assert total == pytest.approx(np.ones(5))


def test_every_result_step_produces_is_one_of_the_possible_results(env: Bandit) -> None:
    rng = np.random.default_rng(1)
    view = view_with(env, [("red", 1)])
    for theta in range(5):
        xi = env.draw_nuisance(theta, 0, rng)
        for action in env.legal_actions(view):
            result = env.step(theta, xi, view, action)[0]
            assert result in env.possible_results(view, action)
            assert env.step_likelihood(view, action, result)[theta] > 0


def test_pull_outcomes_occur_with_the_stated_probabilities(env: Bandit) -> None:
    rng = np.random.default_rng(2)
    n = 4000
    view = view_with(env, [])
    paid_best = sum(env.step(GREEN, env.draw_nuisance(GREEN, 0, rng), view, pull("green"))[0]["reward"]
                    for _ in range(n))
    paid_other = sum(env.step(GREEN, env.draw_nuisance(GREEN, 0, rng), view, pull("red"))[0]["reward"]
                     for _ in range(n))
    se = np.sqrt(0.21 / n)
    assert abs(paid_best / n - 0.7) < 3 * se
    assert abs(paid_other / n - 0.3) < 3 * se


def test_the_in_task_posterior_depends_on_pulls_only_through_successes_minus_failures(env: Bandit) -> None:
    p0 = np.array([0.1, 0.3, 0.2, 0.25, 0.15])
    view = view_with(env, [("red", 1), ("blue", 0), ("red", 1), ("red", 0), ("yellow", 0), ("yellow", 0)])
    d = np.array(env.d_vector(view))
    assert d.tolist() == [1, 0, -1, -2, 0]
    expected = p0 * (7 / 3) ** d
    assert env.in_task_posterior(p0, view) == pytest.approx(expected / expected.sum())


# -- planner -------------------------------------------------------------------------------------------------

def brute_force_value(env: Bandit, p0: np.ndarray, view: TaskView) -> float:
    """Expectimax over the env's own interface (results, likelihoods, reward vector), no d-compression."""
    post = env.in_task_posterior(p0, view)
    best = 0.0
    for action in env.legal_actions(view):
        q = 0.0
        for result in env.possible_results(view, action):
            prob = float(post @ env.step_likelihood(view, action, result))
            ends = action["type"] == "commit"
            after = TaskView(view.index, view.start, [*view.steps, (action, result)], done=ends)
            if action["type"] == "commit":
                q += prob * float(post @ env.reward_vector(after))
            else:
                q += prob * brute_force_value(env, p0, after)
        best = max(best, q)
    return best


def test_the_planner_has_the_designs_31471_states() -> None:
    assert state_space().n_states == 31_471


def test_the_dp_matches_brute_force_expectimax_late_in_a_task(env: Bandit) -> None:
    rng = np.random.default_rng(4)
    for n_pulls in (6, 7, 8):
        p0 = rng.dirichlet(np.ones(5))
        view = view_with(env, [(ARMS[int(rng.integers(5))], int(rng.integers(2))) for _ in range(n_pulls)])
        action, value = env.best_action(p0, view)
        assert value == pytest.approx(brute_force_value(env, p0, view), abs=1e-12)
        assert env.q_value(p0, view, action) == value


def test_best_action_is_the_first_argmax_of_q_over_the_legal_actions(env: Bandit) -> None:
    p0 = np.array([0.3, 0.3, 0.1, 0.2, 0.1])
    view = view_with(env, [("blue", 0)])
    action, value = env.best_action(p0, view)
    qs = [env.q_value(p0, view, a) for a in env.legal_actions(view)]
    assert value == max(qs)
    assert action == env.legal_actions(view)[qs.index(max(qs))]
    assert action == pull("red")  # red and green tie; red comes first


def test_no_transfer_expects_0414_from_a_uniform_start(env: Bandit) -> None:
    p0 = predictive(env, env.prior, 0)
    action, value = env.best_action(p0, view_with(env, []))
    assert value == pytest.approx(0.414, abs=5e-4)
    assert action == pull("red")


def test_the_oracle_commits_at_once_for_one_under_structure(env: Bandit) -> None:
    for k, z in ((0, hyp(env, "fixed purple")), (3, hyp(env, "rotation from green, backward"))):
        action, value = env.best_action(env.law(k).row(z), view_with(env, [], index=k))
        assert (action["type"], value) == ("commit", 1.0)
        assert action["arm"] == ARMS[int(np.argmax(env.law(k).row(z)))]


def test_the_oracle_equals_no_transfer_under_no_pattern() -> None:
    settings = SequenceSettings(env="bandit", n_tasks=4, structure="none")
    for seed in (5, 6):
        oracle, no_transfer = (run_reference(settings, seed, p) for p in ("oracle", "no_transfer"))
        assert oracle.true_rewards == no_transfer.true_rewards
        assert json.dumps(oracle.history()) == json.dumps(no_transfer.history())


def test_no_transfer_earns_its_planned_value_when_played_against_the_env(env: Bandit) -> None:
    rng = np.random.default_rng(7)
    policy = make_policy("no_transfer", env)
    rewards = []
    for _ in range(400):
        theta = int(rng.integers(5))
        xi = env.draw_nuisance(theta, 0, rng)
        view = TaskView(0, env.task_start(theta, xi))
        done = False
        while not done:
            action = policy.act([view])
            result, done, reward = env.step(theta, xi, view, action)
            view.steps.append((action, result))
        rewards.append(reward)
    se = np.std(rewards) / np.sqrt(len(rewards))
    assert abs(np.mean(rewards) - 0.41373) < 3 * se


def test_random_play_earns_about_019() -> None:
    # Exact: each step commits with probability 1/2 (until the forced commit), to the best arm w.p. 1/5.
    exact = sum(0.5 ** (n + 1) * 0.2 * commit_reward(n) for n in range(MAX_PULLS))
    exact += 0.5 ** MAX_PULLS * 0.2 * commit_reward(MAX_PULLS)
    assert exact == pytest.approx(0.19, abs=1e-3)
    settings = SequenceSettings(env="bandit", structure="none")
    rewards = [r for seed in range(60) for r in run_reference(settings, seed, "random").true_rewards]
    se = np.std(rewards) / np.sqrt(len(rewards))
    assert abs(np.mean(rewards) - exact) < 3 * se


def test_bayes_beats_no_transfer_beats_random_over_structured_seeds() -> None:
    settings = SequenceSettings(env="bandit", n_tasks=6, structure="latent")
    totals = {p: [sum(run_reference(settings, s, p).true_rewards) for s in range(8)]
              for p in ("bayes", "no_transfer", "random")}
    assert np.mean(totals["bayes"]) > np.mean(totals["no_transfer"]) + 1.0
    assert np.mean(totals["no_transfer"]) > np.mean(totals["random"])


# -- the worked example (outcome feedback) -------------------------------------------------------------------

def example_views(env: Bandit) -> list[TaskView]:
    start = env.task_start(0, None)
    task1 = TaskView(0, start, [(pull("red"), {"reward": 1, "pulls": 1}),
                                (commit("red"), {"committed": "red", "pulls": 1})], done=True, reward=0.95)
    task2 = TaskView(1, start, [(commit("green"), {"committed": "green", "pulls": 0})], done=True, reward=1.0)
    return [task1, task2]


def test_the_worked_example_reproduces_the_designs_posteriors(env: Bandit) -> None:
    views = example_views(env)
    trace = list(events(env, views))
    assert [e.kind for e in trace] == ["step", "step", "outcome", "step", "outcome"]
    assert entropy_bits(trace[0].belief) == pytest.approx(3.692, abs=5e-4)

    after1 = trace[2].belief
    assert after1[hyp(env, "fixed red")] == pytest.approx(0.40)
    assert after1[hyp(env, "rotation from red, forward")] == pytest.approx(0.20)
    assert after1[hyp(env, "rotation from red, backward")] == pytest.approx(0.20)
    assert after1[hyp(env, "none")] == pytest.approx(0.20)
    assert entropy_bits(after1) == pytest.approx(1.922, abs=5e-4)
    assert predictive(env, after1, 1) == pytest.approx([0.44, 0.24, 0.04, 0.04, 0.24])

    after2 = trace[4].belief
    assert after2[hyp(env, "rotation from red, forward")] == pytest.approx(5 / 6)
    assert after2[hyp(env, "none")] == pytest.approx(1 / 6)
    assert entropy_bits(after2) == pytest.approx(0.650, abs=5e-4)
    p3 = predictive(env, after2, 2)
    assert p3[BLUE] == pytest.approx(0.867, abs=5e-4)
    assert env.best_action(p3, TaskView(2, env.task_start(0, None)))[0] == commit("blue")


def test_the_worked_examples_bits_split_into_agent_087_and_feedback_1770(env: Bandit) -> None:
    views = example_views(env)
    metrics = evaluate(env, views, hyp(env, "rotation from red, forward"), [0.95, 1.0])
    first = metrics.tasks[0]
    assert first.agent_bits == pytest.approx(0.087, abs=5e-4)
    assert first.feedback_bits == pytest.approx(1.770, abs=5e-4)
    assert metrics.agent_bits + metrics.feedback_bits == pytest.approx(
        metrics.prior_entropy_bits - metrics.final_entropy_bits, abs=1e-9)


# -- whole sequences -----------------------------------------------------------------------------------------

def test_bayes_has_zero_regret_and_the_bits_add_up_over_a_sequence(env: Bandit) -> None:
    seq = run_reference(SequenceSettings(env="bandit"), 11, "bayes")
    metrics = evaluate(env, seq.views, seq.z, seq.true_rewards)
    assert metrics.decisions > 10
    assert all(e.regret == 0.0 for e in metrics.events if e.kind == "step")
    assert all(e.eig_bits >= -1e-12 for e in metrics.events if e.kind == "step")
    assert metrics.agent_bits + metrics.feedback_bits == pytest.approx(
        metrics.prior_entropy_bits - metrics.final_entropy_bits, abs=1e-9)


def test_the_same_seed_replays_byte_for_byte_and_z_does_not_change_what_is_seen(env: Bandit) -> None:
    settings = SequenceSettings(env="bandit", n_tasks=3)
    thetas = [RED, GREEN, BLUE]
    shown = []
    rotation, none = hyp(env, "rotation from red, forward"), hyp(env, "none")
    for z in (rotation, none, rotation):
        seq = Sequence(settings, seed=9, z=z, thetas=thetas)
        script = [pull("red"), pull("red"), commit("red"), pull("blue"), commit("green"), commit("blue")]
        outs = [seq.act(action) for action in script]
        assert seq.done
        shown.append(json.dumps([outs, seq.history()], sort_keys=True))
    assert shown[0] == shown[1] == shown[2]


def test_bayes_plays_a_whole_sequence_to_the_end_with_only_legal_actions() -> None:
    seq = Sequence(SequenceSettings(env="bandit", n_tasks=5, feedback="latent_hint"), seed=13)
    play(seq, make_policy("bayes", seq.env))
    assert seq.done and not seq.invalid_actions
    assert all(v.steps[-1][0]["type"] == "commit" for v in seq.views)
