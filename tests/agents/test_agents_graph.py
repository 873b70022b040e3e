"""The agent graph: tool loop, step limit, error recovery and cap, cross-task memory."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from agents_fixture_policy import solve_tasks
from agents_fixture_server import make_server
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from mcp import Client
from testbeds_agents import (
    McpBridge,
    MessageEvent,
    ReplayChatModel,
    ToolEvent,
    artifact_boundary,
    build_graph,
    call_tools,
    make_model,
    tool_call,
)
from testbeds_agents.graph import trimmed_history

pytestmark = pytest.mark.anyio


async def run_graph(model: Any, *, tasks: int = 1, events: list | None = None, **options: Any) -> dict:
    sink = events.append if events is not None else None
    async with Client(make_server(seed=3)) as client:
        bridge = McpBridge(client, on_event=sink)
        bridge.bind((await bridge.call("start", {"tasks": tasks})).structured["handle"])
        graph = build_graph(model, await bridge.tools(hide={"start"}), on_event=sink, **options)
        brief = [SystemMessage("You solve tasks.", id="system"), HumanMessage("Solve every task.", id="brief")]
        return await graph.ainvoke({"messages": brief})


def kinds(messages: Sequence[BaseMessage]) -> list[str]:
    return [message.type for message in messages]


async def test_the_agent_recovers_from_a_tool_error_and_completes():
    def policy(messages: Sequence[BaseMessage]) -> AIMessage:
        last = messages[-1]
        if not isinstance(last, ToolMessage):
            return call_tools(tool_call("div", {"a": 84, "b": 0}))
        if last.status == "error":
            return call_tools(tool_call("div", {"a": 84, "b": 2}))
        return AIMessage(f"84/2 = {last.artifact['result']:g}")

    final = await run_graph(make_model("scripted", policy=policy))
    tools = [m for m in final["messages"] if isinstance(m, ToolMessage)]
    assert [t.status for t in tools] == ["error", "success"]
    assert "b must not be 0" in tools[0].content
    assert final["messages"][-1].content == "84/2 = 42"
    assert (final["stop_reason"], final["steps"]) == ("completed", 3)


async def test_an_agent_that_never_stops_calling_tools_ends_at_max_steps():
    model = make_model("scripted", policy=lambda messages: call_tools(tool_call("reveal")))
    # 15 turns take 30 graph steps, past LangGraph's default recursion limit of 25.
    final = await run_graph(model, max_steps=15)
    assert (final["stop_reason"], final["steps"]) == ("max_steps", 15)
    assert kinds(final["messages"][2:]) == ["ai", "tool"] * 15  # the last turn's call still ran


async def test_consecutive_tool_errors_end_the_run_with_reason_error():
    model = make_model("scripted", policy=lambda messages: call_tools(tool_call("div", {"a": 1, "b": 0})))
    final = await run_graph(model, max_steps=20, max_consecutive_errors=3)
    assert (final["stop_reason"], final["steps"], final["consecutive_errors"]) == ("error", 3, 3)


async def test_a_success_between_errors_resets_the_error_count():
    def alternate(messages: Sequence[BaseMessage]) -> AIMessage:
        turns = sum(isinstance(m, AIMessage) for m in messages)
        return call_tools(tool_call("div", {"a": 1, "b": turns % 2}))

    final = await run_graph(make_scripted(alternate), max_steps=8, max_consecutive_errors=2)
    assert final["stop_reason"] == "max_steps"


def make_scripted(policy: Any) -> Any:
    return make_model("scripted", policy=policy)


async def test_an_llm_like_model_recovers_from_unknown_tools_bad_arguments_and_unparsable_calls():
    model = ReplayChatModel(
        responses=[
            call_tools(tool_call("divide", {"a": 6, "b": 3})),  # no such tool
            AIMessage(
                "",
                invalid_tool_calls=[
                    {"type": "invalid_tool_call", "name": "div", "args": '{"a": 6, "b":', "id": "bad_1",
                     "error": "unterminated JSON"}
                ],
            ),
            call_tools(tool_call("div", {"a": 6})),  # the server rejects the missing argument
            call_tools(tool_call("div", {"a": 6, "b": 3})),
            AIMessage("6/3 = 2"),
        ]
    )
    events: list = []
    final = await run_graph(model, max_consecutive_errors=4, events=events)
    tools = [m for m in final["messages"] if isinstance(m, ToolMessage)]
    assert [t.status for t in tools] == ["error", "error", "error", "success"]
    assert "there is no tool 'divide'; the tools are: div, finish_task, reveal" in tools[0].content
    assert tools[1].tool_call_id == "bad_1" and "could not be parsed (unterminated JSON)" in tools[1].content
    assert "Field required" in tools[2].content
    assert final["stop_reason"] == "completed"
    # Every result the model saw is in the event stream, linked to the call that asked for it.
    tool_events = [e for e in events if isinstance(e, ToolEvent) and e.call_id is not None]
    assert [e.call_id for e in tool_events] == [t.tool_call_id for t in tools]


async def test_the_error_cap_counts_unknown_tools_too():
    model = ReplayChatModel(responses=[call_tools(tool_call("nope"))] * 5)
    final = await run_graph(model, max_consecutive_errors=2)
    assert (final["stop_reason"], final["steps"]) == ("error", 2)


async def test_cross_task_memory_keeps_summaries_and_trims_finished_tasks():
    seen: list[list[BaseMessage]] = []

    def watching(messages: Sequence[BaseMessage]) -> AIMessage:
        seen.append(list(messages))
        return solve_tasks(messages)

    final = await run_graph(make_scripted(watching), tasks=3, task_boundary=artifact_boundary(), max_steps=30)
    assert final["stop_reason"] == "completed"
    assert len(final["memory"]) == 3
    assert all(note.startswith(f"task {i}: answered") and note.endswith("(right)")
               for i, note in enumerate(final["memory"], start=1))
    # What is left: system prompt, brief, notes, the turn that ended the last task, the final answer.
    messages = final["messages"]
    assert kinds(messages) == ["system", "human", "human", "ai", "tool", "ai"]
    assert messages[2].content == "Notes from earlier tasks:\n" + "\n".join(
        f"{i}. {note}" for i, note in enumerate(final["memory"], start=1)
    )
    assert messages[4].name == "finish_task"
    # At the start of task 3 the model saw the notes from tasks 1 and 2 and nothing else of them.
    third = next(m for m in seen if any(x.content.startswith("Notes") and "2. task 2" in x.content for x in m))
    assert [x.name for x in third if isinstance(x, ToolMessage)] == ["finish_task"]
    assert "1. task 1" in third[2].content


async def test_context_stays_bounded_as_the_number_of_tasks_grows():
    async def longest_context(tasks: int) -> int:
        lengths: list[int] = []

        def measuring(messages: Sequence[BaseMessage]) -> AIMessage:
            lengths.append(len(messages))
            return solve_tasks(messages)

        final = await run_graph(make_scripted(measuring), tasks=tasks, task_boundary=artifact_boundary(),
                                max_steps=4 * tasks + 2)
        assert len(final["memory"]) == tasks
        return max(lengths)

    assert await longest_context(2) == await longest_context(6) == 9


async def test_without_a_boundary_detector_the_history_keeps_growing():
    final = await run_graph(make_scripted(solve_tasks), tasks=2, max_steps=20)
    assert final["stop_reason"] == "completed"
    assert len(final["messages"]) == 2 + 2 * 3 * 2 + 1  # two tasks of three tool turns, then the answer
    assert final.get("memory", []) == []


async def test_the_notes_message_is_reported_as_an_event():
    events: list = []
    await run_graph(make_scripted(solve_tasks), tasks=2, task_boundary=artifact_boundary(), events=events)
    notes = [e for e in events if isinstance(e, MessageEvent) and e.content.startswith("Notes from")]
    assert [n.message_id for n in notes] == ["notes-1", "notes-2"]


async def test_concurrent_tool_calls_keep_the_order_the_model_asked_for():
    def both(messages: Sequence[BaseMessage]) -> AIMessage:
        if isinstance(messages[-1], ToolMessage):
            return AIMessage("done")
        return call_tools(tool_call("div", {"a": 9, "b": 3}), tool_call("div", {"a": 1, "b": 0}),
                          tool_call("reveal"))

    final = await run_graph(make_scripted(both), concurrent_tools=True)
    tools = [m for m in final["messages"] if isinstance(m, ToolMessage)]
    assert [(t.tool_call_id, t.status) for t in tools] == [
        ("call_1", "success"), ("call_2", "error"), ("call_3", "success")
    ]


def test_artifact_boundary_ignores_errors_and_results_without_the_flag():
    detect = artifact_boundary()
    done = {"task_done": True, "summary": "task 1: ok"}
    assert detect(ToolMessage("", tool_call_id="c", name="t", artifact=done)) == "task 1: ok"
    assert detect(ToolMessage("", tool_call_id="c", name="t", artifact={"task_done": True})) == "a task ended with t"
    assert detect(ToolMessage("", tool_call_id="c", name="t", artifact={"task_done": False})) is None
    assert detect(ToolMessage("", tool_call_id="c", name="t", artifact="text")) is None
    assert detect(ToolMessage("x", tool_call_id="c", name="t", artifact=done, status="error")) is None


def test_trimming_keeps_the_system_prompt_brief_and_start_note_but_replaces_the_old_notes():
    """The start note carries the episode's rules and context: an agent must keep it in every task."""
    history = [
        SystemMessage("sys"), HumanMessage("brief"), HumanMessage("started", id="start"),
        HumanMessage("Notes from earlier tasks:\n1. one", id="notes-1"), AIMessage("thinking"),
    ]
    turn = [call_tools(tool_call("finish_task", id="c1")), ToolMessage("ok", tool_call_id="c1")]
    kept = trimmed_history(history, ["one", "two"], turn)
    assert [m.content for m in kept[:4]] == ["sys", "brief", "started", "Notes from earlier tasks:\n1. one\n2. two"]
    assert kept[4:] == turn


def test_max_steps_must_allow_at_least_one_turn():
    with pytest.raises(ValueError, match="max_steps must be at least 1"):
        build_graph(make_scripted(solve_tasks), [], max_steps=0)
