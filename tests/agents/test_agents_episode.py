"""The episode runner: one session, the harness's start call, events, determinism, stdio."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from agents_fixture_policy import solve_tasks
from agents_fixture_server import make_server
from langchain_core.messages import ToolMessage
from mcp import Client, StdioServerParameters
from testbeds_agents import (
    MessageEvent,
    StartFailedError,
    ToolEvent,
    artifact_boundary,
    make_model,
    run_agent,
)

pytestmark = pytest.mark.anyio

SERVER_SCRIPT = Path(__file__).with_name("agents_fixture_server.py")


async def solve(target: object, *, tasks: int = 2, events: list | None = None, **options: object):
    return await run_agent(
        target,
        make_model("scripted", policy=solve_tasks),
        brief="Answer each task with half its target.",
        system="You are a careful agent.",
        start=("start", {"tasks": tasks}),
        hide=set(),
        max_steps=40,
        task_boundary=artifact_boundary(),
        on_event=events.append if events is not None else None,
        **options,
    )


async def test_an_episode_binds_the_start_handle_and_hides_the_start_tool():
    outcome = await solve(make_server(seed=1))
    assert outcome.stop_reason == "completed"
    assert outcome.handle == outcome.start["handle"] and len(outcome.handle) >= 16
    assert outcome.start["tasks"] == 2
    assert len(outcome.memory) == 2 and all(note.endswith("(right)") for note in outcome.memory)
    # The handle never reaches the model.
    assert all(outcome.handle not in str(message.content) for message in outcome.messages)


async def test_the_model_is_told_what_the_start_call_returned_without_the_handle():
    events: list = []
    await solve(make_server(seed=1), events=events)
    note = next(e for e in events if isinstance(e, MessageEvent) and e.message_id == "start")
    assert note.role == "user"
    assert note.content.startswith("The episode has started: the harness called start")
    assert '"tasks": 2' in note.content and "handle" not in note.content


async def test_the_start_tool_is_not_offered_to_the_model():
    offered: list[str] = []

    class Recording:
        def __init__(self) -> None:
            self.model = make_model("scripted", policy=solve_tasks)

        def bind_tools(self, tools, **kwargs):
            offered.extend(tool.name for tool in tools)
            return self.model

    await run_agent(make_server(), Recording(), brief="go", system=None, start=("start", {"tasks": 1}),  # type: ignore[arg-type]
                    hide={"div"}, max_steps=10)
    assert offered == ["reveal", "finish_task"]


async def test_the_transcript_events_come_in_order_and_link_results_to_calls():
    events: list = []
    outcome = await solve(make_server(seed=2), tasks=1, events=events)
    roles = [e.role if isinstance(e, MessageEvent) else "tool" for e in events]
    assert roles[:4] == ["system", "user", "tool", "user"]  # brief, the harness's start call, its note
    assert events[2].name == "start" and events[2].call_id is None
    calls = [call.id for e in events if isinstance(e, MessageEvent) for call in e.tool_calls]
    results = [e.call_id for e in events if isinstance(e, ToolEvent) and e.call_id is not None]
    assert calls == results == ["call_1", "call_2", "call_3"]
    assert all(e.args["handle"] == outcome.handle for e in events if isinstance(e, ToolEvent) and e.call_id)
    assert events[-1].role == "assistant" and events[-1].content == "all tasks answered"


async def test_two_runs_with_the_same_policy_and_seed_produce_identical_messages():
    first = await solve(make_server(seed=5), tasks=3)
    second = await solve(make_server(seed=5), tasks=3)
    other = await solve(make_server(seed=6), tasks=3)
    dumped = [message.model_dump() for message in first.messages]
    assert dumped == [message.model_dump() for message in second.messages]
    assert first.handle != second.handle  # handles are random, yet the model never sees them
    assert dumped != [message.model_dump() for message in other.messages]


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_an_open_client_is_reused_across_episodes_and_left_open(mode: str):
    async with Client(make_server(seed=4), mode=mode) as client:
        first = await solve(client)
        second = await solve(client)
        still_open = await client.call_tool("div", {"handle": first.handle, "a": 1, "b": 1})
    assert first.stop_reason == second.stop_reason == "completed"
    assert first.handle != second.handle
    assert still_open.structured_content == {"result": 1.0}
    assert first.memory != second.memory  # the second episode drew new targets from the same server


async def test_a_failed_start_call_raises_with_the_servers_message():
    with pytest.raises(StartFailedError, match=r"the start call start\(\{'tasks': 'many'\}\) failed"):
        await solve(make_server(), tasks="many")  # type: ignore[arg-type]


async def test_an_episode_runs_over_a_real_stdio_subprocess():
    params = StdioServerParameters(command=sys.executable, args=[str(SERVER_SCRIPT)],
                                   cwd=str(SERVER_SCRIPT.parent))
    outcome = await solve(params, tasks=2)
    assert outcome.stop_reason == "completed"
    assert len(outcome.memory) == 2 and all(note.endswith("(right)") for note in outcome.memory)
    assert isinstance(outcome.messages[-2], ToolMessage) and outcome.messages[-2].name == "finish_task"
