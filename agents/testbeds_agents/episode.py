"""Run one agent episode against an MCP server over one client session."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from mcp import Client, StdioServerParameters
from mcp.server.mcpserver import MCPServer
from pydantic import BaseModel, ConfigDict

from testbeds_agents.bridge import HANDLE_PARAM, CallOutcome, McpBridge
from testbeds_agents.events import EventSink, emit, message_event
from testbeds_agents.graph import StopReason, TaskBoundary, build_graph

ClientTarget = Client | MCPServer | StdioServerParameters | str
"""An open (or unopened) `Client`, an in-process `MCPServer`, stdio parameters, or an HTTP URL."""


class StartFailedError(RuntimeError):
    """The harness's start call returned an error, so there is no episode to run."""


class AgentOutcome(BaseModel):
    """What an episode produced: the final history and how and why it ended."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    messages: list[BaseMessage]
    start: Any = None
    handle: str | None = None
    steps: int
    stop_reason: StopReason
    memory: list[str] = []


def start_note(name: str, outcome: CallOutcome) -> str:
    """Tell the model what the harness's start call returned, without the handle it need not copy."""
    if isinstance(outcome.structured, Mapping):
        shown = {key: value for key, value in outcome.structured.items() if key != HANDLE_PARAM}
        body = json.dumps(shown, indent=2, sort_keys=True, default=str)
    else:
        body = outcome.text
    return f"The episode has started: the harness called {name}, which returned:\n{body}"


def _is_open(client: Client) -> bool:
    try:
        client.session
    except RuntimeError:
        return False
    return True


async def run_agent(
    client_target: ClientTarget,
    model: BaseChatModel,
    *,
    brief: str,
    system: str | None = None,
    start: tuple[str, dict[str, Any]] | None = None,
    hide: Iterable[str] = (),
    max_steps: int = 50,
    task_boundary: TaskBoundary | None = None,
    on_event: EventSink | None = None,
    max_consecutive_errors: int | None = 3,
    show_start: bool = True,
    concurrent_tools: bool = False,
) -> AgentOutcome:
    """Run the agent graph for one episode over one MCP session and return its outcome.

    An open `Client` is used as is (and left open); anything else is opened here and closed at the
    end. With `start=(tool, args)` the harness calls the start tool itself, binds the `handle` in
    its structured result, hides the start tool from the model, and (with `show_start`) tells the
    model what the call returned, minus the handle. `hide` names further tools the model must not
    see. `on_event` receives every message the model sees or writes and every tool call and result.
    Exceptions other than tool errors (a dead connection, a failing model) propagate; the events
    already emitted hold the partial transcript.
    """

    async def episode(client: Client) -> AgentOutcome:
        bridge = McpBridge(client, on_event=on_event)
        messages: list[BaseMessage] = []
        if system:
            messages.append(SystemMessage(content=system, id="system"))
        messages.append(HumanMessage(content=brief, id="brief"))
        for message in messages:
            await emit(on_event, message_event(message))

        # Listing first spares the 2026-07-28 era's re-list-and-retry for a tool not yet listed.
        await bridge.list_tools()
        hidden = set(hide)
        started: Any = None
        handle: str | None = None
        if start is not None:
            name, args = start
            result = await bridge.call(name, args)
            if result.is_error:
                raise StartFailedError(f"the start call {name}({args}) failed: {result.text}")
            started = result.structured
            if isinstance(started, Mapping) and isinstance(started.get(HANDLE_PARAM), str):
                handle = started[HANDLE_PARAM]
                bridge.bind(handle)
            hidden.add(name)
            if show_start:
                note = HumanMessage(content=start_note(name, result), id="start")
                messages.append(note)
                await emit(on_event, message_event(note))

        tools = await bridge.tools(hide=hidden, bind_handle=handle is not None)
        graph = build_graph(
            model,
            tools,
            max_steps=max_steps,
            max_consecutive_errors=max_consecutive_errors,
            task_boundary=task_boundary,
            on_event=on_event,
            concurrent_tools=concurrent_tools,
        )
        final = await graph.ainvoke(
            {"messages": messages, "steps": 0, "memory": [], "consecutive_errors": 0, "stop_reason": None}
        )
        return AgentOutcome(
            messages=final["messages"],
            start=started,
            handle=handle,
            steps=final["steps"],
            stop_reason=final["stop_reason"],
            memory=final.get("memory", []),
        )

    if isinstance(client_target, Client) and _is_open(client_target):
        return await episode(client_target)
    client = client_target if isinstance(client_target, Client) else Client(client_target)
    async with client:
        try:
            return await episode(client)
        except Exception as error:
            # Raised inside the session, an error reaches the caller wrapped in the SDK's
            # ExceptionGroup; keep it until the session is closed and raise it as itself.
            failure = error
    raise failure
