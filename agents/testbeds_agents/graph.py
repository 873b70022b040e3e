"""The reference agent: a LangGraph tool-calling loop with limits, error recovery and cross-task memory.

Two nodes: `agent` asks the model for the next message; `tools` runs the tool calls it asked for,
counts consecutive errors, and at a task boundary folds the finished task into a one-line note and
trims the history, so context stays bounded over a sequence of N tasks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import anyio
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    RemoveMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.graph.message import REMOVE_ALL_MESSAGES
from langgraph.graph.state import CompiledStateGraph

from testbeds_agents.bridge import tool_call_scope
from testbeds_agents.events import EventSink, ToolEvent, emit, message_event

StopReason = Literal["completed", "max_steps", "error"]

TaskBoundary = Callable[[ToolMessage], str | None]
"""Given a tool result, a one-line summary if that result ended a task, else None."""

NOTES_HEADER = "Notes from earlier tasks:"


class AgentState(MessagesState):
    """Graph state. `steps` counts model turns; `memory` holds one summary per finished task."""

    steps: int
    stop_reason: StopReason | None
    memory: list[str]
    consecutive_errors: int


def artifact_boundary(flag: str = "task_done", summary: str = "summary") -> TaskBoundary:
    """A task-boundary detector for tools whose structured result sets `flag` when a task ends.

    The note is the result's `summary` field, or a generic line naming the tool if it has none.
    """

    def detect(message: ToolMessage) -> str | None:
        artifact = message.artifact
        if message.status == "error" or not isinstance(artifact, dict) or not artifact.get(flag):
            return None
        return str(artifact.get(summary) or f"a task ended with {message.name}")

    return detect


def notes_message(memory: Sequence[str]) -> HumanMessage:
    """The message that carries what was learnt in earlier tasks into the next one."""
    lines = "\n".join(f"{i}. {note}" for i, note in enumerate(memory, start=1))
    return HumanMessage(content=f"{NOTES_HEADER}\n{lines}", id=f"notes-{len(memory)}")


def pinned_messages(messages: Sequence[BaseMessage]) -> list[BaseMessage]:
    """The messages kept across tasks: everything before the model's first turn (system prompts, the user
    brief, and what the harness's start call returned: the rules and the context of the whole episode),
    except earlier notes, which the new notes message replaces."""
    kept: list[BaseMessage] = []
    for message in messages:
        if not isinstance(message, SystemMessage | HumanMessage):
            break
        if not (message.id or "").startswith("notes-"):
            kept.append(message)
    return kept


def trimmed_history(
    messages: Sequence[BaseMessage], memory: Sequence[str], turn: Sequence[BaseMessage]
) -> list[BaseMessage]:
    """The history after a task boundary: pinned messages, the notes, then the turn that ended the task.

    The last turn (the model's tool calls and their results) is kept whole so every tool result still
    follows the call it answers, and the model sees what the boundary result said (e.g. the next task).
    """
    return [*pinned_messages(messages), notes_message(memory), *turn]


def recursion_limit(max_steps: int) -> int:
    """The LangGraph recursion limit that lets a run reach `max_steps` model turns (two nodes per turn)."""
    return 2 * max_steps + 4


def build_graph(
    model: BaseChatModel,
    tools: Sequence[BaseTool],
    *,
    max_steps: int = 50,
    max_consecutive_errors: int | None = 3,
    task_boundary: TaskBoundary | None = None,
    on_event: EventSink | None = None,
    concurrent_tools: bool = False,
) -> CompiledStateGraph:
    """Compile the tool-calling agent graph.

    The run ends `completed` when the model answers without tool calls, `max_steps` after `max_steps`
    model turns (the last turn's tool calls still run), and `error` after `max_consecutive_errors`
    failed tool calls in a row. Failed calls go back to the model as `ToolMessage(status="error")`.
    Tool calls of one turn run in order unless `concurrent_tools`: sequential calls keep a run
    reproducible when calls touch the same server state. `on_event` receives the model's messages
    and the tool results the bridge does not report (unknown tools, unparsable calls).
    """
    if max_steps < 1:
        raise ValueError(f"max_steps must be at least 1, got {max_steps}")
    if max_consecutive_errors is not None and max_consecutive_errors < 1:
        raise ValueError(f"max_consecutive_errors must be at least 1 or None, got {max_consecutive_errors}")
    by_name = {tool.name: tool for tool in tools}
    bound = model.bind_tools(list(tools)) if tools else model

    async def agent(state: AgentState, config: RunnableConfig) -> dict[str, Any]:
        steps = state.get("steps", 0) + 1
        reply = await bound.ainvoke(state["messages"], config)
        if not isinstance(reply, AIMessage):
            raise TypeError(f"the model returned {type(reply).__name__}, expected an AIMessage")
        # Stable ids keep repeated runs identical (the default ids are random).
        reply = reply.model_copy(update={"id": f"ai-{steps}"})
        await emit(on_event, message_event(reply))
        update: dict[str, Any] = {"messages": [reply], "steps": steps}
        if not reply.tool_calls and not reply.invalid_tool_calls:
            update["stop_reason"] = "completed"
        return update

    async def run_call(call: dict[str, Any], config: RunnableConfig) -> ToolMessage:
        tool = by_name.get(call["name"])
        if tool is None:
            text = f"Error: there is no tool {call['name']!r}; the tools are: {', '.join(sorted(by_name))}"
            result = ToolMessage(content=text, tool_call_id=call["id"], name=call["name"], status="error")
            await emit(on_event, _error_event(call["name"], call.get("args") or {}, text, call["id"]))
        else:
            with tool_call_scope(call["id"]):
                result = await tool.ainvoke({**call, "type": "tool_call"}, config)
        return result.model_copy(update={"id": f"tool-{call['id']}"})

    async def act(state: AgentState, config: RunnableConfig) -> dict[str, Any]:
        turn = state["messages"][-1]
        if not isinstance(turn, AIMessage):
            raise TypeError(f"the tools node runs after a model turn, found {type(turn).__name__}")
        calls = [dict(call) for call in turn.tool_calls]
        results: list[ToolMessage | None] = [None] * len(calls)
        if concurrent_tools:

            async def one(index: int) -> None:
                results[index] = await run_call(calls[index], config)

            async with anyio.create_task_group() as group:
                for index in range(len(calls)):
                    group.start_soon(one, index)
        else:
            for index, call in enumerate(calls):
                results[index] = await run_call(call, config)
        replies = [result for result in results if result is not None]
        for number, bad in enumerate(turn.invalid_tool_calls, start=1):
            replies.append(await _invalid_call_reply(bad, number, turn.id, on_event))

        errors = state.get("consecutive_errors", 0)
        for reply in replies:
            errors = errors + 1 if reply.status == "error" else 0
        update: dict[str, Any] = {"consecutive_errors": errors, "messages": replies}

        summaries = [s for reply in replies if task_boundary is not None and (s := task_boundary(reply))]
        if summaries:
            memory = [*state.get("memory", []), *summaries]
            kept = trimmed_history(state["messages"], memory, [turn, *replies])
            await emit(on_event, message_event(notes_message(memory)))
            update["memory"] = memory
            update["messages"] = [RemoveMessage(id=REMOVE_ALL_MESSAGES), *kept]

        if max_consecutive_errors is not None and errors >= max_consecutive_errors:
            update["stop_reason"] = "error"
        elif state.get("steps", 0) >= max_steps:
            update["stop_reason"] = "max_steps"
        return update

    def next_node(state: AgentState) -> str:
        return END if state.get("stop_reason") else "next"

    graph = StateGraph(AgentState)
    graph.add_node("agent", agent)
    graph.add_node("tools", act)
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", next_node, {END: END, "next": "tools"})
    graph.add_conditional_edges("tools", next_node, {END: END, "next": "agent"})
    return graph.compile().with_config(recursion_limit=recursion_limit(max_steps))


def _error_event(name: str, args: dict[str, Any], text: str, call_id: str | None) -> ToolEvent:
    return ToolEvent(name=name, args=dict(args), text=text, structured=None, is_error=True, call_id=call_id)


async def _invalid_call_reply(
    bad: dict[str, Any], number: int, turn_id: str | None, on_event: EventSink | None
) -> ToolMessage:
    name = bad.get("name") or "?"
    call_id = bad.get("id") or f"invalid-{turn_id}-{number}"
    text = (
        f"Error: the call to {name!r} could not be parsed ({bad.get('error') or 'invalid arguments'}); "
        "send the arguments again as a JSON object"
    )
    await emit(on_event, _error_event(name, {"raw": bad.get("args")}, text, call_id))
    return ToolMessage(content=text, tool_call_id=call_id, name=name, status="error", id=f"tool-{call_id}")
