"""Contract tests every latentgym environment must pass (design note latentgym.md §8)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from testbeds_latentgym.envs import get_env
from testbeds_latentgym.envs.base import InvalidAction
from testbeds_latentgym.inference import belief_after, events
from testbeds_latentgym.metrics import evaluate
from testbeds_latentgym.models import ENV_NAMES, SequenceSettings
from testbeds_latentgym.play import play, run_reference
from testbeds_latentgym.policies import make_policy
from testbeds_latentgym.sequence import Sequence, hint_from_public, view_from_public

FEEDBACKS = ("none", "outcome", "reveal_answer", "latent_hint")


def transcript(seq: Sequence, policy_name: str) -> list[dict]:
    """Play with a policy and keep every agent-visible output, in order."""
    policy = make_policy(policy_name, seq.env, seed=seq.seed, z=seq.z)
    shown = [seq.brief()]
    while not seq.done:
        shown.append(seq.act(policy.act(seq.views)))
        shown.append(seq.observation())
    shown.append({"history": seq.history()})
    return shown


@pytest.mark.parametrize("env_name", ENV_NAMES)
def test_the_prior_is_a_distribution_with_a_fifth_on_no_structure(env_name: str) -> None:
    env = get_env(env_name)
    assert env.prior.sum() == pytest.approx(1.0, abs=1e-12)
    none = [i for i, h in enumerate(env.hypotheses) if h.family == "none"]
    assert len(none) == 1 and env.prior[none[0]] == pytest.approx(0.2)


@pytest.mark.parametrize("env_name", ENV_NAMES)
def test_the_same_seed_gives_the_same_visible_bytes(env_name: str) -> None:
    settings = SequenceSettings(env=env_name, n_tasks=3, feedback="latent_hint")
    first = json.dumps(transcript(Sequence(settings, 11), "bayes"), sort_keys=True)
    second = json.dumps(transcript(Sequence(settings, 11), "bayes"), sort_keys=True)
    other = json.dumps(transcript(Sequence(settings, 12), "bayes"), sort_keys=True)
    assert first == second
    assert first != other


def test_the_same_seed_gives_the_same_bytes_under_any_hash_seed() -> None:
    code = (
        "import json, hashlib\n"
        "from testbeds_latentgym.models import ENV_NAMES, SequenceSettings\n"
        "from testbeds_latentgym.play import run_reference\n"
        "out = []\n"
        "for name in ENV_NAMES:\n"
        "    seq = run_reference(SequenceSettings(env=name, n_tasks=2, feedback='latent_hint'), 5, 'random')\n"
        "    out.append([seq.history(), seq.true_rewards])\n"
        "print(hashlib.sha256(json.dumps(out, sort_keys=True).encode()).hexdigest())\n"
    )
    digests = set()
    for hash_seed in ("0", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        digests.add(done.stdout.strip())
    assert len(digests) == 1


@pytest.mark.parametrize("feedback", FEEDBACKS)
@pytest.mark.parametrize("env_name", ENV_NAMES)
def test_the_posterior_is_a_distribution_after_every_event(env_name: str, feedback: str) -> None:
    for seed, policy in ((1, "bayes"), (2, "random")):
        seq = run_reference(SequenceSettings(env=env_name, n_tasks=3, feedback=feedback), seed, policy)
        for event in events(seq.env, seq.views):
            assert event.belief.sum() == pytest.approx(1.0, abs=1e-9)
            assert (event.belief >= 0).all()


@pytest.mark.parametrize("feedback", FEEDBACKS)
@pytest.mark.parametrize("env_name", ENV_NAMES)
def test_agent_bits_plus_feedback_bits_equal_the_entropy_drop(env_name: str, feedback: str) -> None:
    seq = run_reference(SequenceSettings(env=env_name, n_tasks=4, feedback=feedback, structure="latent"), 3, "random")
    m = evaluate(seq.env, seq.views, seq.z, seq.true_rewards)
    assert m.agent_bits + m.feedback_bits == pytest.approx(m.prior_entropy_bits - m.final_entropy_bits, abs=1e-9)
    assert all(e.eig_bits is None or e.eig_bits >= -1e-12 for e in m.events)
    if feedback != "none":
        assert any(e.tag == "feedback" for e in m.events)


@pytest.mark.parametrize("env_name", ENV_NAMES)
def test_the_bayes_policy_has_zero_regret_at_every_step(env_name: str) -> None:
    for seed in (4, 5):
        seq = run_reference(SequenceSettings(env=env_name, n_tasks=4), seed, "bayes")
        m = evaluate(seq.env, seq.views, seq.z, seq.true_rewards)
        assert m.decisions > 0
        assert all(e.regret == 0.0 for e in m.events if e.kind == "step")


@pytest.mark.parametrize("env_name", ENV_NAMES)
def test_an_invalid_action_changes_nothing_and_says_what_is_allowed(env_name: str) -> None:
    seq = Sequence(SequenceSettings(env=env_name, n_tasks=2), 8)
    seq.act(make_policy("no_transfer", seq.env).act(seq.views))
    before = (json.dumps(seq.observation(), sort_keys=True), json.dumps(seq.history()), len(seq.current.steps))
    for bad in ({}, {"type": "bogus"}, "guess 42", None, [1, 2], {"type": None}, {"type": "accept", "x": 1}):
        with pytest.raises(InvalidAction) as info:
            seq.act(bad)
        assert len(str(info.value)) > 20
    assert (json.dumps(seq.observation(), sort_keys=True), json.dumps(seq.history()),
            len(seq.current.steps)) == before
    assert len(seq.invalid_actions) == 7


@pytest.mark.parametrize("env_name", ENV_NAMES)
def test_nothing_about_the_latent_leaks_into_what_the_agent_sees(env_name: str) -> None:
    """Force the same answers under two different z: every visible byte must be identical, and the posterior
    rebuilt from the agent's transcript must equal the evaluator's."""
    env = get_env(env_name)
    settings = SequenceSettings(env=env_name, n_tasks=4, feedback="reveal_answer", structure="latent")
    base = Sequence(settings, 2_718_281_828)
    none = next(i for i, h in enumerate(env.hypotheses) if h.family == "none")
    shown = [json.dumps(transcript(Sequence(settings, base.seed, z=z, thetas=list(base.thetas)), "bayes"),
                        sort_keys=True) for z in (base.z, none)]
    assert shown[0] == shown[1]
    seq = Sequence(settings, base.seed)
    transcript(seq, "bayes")
    rebuilt = [view_from_public(r, hint_from_public(env, r["feedback"].get("hint"))) for r in seq.history()]
    np.testing.assert_allclose(belief_after(env, rebuilt), belief_after(env, seq.views), atol=1e-12)
    assert str(seq.seed) not in shown[0]
    if env.hypotheses[seq.z].family != "none":
        assert json.dumps(seq.latent()["name"]) not in shown[0]


@pytest.mark.parametrize("feedback", ["reveal_answer", "latent_hint"])
@pytest.mark.parametrize("env_name", ENV_NAMES)
def test_the_posterior_is_calibrated_against_monte_carlo(env_name: str, feedback: str) -> None:
    """z ~ π0; within bins of the posterior probability of each rule family, the family's empirical frequency
    matches the mean posterior within 3 standard errors (reliability check that needs no repeated histories)."""
    env = get_env(env_name)
    names, family_of = env.family_index
    settings = SequenceSettings(env=env_name, n_tasks=3, feedback=feedback)
    predicted, hit = [], []
    policy = "random"
    for seed in range(400):
        seq = run_reference(settings, 10_000 + seed, policy)
        b = belief_after(env, seq.views)
        fam = np.bincount(family_of, weights=b, minlength=len(names))
        predicted.extend(fam)
        hit.extend(np.arange(len(names)) == family_of[seq.z])
    predicted, hit = np.array(predicted), np.array(hit, dtype=float)
    edges = [0.0, 0.05, 0.2, 0.4, 0.6, 0.8, 0.95, 1.0 + 1e-9]
    checked = 0
    for lo, hi in zip(edges, edges[1:]):
        inside = (predicted >= lo) & (predicted < hi)
        if inside.sum() < 30:
            continue
        mean_p = predicted[inside].mean()
        se = np.sqrt(max(np.sum(predicted[inside] * (1 - predicted[inside])), 1e-12)) / inside.sum()
        assert abs(hit[inside].mean() - mean_p) <= 3 * se + 1e-9, (lo, hi, hit[inside].mean(), mean_p)
        checked += 1
    assert checked >= 2


@pytest.mark.parametrize("env_name", ENV_NAMES)
def test_bayes_beats_no_transfer_beats_random_over_seeds(env_name: str) -> None:
    totals = {p: [] for p in ("bayes", "no_transfer", "random")}
    for seed in range(12):
        settings = SequenceSettings(env=env_name, n_tasks=10, structure="latent")
        for policy in totals:
            totals[policy].append(sum(run_reference(settings, seed, policy).true_rewards))
    means = {p: float(np.mean(v)) for p, v in totals.items()}
    assert means["bayes"] > means["no_transfer"] > means["random"], means


@pytest.mark.parametrize("env_name", ENV_NAMES)
def test_a_single_task_control_makes_bayes_equal_no_transfer(env_name: str) -> None:
    for seed in range(3):
        settings = SequenceSettings(env=env_name, n_tasks=1)
        a, b = run_reference(settings, seed, "bayes"), run_reference(settings, seed, "no_transfer")
        assert a.history() == b.history()


def test_play_stops_after_the_requested_number_of_actions() -> None:
    seq = Sequence(SequenceSettings(env="secretary", n_tasks=2), 0)
    play(seq, make_policy("random", seq.env, seed=0), max_actions=1)
    assert len(seq.current.steps) + sum(len(v.steps) for v in seq.views[:-1]) == 1


@pytest.mark.parametrize("env_name", ENV_NAMES)
def test_the_oracle_has_zero_regret_under_the_true_latent(env_name: str) -> None:
    """Evaluated with the belief δ_z (the oracle's own), the oracle's every decision is the planner's."""
    from testbeds_latentgym.envs.base import TIE

    seq = run_reference(SequenceSettings(env=env_name, n_tasks=3, structure="latent"), 6, "oracle")
    env = seq.env
    for view in seq.views:
        p0 = env.law(view.index).row(seq.z)
        for t, (action, _) in enumerate(view.steps):
            best = env.best_action(p0, view.prefix(t))[1]
            assert env.q_value(p0, view.prefix(t), action) >= best - TIE


@pytest.mark.parametrize("env_name", ["bandit", "secretary", "number_guess"])
def test_under_reveal_the_handoff_return_to_bayes_does_not_depend_on_who_played_first(env_name: str) -> None:
    from testbeds_latentgym.play import fork, handoff_return

    settings = SequenceSettings(env=env_name, n_tasks=5, feedback="reveal_answer", structure="latent")
    returns = set()
    for first in ("bayes", "no_transfer", "random"):
        played = run_reference(settings, 9, first)
        returns.add(round(handoff_return(fork(settings, 9, played.act_log, 3, "bayes"), 3), 9))
    assert len(returns) == 1


def test_neglect_counts_any_action_tied_for_best_under_the_reset_belief() -> None:
    """Bandit: after two commits reveal a fixed arm, opening task 3 with a pull ignores what was learnt.
    Every arm ties for the first pull under the reset belief, so pulling green is neglect just as red is."""
    from testbeds_latentgym.envs.base import TaskView
    from testbeds_latentgym.metrics import evaluate

    env = get_env("bandit")
    commit = [({"type": "commit", "arm": "red"}, {"committed": "red", "pulls": 0})]
    done = [TaskView(k, {}, list(commit), done=True, reward=1.0) for k in range(2)]
    z = next(i for i, h in enumerate(env.hypotheses) if h.name == "fixed red")
    shares = []
    for arm in ("red", "green"):
        third = TaskView(2, {}, [({"type": "pull", "arm": arm}, {"reward": 1, "pulls": 1})])
        m = evaluate(env, [*done, third], z, [1.0, 1.0])
        step = [e for e in m.events if e.kind == "step"][-1]
        assert step.regret > 0
        shares.append(step.neglect)
    assert shares == [True, True]
