"""The recommender environment: catalogues, reward rules, likelihoods, hints, reveal, planner, §4 values."""

from __future__ import annotations

import json
from functools import lru_cache

import numpy as np
import pytest
from testbeds_latentgym.envs import get_env
from testbeds_latentgym.envs.base import InvalidAction, TaskView
from testbeds_latentgym.envs.recommender import (
    ITEMS,
    N_PERSONAS,
    Catalogue,
    Nuisance,
    Recommender,
    is_flat_for_some_persona,
    normalised_utilities,
    solve,
    task_reward,
)
from testbeds_latentgym.inference import belief_after, events, predictive
from testbeds_latentgym.latent import entropy_bits
from testbeds_latentgym.metrics import evaluate
from testbeds_latentgym.models import SequenceSettings
from testbeds_latentgym.play import run_reference
from testbeds_latentgym.seeding import rng_for
from testbeds_latentgym.sequence import Sequence, view_to_public

ENV: Recommender = get_env("recommender")  # type: ignore[assignment]
NONE = N_PERSONAS  # the index of the `none` hypothesis
UNIFORM = np.full(N_PERSONAS, 1.0 / N_PERSONAS)

# Persona 0 is (low, classic, durable); its utilities here are A 3, B 2, C 1, D/E/F 0.
HAND: Catalogue = ((0, 0, 0), (0, 0, 1), (0, 1, 1), (2, 1, 1), (1, 2, 2), (2, 2, 2))
HAND_XI = Nuisance("headphones", HAND)


def theta_of(budget: int, style: int, priority: int) -> int:
    return 9 * budget + 3 * style + priority


def play_script(theta: int, xi: Nuisance, actions: list[dict]) -> tuple[TaskView, float]:
    """Apply parsed actions with the env's own step; return the view and the task reward."""
    view = TaskView(0, ENV.task_start(theta, xi))
    reward = 0.0
    for raw in actions:
        action = ENV.parse_action(view, raw)
        result, done, reward = ENV.step(theta, xi, view, action)
        view.steps.append((action, result))
    return view, reward


def catalogues(n: int) -> list[Catalogue]:
    return [ENV.draw_nuisance(0, 0, rng_for(seed, "xi", 0)).catalogue for seed in range(n)]


# -- catalogues ---------------------------------------------------------------------------------------------

def test_the_hand_catalogue_is_a_legal_one() -> None:
    assert not is_flat_for_some_persona(HAND)
    assert normalised_utilities(HAND)[0].tolist() == [1.0, 2 / 3, 1 / 3, 0.0, 0.0, 0.0]


def test_drawn_catalogues_never_leave_a_persona_indifferent() -> None:
    for catalogue in catalogues(300):
        assert not is_flat_for_some_persona(catalogue)
        assert len(catalogue) == len(ITEMS)


def test_a_flat_catalogue_has_no_defined_reward() -> None:
    flat = tuple((0, 0, 0) for _ in ITEMS)
    assert is_flat_for_some_persona(flat)
    with pytest.raises(ValueError, match="alike"):
        normalised_utilities(flat)


def test_the_catalogue_law_does_not_depend_on_the_persona() -> None:
    for seed in range(20):
        drawn = {ENV.draw_nuisance(theta, 3, rng_for(seed, "xi", 3)) for theta in (0, 13, 26)}
        assert len(drawn) == 1


def test_each_task_is_a_named_category_shown_with_its_catalogue() -> None:
    xi = ENV.draw_nuisance(0, 1, rng_for(5, "xi", 1))
    start = ENV.task_start(4, xi)
    assert start["category"] == "backpacks"
    assert sorted(start["items"]) == list(ITEMS)
    assert set(start["items"]["A"]) == {"price", "style", "feature"}
    assert ENV.catalogue(TaskView(1, start)) == xi.catalogue
    assert ENV.task_start(4, xi) == ENV.task_start(20, xi)  # the opening never shows θ


# -- reward rules -------------------------------------------------------------------------------------------

def test_recommending_the_favourite_without_asking_earns_one() -> None:
    _, reward = play_script(0, HAND_XI, [{"type": "recommend", "item": "A"}])
    assert reward == 1.0


def test_recommending_a_least_liked_item_earns_zero() -> None:
    _, reward = play_script(0, HAND_XI, [{"type": "recommend", "item": "F"}])
    assert reward == 0.0


