"""Per-suite glue for the runner, the scorer and the demo: what the harness starts, how a scripted agent
plays, and how a recorded episode is scored. One module per suite, looked up by name."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from importlib import import_module
from typing import Any, Protocol

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.messages.tool import ToolCall
from testbeds_agents import call_tools


class SuitePlugin(Protocol):
    SUITE: str
    SCORER: str

    def score_episode(self, episode: dict[str, Any], events: list[Any]) -> dict[str, Any]: ...


PLUGINS = {"latentgym": "testbeds_evals.suites.latentgym", "mixopt": "testbeds_evals.suites.mixopt",
           "sheets": "testbeds_evals.suites.sheets", "synthtools": "testbeds_evals.suites.synthtools"}


def plugin(suite: str) -> Any:
    try:
        return import_module(PLUGINS[suite])
    except KeyError:
        raise KeyError(f"no runner or scorer for suite {suite!r} yet; known: {', '.join(PLUGINS)}") from None


def fresh_results(messages: Sequence[BaseMessage], consumed: set[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(tool name, structured result) of each successful tool result not seen before, in order.

    Scripted policies keep their own state and read every result once, by call id: the agent graph trims
    finished tasks from the history, so a result may be gone from later calls' messages."""
    for message in messages:
        if not isinstance(message, ToolMessage) or message.tool_call_id in consumed:
            continue
        consumed.add(message.tool_call_id)
        if message.status != "error" and isinstance(message.artifact, dict):
            yield message.name, message.artifact


def replay_policy(calls: Sequence[ToolCall], closing: Callable[[dict[str, Any]], str]
                  ) -> Callable[[Sequence[BaseMessage]], AIMessage]:
    """A scripted agent that makes `calls` one per turn (a workbook or a world changes in call order), then, once
    the last call's result is back, closes with `closing(that result's structured content)`."""
    queue = list(calls)
    state = {"next": 0}
    last_name = queue[-1]["name"] if queue else None

    def decide(messages: Sequence[BaseMessage]) -> AIMessage:
        last = messages[-1]
        if isinstance(last, ToolMessage) and last.name == last_name and state["next"] >= len(queue):
            return AIMessage(content=closing(last.artifact if isinstance(last.artifact, dict) else {}))
        if state["next"] >= len(queue):
            return AIMessage(content="Done.")
        state["next"] += 1
        return call_tools(queue[state["next"] - 1])

    return decide
