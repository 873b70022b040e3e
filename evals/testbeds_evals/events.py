"""The transcript event model: one pydantic discriminated union, tagged by `type`.

Every transcript (from our runner, from a recording server, from any MCP client) is a sequence of
these events. `ts` is wall-clock time and so differs between two runs of the same seed; `payload`
drops it so that transcripts can be compared for determinism.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal, TypeAlias, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from .jsonable import to_jsonable

TerminationReason: TypeAlias = Literal["completed", "max_steps", "error", "timeout", "abandoned"]
Source: TypeAlias = Literal["server", "agent", "runner", "scorer"]
Role: TypeAlias = Literal["system", "user", "assistant", "tool"]

TERMINATION_REASONS: tuple[str, ...] = ("completed", "max_steps", "error", "timeout", "abandoned")


class _EventBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ts: float = Field(default_factory=time.time, description="Unix time the event happened.")


class RunStarted(_EventBase):
    """A run began: what was run, with which model and seed, on which code."""

    type: Literal["run_started"] = "run_started"
    source: Source = "runner"
    suite: str
    model: str
    seed: int | None = None
    config: dict[str, Any] = Field(default_factory=dict)
    git_commit: str | None = None
    versions: dict[str, str] = Field(default_factory=dict)


class Message(_EventBase):
    """A chat message; assistant messages carry the tool calls they requested."""

    type: Literal["message"] = "message"
    source: Source = "agent"
    role: Role
    content: str
    tool_calls: list[dict[str, Any]] = Field(default_factory=list)
    name: str | None = None


class ToolCall(_EventBase):
    """A tool invocation, as requested by the agent or as received by a server."""

    type: Literal["tool_call"] = "tool_call"
    source: Source = "agent"
    call_id: str
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class ToolResult(_EventBase):
    """The answer to a `ToolCall` with the same `call_id`: its text and structured content."""

    type: Literal["tool_result"] = "tool_result"
    source: Source = "server"
    call_id: str
    name: str
    is_error: bool = False
    content: str
    structured: dict[str, Any] | None = None


class Error(_EventBase):
    """Something failed outside a tool result (the model call, the transport, the runner)."""

    type: Literal["error"] = "error"
    source: Source = "runner"
    message: str
    where: str | None = None


class EpisodeEnd(_EventBase):
    """The episode is over, and why."""

    type: Literal["episode_end"] = "episode_end"
    source: Source = "runner"
    reason: TerminationReason
    detail: str | None = None


class Score(_EventBase):
    """Metrics a scorer computed for an episode."""

    type: Literal["score"] = "score"
    source: Source = "scorer"
    scorer: str
    metrics: dict[str, Any] = Field(default_factory=dict)


Event = Annotated[
    Union[RunStarted, Message, ToolCall, ToolResult, Error, EpisodeEnd, Score],
    Field(discriminator="type"),
]

EVENT_TYPES: tuple[type[BaseModel], ...] = (
    RunStarted, Message, ToolCall, ToolResult, Error, EpisodeEnd, Score,
)

_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)


def parse_event(data: dict[str, Any]) -> Event:
    """Validate a dict (e.g. decoded JSON) into the matching event class, chosen by its `type`."""
    return _ADAPTER.validate_python(data)


def event_to_dict(event: Event) -> dict[str, Any]:
    """Dump an event, `ts` included, as plain JSON values."""
    return to_jsonable(event.model_dump(mode="python"))


def payload(event: Event) -> dict[str, Any]:
    """Dump an event without its timestamp, for comparing transcripts (same seed, same payloads)."""
    return to_jsonable(event.model_dump(mode="python", exclude={"ts"}))