def test_utility_is_normalised_between_the_catalogue_minimum_and_maximum() -> None:
    assert play_script(0, HAND_XI, [{"type": "recommend", "item": "B"}])[1] == pytest.approx(2 / 3, abs=1e-4)
    assert play_script(0, HAND_XI, [{"type": "recommend", "item": "C"}])[1] == pytest.approx(1 / 3, abs=1e-4)


def test_every_ask_costs_a_tenth() -> None:
    one = play_script(0, HAND_XI, [{"type": "ask", "trait": "budget"}, {"type": "recommend", "item": "A"}])[1]
    three = play_script(0, HAND_XI, [{"type": "ask", "trait": t} for t in ("budget", "style", "priority")]
                        + [{"type": "recommend", "item": "A"}])[1]
    assert (one, three) == (0.9, 0.7)


def test_the_reward_never_goes_below_zero() -> None:
    asks = [{"type": "ask", "trait": t} for t in ("budget", "style", "priority")]
    assert play_script(0, HAND_XI, asks + [{"type": "recommend", "item": "C"}])[1] == pytest.approx(0.0333)
    assert play_script(0, HAND_XI, asks[:2] + [{"type": "recommend", "item": "D"}])[1] == 0.0
    assert task_reward(0.2, 3) == 0.0


def test_an_ask_answers_with_the_persona_trait_and_a_recommendation_ends_the_task_silently() -> None:
    theta = theta_of(1, 2, 0)  # mid, sporty, durable
    asks = [{"type": "ask", "trait": "style"}, {"type": "ask", "trait": "budget"}]
    view, _ = play_script(theta, HAND_XI, asks)
    assert [r for _, r in view.steps] == [{"answer": "sporty"}, {"answer": "mid"}]
    result, done, _ = ENV.step(theta, HAND_XI, view, {"type": "recommend", "item": "E"})
    assert done and result == {"recommended": "E"}  # the rating is not in the result


def test_the_reward_vector_matches_the_step_reward_for_every_persona() -> None:
    scripts = [[{"type": "recommend", "item": "B"}],
               [{"type": "ask", "trait": "priority"}, {"type": "recommend", "item": "E"}],
               [{"type": "ask", "trait": t} for t in ("style", "budget", "priority")] + [{"type": "recommend",
                                                                                          "item": "C"}]]
    for xi in [HAND_XI, *(Nuisance("tents", c) for c in catalogues(5))]:
        for script in scripts:
            for theta in range(N_PERSONAS):
                view, reward = play_script(theta, xi, script)
                assert ENV.reward_vector(view)[theta] == reward


# -- actions ------------------------------------------------------------------------------------------------

def test_actions_are_normalised() -> None:
    view = TaskView(0, ENV.task_start(0, HAND_XI))
    assert ENV.parse_action(view, {"trait": " Budget", "type": "ASK"}) == {"type": "ask", "trait": "budget"}
    assert ENV.parse_action(view, {"type": "recommend", "item": "c"}) == {"type": "recommend", "item": "C"}


@pytest.mark.parametrize("raw, message", [
    ("recommend C", "JSON object"),
    ({"type": "buy", "item": "A"}, "unknown action"),
    ({"type": "ask", "trait": "colour"}, "one trait"),
    ({"type": "ask", "trait": "budget", "item": "A"}, "one trait"),
    ({"type": "recommend", "item": "G"}, "one item"),
    ({"type": "recommend"}, "one item"),
])
def test_invalid_actions_say_what_is_allowed(raw: object, message: str) -> None:
    view = TaskView(0, ENV.task_start(0, HAND_XI))
    with pytest.raises(InvalidAction, match=message):
        ENV.parse_action(view, raw)


def test_a_trait_can_be_asked_only_once() -> None:
    view, _ = play_script(0, HAND_XI, [{"type": "ask", "trait": "budget"}])
    with pytest.raises(InvalidAction, match="already asked about 'budget'.*style, priority"):
        ENV.parse_action(view, {"type": "ask", "trait": "budget"})
    assert ENV.legal_actions(view) == [{"type": "ask", "trait": "style"},
                                       {"type": "ask", "trait": "priority"},
                                       *({"type": "recommend", "item": i} for i in ITEMS)]


def test_an_invalid_action_changes_nothing_in_a_sequence() -> None:
    seq = Sequence(SequenceSettings(env="recommender"), seed=3)
    seq.act({"type": "ask", "trait": "budget"})
    before = json.dumps(seq.observation(), sort_keys=True)
    with pytest.raises(InvalidAction):
        seq.act({"type": "ask", "trait": "budget"})
    assert json.dumps(seq.observation(), sort_keys=True) == before
    assert len(seq.current.steps) == 1 and len(seq.invalid_actions) == 1


