"""mastermind: codes, pegs, reward rules, latents, and the planner's exact values (DESIGN latentgym §4)."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from testbeds_latentgym.envs import get_env
from testbeds_latentgym.envs.base import InvalidAction, TaskView
from testbeds_latentgym.envs.mastermind import CODES, COLOURS, MAX_GUESSES, OUTCOMES, Mastermind, peg_table
from testbeds_latentgym.inference import belief_after, predictive
from testbeds_latentgym.models import SequenceSettings
from testbeds_latentgym.sequence import Sequence

UNIFORM = np.full(360, 1 / 360)


@pytest.fixture(scope="module")
def env() -> Mastermind:
    env = get_env("mastermind")
    assert isinstance(env, Mastermind)
    return env


def naive_pegs(guess: tuple[int, ...], code: tuple[int, ...]) -> tuple[int, int]:
    black = sum(g == c for g, c in zip(guess, code))
    return black, len(set(guess) & set(code)) - black


def code_of(*names: str) -> int:
    return CODES.index(tuple(COLOURS.index(n) for n in names))


def guess_action(theta: int) -> dict:
    return {"type": "guess", "code": [COLOURS[c] for c in CODES[theta]]}


def play(env: Mastermind, theta: int, actions: list[dict]) -> tuple[TaskView, list[tuple[dict, bool, float]]]:
    """Apply `actions` against code `theta` until the task ends; the view and each step's output."""
    view = TaskView(0, env.task_start(theta, None))
    outputs = []
    for action in actions:
        result, done, reward = env.step(theta, None, view, env.parse_action(view, action))
        view.steps.append((env.parse_action(view, action), result))
        outputs.append((result, done, reward))
        if done:
            view.done = True
            break
    return view, outputs


def planner_reward(env: Mastermind, p0: np.ndarray, theta: int, first: dict | None = None) -> float:
    """The reward the planner earns against `theta` (optionally forced to open with `first`)."""
    view = TaskView(0, env.task_start(theta, None))
    while True:
        action = first if first is not None and not view.steps else env.best_action(p0, view)[0]
        result, done, reward = env.step(theta, None, view, env.parse_action(view, action))
        view.steps.append((env.parse_action(view, action), result))
        if done:
            return reward


# -- codes and pegs ------------------------------------------------------------------------------------------


def test_there_are_360_codes_of_distinct_colours_in_lexicographic_order(env: Mastermind) -> None:
    assert len(CODES) == env.n_theta == 360
    assert list(CODES) == sorted(CODES)
    assert all(len(set(c)) == 4 for c in CODES)
    assert env.theta_label(0) == ["red", "blue", "green", "yellow"]
    assert env.theta_label(359) == ["purple", "orange", "yellow", "green"]


def test_the_peg_table_matches_a_naive_scorer() -> None:
    table = peg_table()
    rng = np.random.default_rng(0)
    for g, c in rng.integers(360, size=(3000, 2)):
        assert OUTCOMES[table[g, c]] == naive_pegs(CODES[g], CODES[c])
    example = table[code_of("red", "blue", "green", "yellow"), code_of("red", "green", "orange", "blue")]
    assert OUTCOMES[example] == (1, 2)
    assert OUTCOMES[table[5, 5]] == (4, 0)


def test_every_listed_outcome_occurs_for_every_guess() -> None:
    table = peg_table()
    assert all(len(set(row.tolist())) == len(OUTCOMES) for row in table)


def test_step_likelihood_is_a_probability_over_the_possible_results(env: Mastermind) -> None:
    view, _ = play(env, 200, [guess_action(0), guess_action(17)])
    for state in (view.prefix(0), view.prefix(1), view):
        action = guess_action(123)
        results = env.possible_results(state, action)
        total = sum(env.step_likelihood(state, action, r) for r in results)
        assert np.allclose(total, 1.0)
        assert {tuple(sorted(r)) for r in results} == {("black", "turns_left", "white")}


def test_the_answer_to_a_guess_is_one_of_the_possible_results(env: Mastermind) -> None:
    view, outputs = play(env, 77, [guess_action(0), guess_action(300)])
    assert outputs[0][0] in env.possible_results(view.prefix(0), guess_action(0))
    assert outputs[1][0] in env.possible_results(view.prefix(1), guess_action(300))
    assert env.step_likelihood(view.prefix(1), view.steps[1][0], outputs[1][0])[77] == 1.0


# -- reward rules --------------------------------------------------------------------------------------------


