"""MCP wiring of synthtools: list and load toolsets, serve their generated tools, tasks, evaluator resources.

Thin by design: where toolsets come from is `catalog.py`, sessions and tool names are `episodes.py`, the
simulation is `engine.py` (with `gateway.py` and `llm_sim.py`), grading is `grading.py`, the audit `audit.py`.

**Generated tools reach the engine's gateway unvalidated.** The SDK validates a tool's arguments against a
pydantic model built from the function signature before the tool runs, in its own words and order (design
note §9 pitfall). A hand-built `Tool` with a custom `FuncMetadata` could advertise the compiled schema while
accepting anything, but registering one needs the private `_tool_manager`. So `SynthtoolsServer` overrides
the public `list_tools` (adds the compiled `inputSchema`, `outputSchema` and annotations of every exposed tool)
and `call_tool` (routes an exposed tool's raw arguments straight to the engine); the server's own tools go
through the SDK as usual.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import random
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.exceptions import MCPError
from mcp.types import (
    CallToolResult,
    ClientCapabilities,
    InputRequiredResult,
    SamplingCapability,
    SamplingMessage,
    TextContent,
    ToolAnnotations,
)
from mcp.types import Tool as MCPTool
from mcp.types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import BaseModel, Field
from testbeds_serving import InvalidArgument, Registry, ServeOptions, SuiteServer, UserError

from . import __version__
from .catalog import Catalog, Source, ToolsetPage
from .engine import CallResult
from .episodes import Episode, Exposure, error_text, new_episode
from .grading import Submission
from .llm_generation import LLMCallable, LLMToolsetGenerator, dedupe_tools, dedupe_toolsets
from .llm_sim import LLM, CacheMode, LLMSimulator, SimCache, SimulationError
from .names import slug
from .spec import Toolset
from .tasks import Tier
from .toolset_audit import audit_report

log = logging.getLogger("testbeds.synthtools")

OWN_TOOLS = frozenset({"list_toolsets", "load_toolset", "generate_toolset", "start_task", "submit_task", "call"})
INSTRUCTIONS = (
    "synthtools: simulated tool ecosystems. list_toolsets shows what can be loaded; load_toolset gives a handle "
    "to a fresh simulated world and adds the toolset's tools to this server's tool list (each takes that handle "
    "as its first argument). start_task begins a graded task (instruction plus the tools you may use); do it with "
    "those tools, then submit_task. If your client does not refresh its tool list, use call(handle, tool, "
    "arguments) instead. generate_toolset has an LLM (yours through sampling, or the server's model) write a new "
    "toolset for a field, validates it and loads it like load_toolset."
)

GENERATION_MAX_TOKENS = 16384
"""Sampling budget of one generate_toolset answer: a toolset spec of ~12 tools is several thousand tokens,
far beyond one simulated value (`SynthtoolsSettings.sampling_max_tokens`)."""

SimulatorKind = Literal["deterministic", "llm"]
Handle = Annotated[str, Field(description="The handle load_toolset or start_task returned.")]


@dataclass(frozen=True)
class SynthtoolsSettings:
    """Suite flags besides the shared ones (command line or TESTBEDS_SYNTHTOOLS_* environment variables)."""

    corpus: Path | None = None
    state_dir: Path | None = None
    simulator: SimulatorKind = "deterministic"
    sim_cache: Path | None = None
    sim_cache_mode: CacheMode = "off"
    sampling_max_tokens: int = 1024
    sim_model: str | None = None

    @classmethod
    def from_env(cls) -> SynthtoolsSettings:
        """Settings from TESTBEDS_SYNTHTOOLS_{CORPUS,STATE_DIR,SIMULATOR,SIM_CACHE,SIM_CACHE_MODE,SIM_MODEL}."""
        env = os.environ.get

        def path(name: str) -> Path | None:
            value = env(name)
            return Path(value).expanduser() if value else None

        sim = env("TESTBEDS_SYNTHTOOLS_SIMULATOR") or "deterministic"
        cache_default = "record" if env("TESTBEDS_SYNTHTOOLS_SIM_CACHE") else "off"
        mode = env("TESTBEDS_SYNTHTOOLS_SIM_CACHE_MODE") or cache_default
        if sim not in ("deterministic", "llm"):
            raise ValueError(f"TESTBEDS_SYNTHTOOLS_SIMULATOR must be deterministic or llm, not {sim!r}")
        if mode not in ("record", "replay", "off"):
            raise ValueError(f"TESTBEDS_SYNTHTOOLS_SIM_CACHE_MODE must be record, replay or off, not {mode!r}")
        return cls(corpus=path("TESTBEDS_SYNTHTOOLS_CORPUS"), state_dir=path("TESTBEDS_SYNTHTOOLS_STATE_DIR"),
                   simulator=sim, sim_cache=path("TESTBEDS_SYNTHTOOLS_SIM_CACHE"),  # type: ignore[arg-type]
                   sim_cache_mode=mode,  # type: ignore[arg-type]
                   sim_model=env("TESTBEDS_SYNTHTOOLS_SIM_MODEL") or None)


# ---------------------------------------------------------------------------------------------- results


class ExposedToolInfo(BaseModel):
    name: str = Field(description="The MCP tool name to call (pass the handle as `handle`).")
    spec_name: str = Field(description="The tool's name in its toolset (what call(..., tool=...) also accepts).")
    title: str


class Loaded(BaseModel):
    handle: str = Field(description="Pass this as `handle` to the toolset's tools (or to call).")
    toolset_id: str
    title: str
    field: str
    description: str
    tools: list[ExposedToolInfo]


class TaskStarted(BaseModel):
    handle: str = Field(description="Pass this as `handle` to the task's tools, then to submit_task.")
    toolset_id: str
    tier: Tier
    instruction: str
    tools_allowed: list[str] = Field(description="MCP names of the tools this task lets you use.")
    how_to_submit: str = ("When done, call submit_task(handle, answer={...}) with the values the instruction "
                          "asks you to report, or submit_task(handle, infeasible=true, reason=...) if the task "
                          "cannot be done with these tools.")


class Generated(Loaded):
    ref: str = Field(description="The toolset's ref (llm:<sha8>): load_toolset or start_task take it again.")
    sub_field: str
    task: str = Field(description="The task the toolset was written for.")
    repairs: list[str] = Field(description="Mechanical fixes applied to the model's answer before it validated.")
    dropped_tools: list[str] = Field(default_factory=list,
                                     description="Tools dropped as near-copies of another tool of the toolset.")
    duplicate_of: str | None = Field(None, description="Set when the answer nearly repeated an LLM toolset "
                                                       "already on this server: that toolset is served instead.")


class Submitted(BaseModel):
    handle: str
    passed: bool
    reasons: list[str] = Field(description="Why it failed (empty when passed).")


# ---------------------------------------------------------------------------------------------- server


# Grade fields for the evaluator only (grading's `details` may name expected values); `reasons` is agent-safe.
_EVALUATOR_ONLY = {"details", "task_id"}  # a twin's id names it infeasible

_CALL_CTX: contextvars.ContextVar[Context[Any, Any] | None] = contextvars.ContextVar("synthtools_ctx", default=None)
GeneratedCall = Callable[[str, dict[str, Any], Context[Any, Any] | None], Awaitable[CallToolResult]]


class SynthtoolsServer(SuiteServer):
    """A `SuiteServer` that also serves the tools of loaded toolsets (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.advertise_tool_list_changes()
        self.exposure = Exposure(OWN_TOOLS)
        self.generated_call: GeneratedCall | None = None

    async def list_tools(self) -> list[MCPTool]:
        own = await super().list_tools()
        generated = [
            MCPTool(name=t.name, title=t.compiled.title, description=t.compiled.description,
                    input_schema=t.compiled.input_schema, output_schema=t.compiled.output_schema,
                    annotations=ToolAnnotations.model_validate(t.compiled.annotations))
            for t in list(self.exposure.tools.values())
        ]
        return own + generated

    async def call_tool(self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
                        ) -> CallToolResult | InputRequiredResult:
        if name in self.exposure.tools and self.generated_call is not None:
            try:
                return await self.generated_call(name, arguments, context)
            except (ToolError, MCPError):
                raise
            except UserError as exc:
                raise ToolError(str(exc)) from exc
            except Exception as exc:
                ref = secrets.token_hex(4)
                log.error("internal error in tool %r (ref %s)", name, ref, exc_info=exc)
                raise ToolError(f"internal error in tool {name!r} (ref {ref}): a bug in the synthtools server, not "
                                "in your call. The call had no effect; you may retry or continue.") from exc
        return await super().call_tool(name, arguments, context)


async def _sample_text(ctx: Context[Any, Any], system: str, text: str, max_tokens: int) -> str:
    """One push-form sampling request to the client of `ctx`'s call; its reply's text. Raises MCPError."""
    message = SamplingMessage(role="user", content=TextContent(type="text", text=text))
    session = ctx.session
    # The push form is deprecated for 2026-07-28 connections (where it fails with an MCPError, handled by the
    # callers); it is the only form a generic tool call can use, so call the implementation under the
    # deprecation wrapper rather than changing process-wide warning filters from inside a request.
    create = getattr(type(session).create_message, "__wrapped__", type(session).create_message)
    reply = await create(session, messages=[message], max_tokens=max_tokens, system_prompt=system,
                         temperature=0.0, related_request_id=ctx.request_id)
    content = reply.content
    return content.text if isinstance(content, TextContent) else ""


def _sampling_llm(max_tokens: int) -> Callable[[str, str, dict[str, Any]], Awaitable[str]]:
    """The LLM of LLM mode: MCP sampling to the client making the current call (push form; 2025-11-25)."""

    async def llm(system: str, prompt: str, schema: dict[str, Any]) -> str:
        ctx = _CALL_CTX.get()
        if ctx is None:
            raise SimulationError("LLM simulation needs an MCP request to sample through")
        text = f"{prompt}\nAnswer with JSON matching this schema: {json.dumps(schema, sort_keys=True)}"
        try:
            return await _sample_text(ctx, system, text, max_tokens)
        except MCPError as exc:
            raise SimulationError(
                f"MCP sampling failed ({exc.error.message}); LLM simulation needs a client that answers sampling "
                "requests on a 2025-11-25 connection, or a recorded cache (--sim-cache-mode replay)") from None

    return llm


def _message_text(content: Any) -> str:
    """The text of a chat model's reply content (a string, or a list of content blocks)."""
    if isinstance(content, str):
        return content
    parts: list[str] = []
    for block in content if isinstance(content, list) else []:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict) and block.get("type") == "text" and isinstance(block.get("text"), str):
            parts.append(block["text"])
    return "".join(parts)


