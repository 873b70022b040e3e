"""`testbeds run`: run agents against a suite's MCP server and record the transcripts.

Each episode gets its own MCP session (a fresh stdio server process by default) started with `--record`,
so the server itself records every tool call and result, keyed by the handle, exactly as it would for any
other client. The runner adds what only it knows: the run's metadata, the model's messages, and how the
episode ended. Both write to the same SQLite file (WAL), joined by the run id and the handle.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal

import anyio
from mcp import StdioServerParameters
from pydantic import ValidationError
from testbeds_agents import AgentOutcome, MessageEvent, ToolEvent, make_model, run_agent

from .events import Message
from .progress import progress
from .store import Store
from .suites import plugin

Transport = Literal["stdio", "memory"]
log = logging.getLogger("testbeds.runner")


@dataclass(frozen=True)
class EpisodeSpec:
    """One episode to run: the suite's settings, the seed, and (for scripted agents) the policy."""

    suite: str
    settings: Any
    seed: int
    policy: str | None = None


@dataclass
class EpisodeResult:
    spec: EpisodeSpec
    episode_id: str | None
    stop_reason: str
    steps: int
    error: str | None = None


class TranscriptSink:
    """Receives the agent's events; stores the messages in the server-recorded episode of the handle.

    Tool calls and results are not stored here: the server records them. Messages that precede the start
    call's result wait in a buffer until the handle, and so the episode, is known."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.episode_id: str | None = None
        self._buffer: list[Message] = []

    def __call__(self, event: MessageEvent | ToolEvent) -> None:
        if isinstance(event, ToolEvent):
            handle = event.structured.get("handle") if isinstance(event.structured, dict) else None
            if self.episode_id is None and isinstance(handle, str):
                self.episode_id = self.store.episode_for_handle(handle)
                for message in self._buffer:
                    self.store.append(self.episode_id, message)
                self._buffer.clear()
            return
        message = Message(role=event.role, content=event.content, source="agent",
                          tool_calls=[c.model_dump() for c in event.tool_calls])
        if self.episode_id is None:
            self._buffer.append(message)
        else:
            self.store.append(self.episode_id, message)


def model_label(model: str, policy: str | None) -> str:
    return f"scripted:{policy}" if model == "scripted" else model


def server_target(suite: Any, db: Path, run_id: str, label: str, transport: Transport) -> Any:
    """How to reach the suite's server for one episode: a stdio subprocess, or an in-process server."""
    if transport == "stdio":
        env = {"TESTBEDS_RUN_ID": run_id, "TESTBEDS_MODEL": label, **suite.server_env(db)}
        return StdioServerParameters(command=sys.executable, args=["-m", suite.SERVER_MODULE, "--record", str(db)],
                                     env=env)
    from importlib import import_module

    from testbeds_serving import ServeOptions

    build = import_module(f"{suite.SERVER_MODULE}.server").build
    return build(ServeOptions(record=db, record_run_id=run_id, record_model=label), **suite.build_kwargs(db))


async def run_episode(db: Path, run_id: str, model: str, spec: EpisodeSpec, *, transport: Transport = "stdio",
                      max_steps: int | None = None, max_errors: int | None = None) -> EpisodeResult:
    """Run one episode and record it; returns the episode id the server created for the handle."""
    suite = plugin(spec.suite)
    label = model_label(model, spec.policy)
    if model == "scripted":
        chat = make_model("scripted", policy=suite.scripted_policy(spec.settings, spec.policy, spec.seed))
    else:
        chat = make_model(model)
    steps = max_steps or suite.default_max_steps(spec.settings)
    with Store(db) as store:
        sink = TranscriptSink(store)
        outcome: AgentOutcome | None = None
        failure: str | None = None
        try:
            outcome = await run_agent(
                server_target(suite, db, run_id, label, transport), chat,
                brief=suite.BRIEF, start=suite.start_call(spec.settings, spec.seed), max_steps=steps,
                hide=getattr(suite, "HIDDEN_TOOLS", ()),
                task_boundary=suite.task_boundary, on_event=sink,
                max_consecutive_errors=max_errors or suite.MAX_CONSECUTIVE_ERRORS,
            )
        except Exception as exc:  # one failing episode (a provider error, a dead server) must not end the run
            log.warning("episode %s seed %s failed: %s", spec.settings, spec.seed, exc, exc_info=True)
            failure = f"{type(exc).__name__}: {exc}"
        finally:
            if sink.episode_id is not None:
                if outcome is None:
                    store.end_episode(sink.episode_id, "error", detail=failure or "the agent run raised")
                else:
                    store.update_settings(sink.episode_id, {"agent": label, "policy": spec.policy})
                    reason = {"completed": "abandoned"}.get(outcome.stop_reason, outcome.stop_reason)
                    # A finished sequence was already ended "completed" by the server; first end wins.
                    store.end_episode(sink.episode_id, reason, detail=f"agent stopped: {outcome.stop_reason}")
    if outcome is None:
        return EpisodeResult(spec, sink.episode_id, "error", 0, failure)
    return EpisodeResult(spec, sink.episode_id, outcome.stop_reason, outcome.steps)


