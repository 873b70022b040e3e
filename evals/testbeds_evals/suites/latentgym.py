"""latentgym glue: the harness's start call, scripted reference agents, and the episode scorer.

Scoring recomputes everything from the recording: the settings (seed included) that the server recorded
for the handle, and the agent's `act` calls with their results. The sequence is replayed from the seed
and every replayed result must equal the recorded one byte for byte, so a score always describes what the
agent really saw. The references (bayes, no_transfer, oracle) replay on the same seed, hence the same
answers θ_k, and the hand-off protocol forks the recorded sequence at K ∈ {2, 4, 6, 8}.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from testbeds_agents import call_tools, tool_call
from testbeds_latentgym.envs import get_env
from testbeds_latentgym.metrics import evaluate
from testbeds_latentgym.models import SequenceSettings
from testbeds_latentgym.play import fork, handoff_return, new_sequence, run_reference
from testbeds_latentgym.policies import make_policy
from testbeds_latentgym.sequence import VisibleRecord

from . import fresh_results

SUITE = "latentgym"
SCORER = "latentgym"
SERVER_MODULE = "testbeds_latentgym"
AGENT_POLICIES = ("bayes", "no_transfer", "random")  # oracle needs z: a reference for scoring only
HANDOFF_AT = (2, 4, 6, 8)
SETTING_KEYS = ("env", "n_tasks", "feedback", "prompt", "structure", "handoff_from", "handoff_at")

BRIEF = ("You are playing a latentgym sequence: several related tasks in a row. Use `observe` to see the "
         "current task and `act` to take one action at a time; `task_history` shows finished tasks. Keep going "
         "until the sequence is done, then reply with a one-line summary. Learn from earlier tasks.")


def start_call(settings: SequenceSettings, seed: int) -> tuple[str, dict[str, Any]]:
    """The harness makes the start call, so the agent never sees the seed or the structure setting."""
    return "start_sequence", {**settings.model_dump(exclude={"seed"}), "seed": seed}


MAX_CONSECUTIVE_ERRORS = 10  # invalid actions are counted, not fatal: allow an agent several tries


def default_max_steps(settings: SequenceSettings) -> int:
    """Model turns per episode: room for an observe and a retry beside every legal action, plus reading."""
    return 3 * settings.n_tasks * get_env(settings.env).max_steps + 20


def task_boundary(message: ToolMessage) -> str | None:
    """A one-line note per finished task, for the agent's cross-task memory."""
    out = message.artifact
    if message.status == "error" or not isinstance(out, dict) or not out.get("task_done"):
        return None
    steps = f"last action {out['action']} -> {out['result']}"
    return f"task {out['task']}: {steps}; feedback {out.get('feedback')}"


def server_env(db: Path) -> dict[str, str]:
    """Extra environment for the stdio server (none: latentgym keeps no state on disk)."""
    return {}


def build_kwargs(db: Path) -> dict[str, Any]:
    return {}


def scripted_policy(settings: SequenceSettings, policy_name: str, seed: int
                    ) -> Callable[[Sequence[BaseMessage]], AIMessage]:
    """A reference policy as a chat-model policy: it reads the task history and observes once, then acts from
    what it was shown (the history matters under the hand-off protocol, where earlier tasks were played for it).

    It rebuilds the visible record from the tool results it receives (never from server state), so it sees
    exactly what an LLM agent would. Tool results are consumed once each, by call id, because the graph trims
    finished tasks from the history."""
    if policy_name not in AGENT_POLICIES:
        raise ValueError(f"scripted latentgym agents play one of {', '.join(AGENT_POLICIES)}, not {policy_name!r}")
    env = get_env(settings.env)
    policy = make_policy(policy_name, env, seed=seed)
    record: VisibleRecord | None = None
    history: list[dict[str, Any]] | None = None
    consumed: set[str] = set()

    def decide(messages: Sequence[BaseMessage]) -> AIMessage:
        nonlocal record, history
        for name, result in fresh_results(messages, consumed):
            if name == "task_history" and history is None:
                history = result["tasks"]
            elif name == "observe" and record is None and history is not None:
                record = VisibleRecord(env, result, history)
            elif name == "act" and record is not None:
                record.apply(result)
        if history is None:
            return call_tools(tool_call("task_history"))
        if record is None:
            return call_tools(tool_call("observe"))
        if record.done:
            return AIMessage(content=f"Sequence finished ({policy_name} policy).")
        return call_tools(tool_call("act", {"action": policy.act(record.views)}))

    return decide