def chat_model_llm(model: Any) -> LLM:
    """The LLM of LLM mode through a LangChain chat model (a configured provider): the system prompt and the
    prompt (with the answer's JSON schema) go to `model.ainvoke`; its reply's text is the answer."""
    from langchain_core.messages import HumanMessage, SystemMessage

    async def llm(system: str, prompt: str, schema: dict[str, Any]) -> str:
        text = f"{prompt}\nAnswer with JSON matching this schema: {json.dumps(schema, sort_keys=True)}"
        try:
            reply = await model.ainvoke([SystemMessage(content=system), HumanMessage(content=text)])
        except Exception as exc:  # a provider's own errors (network, auth, quota) vary by package
            log.warning("simulation model failed: %s: %s", type(exc).__name__, exc)
            raise SimulationError(f"the simulation model failed ({type(exc).__name__}); the call had no "
                                  "effect, retry later") from None
        return _message_text(getattr(reply, "content", ""))

    return llm


def _can_sample(ctx: Context[Any, Any] | None) -> bool:
    """Whether the push form of sampling can reach this call's client: it declared sampling and speaks a
    handshake-era protocol (2026-07-28 connections have no back-channel for it)."""
    if ctx is None:
        return False
    session = ctx.session
    if session.protocol_version in MODERN_PROTOCOL_VERSIONS:
        return False
    return session.check_client_capability(ClientCapabilities(sampling=SamplingCapability()))