async def run_many(db: Path, model: str, specs: Sequence[EpisodeSpec], *, transport: Transport = "stdio",
                   concurrency: int = 2, max_steps: int | None = None, max_errors: int | None = None,
                   show_progress: bool = True, config: dict[str, Any] | None = None
                   ) -> tuple[str, list[EpisodeResult]]:
    """Run `specs` under one recorded run, `concurrency` episodes at a time; results in spec order."""
    suites = {s.suite for s in specs}
    if len(suites) != 1:
        raise ValueError("one run holds one suite")
    policies = sorted({s.policy or "" for s in specs})
    with Store(db) as store:
        run_id = store.create_run(suite=suites.pop(), model=model_label(model, "+".join(policies)),
                                  seed=specs[0].seed if specs else None,
                                  config={**(config or {}), "transport": transport, "episodes": len(specs)})
    results: list[EpisodeResult | None] = [None] * len(specs)
    limiter = anyio.CapacityLimiter(concurrency)
    with progress(len(specs), "episodes", enabled=show_progress) as advance:
        async def one(i: int, spec: EpisodeSpec) -> None:
            async with limiter:
                results[i] = await run_episode(db, run_id, model, spec, transport=transport, max_steps=max_steps,
                                               max_errors=max_errors)
                advance()

        async with anyio.create_task_group() as tg:
            for i, spec in enumerate(specs):
                tg.start_soon(one, i, spec)
    return run_id, [r for r in results if r is not None]


def validation_message(exc: ValidationError) -> str:
    """A pydantic error as one line per problem, without the documentation links: `field: what is wrong`."""
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" if e["loc"] else e["msg"] for e in exc.errors())


def parse_seeds(text: str) -> list[int]:
    """'0-4' -> [0, 1, 2, 3, 4]; '1,5,9' -> [1, 5, 9]."""
    seeds: list[int] = []
    for part in text.split(","):
        if "-" in part.strip()[1:]:
            lo, hi = part.split("-", 1)
            seeds.extend(range(int(lo), int(hi) + 1))
        elif part.strip():
            seeds.append(int(part))
    return seeds


