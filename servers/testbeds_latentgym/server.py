"""MCP wiring of latentgym: agent tools, evaluator resources and the evaluator-only `fork` tool.

Thin by design: every rule lives in the domain modules (sequence.py, envs/, metrics.py, play.py).
"""

from __future__ import annotations

import json
import secrets
from typing import Annotated, Any

import anyio
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field, ValidationError
from testbeds_serving import Registry, ServeOptions, SuiteServer, UserError

from . import __version__
from .envs import env_names, get_env
from .metrics import metrics_of, posterior_trace
from .models import (
    ActResult,
    Brief,
    EnvironmentInfo,
    EnvironmentList,
    EnvName,
    Feedback,
    HandoffPolicy,
    History,
    Observation,
    PromptLevel,
    SequenceSettings,
    Structure,
)
from .play import fork as fork_sequence
from .play import handoff_return, new_sequence
from .policies import POLICIES
from .sequence import Sequence

INSTRUCTIONS = (
    "latentgym: sequences of related tasks that may share a hidden pattern. Call list_environments to see the "
    "games, start_sequence to begin (it returns a handle), then observe and act with that handle until the "
    "sequence is done; task_history shows finished tasks."
)

ACTION_DOC = (
    "One action as a JSON object; which ones are legal depends on the environment. "
    "number_guess: {\"type\": \"guess\", \"number\": 1..100}. "
    "bandit: {\"type\": \"pull\", \"arm\": colour} or {\"type\": \"commit\", \"arm\": colour}. "
    "mastermind: {\"type\": \"guess\", \"code\": [4 distinct colours]}. "
    "recommender: {\"type\": \"ask\", \"trait\": \"budget\"|\"style\"|\"priority\"} or "
    "{\"type\": \"recommend\", \"item\": \"A\"..\"F\"}. "
    "secretary: {\"type\": \"accept\"} or {\"type\": \"continue\"}."
)

Handle = Annotated[str, Field(description="The handle start_sequence returned.")]


class ForkResult(BaseModel):
    at_task: int
    policy: str
    handoff_return: float = Field(description="T(X→Y): reward of tasks after at_task, played by the policy.")
    rewards: list[float]
    cumulative_reward: float


