"""secretary: reward rules, the exact planner and the design note's worked numbers."""

from __future__ import annotations

import numpy as np
import pytest
from testbeds_latentgym.envs import get_env
from testbeds_latentgym.envs.base import InvalidAction, TaskView
from testbeds_latentgym.inference import belief_after, predictive
from testbeds_latentgym.latent import entropy_bits
from testbeds_latentgym.models import SequenceSettings
from testbeds_latentgym.sequence import Sequence

env = get_env("secretary")
Z = {h.name: i for i, h in enumerate(env.hypotheses)}


def law_of(name: str) -> np.ndarray:
    return env.law(0).row(Z[name])


def threshold_value(q: np.ndarray, r: int) -> float:
    """Exact value of 'accept the first best-so-far at position >= r' when the best sits at M ~ q."""
    return float(sum(q[m - 1] * (r - 1) / (m - 1) for m in range(max(r, 2), 11)))


def planner_threshold(p0: np.ndarray) -> int:
    """The first position at which the planner accepts a candidate that is best so far."""
    for t in range(1, 11):
        steps = [({"type": "continue"}, {"position": s, "rank_among_seen": 2}) for s in range(2, t)]
        if t > 1:
            steps.append(({"type": "continue"}, {"position": t, "rank_among_seen": 1}))
        if env.best_action(p0, TaskView(0, {}, steps))[0]["type"] == "accept":
            return t
    raise AssertionError("the planner never accepts")


def test_accepting_the_overall_best_pays_one_and_anything_else_zero() -> None:
    seq = Sequence(SequenceSettings(env="secretary", n_tasks=2), 0, z=Z["none"], thetas=[2, 0])
    seq.act({"type": "continue"})
    out = seq.act({"type": "continue"})
    assert out["result"] == {"position": 3, "rank_among_seen": 1}
    out = seq.act({"type": "accept"})
    assert out["feedback"]["reward"] == 1.0 and seq.true_rewards == [1.0]
    seq.act({"type": "continue"})
    out = seq.act({"type": "accept"})
    assert out["feedback"]["reward"] == 0.0


def test_the_tenth_candidate_must_be_accepted() -> None:
    seq = Sequence(SequenceSettings(env="secretary", n_tasks=1), 3)
    for _ in range(9):
        seq.act({"type": "continue"})
    with pytest.raises(InvalidAction, match="must be accepted"):
        seq.act({"type": "continue"})
    assert seq.observation()["state"]["must_accept"] is True
    assert seq.act({"type": "accept"})["sequence_done"] is True


def test_ranks_among_seen_follow_the_hidden_qualities() -> None:
    quality = env.draw_nuisance(4, 0, np.random.default_rng(0))
    assert quality[4] == 10 and sorted(quality) == list(range(1, 11))
    view = TaskView(0, env.task_start(4, quality))
    for t in range(1, 10):
        result, done, _ = env.step(4, quality, view, {"type": "continue"})
        view.steps.append(({"type": "continue"}, result))
        expected = 1 + sum(q > quality[t] for q in quality[:t])
        assert result["rank_among_seen"] == expected and not done


def test_the_step_likelihood_is_a_probability_over_possible_results() -> None:
    view = TaskView(0, {}, [({"type": "continue"}, {"position": 2, "rank_among_seen": 2})])
    action = {"type": "continue"}
    total = sum(env.step_likelihood(view, action, r) for r in env.possible_results(view, action))
    np.testing.assert_allclose(total, np.ones(10))


def test_uniform_prior_accepts_from_position_four_for_0_3987() -> None:
    uniform = law_of("none")
    assert planner_threshold(uniform) == 4
    assert env.best_action(uniform, TaskView(0, {}))[1] == pytest.approx(0.3987, abs=5e-5)
    assert threshold_value(uniform, 4) == pytest.approx(0.3987, abs=5e-5)


@pytest.mark.parametrize(("name", "oracle", "no_transfer"),
                         [("early", 0.457, 0.080), ("middle", 0.650, 0.573), ("late", 0.760, 0.484),
                          ("none", 0.3987, 0.398)])
def test_oracle_and_no_transfer_values_match_the_design(name: str, oracle: float, no_transfer: float) -> None:
    q = law_of(name)
    assert env.best_action(q, TaskView(0, {}))[1] == pytest.approx(oracle, abs=5e-4)
    assert threshold_value(q, planner_threshold(q)) == pytest.approx(oracle, abs=5e-4)
    prior_predictive = predictive(env, env.prior, 0)
    assert threshold_value(q, planner_threshold(prior_predictive)) == pytest.approx(no_transfer, abs=5e-4)


def test_two_early_reveals_make_early_likely_and_bayes_accept_from_position_two() -> None:
    views = []
    for k, m in enumerate((2, 3)):
        steps = [({"type": "continue"}, {"position": 2, "rank_among_seen": 1}), ({"type": "accept"},
                 {"accepted_position": 2})]
        views.append(TaskView(k, {}, steps, done=True, reward=float(m == 2), answer=m))
    assert entropy_bits(env.prior) == pytest.approx(1.99, abs=0.005)
    b = belief_after(env, views)
    assert b[Z["early"]] == pytest.approx(0.908, abs=5e-4)
    assert entropy_bits(b) == pytest.approx(0.49, abs=0.005)
    assert planner_threshold(predictive(env, b, 2)) == 2