def add_parser(subparsers: Any) -> None:
    from testbeds_latentgym.models import ENV_NAMES

    p = subparsers.add_parser("run", help="run an agent on a suite over MCP and record the transcripts",
                              description="Run a LangGraph agent (scripted or an LLM) against a suite's MCP server; "
                                          "the server records every tool call into DB.")
    p.add_argument("--suite", default="latentgym", choices=["latentgym", "mixopt", "sheets", "synthtools"])
    p.add_argument("--model", default="scripted",
                   help="scripted | anthropic:<model> | openai:<model> | ollama:<model> (default scripted)")
    p.add_argument("--policy", default=None,
                   help="--model scripted: latentgym bayes (default), no_transfer or random; sheets reference "
                        "(default) or values_only; synthtools reference (default), random or infeasible")
    p.add_argument("--method", default="mfms", choices=["mfms", "gp_ei", "hyperband", "random"],
                   help="mixopt: the advisor the study uses (default mfms)")
    p.add_argument("--metric", default="loss_stackexchange", help="mixopt: the objective (default loss_stackexchange)")
    p.add_argument("--budget", type=float, default=2.0, help="mixopt: budget in full target runs (default 2)")
    p.add_argument("--backend", default="parametric", choices=["parametric", "network", "table"],
                   help="mixopt: simulator backend (network and table need --backend-path)")
    p.add_argument("--backend-path", default=None, help="mixopt: folder or file the backend reads")
    p.add_argument("--family", nargs="+", action="extend",
                   help="sheets: task families (default: all); synthtools: generated toolset fields (default: 3)")
    p.add_argument("--difficulty", nargs="+", type=int, action="extend",
                   help="sheets: chained calculations, 1-12 (default 3)")
    p.add_argument("--tier", nargs="+", action="extend", choices=["simple", "medium", "complex"],
                   help="synthtools: task tiers (default: all)")
    p.add_argument("--env", nargs="+", action="extend", choices=ENV_NAMES, help="environments (default: all)")
    p.add_argument("--seeds", default="0-2", help="seeds, e.g. '0-4' or '1,5,9' (default 0-2)")
    p.add_argument("--n-tasks", type=int, default=10)
    p.add_argument("--feedback", default="outcome", choices=["none", "outcome", "reveal_answer", "latent_hint"])
    p.add_argument("--prompt", default="some_info", choices=["no_info", "some_info", "full_info"])
    p.add_argument("--structure", default="prior", choices=["prior", "latent", "none"])
    p.add_argument("--handoff-from", default=None, choices=["bayes", "no_transfer", "oracle", "random"],
                   help="hand-off protocol: this reference policy plays the first --handoff-at tasks")
    p.add_argument("--handoff-at", type=int, default=0, help="tasks the --handoff-from policy plays first")
    p.add_argument("--db", default="runs.db", help="SQLite transcript store (default runs.db)")
    p.add_argument("--transport", default="stdio", choices=["stdio", "memory"])
    p.add_argument("--concurrency", type=int, default=2)
    p.add_argument("--max-steps", type=int, default=None, help="model turns per episode (default: from the suite)")
    p.add_argument("--max-errors", type=int, default=None,
                   help="consecutive failed tool calls that end an episode (default: from the suite)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_run)


def latentgym_specs(envs: Sequence[str], seeds: Sequence[int], policies: Sequence[str | None],
                    **settings: Any) -> list[EpisodeSpec]:
    from testbeds_latentgym.models import SequenceSettings

    return [EpisodeSpec("latentgym", SequenceSettings(env=env, **settings), seed, policy)
            for env in envs for policy in policies for seed in seeds]


def _run(args: argparse.Namespace) -> int:
    from testbeds_agents import MissingExtraError, ModelSpecError
    from testbeds_latentgym.models import ENV_NAMES

    from .cli import CLIError

    if args.suite == "mixopt":
        return _run_mixopt(args)
    if args.suite in ("sheets", "synthtools"):
        return _run_task_suite(args)
    args.policy = args.policy or "bayes"
    if args.model != "scripted":
        try:  # fail before any run is recorded or server started: a bad spec, a missing extra or API key
            make_model(args.model)
        except (ModelSpecError, MissingExtraError) as exc:
            raise CLIError(str(exc)) from None
    elif args.policy not in ("bayes", "no_transfer", "random"):
        raise CLIError(f"--policy must be bayes, no_transfer or random for --model scripted, not {args.policy!r}")
    policy = args.policy if args.model == "scripted" else None
    try:
        specs = latentgym_specs(args.env or ENV_NAMES, parse_seeds(args.seeds), [policy], n_tasks=args.n_tasks,
                                feedback=args.feedback, prompt=args.prompt, structure=args.structure,
                                handoff_from=args.handoff_from, handoff_at=args.handoff_at)
    except ValidationError as exc:
        raise CLIError(validation_message(exc)) from None
    except ValueError as exc:
        raise CLIError(f"--seeds {args.seeds!r}: {exc}; use e.g. '0-4' or '1,5,9'") from None
    if not specs:
        raise CLIError("no episodes to run: give at least one seed")
    return _run_specs(args, specs)


def _run_mixopt(args: argparse.Namespace) -> int:
    from .cli import CLIError
    from .suites.mixopt import StudySettings

    if args.model != "scripted":
        raise CLIError("mixopt runs the scripted advisor-loop agent; LLM agents connect to testbeds-mixopt directly")
    try:
        settings = StudySettings(metric=args.metric, budget=args.budget, method=args.method, backend=args.backend,
                                 backend_path=args.backend_path)
        seeds = parse_seeds(args.seeds)
    except (ValidationError, ValueError) as exc:
        raise CLIError(str(exc)) from None
    return _run_specs(args, [EpisodeSpec("mixopt", settings, seed, "advisor") for seed in seeds])


def _run_task_suite(args: argparse.Namespace) -> int:
    """sheets and synthtools: one episode per task setting and seed; scripted policies or an LLM."""
    from .cli import CLIError

    suite = plugin(args.suite)
    if args.model == "scripted":
        policy = args.policy or suite.AGENT_POLICIES[0]
        if policy not in suite.AGENT_POLICIES:
            raise CLIError(f"--policy must be one of {', '.join(suite.AGENT_POLICIES)} for {args.suite}, "
                           f"not {policy!r}")
    else:
        from testbeds_agents import MissingExtraError, ModelSpecError

        try:
            make_model(args.model)
        except (ModelSpecError, MissingExtraError) as exc:
            raise CLIError(str(exc)) from None
        policy = None
    try:
        settings = suite.settings_from_args(args)
        seeds = parse_seeds(args.seeds)
    except ValidationError as exc:
        raise CLIError(validation_message(exc)) from None
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    specs = [EpisodeSpec(args.suite, s, seed, policy) for s in settings for seed in seeds]
    if not specs:
        raise CLIError("no episodes to run: give at least one seed")
    return _run_specs(args, specs)


def _run_specs(args: argparse.Namespace, specs: list[EpisodeSpec]) -> int:
    db = Path(args.db)
    run_id, results = anyio.run(partial(run_many, db, args.model, specs, transport=args.transport,
                                        concurrency=args.concurrency, max_steps=args.max_steps,
                                        max_errors=args.max_errors, show_progress=not args.no_progress))
    reasons: dict[str, int] = {}
    for r in results:
        reasons[r.stop_reason] = reasons.get(r.stop_reason, 0) + 1
    counts = ", ".join(f"{k} {v}" for k, v in reasons.items())
    print(f"run {run_id}: {len(results)} episodes recorded in {db} ({counts})")
    for r in results:
        if r.error:
            print(f"  episode {r.spec.settings} seed {r.spec.seed} failed: {r.error}", file=sys.stderr)
    print(f"next: testbeds score {db} && testbeds report {db}")
    return 1 if any(r.error for r in results) else 0