def test_the_observation_shows_the_catalogue_and_the_answers_so_far() -> None:
    view, _ = play_script(theta_of(2, 0, 1), HAND_XI, [{"type": "ask", "trait": "priority"}])
    obs = ENV.observation(view)
    assert obs["answers"] == {"priority": "eco"}
    assert obs["traits_not_asked"] == ["budget", "style"] and obs["asks_made"] == 1
    assert obs["items"] == ENV.task_start(0, HAND_XI)["items"] and obs["category"] == "headphones"


# -- latent space, likelihoods, hints, reveal ---------------------------------------------------------------

def test_the_prior_gives_none_a_fifth_and_each_persona_an_equal_share() -> None:
    assert ENV.prior[NONE] == pytest.approx(0.2)
    np.testing.assert_allclose(ENV.prior[:NONE], 0.8 / 27)
    assert ENV.hypotheses[theta_of(1, 0, 2)].name == "mid-classic-compact"


def test_a_persona_fixes_theta_and_none_draws_it_uniformly() -> None:
    law = ENV.law(4)
    for z in range(N_PERSONAS):
        assert law.row(z).tolist() == [float(t == z) for t in range(N_PERSONAS)]
    np.testing.assert_allclose(law.row(NONE), UNIFORM)
    np.testing.assert_allclose(predictive(ENV, ENV.prior, 0), UNIFORM)  # no_transfer plans with uniform


def test_step_likelihoods_are_proper_probabilities() -> None:
    view, _ = play_script(0, HAND_XI, [{"type": "ask", "trait": "style"}])
    for state in (TaskView(0, view.start), view):
        for action in ENV.legal_actions(state):
            total = sum(ENV.step_likelihood(state, action, r) for r in ENV.possible_results(state, action))
            np.testing.assert_allclose(total, 1.0)


def test_every_result_the_env_produces_is_among_the_possible_results() -> None:
    for theta in range(N_PERSONAS):
        view = TaskView(0, ENV.task_start(theta, HAND_XI))
        for action in ENV.legal_actions(view):
            result = ENV.step(theta, HAND_XI, view, action)[0]
            assert result in ENV.possible_results(view, action)
            assert ENV.step_likelihood(view, action, result)[theta] == 1.0


def test_hints_are_trait_facts() -> None:
    hints = ENV.hint_model
    assert hints.statements == ["budget=low", "budget=mid", "budget=high", "style=classic",
                                "style=modern", "style=sporty", "priority=durable", "priority=eco",
                                "priority=compact", "none"]
    assert hints.n_false.tolist() == [7] * 27 + [9]
    persona = theta_of(2, 1, 0)  # high, modern, durable
    true = [hints.statements[s] for s in np.flatnonzero(hints.truth[persona])]
    assert true == ["budget=high", "style=modern", "priority=durable"]
    assert np.flatnonzero(hints.truth[NONE]).tolist() == [9]
    for s in range(len(hints.statements)):
        assert hints.likelihood(s).shape == (28,)
    np.testing.assert_allclose(sum(hints.likelihood(s) for s in range(10)), 1.0)


def test_a_hint_weighs_personas_and_none_differently() -> None:
    lik = ENV.hint_model.likelihood(0)  # "NOT budget=low"
    assert lik[theta_of(0, 1, 1)] == 0.0
    assert lik[theta_of(1, 1, 1)] == pytest.approx(1 / 7)
    assert lik[NONE] == pytest.approx(1 / 9)
    assert ENV.hint_text("budget=low") == "the user always has a low budget"


def test_reveal_shows_the_favourite_set_and_its_mask_holds_every_persona_with_that_set() -> None:
    assert ENV.reveal(0, HAND_XI) == ["A"]
    view, _ = play_script(0, HAND_XI, [{"type": "recommend", "item": "B"}])
    mask = ENV.reveal_mask(view, ["A"])
    assert mask[0] == 1.0
    for theta in range(N_PERSONAS):
        assert mask[theta] == float(ENV.reveal(theta, HAND_XI) == ["A"])
    assert 1 < mask.sum() < N_PERSONAS  # the favourite set does not pin the persona down


def test_a_revealed_answer_survives_the_public_round_trip() -> None:
    seq = run_reference(SequenceSettings(env="recommender", feedback="reveal_answer", n_tasks=2), 4, "bayes")
    shown = json.loads(json.dumps(view_to_public(seq.views[0])))["feedback"]["answer"]
    assert shown == ENV.reveal(seq.thetas[0], seq.xis[0])
    assert ENV.reveal_mask(seq.views[0], shown)[seq.thetas[0]] == 1.0


