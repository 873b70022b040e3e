"""The event model: every event type survives a round trip, and payloads ignore timestamps."""

from __future__ import annotations

import json

import numpy as np
import pydantic
import pytest
from testbeds_evals.events import (
    EVENT_TYPES,
    EpisodeEnd,
    Error,
    Message,
    RunStarted,
    Score,
    ToolCall,
    ToolResult,
    event_to_dict,
    parse_event,
    payload,
)

EXAMPLES = [
    RunStarted(suite="latentgym", model="scripted", seed=7, config={"max_steps": 20}, git_commit="abc123",
               versions={"mcp": "2.3.0"}),
    Message(role="assistant", content="checking",
            tool_calls=[{"id": "c1", "name": "pull", "args": {"arm": 2}}]),
    Message(role="tool", content="reward 1", name="pull"),
    ToolCall(call_id="c1", name="pull", arguments={"arm": 2, "note": "é"}, source="server"),
    ToolResult(call_id="c1", name="pull", is_error=False, content="reward 1", structured={"reward": 1.0}),
    ToolResult(call_id="c2", name="pull", is_error=True, content="arm 9 does not exist; use 0..3"),
    Error(message="model call timed out", where="model"),
    EpisodeEnd(reason="max_steps", detail="20 steps"),
    Score(scorer="latentgym", metrics={"passed": True, "regret": 0.25}),
]


def test_the_examples_cover_every_event_type() -> None:
    assert {type(e) for e in EXAMPLES} == set(EVENT_TYPES)


@pytest.mark.parametrize("event", EXAMPLES, ids=lambda e: e.type)
def test_every_event_type_round_trips_through_json(event: object) -> None:
    text = json.dumps(event_to_dict(event))  # type: ignore[arg-type]
    again = parse_event(json.loads(text))
    assert type(again) is type(event)
    assert again == event


def test_parse_event_picks_the_class_from_the_type_field() -> None:
    event = parse_event({"type": "tool_call", "call_id": "x", "name": "open_workspace", "arguments": {}})
    assert isinstance(event, ToolCall)
    assert event.source == "agent"


def test_an_unknown_event_type_is_rejected() -> None:
    with pytest.raises(pydantic.ValidationError):
        parse_event({"type": "telemetry", "message": "hi"})


def test_an_unknown_termination_reason_is_rejected() -> None:
    with pytest.raises(pydantic.ValidationError):
        EpisodeEnd(reason="bored")  # type: ignore[arg-type]


def test_a_misspelt_field_is_rejected_rather_than_dropped() -> None:
    with pytest.raises(pydantic.ValidationError):
        parse_event({"type": "error", "message": "x", "were": "runner"})


def test_payload_drops_the_timestamp_so_equal_transcripts_compare_equal() -> None:
    first = ToolCall(call_id="1", name="t", arguments={"x": 1}, ts=1.0)
    second = ToolCall(call_id="1", name="t", arguments={"x": 1}, ts=2.0)
    assert first != second
    assert payload(first) == payload(second)
    assert "ts" not in payload(first)
    assert payload(first)["type"] == "tool_call"


def test_numpy_values_in_an_event_dump_as_plain_json() -> None:
    event = Score(scorer="s", metrics={"regret": np.float64(0.5), "arms": np.arange(3), "ok": np.bool_(True)})
    dumped = event_to_dict(event)
    assert dumped["metrics"] == {"regret": 0.5, "arms": [0, 1, 2], "ok": True}
    assert type(dumped["metrics"]["regret"]) is float
    json.dumps(dumped)
