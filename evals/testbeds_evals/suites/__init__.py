"""Per-suite glue for the runner, the scorer and the demo: what the harness starts, how a scripted agent
plays, and how a recorded episode is scored. One module per suite, looked up by name."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from importlib import import_module
from typing import Any, Protocol

from langchain_core.messages import BaseMessage, ToolMessage


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