def recorded_actions(events: Sequence[Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """The successful `act` calls of a recording, as (action, structured result), in order."""
    calls = {e.call_id: e for e in events if e.type == "tool_call" and e.name == "act"}
    pairs = []
    for e in events:
        if e.type == "tool_result" and e.name == "act" and not e.is_error and e.call_id in calls:
            pairs.append((calls[e.call_id].arguments.get("action"), e.structured))
    # Parallel calls may be recorded out of order; the server numbered them in the order it applied them.
    return sorted(pairs, key=lambda pair: pair[1].get("number", 0))


def settings_of(episode: dict[str, Any]) -> tuple[SequenceSettings, int]:
    stored = episode.get("settings") or {}
    if stored.get("seed") is None or stored.get("env") is None:
        raise ValueError("the episode's settings lack the env or the seed; was it recorded by testbeds-latentgym?")
    kwargs = {k: stored[k] for k in SETTING_KEYS if k in stored}
    return SequenceSettings(**kwargs), int(stored["seed"])


def score_episode(episode: dict[str, Any], events: Sequence[Any]) -> dict[str, Any]:
    """Metrics of one recorded latentgym episode, recomputed from the recording. Under the hand-off protocol the
    aggregates cover the agent's own tasks only (after `handoff_at`)."""
    settings, seed = settings_of(episode)
    pairs = recorded_actions(events)
    seq = new_sequence(settings, seed)
    for action, result in pairs:
        seq.replay_action(action, result)
    invalid = sum(1 for e in events if e.type == "tool_result" and e.name == "act" and e.is_error)
    m = evaluate(seq.env, seq.views, seq.z, seq.true_rewards, invalid_actions=invalid, n_tasks=settings.n_tasks,
                 first_task=settings.handoff_at, thetas=seq.thetas)
    scores: dict[str, Any] = m.model_dump(exclude={"events", "tasks"})
    scores["task_agent_bits"] = [t.agent_bits for t in m.tasks]
    scores["task_regret"] = [t.regret for t in m.tasks]
    scores["completed"] = seq.done
    # The null control (z = none) must be reported apart from structured sequences: group by this.
    scores["null_control"] = m.latent_family == "none"
    scores["contaminated"] = bool((episode.get("settings") or {}).get("contaminated", False))
    refs = {p: run_reference(settings, seed, p) for p in ("bayes", "no_transfer", "oracle")}
    for name, ref in refs.items():
        scores[f"reference_{name}"] = sum(ref.true_rewards)
    if settings.handoff_from is not None:
        # T(C→agent) against T(C→reference): the exploitation half of the hand-off protocol.
        k = settings.handoff_at
        scores["handoff_return"] = handoff_return(seq, k)
        for name, ref in refs.items():
            scores[f"reference_{name}_handoff_return"] = handoff_return(ref, k)
    elif seq.done:
        for k in HANDOFF_AT:
            if k < settings.n_tasks:
                scores[f"handoff_agent_to_bayes_{k}"] = handoff_return(fork(settings, seed, pairs, k, "bayes"), k)
                nt_pairs = refs["no_transfer"].act_log
                scores[f"handoff_no_transfer_to_bayes_{k}"] = handoff_return(
                    fork(settings, seed, nt_pairs, k, "bayes"), k)
    return scores