def _routed_llm(max_tokens: int, provider: LLM | None) -> LLM:
    """MCP sampling when the calling client can answer it, else `provider` (when configured); with neither,
    sampling is tried anyway so the agent gets its explanation."""
    sample = _sampling_llm(max_tokens)

    async def llm(system: str, prompt: str, schema: dict[str, Any]) -> str:
        if provider is not None and not _can_sample(_CALL_CTX.get()):
            return await provider(system, prompt, schema)
        return await sample(system, prompt, schema)

    return llm


def generation_llm(ctx: Context[Any, Any] | None, chat_model: Any) -> LLMCallable | None:
    """The model generate_toolset writes with: the calling client through MCP sampling when it can be sampled,
    else `chat_model` (a LangChain chat model, the configured provider), else None. Model failures become tool
    errors: nothing is generated, nothing is loaded."""
    if ctx is not None and _can_sample(ctx):
        async def sampled(system: str, prompt: str) -> str:
            try:
                return await _sample_text(ctx, system, prompt, GENERATION_MAX_TOKENS)
            except MCPError as exc:
                raise ToolError(f"MCP sampling failed ({exc.error.message}); no toolset was generated") from None

        return sampled
    if chat_model is None:
        return None
    from langchain_core.messages import HumanMessage, SystemMessage

    async def provider(system: str, prompt: str) -> str:
        try:
            reply = await chat_model.ainvoke([SystemMessage(content=system), HumanMessage(content=prompt)])
        except Exception as exc:  # a provider's own errors (network, auth, quota) vary by package
            log.warning("generation model failed: %s: %s", type(exc).__name__, exc)
            raise ToolError(f"the server's generation model failed ({type(exc).__name__}); no toolset was "
                            "generated, retry later") from None
        return _message_text(getattr(reply, "content", ""))

    return provider


