"""LangGraph reference agents over MCP: the tool bridge, the agent graph, models, and the episode runner."""

from testbeds_agents.bridge import CallOutcome, McpBridge
from testbeds_agents.episode import AgentOutcome, StartFailedError, run_agent
from testbeds_agents.events import AgentEvent, EventSink, MessageEvent, ToolCallRecord, ToolEvent
from testbeds_agents.graph import AgentState, StopReason, TaskBoundary, artifact_boundary, build_graph
from testbeds_agents.models import (
    MissingExtraError,
    ModelSpecError,
    ReplayChatModel,
    ScriptedChatModel,
    call_tools,
    make_model,
    tool_call,
)

__all__ = [
    "AgentEvent",
    "AgentOutcome",
    "AgentState",
    "CallOutcome",
    "EventSink",
    "McpBridge",
    "MessageEvent",
    "MissingExtraError",
    "ModelSpecError",
    "ReplayChatModel",
    "ScriptedChatModel",
    "StartFailedError",
    "StopReason",
    "TaskBoundary",
    "ToolCallRecord",
    "ToolEvent",
    "artifact_boundary",
    "build_graph",
    "call_tools",
    "make_model",
    "run_agent",
    "tool_call",
]