def test_the_example_guess_gets_one_black_two_white_and_seven_turns_left(env: Mastermind) -> None:
    theta = code_of("red", "green", "orange", "blue")
    _, outputs = play(env, theta, [{"type": "guess", "code": ["red", "blue", "green", "yellow"]}])
    assert outputs == [({"black": 1, "white": 2, "turns_left": 7}, False, 0.0)]


@pytest.mark.parametrize("t", [1, 3, 8])
def test_cracking_the_code_at_guess_t_pays_one_minus_t_minus_one_eighths(env: Mastermind, t: int) -> None:
    theta = 100
    wrong = [guess_action(g) for g in range(t - 1)]
    _, outputs = play(env, theta, [*wrong, guess_action(theta)])
    assert len(outputs) == t
    assert all(not done and reward == 0.0 for _, done, reward in outputs[:-1])
    result, done, reward = outputs[-1]
    assert done and result["black"] == 4 and result["turns_left"] == MAX_GUESSES - t
    assert reward == pytest.approx(1 - (t - 1) / 8)


def test_eight_wrong_guesses_end_the_task_with_nothing(env: Mastermind) -> None:
    _, outputs = play(env, 359, [guess_action(g) for g in range(MAX_GUESSES)])
    assert len(outputs) == MAX_GUESSES
    assert outputs[-1][1:] == (True, 0.0)
    assert outputs[-1][0]["turns_left"] == 0


@pytest.mark.parametrize("guesses", [[5, 80, 200], [0, 1, 2, 3, 4, 5, 6, 7]])
def test_the_reward_vector_is_what_step_pays_for_every_code(env: Mastermind, guesses: list[int]) -> None:
    actions = [guess_action(g) for g in guesses]
    view, _ = play(env, guesses[-1] if len(guesses) < MAX_GUESSES else 359, actions)
    vector = env.reward_vector(view)
    for theta in range(360):
        _, outputs = play(env, theta, actions)
        assert vector[theta] == outputs[-1][2]


def test_observation_shows_the_guesses_and_turns_left_but_not_the_code(env: Mastermind) -> None:
    assert env.task_start(0, None) == env.task_start(359, None)
    view, _ = play(env, 42, [guess_action(0)])
    obs = env.observation(view)
    assert obs["turns_left"] == 7 and obs["colours"] == list(COLOURS)
    assert obs["guesses"] == [{"code": ["red", "blue", "green", "yellow"], **{k: view.steps[0][1][k]
                                                                             for k in ("black", "white")}}]


# -- actions -------------------------------------------------------------------------------------------------


def test_a_guess_is_normalised_to_lower_case_colour_names(env: Mastermind) -> None:
    raw = {"code": [" Red", "BLUE", "green", "Purple"], "type": "guess"}
    expected = {"type": "guess", "code": ["red", "blue", "green", "purple"]}
    assert env.parse_action(TaskView(0, {}), raw) == expected


@pytest.mark.parametrize("raw", [
    {"type": "guess", "code": ["red", "blue", "green"]},
    {"type": "guess", "code": ["red", "blue", "green", "pink"]},
    {"type": "guess", "code": ["red", "red", "green", "yellow"]},
    {"type": "guess", "code": "red blue green yellow"},
    {"type": "guess", "code": ["red", "blue", "green", "yellow"], "extra": 1},
    {"type": "pull", "arm": "red"},
    "red blue green yellow",
    {"type": "guess", "code": ["red", "blue", "green", 4]},
])
def test_an_invalid_guess_is_refused_with_what_is_allowed(env: Mastermind, raw: object) -> None:
    with pytest.raises(InvalidAction) as exc:
        env.parse_action(TaskView(0, {}), raw)
    message = str(exc.value)
    assert "colour" in message
    if isinstance(raw, dict) and raw.get("code") == ["red", "blue", "green", "pink"]:
        assert all(c in message for c in COLOURS)


def test_an_invalid_guess_costs_no_turn_in_a_sequence() -> None:
    seq = Sequence(SequenceSettings(env="mastermind", n_tasks=2), seed=3)
    before = seq.observation()
    with pytest.raises(InvalidAction):
        seq.act({"type": "guess", "code": ["red", "red", "blue", "green"]})
    assert seq.observation() == before and seq.current.steps == []


def test_legal_actions_are_the_360_codes_in_code_order(env: Mastermind) -> None:
    legal = env.legal_actions(TaskView(0, {}))
    assert legal == [guess_action(t) for t in range(360)]