def build(options: ServeOptions | None = None) -> SuiteServer:
    """The latentgym MCP server (one per process; sequences live behind handles)."""
    server = SuiteServer("latentgym", instructions=INSTRUCTIONS, version=__version__, options=options)
    sequences: Registry[Sequence] = server.attach(Registry(kind="sequence", start_tool="start_sequence"))
    latent_read: set[tuple[str, int]] = set()  # (env, seed) whose latent an evaluator read: replays are contaminated

    @server.tool(annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True))
    async def list_environments() -> EnvironmentList:
        """List the environments: their rules, actions and rewards."""
        infos = []
        for name in env_names():
            env = get_env(name)
            infos.append(EnvironmentInfo(name=name, summary=env.summary, rules=env.rules,
                                         actions=env.actions_doc,
                                         feedback_modes=["none", "outcome", "reveal_answer", "latent_hint"]))
        return EnvironmentList(environments=infos)

    @server.tool(annotations=ToolAnnotations(destructive_hint=False, idempotent_hint=False))
    async def start_sequence(
        env: Annotated[EnvName, Field(description="Which environment to play.")],
        n_tasks: Annotated[int, Field(ge=1, le=100, description="Tasks in the sequence (1 = single-task control).")] = 10,
        seed: Annotated[int | None, Field(ge=0, le=2**63 - 1, description="Episode seed; omit to have one drawn.")] = None,
        feedback: Annotated[Feedback, Field(description="What is shown after each task.")] = "outcome",
        prompt: Annotated[PromptLevel, Field(description="How much the brief says about structure.")] = "some_info",
        structure: Annotated[Structure, Field(description="prior, latent (structured) or none (control).")] = "prior",
        handoff_from: Annotated[HandoffPolicy | None, Field(
            description="Hand-off protocol: this reference policy plays the first handoff_at tasks.")] = None,
        handoff_at: Annotated[int, Field(ge=0, description="Tasks the handoff_from policy plays first.")] = 0,
    ) -> Brief:
        """Start a sequence of related tasks and get its brief, first observation and handle.

        The brief states the rules, the legal actions and what feedback follows each task. Pass the handle to
        observe, act and task_history."""
        try:
            settings = SequenceSettings(env=env, n_tasks=n_tasks, seed=seed, feedback=feedback, prompt=prompt,
                                        structure=structure, handoff_from=handoff_from, handoff_at=handoff_at)
        except ValidationError as exc:
            raise UserError("; ".join(e["msg"] for e in exc.errors())) from None
        actual_seed = seed if seed is not None else secrets.randbits(63)
        seq = new_sequence(settings, actual_seed)
        info = {**settings.model_dump(), "seed": actual_seed,
                "contaminated": seed is not None and (env, seed) in latent_read}
        handle = sequences.create(seq, evaluator_info=info)
        return Brief(handle=handle, **seq.brief())

    @server.tool(annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True))
    async def observe(handle: Handle) -> Observation:
        """The current task as you see it. Uses no turn."""
        async with sequences.use(handle, allow_ended=True) as entry:
            return Observation(**entry.state.observation())

    @server.tool(annotations=ToolAnnotations(destructive_hint=False, idempotent_hint=False))
    async def act(
        handle: Handle,
        action: Annotated[dict[str, Any] | str, Field(description=ACTION_DOC)],
    ) -> ActResult:
        """Take one action in the current task. An illegal action gets an error saying what is allowed and
        uses no turn. When a task ends, the result carries the feedback and the next task's opening."""
        async with sequences.use(handle) as entry:
            out = entry.state.act(decode_action(action))
            if entry.state.done:
                entry.end("sequence finished")
            return ActResult(**out)

    @server.tool(annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True))
    async def task_history(handle: Handle) -> History:
        """The finished tasks of this sequence, as they were shown to you."""
        async with sequences.use(handle, allow_ended=True) as entry:
            seq = entry.state
            return History(n_tasks=seq.settings.n_tasks, tasks=seq.history())

    def decode_action(action: dict[str, Any] | str) -> Any:
        """Models often send the JSON object as a string: decode it, so the environment's own validation
        (which says what is allowed, and counts the invalid action) sees every attempt."""
        if isinstance(action, str):
            try:
                return json.loads(action)
            except json.JSONDecodeError:
                return action
        return action

    def evaluator_sequence(handle: str) -> Sequence:
        entry = sequences.get(handle)
        if not (server.evaluator or entry.state.done):
            raise UserError("evaluator data is available only when the server runs with --evaluator or after "
                            "the sequence has ended")
        return entry.state

    @server.resource("latentgym://sequence/{handle}/latent", mime_type="application/json")
    async def latent(handle: str) -> str:
        """The hidden latent z and the tasks' answers (evaluator only)."""
        seq = evaluator_sequence(handle)
        latent_read.add((seq.settings.env, seq.seed))
        return json.dumps(seq.latent())

    @server.resource("latentgym://sequence/{handle}/posterior", mime_type="application/json")
    async def posterior(handle: str) -> str:
        """The exact posterior over z after every event of the record (evaluator only)."""
        seq = evaluator_sequence(handle)
        return await anyio.to_thread.run_sync(posterior_trace, seq)

    @server.resource("latentgym://sequence/{handle}/metrics", mime_type="application/json")
    async def metrics(handle: str) -> str:
        """Reward, exploration bits and exploitation regret of the sequence so far (evaluator only)."""
        seq = evaluator_sequence(handle)
        # Evaluation can take seconds (number_guess): keep the event loop serving other clients.
        return (await anyio.to_thread.run_sync(metrics_of, seq)).model_dump_json()

    if server.evaluator:
        @server.tool(annotations=ToolAnnotations(read_only_hint=True))
        async def fork(
            handle: Handle,
            at_task: Annotated[int, Field(ge=0, description="Tasks 1..at_task are replayed from the record.")],
            policy: Annotated[str, Field(description="Reference policy: " + ", ".join(POLICIES))] = "bayes",
        ) -> ForkResult:
            """Hand-off protocol (evaluator only): replay tasks 1..at_task of this sequence byte for byte, then let
            a reference policy play the rest; returns T(X→Y), the reward after the hand-off."""
            if policy not in POLICIES:
                raise UserError(f"unknown policy {policy!r}; choose one of {', '.join(POLICIES)}")
            async with sequences.use(handle, allow_ended=True) as entry:
                seq = entry.state
                settings, seed, recorded = seq.settings, seq.seed, list(seq.act_log)
                finished = len(seq.true_rewards)
            if not settings.handoff_at <= at_task <= finished:
                raise UserError(f"at_task must be between {settings.handoff_at} (tasks played for the agent) and "
                                f"{finished} (tasks finished)")
            continued = await anyio.to_thread.run_sync(fork_sequence, settings, seed, recorded, at_task, policy)
            return ForkResult(at_task=at_task, policy=policy, handoff_return=handoff_return(continued, at_task),
                              rewards=continued.true_rewards, cumulative_reward=sum(continued.true_rewards))

    return server

