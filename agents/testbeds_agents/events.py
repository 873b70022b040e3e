"""What an agent run reports to its caller while it runs: messages and tool calls.

These are plain records for a runner to store; they do not depend on the evals package so the
agents stay usable on their own.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from pydantic import BaseModel, Field


class ToolCallRecord(BaseModel):
    """One tool call as the model asked for it."""

    id: str | None
    name: str
    args: dict[str, Any]


class MessageEvent(BaseModel):
    """A message the model saw or wrote (tool results are reported as `ToolEvent`s)."""

    kind: Literal["message"] = "message"
    role: Literal["system", "user", "assistant"]
    content: str
    tool_calls: list[ToolCallRecord] = Field(default_factory=list)
    message_id: str | None = None


class ToolEvent(BaseModel):
    """One tool call and its result.

    `args` are the arguments sent to the server (with a bound handle injected). `call_id` links the
    result to the model's tool call; it is None for calls the harness makes itself (e.g. the start).
    """

    kind: Literal["tool"] = "tool"
    name: str
    args: dict[str, Any]
    text: str
    structured: Any = None
    is_error: bool
    call_id: str | None = None


AgentEvent = Annotated[MessageEvent | ToolEvent, Field(discriminator="kind")]

EventSink = Callable[[MessageEvent | ToolEvent], Awaitable[None] | None]
"""A callback for events; it may be a plain function or a coroutine function."""


async def emit(sink: EventSink | None, event: MessageEvent | ToolEvent) -> None:
    """Hand `event` to `sink` (if any), awaiting it when the sink is asynchronous."""
    if sink is None:
        return
    result = sink(event)
    if inspect.isawaitable(result):
        await result


def message_event(message: BaseMessage) -> MessageEvent:
    """Describe a system, user or assistant message as an event."""
    if isinstance(message, AIMessage):
        role: Literal["system", "user", "assistant"] = "assistant"
    elif isinstance(message, SystemMessage):
        role = "system"
    elif isinstance(message, HumanMessage):
        role = "user"
    elif isinstance(message, ToolMessage):
        raise TypeError("tool messages are reported as ToolEvents, not MessageEvents")
    else:
        role = "user"
    calls = [
        ToolCallRecord(id=call.get("id"), name=call["name"], args=dict(call.get("args") or {}))
        for call in getattr(message, "tool_calls", None) or []
    ]
    return MessageEvent(role=role, content=str(message.text), tool_calls=calls, message_id=message.id)