def test_a_fully_identified_first_persona_moves_four_fifths_onto_it() -> None:
    theta = theta_of(1, 1, 1)
    view, reward = play_script(theta, HAND_XI, [{"type": "ask", "trait": t} for t in ("budget", "style",
                                                                                       "priority")]
                               + [{"type": "recommend", "item": "A"}])
    view.done, view.reward = True, reward
    b = belief_after(ENV, [view])
    # persona: 0.8/27 × 1; none: 0.2 × 1/27; every other persona 0.
    assert b[theta] == pytest.approx(0.8) and b[NONE] == pytest.approx(0.2)
    assert entropy_bits(ENV.prior) == pytest.approx(4.5258, abs=1e-4)
    assert entropy_bits(b) == pytest.approx(0.7219, abs=1e-4)
    assert predictive(ENV, b, 1)[theta] == pytest.approx(0.8 + 0.2 / 27)


def test_feedback_enters_the_belief_through_the_reward_vector() -> None:
    # A single recommendation of B scores 2/3 only for personas whose utility of B is one below the top.
    view, reward = play_script(0, HAND_XI, [{"type": "recommend", "item": "B"}])
    view.done, view.reward = True, reward
    b = belief_after(ENV, [view])
    consistent = ENV.reward_vector(view) == reward
    assert (b[:NONE] > 0).tolist() == consistent.tolist()
    assert b[NONE] == pytest.approx(0.2 * consistent.mean() / (0.2 * consistent.mean() + 0.8 / 27
                                                                * consistent.sum()))


# -- planner ------------------------------------------------------------------------------------------------

def brute_value(p0: np.ndarray, xi: Nuisance, view: TaskView) -> float:
    """Expectimax straight from the env's likelihoods and reward vector (no plan tables); the reward vector
    is checked against `step` above."""
    post = ENV.in_task_posterior(p0, view)
    best = -np.inf
    for action in ENV.legal_actions(view):
        if action["type"] == "recommend":
            done = TaskView(0, view.start, [*view.steps, (action, ENV.possible_results(view, action)[0])])
            value = float(post @ ENV.reward_vector(done))
        else:
            value = 0.0
            for result in ENV.possible_results(view, action):
                p = float((post * ENV.step_likelihood(view, action, result)).sum())
                if p > 0:
                    value += p * brute_value(p0, xi, TaskView(0, view.start, [*view.steps, (action, result)]))
        best = max(best, value)
    return best


def test_the_planner_matches_brute_force_expectimax() -> None:
    rng = np.random.default_rng(1)
    p0s = [UNIFORM, rng.dirichlet(np.full(N_PERSONAS, 0.2))]
    for catalogue in [HAND, *catalogues(1)]:
        xi = Nuisance("tents", catalogue)
        for p0 in p0s:
            start = TaskView(0, ENV.task_start(0, xi))
            asked, _ = play_script(theta_of(2, 0, 1), xi, [{"type": "ask", "trait": "style"}])
            for view in (start, asked):
                assert ENV.best_action(p0, view)[1] == pytest.approx(brute_value(p0, xi, view), abs=1e-12)


def test_the_best_action_is_the_argmax_of_q_with_ties_to_the_first() -> None:
    for catalogue in catalogues(10):
        view = TaskView(0, ENV.task_start(0, Nuisance("tents", catalogue)))
        action, value = ENV.best_action(UNIFORM, view)
        qs = [ENV.q_value(UNIFORM, view, a) for a in ENV.legal_actions(view)]
        assert ENV.q_value(UNIFORM, view, action) == value == max(qs)
        first_best = next(i for i, q in enumerate(qs) if q >= max(qs) - 1e-9)
        assert ENV.legal_actions(view).index(action) == first_best


def test_the_planner_asks_when_the_answer_is_worth_its_cost() -> None:
    p0 = np.zeros(N_PERSONAS)
    p0[[0, theta_of(1, 2, 2)]] = 0.5  # (low, classic, durable) or (mid, sporty, compact)
    view = TaskView(0, ENV.task_start(0, HAND_XI))
    # Their favourites are A and E, so asking budget (low or mid) separates them: 0.9. Without asking, A and
    # E each score 1 for one persona and 0 for the other, F scores 0 and 2/3.
    assert ENV.q_value(p0, view, {"type": "ask", "trait": "budget"}) == pytest.approx(0.9)
    assert ENV.q_value(p0, view, {"type": "ask", "trait": "priority"}) == pytest.approx(0.9)
    assert ENV.q_value(p0, view, {"type": "recommend", "item": "A"}) == pytest.approx(0.5)
    assert ENV.q_value(p0, view, {"type": "recommend", "item": "F"}) == pytest.approx(1 / 3, abs=1e-4)
    assert ENV.best_action(p0, view)[0] == {"type": "ask", "trait": "budget"}
    asked, _ = play_script(theta_of(1, 2, 2), HAND_XI, [{"type": "ask", "trait": "budget"}])
    assert ENV.best_action(p0, asked) == ({"type": "recommend", "item": "E"}, 0.9)