def _sim_chat_model(spec: str) -> Any:
    """The chat model `--sim-model provider:model` names (testbeds_agents.make_model), checked at start-up."""
    from testbeds_agents.models import make_model

    return make_model(spec, temperature=0)


def build(options: ServeOptions | None = None, settings: SynthtoolsSettings | None = None, *,
          sim_chat_model: Any = None) -> SynthtoolsServer:
    """The synthtools MCP server (one per process; worlds live behind handles).

    `sim_chat_model`: a LangChain chat model for LLM mode and for generate_toolset when the client cannot be
    sampled (instead of the one `settings.sim_model` names; e.g. a scripted model in tests).
    """
    settings = settings or SynthtoolsSettings.from_env()
    server = SynthtoolsServer("synthtools", instructions=INSTRUCTIONS, version=__version__, options=options)
    catalog = Catalog(settings.corpus, reserved=OWN_TOOLS, state_dir=settings.state_dir)
    episodes: Registry[Episode] = server.attach(
        Registry(kind="session", start_tool="load_toolset or start_task", idle_seconds=3600.0, max_entries=500))
    episodes.add_listener(lambda entry, reason: entry.state.close())
    loaded: dict[str, Toolset] = {}  # toolset id -> toolset, for the audit resource

    simulator: LLMSimulator | None = None
    # generate_toolset's fallback model: built on first use when only `settings.sim_model` names it, so a
    # server that never generates needs no provider package or key.
    generation_chat: list[Any] = [sim_chat_model] if sim_chat_model is not None else []
    if settings.simulator == "llm":
        cache = SimCache(settings.sim_cache) if settings.sim_cache is not None else None
        mode: CacheMode = settings.sim_cache_mode if cache is not None else "off"
        chat = sim_chat_model
        if chat is None and settings.sim_model and mode != "replay":
            chat = _sim_chat_model(settings.sim_model)
        if chat is not None and not generation_chat:
            generation_chat.append(chat)
        provider = chat_model_llm(chat) if chat is not None else None
        llm = None if mode == "replay" else _routed_llm(settings.sampling_max_tokens, provider)
        # The cache key names the configuration, not which route answered: sampling or the fallback model
        # are one source per server configuration.
        fallback = settings.sim_model or ("custom" if sim_chat_model is not None else None)
        simulator = LLMSimulator(llm, provider="mcp-sampling" if fallback is None else f"mcp-sampling|{fallback}",
                                 model="client", cache=cache, mode=mode)
    if settings.state_dir is not None:
        settings.state_dir.mkdir(parents=True, exist_ok=True)

    def db_path() -> Path | None:
        return None if settings.state_dir is None else settings.state_dir / f"{secrets.token_hex(12)}.db"

    def ref_of(toolset: str | None, spec_path: str | None, field: str | None, seed: int,
               n_tools: int | None) -> str:
        given = [x for x in (toolset, spec_path) if x]
        if len(given) > 1:
            raise InvalidArgument("pass either toolset or spec_path, not both")
        if given:
            if field is not None:
                raise InvalidArgument("field applies to generated toolsets; leave it out when passing toolset or "
                                      "spec_path")
            return given[0]
        return catalog.generated_ref(field, seed, n_tools)

    async def expose(toolset: Toolset, ctx: Context[Any, Any]) -> dict[str, str]:
        mapping, changed = server.exposure.expose(toolset, toolset.spec_hash())
        loaded[toolset.id] = toolset
        if changed:
            await ctx.session.send_tool_list_changed()  # 2025-11-25: the client's message handler
            await ctx.notify_tools_changed()  # 2026-07-28: clients listening for list changes
        return mapping

    async def open_sandbox(ref: str, ts: Toolset, ctx: Context[Any, Any]) -> Loaded:
        """A fresh sandbox world of `ts` behind a new handle, its tools exposed (load_toolset's result)."""
        mapping = await expose(ts, ctx)
        ep = new_episode(ts, seed=ts.seed, path=db_path(), simulator=simulator)
        handle = episodes.create(ep, evaluator_info={"toolset_ref": ref, "toolset_id": ts.id, "kind": "sandbox",
                                                     "session_seed": ep.session.seed})
        return Loaded(handle=handle, toolset_id=ts.id, title=ts.title, field=ts.field, description=ts.description,
                      tools=[ExposedToolInfo(name=mapping[t.name], spec_name=t.name, title=t.title)
                             for t in ts.tools])

    async def run_call(ep: Episode, spec_name: Any, arguments: Any, ctx: Context[Any, Any] | None) -> CallToolResult:
        if simulator is None:
            # In a worker thread: a large call must not stall other sessions; the handle's lock (held by the
            # caller) keeps this session's calls in order, and the thread is waited for even on cancellation.
            result = await anyio.to_thread.run_sync(ep.session.call, spec_name, arguments)
        else:
            token = _CALL_CTX.set(ctx)
            try:
                result = await ep.session.acall(spec_name, arguments)
            except SimulationError as exc:
                raise ToolError(f"Error 503 ({exc.code}): {exc}") from None
            finally:
                _CALL_CTX.reset(token)
        return _to_mcp(result)

    async def generated(name: str, arguments: dict[str, Any], ctx: Context[Any, Any] | None) -> CallToolResult:
        args = dict(arguments)
        handle = args.pop("handle", None)
        if not isinstance(handle, str):
            raise ToolError("Missing required parameter: handle (string): the handle load_toolset or start_task "
                            "returned; every simulated tool takes it")
        async with episodes.use(handle) as entry:
            ep = entry.state
            spec_name = server.exposure.route(name, ep.key)
            if spec_name is None:
                mine = server.exposure.mapping(ep.key)
                served = set(ep.session.gateway.tool_names())
                names = [mine[s] for s in mine if s in served]
                raise ToolError(f"Unknown tool for this handle: {name} is not a tool of toolset {ep.toolset.id}. "
                                f"Available tools: {', '.join(names)}.")
            return await run_call(ep, spec_name, args, ctx)

    server.generated_call = generated

    # ------------------------------------------------------------------------------------------ agent tools

    @server.tool(annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False))
    async def list_toolsets(
        source: Annotated[Source, Field(description="generated (always available, offline), corpus (the "
                                                    "SynthTools corpus, when the server has one) or llm (toolsets "
                                                    "written with generate_toolset on this server).")] = "generated",
        field: Annotated[str | None, Field(description="Only this domain field, e.g. 'healthcare'.")] = None,
        limit: Annotated[int, Field(ge=1, le=500, description="Page size.")] = 50,
        offset: Annotated[int, Field(ge=0, description="Entries to skip.")] = 0,
    ) -> ToolsetPage:
        """List toolsets you can load: generated fields (reference gen:<field>:<seed>), corpus toolsets
        (reference <field>.<N>) or toolsets generate_toolset wrote (reference llm:<sha8>). Pass an entry's `ref`
        to load_toolset or start_task."""
        return await anyio.to_thread.run_sync(catalog.list_toolsets, source, field, limit, offset)

    @server.tool(annotations=ToolAnnotations(destructive_hint=False, idempotent_hint=False, open_world_hint=False))
    async def load_toolset(
        ctx: Context[Any, Any],
        toolset: Annotated[str | None, Field(description="A ref from list_toolsets: gen:<field>:<seed>, "
                                                        "<field>.<N> or llm:<sha8>.")] = None,
        spec_path: Annotated[str | None, Field(description="Path of a toolset spec JSON file on the server's "
                                                          "machine.")] = None,
        field: Annotated[str | None, Field(description="Generate a toolset of this field (with seed) instead of "
                                                      "naming one.")] = None,
        seed: Annotated[int, Field(ge=0, le=2**31 - 1, description="Generator seed (with field; also seeds the "
                                                                   "simulation).")] = 0,
        n_tools: Annotated[int | None, Field(ge=1, le=200, description="Cap the generated toolset's size.")] = None,
    ) -> Loaded:
        """Load a toolset into a fresh simulated world and get its handle. The toolset's tools are added to this
        server's tool list (you get a tools/list_changed notification); each takes `handle` as its first
        argument. Loading the same toolset again gives a new, independent world."""
        ref = ref_of(toolset, spec_path, field, seed, n_tools)
        ts = await anyio.to_thread.run_sync(catalog.load, ref)
        return await open_sandbox(ref, ts, ctx)

    @server.tool(annotations=ToolAnnotations(destructive_hint=False, idempotent_hint=False, open_world_hint=True))
    async def generate_toolset(
        ctx: Context[Any, Any],
        field: Annotated[str, Field(min_length=1, max_length=100,
                                    description="The domain field to write a toolset for, e.g. 'healthcare' or "
                                                "'veterinary clinics'.")],
        sub_field: Annotated[str | None, Field(max_length=200, description="The sub-field (default: the model "
                                                                          "proposes some and the seed picks one).")]
        = None,
        task: Annotated[str | None, Field(max_length=300, description="The task the toolset serves (default: the "
                                                                     "model proposes some and the seed picks one).")]
        = None,
        seed: Annotated[int, Field(ge=0, le=2**31 - 1, description="Picks the sub-field and task among the "
                                                                   "model's proposals; also seeds the "
                                                                   "simulation.")] = 0,
    ) -> Generated:
        """Have an LLM write a new toolset: field -> sub-field -> task -> tool specs (your model through MCP
        sampling if your client offers it, else the server's configured model). The answer is repaired where
        the fix is mechanical, validated against the spec schema and deduplicated; an invalid one is rejected
        with its reasons, never served. A valid toolset is kept under `ref` (llm:<sha8>) and loaded like
        load_toolset: you get a handle and its tools join the tool list."""
        chat = generation_chat[0] if generation_chat else None
        if chat is None and settings.sim_model:
            try:
                chat = _sim_chat_model(settings.sim_model)
            except (ValueError, ImportError) as exc:
                raise ToolError(f"the configured model {settings.sim_model!r} is unusable: {exc}") from None
            generation_chat.append(chat)
        llm = generation_llm(ctx, chat)
        if llm is None:
            raise ToolError("generate_toolset needs a model and none is available: connect with a client that "
                            "answers MCP sampling on a 2025-11-25 connection, or start the server with --sim-model "
                            "PROVIDER:MODEL. Generated and corpus toolsets (list_toolsets) need no model.")
        field_name, sub, chosen = field.strip(), (sub_field or "").strip(), (task or "").strip()
        if not field_name:
            raise InvalidArgument("field must not be blank")
        gen = LLMToolsetGenerator(llm)
        picker = random.Random(f"generate_toolset:{field_name}:{seed}")
        try:
            if not sub:
                sub = picker.choice(await gen.sub_fields(field_name))
            if not chosen:
                chosen = picker.choice(await gen.tasks(field_name, sub))
        except ValueError as exc:
            raise ToolError(f"the model's answer was rejected (stage parse): {exc}. Nothing was loaded.") from None
        draft_id = f"llm.{slug(field_name, fallback='field')}.draft"
        ts, rejection, notes = await gen.toolset(field_name, sub, chosen, toolset_id=draft_id, seed=seed)
        if rejection is not None or ts is None:
            reasons = rejection.reasons if rejection is not None else ["no toolset"]
            shown = "; ".join(reasons[:8]) + (f" (+{len(reasons) - 8} more)" if len(reasons) > 8 else "")
            stage = rejection.stage if rejection is not None else "validate"
            raise ToolError(f"the model's toolset for {chosen!r} ({sub}, {field_name}) was rejected after "
                            f"{gen.max_tries} tries (stage {stage}): {shown}. Nothing was loaded.")
        ts, tool_dups = dedupe_tools(ts, gen.tool_threshold)
        duplicate_of: str | None = None
        known = await anyio.to_thread.run_sync(catalog.llm_toolsets)
        # Deduplicated against what this server already keeps, the same way `generate` dedupes a batch: the
        # earlier toolset wins, so near-copies do not pile up in the registry.
        _, dups = dedupe_toolsets([*known.values(), ts], gen.toolset_threshold)
        twin = next((d.kept for d in dups if d.dropped == ts.id), None)
        if twin is not None:
            ref, ts = next((r, t) for r, t in known.items() if t.id == twin)
            duplicate_of = ref
            loaded_ = await open_sandbox(ref, ts, ctx)
        else:
            ref, ts = catalog.llm_named(ts)
            # Exposed before it is kept: a toolset the server cannot serve (a parameter named `handle`) is
            # rejected by `expose` and never registered.
            loaded_ = await open_sandbox(ref, ts, ctx)
            catalog.register_llm(ts)
        return Generated(**loaded_.model_dump(), ref=ref, sub_field=ts.sub_field, task=ts.task, repairs=notes,
                         dropped_tools=[d.dropped.rsplit("/", 1)[-1] for d in tool_dups], duplicate_of=duplicate_of)

    @server.tool(annotations=ToolAnnotations(destructive_hint=False, idempotent_hint=False, open_world_hint=False))
    async def start_task(
        ctx: Context[Any, Any],
        tier: Annotated[Tier, Field(description="simple (~3 calls), medium (~5) or complex (~8).")],
        toolset: Annotated[str | None, Field(description="A ref from list_toolsets (gen:<field>:<seed>, "
                                                        "<field>.<N> or llm:<sha8>).")] = None,
        spec_path: Annotated[str | None, Field(description="Path of a toolset spec JSON file.")] = None,
        field: Annotated[str | None, Field(description="A generated toolset of this field (with seed).")] = None,
        seed: Annotated[int, Field(ge=0, le=2**31 - 1, description="Generator seed (with field).")] = 0,
        index: Annotated[int, Field(ge=0, le=1000, description="Which task of the tier.")] = 0,
        task_seed: Annotated[int, Field(ge=0, le=2**31 - 1, description="Seed of the task draw.")] = 0,
    ) -> TaskStarted:
        """Start a graded task on a toolset: get a handle, the instruction and the tools you may use (they are
        added to the tool list; pass the handle to each). Finish with submit_task."""
        ref = ref_of(toolset, spec_path, field, seed, None)
        ts = await anyio.to_thread.run_sync(catalog.load, ref)
        task = await anyio.to_thread.run_sync(catalog.pick_task, ts, tier, index, task_seed)
        mapping = await expose(ts, ctx)
        ep = new_episode(ts, seed=task.seed, task=task, path=db_path(), simulator=simulator)
        handle = episodes.create(ep, evaluator_info={
            "toolset_ref": ref, "toolset_id": ts.id, "kind": "task", "task_id": task.id, "tier": tier,
            "index": index, "task_seed": task_seed, "feasible": task.feasible})
        return TaskStarted(handle=handle, toolset_id=ts.id, tier=tier, instruction=task.instruction,
                           tools_allowed=[mapping[n] for n in task.tools_allowed if n in mapping])

    @server.tool(annotations=ToolAnnotations(destructive_hint=False, idempotent_hint=False, open_world_hint=False))
    async def submit_task(
        handle: Handle,
        answer: Annotated[dict[str, Any] | None, Field(description="The values the instruction asks you to "
                                                                   "report, by name.")] = None,
        infeasible: Annotated[bool, Field(description="True if the task cannot be done with the allowed "
                                                      "tools.")] = False,
        reason: Annotated[str | None, Field(description="Why it is infeasible.")] = None,
    ) -> Submitted:
        """End the task and get its grade (graded on the final state of the world and your answer). The handle
        can no longer be used for calls afterwards."""
        async with episodes.use(handle) as entry:
            ep = entry.state
            if ep.task is None:
                raise InvalidArgument("this handle is a load_toolset sandbox, not a task; only handles from "
                                      "start_task can be submitted")
            verdict = await anyio.to_thread.run_sync(
                ep.submit, Submission(answer=answer, infeasible=infeasible, reason=reason))
            entry.end("passed" if verdict.passed else "failed")
            entry.evaluator_info["passed"] = verdict.passed
            return Submitted(handle=handle, passed=verdict.passed, reasons=verdict.reasons)

    @server.tool(annotations=ToolAnnotations(destructive_hint=True, idempotent_hint=False, open_world_hint=False))
    async def call(
        ctx: Context[Any, Any],
        handle: Handle,
        tool: Annotated[Any, Field(description="The tool: its name in the toolset or its MCP name.",
                                   json_schema_extra={"type": "string"})],
        # Any, checked by `_decode_arguments`: the SDK's validation would answer a list or a number with
        # pydantic's text instead of the gateway's error.
        arguments: Annotated[Any, Field(
            description="The tool's arguments as an object (without the handle); a JSON string of one also works.",
            json_schema_extra={"anyOf": [{"type": "object"}, {"type": "string"}, {"type": "null"}]})] = None,
    ) -> CallToolResult:
        """Call a simulated tool of the handle's toolset by name: the same as calling the tool itself, for
        clients that do not refresh their tool list. Returns the tool's result, or its error."""
        async with episodes.use(handle) as entry:
            ep = entry.state
            args = _decode_arguments(arguments)
            if isinstance(args, CallToolResult):
                return args
            spec_name = (server.exposure.route(tool, ep.key) if isinstance(tool, str) else None) or tool
            return await run_call(ep, spec_name, args, ctx)

    # ------------------------------------------------------------------------------------------ resources

    def task_episode(handle: str, *, evaluator_only: bool) -> Episode:
        entry = episodes.get(handle)
        ep = entry.state
        if ep.task is None:
            raise InvalidArgument("this handle is a load_toolset sandbox, not a task")
        if evaluator_only and not server.evaluator:
            raise InvalidArgument("task ground truth is available only when the server runs with --evaluator")
        return ep

    @server.resource("synthtools://task/{handle}/grade", mime_type="application/json")
    async def task_grade(handle: str) -> str:
        """The grade of a submitted task: passed, reasons, diff and answer match (the evaluator's details are
        in synthtools://task/{handle}/diff)."""
        ep = task_episode(handle, evaluator_only=False)
        if ep.grade is None:
            raise InvalidArgument("this task has not been submitted yet; call submit_task first")
        return ep.grade.model_dump_json(exclude=_EVALUATOR_ONLY)

    @server.evaluator_resource("synthtools://task/{handle}/solution", mime_type="application/json")
    async def task_solution(handle: str) -> str:
        """The task's reference solution, expected answer and feasibility (evaluator only)."""
        ep = task_episode(handle, evaluator_only=True)
        task = ep.task
        assert task is not None
        mapping = server.exposure.mapping(ep.key)
        return json.dumps({
            "task_id": task.id, "toolset_id": task.toolset_id, "tier": task.tier, "feasible": task.feasible,
            "infeasible_kind": task.infeasible_kind, "expected_answer": task.expected_answer,
            "reference_solution": [{"tool": c.tool, "mcp_name": mapping.get(c.tool, c.tool),
                                    "arguments": c.arguments} for c in task.reference_solution],
        }, sort_keys=True)

    @server.evaluator_resource("synthtools://task/{handle}/diff", mime_type="application/json")
    async def task_diff(handle: str) -> str:
        """The expected state change and the actual one so far (evaluator only)."""
        ep = task_episode(handle, evaluator_only=True)
        task = ep.task
        assert task is not None
        # Under the handle's lock: a call in flight runs in a worker thread on the same database.
        async with episodes.use(handle, allow_ended=True):
            actual = await anyio.to_thread.run_sync(ep.actual_diff)
        return json.dumps({
            "expected": {t: d.model_dump(mode="json") for t, d in task.expected_diff.items()},
            "allowed_tables": task.allowed_tables,
            "actual": actual,
            "grade": None if ep.grade is None else ep.grade.model_dump(mode="json"),
        }, sort_keys=True, default=str)

    @server.evaluator_resource("synthtools://toolset/{toolset_id}/audit", mime_type="application/json")
    async def toolset_audit(toolset_id: str) -> str:
        """Lint findings and a small audit run of a toolset (evaluator only)."""

        ts = loaded.get(toolset_id) or await anyio.to_thread.run_sync(catalog.load, toolset_id)
        return (await anyio.to_thread.run_sync(audit_report, ts)).model_dump_json()

    return server