# -- latents -------------------------------------------------------------------------------------------------


def test_the_latents_follow_the_size_principle_with_the_designed_counts(env: Mastermind) -> None:
    law = env.law(0)
    by_sub: dict[tuple[str, str], list[int]] = {}
    for z, h in enumerate(env.hypotheses):
        by_sub.setdefault((h.family, h.subfamily), []).append(z)
    sizes = {key: (len(zs), {int((law.row(z) > 0).sum()) for z in zs}) for key, zs in by_sub.items()}
    assert sizes == {("shared_colours", "size3"): (20, {72}), ("shared_colours", "size4"): (15, {24}),
                     ("fixed_positions", "one"): (24, {60}), ("fixed_positions", "two"): (180, {12}),
                     ("none", ""): (1, {360})}
    prior = env.prior
    assert prior[by_sub[("none", "")][0]] == pytest.approx(0.2)
    assert prior[by_sub[("shared_colours", "size3")][0]] == pytest.approx(0.2 / 20)
    assert prior[by_sub[("fixed_positions", "two")][0]] == pytest.approx(0.2 / 180)
    supports = {tuple(np.flatnonzero(law.row(z))) for z in range(len(env.hypotheses))}
    assert len(supports) == len(env.hypotheses)  # no two hypotheses share a law


def test_a_shared_colour_set_holds_in_every_code_it_generates(env: Mastermind) -> None:
    law = env.law(0)
    for z, h in enumerate(env.hypotheses):
        codes = np.flatnonzero(law.row(z))
        if h.family == "shared_colours":
            assert all(set(h.params) <= set(CODES[c]) for c in codes)
        elif h.family == "fixed_positions":
            assert all(CODES[c][p] == col for c in codes for p, col in h.params)


def test_two_codes_without_a_common_pattern_leave_only_no_pattern(env: Mastermind) -> None:
    # red-blue-green-yellow and purple-orange-yellow-green share 2 colours and no position.
    seq = Sequence(SequenceSettings(env="mastermind", n_tasks=3, feedback="reveal_answer"), seed=0,
                   z=len(env.hypotheses) - 1, thetas=[0, 359, 5])
    for theta in (0, 359):
        seq.act(guess_action(theta))
    belief = belief_after(env, seq.views[:2])
    assert belief[-1] == pytest.approx(1.0)


# -- planner -------------------------------------------------------------------------------------------------


def naive_move(env: Mastermind, p0: np.ndarray, view: TaskView) -> int:
    """The declared planner written out directly: max outcome entropy, then P(correct), then code order."""
    post = env.in_task_posterior(p0, view)
    candidates = np.flatnonzero(post > 0)
    if len(candidates) <= 2 or len(view.steps) == MAX_GUESSES - 1:
        return int(candidates[np.argmax(post[candidates])])
    best_key, best = None, -1
    for g in range(360):
        mass: Counter = Counter()
        for c in candidates:
            mass[naive_pegs(CODES[g], CODES[c])] += post[c]
        key = (round(-sum(m * math.log(m) for m in mass.values()), 9), round(post[g], 9))
        if best_key is None or key > best_key:
            best_key, best = key, g
    return best


def test_the_planner_plays_the_max_entropy_guess_with_the_declared_tie_breaks(env: Mastermind) -> None:
    rng = np.random.default_rng(1)
    p0 = rng.random(360) ** 3
    p0 /= p0.sum()
    for theta, opening in ((10, [0]), (250, [0, 150]), (33, [359, 7])):
        view, _ = play(env, theta, [guess_action(g) for g in opening])
        assert env.best_action(p0, view)[0] == guess_action(naive_move(env, p0, view))


def test_with_two_candidates_the_planner_plays_the_likelier_one(env: Mastermind) -> None:
    p0 = np.zeros(360)
    p0[[40, 41]] = [0.3, 0.7]
    action, value = env.best_action(p0, TaskView(0, {}))
    assert action == guess_action(41)
    assert value == pytest.approx(0.7 + 0.3 * 7 / 8)


def test_on_the_last_turn_the_planner_plays_the_map_code(env: Mastermind) -> None:
    view, _ = play(env, 359, [guess_action(g) for g in range(7)])
    action, value = env.best_action(UNIFORM, view)
    candidates = np.flatnonzero(env.in_task_posterior(UNIFORM, view))
    assert action == guess_action(int(candidates[0]))
    assert value == pytest.approx(1 / len(candidates) / 8)