def test_no_transfer_expects_about_point_seventy_nine() -> None:
    values = [solve(UNIFORM, c).value[0] for c in catalogues(600)]
    assert np.mean(values) == pytest.approx(0.79, abs=0.01)


def test_the_oracle_earns_one_under_a_persona_and_the_no_transfer_value_under_none() -> None:
    for catalogue in catalogues(8):
        view = TaskView(0, ENV.task_start(0, Nuisance("tents", catalogue)))
        for theta in range(N_PERSONAS):
            action, value = ENV.best_action(ENV.law(0).row(theta), view)
            assert value == 1.0 and action["type"] == "recommend"
        assert ENV.best_action(ENV.law(0).row(NONE), view) == ENV.best_action(UNIFORM, view)


def random_value(catalogue: Catalogue) -> float:
    """Exact expected reward of uniform play over legal actions, for a uniform persona."""
    norm = normalised_utilities(catalogue)

    @lru_cache(None)
    def value(asked: int) -> float:
        recommend = float(task_reward(norm, asked).mean())
        unasked = 3 - asked
        return (len(ITEMS) * recommend + unasked * value(asked + 1)) / (len(ITEMS) + unasked) if unasked \
            else recommend
    return value(0)


def test_random_play_expects_about_point_forty_five() -> None:
    assert np.mean([random_value(c) for c in catalogues(600)]) == pytest.approx(0.45, abs=0.02)


# -- sequences ----------------------------------------------------------------------------------------------

def test_bayes_beats_no_transfer_beats_random_under_a_fixed_persona() -> None:
    settings = SequenceSettings(env="recommender", structure="latent")
    totals = {p: [sum(run_reference(settings, s, p).true_rewards) for s in range(8)]
              for p in ("bayes", "no_transfer", "random")}
    assert np.mean(totals["bayes"]) > np.mean(totals["no_transfer"]) + 1.0
    assert np.mean(totals["no_transfer"]) > np.mean(totals["random"]) + 2.0


def test_under_none_the_oracle_plays_exactly_as_no_transfer() -> None:
    settings = SequenceSettings(env="recommender", structure="none", n_tasks=4)
    for seed in range(5):
        oracle, nt = run_reference(settings, seed, "oracle"), run_reference(settings, seed, "no_transfer")
        assert oracle.history() == nt.history()


def test_bayes_has_zero_regret_and_the_bits_telescope_in_every_feedback_mode() -> None:
    for feedback in ("none", "outcome", "reveal_answer", "latent_hint"):
        seq = run_reference(SequenceSettings(env="recommender", feedback=feedback, n_tasks=5), 11, "bayes")
        m = evaluate(ENV, seq.views, seq.z, seq.true_rewards)
        assert m.regret == 0.0
        assert m.agent_bits + m.feedback_bits == pytest.approx(m.prior_entropy_bits - m.final_entropy_bits,
                                                               abs=1e-9)
        for event in events(ENV, seq.views):
            assert event.belief.sum() == pytest.approx(1.0)


def test_the_visible_record_does_not_depend_on_z_given_the_personas() -> None:
    settings = SequenceSettings(env="recommender", feedback="reveal_answer", n_tasks=4)
    thetas = [5, 5, 5, 5]
    shown = []
    for z in (5, NONE):
        seq = Sequence(settings, seed=9, z=z, thetas=thetas)
        script = [{"type": "ask", "trait": "budget"}, {"type": "recommend", "item": "B"}]
        while not seq.done:
            seq.act(script[len(seq.current.steps)])
        shown.append(json.dumps(seq.history(), sort_keys=True))
    assert shown[0] == shown[1]


def test_the_same_seed_gives_the_same_bytes() -> None:
    settings = SequenceSettings(env="recommender", n_tasks=3)
    runs = [json.dumps(run_reference(settings, 21, "random").history(), sort_keys=True) for _ in range(2)]
    assert runs[0] == runs[1]