MAX_ARGUMENT_DEPTH = 32  # far beyond any spec (arrays of scalars); keeps recursive checks off the stack limit


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return {list: "array", str: "string", type(None): "null"}.get(type(value), type(value).__name__)


def _depth(value: Any) -> int:
    """Nesting depth of decoded JSON, iteratively (it may be deeper than the recursion limit allows)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            if deepest > MAX_ARGUMENT_DEPTH:
                break
            stack.extend((v, level + 1) for v in (item.values() if isinstance(item, dict) else item))
    return deepest


def _bad_arguments(problem: str) -> CallToolResult:
    """A 400 `invalid_arguments` result shaped like the gateway's (the call never reaches the engine)."""
    message = f"Invalid arguments: {problem}. Pass the parameters as an object of name -> value."
    return CallToolResult(content=[TextContent(type="text", text=f"Error 400 (invalid_arguments): {message}")],
                          is_error=True, _meta={"testbeds/synthtools": {"status": 400, "code": "invalid_arguments",
                                                                        "stage": "arguments"}})


def _decode_arguments(value: Any) -> dict[str, Any] | CallToolResult:
    """The `call` tool's `arguments` as an object, or the error saying why they are not one."""
    if value is None:
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            return _bad_arguments(f"the string is not valid JSON ({exc.msg} at position {exc.pos})")
        except RecursionError:
            return _bad_arguments(f"the JSON string nests deeper than {MAX_ARGUMENT_DEPTH} levels")
        except ValueError as exc:  # e.g. an integer beyond the interpreter's digit limit
            return _bad_arguments(f"the string is not usable JSON ({str(exc).split(';')[0]})")
    if not isinstance(value, dict):
        return _bad_arguments(f"arguments must be an object, got {_kind(value)}")
    if _depth(value) > MAX_ARGUMENT_DEPTH:
        return _bad_arguments(f"the arguments nest deeper than {MAX_ARGUMENT_DEPTH} levels")
    return value


def _to_mcp(result: CallResult) -> CallToolResult:
    """An engine result as an MCP result: structured content = the tool's result; errors carry status, code and
    message."""
    meta = {"call_index": result.call_index, "tick": result.tick, **result.meta}
    if not result.ok:
        return CallToolResult(content=[TextContent(type="text", text=error_text(result))], is_error=True,
                              _meta={"testbeds/synthtools": {**meta, "status": result.status, "code": result.code,
                                                             "stage": result.stage}})
    payload = result.result or {}
    return CallToolResult(content=[TextContent(type="text", text=json.dumps(payload, sort_keys=True))],
                          structured_content=payload, _meta={"testbeds/synthtools": meta})


__all__ = ["GENERATION_MAX_TOKENS", "OWN_TOOLS", "SynthtoolsServer", "SynthtoolsSettings", "build", "generation_llm"]
