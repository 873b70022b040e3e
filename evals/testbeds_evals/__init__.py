"""Transcripts and scores for the testbeds: the event model, the SQLite store, reports and the CLI.

Servers and agents need only `testbeds_evals.events` and `testbeds_evals.store`; reports (matplotlib)
and the CLI are imported on demand.
"""

from .events import (
    EpisodeEnd,
    Error,
    Event,
    Message,
    RunStarted,
    Score,
    TerminationReason,
    ToolCall,
    ToolResult,
    parse_event,
    payload,
)
from .store import NotFoundError, Store

__all__ = [
    "EpisodeEnd",
    "Error",
    "Event",
    "Message",
    "NotFoundError",
    "RunStarted",
    "Score",
    "Store",
    "TerminationReason",
    "ToolCall",
    "ToolResult",
    "parse_event",
    "payload",
]