def test_the_planner_value_is_the_average_reward_it_earns_over_codes(env: Mastermind) -> None:
    rng = np.random.default_rng(2)
    p0 = np.where(rng.random(360) < 0.3, rng.random(360), 0.0)
    p0 /= p0.sum()
    for prior in (UNIFORM, p0):
        _, value = env.best_action(prior, TaskView(0, {}))
        exact = sum(prior[t] * planner_reward(env, prior, t) for t in np.flatnonzero(prior))
        assert value == pytest.approx(exact, abs=1e-12)


def test_q_of_any_opening_is_the_average_reward_of_that_opening_then_the_planner(env: Mastermind) -> None:
    for first in (300,):
        q = env.q_value(UNIFORM, TaskView(0, {}), guess_action(first))
        exact = np.mean([planner_reward(env, UNIFORM, t, guess_action(first)) for t in range(360)])
        assert q == pytest.approx(exact, abs=1e-12)


def test_q_mid_task_conditions_on_the_guesses_so_far(env: Mastermind) -> None:
    view, _ = play(env, 123, [guess_action(0)])
    post = env.in_task_posterior(UNIFORM, view)
    action = guess_action(200)
    q = env.q_value(UNIFORM, view, action)
    exact = 0.0
    for theta in np.flatnonzero(post):
        rest, out = play(env, theta, [guess_action(0), action])
        while not out[-1][1]:
            nxt = env.best_action(UNIFORM, rest)[0]
            result, done, reward = env.step(theta, None, rest, nxt)
            rest.steps.append((nxt, result))
            out.append((result, done, reward))
        exact += post[theta] * out[-1][2]
    assert q == pytest.approx(exact, abs=1e-12)
    assert env.q_value(UNIFORM, view, env.best_action(UNIFORM, view)[0]) == env.best_action(UNIFORM, view)[1]


# -- the design's values -------------------------------------------------------------------------------------


def test_the_prior_predictive_is_uniform_and_no_transfer_gets_about_062(env: Mastermind) -> None:
    p0 = predictive(env, env.prior, 0)
    assert np.allclose(p0, 1 / 360)
    action, value = env.best_action(p0, TaskView(0, {}))
    assert action == guess_action(0)  # every opening ties under a uniform prior: code order decides
    assert value == pytest.approx(0.62, abs=0.005)


@pytest.mark.parametrize(("subfamily", "expected"), [("two", 0.80), ("one", 0.71), ("size3", 0.68),
                                                      ("size4", 0.68)])
def test_the_oracle_values_match_the_design(env: Mastermind, subfamily: str, expected: float) -> None:
    members = [z for z, h in enumerate(env.hypotheses) if h.subfamily == subfamily]
    law = env.law(0)
    # Every hypothesis of a sub-family is a relabelling of colours and positions; a spread sample suffices.
    values = [env.best_action(law.row(z), TaskView(0, {}))[1] for z in members[:: max(1, len(members) // 5)]]
    assert np.ptp(values) < 1e-9
    assert values[0] == pytest.approx(expected, abs=0.01)


def test_after_two_codes_of_one_pattern_bayes_expects_more_than_no_transfer(env: Mastermind) -> None:
    z = next(i for i, h in enumerate(env.hypotheses) if h.subfamily == "two")
    members = np.flatnonzero(env.law(0).row(z))
    seq = Sequence(SequenceSettings(env="mastermind", n_tasks=3, feedback="reveal_answer"), seed=0, z=z,
                   thetas=[int(members[0]), int(members[5]), int(members[9])])
    for k in range(2):
        seq.act(guess_action(seq.thetas[k]))
    bayes = predictive(env, belief_after(env, seq.views[:2]), 2)
    start = TaskView(2, {})
    assert env.best_action(bayes, start)[1] > env.best_action(predictive(env, env.prior, 2), start)[1] + 0.05


def test_the_bayes_policy_has_zero_regret_over_a_sequence() -> None:
    from testbeds_latentgym.metrics import evaluate
    from testbeds_latentgym.play import run_reference

    seq = run_reference(SequenceSettings(env="mastermind", n_tasks=4, structure="latent"), 5, "bayes")
    metrics = evaluate(seq.env, seq.views, seq.z, seq.true_rewards)
    assert metrics.decisions > 4
    assert all(e.regret == 0.0 for e in metrics.events if e.kind == "step")
