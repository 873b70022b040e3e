"""latentgym end to end: scripted agents over MCP, server-side recording, scoring from the recording."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest
from testbeds_evals.events import payload
from testbeds_evals.runner import latentgym_specs, parse_seeds, run_many
from testbeds_evals.scoring import score_db
from testbeds_evals.store import Store
from testbeds_latentgym.models import SequenceSettings
from testbeds_latentgym.play import run_reference

pytestmark = pytest.mark.anyio


def comparable(events) -> list[dict]:
    """Event payloads without what legitimately differs between runs: times, handles and call ids."""
    out = []
    for event in events:
        data = payload(event)
        data.pop("call_id", None)
        text = json.dumps(data, sort_keys=True)
        out.append(text)
    return out


async def record(db: Path, policy: str, env: str = "secretary", seeds=(0,), **settings) -> str:
    specs = latentgym_specs([env], list(seeds), [policy], n_tasks=settings.pop("n_tasks", 3), **settings)
    run_id, results = await run_many(db, "scripted", specs, transport="memory", show_progress=False)
    assert all(r.stop_reason == "completed" for r in results)
    return run_id


async def test_a_scripted_agent_over_mcp_earns_exactly_the_in_process_policy_rewards(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    run_id = await record(db, "bayes", "bandit", seeds=(0, 1), n_tasks=4)
    scored, failures = score_db(db, run_id=run_id, show_progress=False)
    assert (scored, failures) == (2, [])
    with Store(db) as store:
        rows = store.latest_scores(run_id=run_id)
    for row in rows:
        expected = run_reference(SequenceSettings(env="bandit", n_tasks=4), row["settings"]["seed"], "bayes")
        assert row["metrics"]["rewards"] == expected.true_rewards
        assert row["metrics"]["regret"] == 0.0
        assert row["metrics"]["reference_bayes"] == pytest.approx(sum(expected.true_rewards))
        assert row["termination"] == "completed"


async def test_the_recording_holds_messages_tool_calls_and_the_hidden_seed(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    run_id = await record(db, "no_transfer", seeds=(5,))
    with Store(db) as store:
        (episode,) = store.episodes(run_id=run_id)
        events = store.events(episode["episode_id"])
        run = store.run(run_id)
    assert episode["settings"]["seed"] == 5 and episode["settings"]["env"] == "secretary"
    kinds = {e.type for e in events}
    assert {"message", "tool_call", "tool_result", "episode_end"} <= kinds
    assert [e.name for e in events if e.type == "tool_call"][:3] == ["start_sequence", "task_history", "observe"]
    assert run["model"] == "scripted:no_transfer"
    roles = [e.role for e in events if e.type == "message"]
    assert roles[0] == "user" and "assistant" in roles


async def test_the_same_seed_gives_the_same_transcript(tmp_path: Path) -> None:
    transcripts = []
    for i in range(2):
        db = tmp_path / f"runs{i}.db"
        run_id = await record(db, "bayes", "number_guess", seeds=(3,))
        with Store(db) as store:
            (episode,) = store.episodes(run_id=run_id)
            handle = episode["handle"]
            transcripts.append([t.replace(handle, "HANDLE") for t in comparable(store.events(episode["episode_id"]))])
    assert transcripts[0] == transcripts[1]


async def test_a_tampered_recording_cannot_be_scored(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    run_id = await record(db, "bayes", seeds=(2,))
    with Store(db) as store:
        (episode,) = store.episodes(run_id=run_id)
        row = store._query("SELECT id, data FROM events WHERE episode_id = ? AND type = 'tool_result' "
                           "AND data LIKE '%\"name\": \"act\"%' ORDER BY seq LIMIT 1", (episode["episode_id"],))
    if not row:  # JSON written without spaces
        with Store(db) as store:
            row = store._query("SELECT id, data FROM events WHERE episode_id = ? AND type = 'tool_result' "
                               "AND data LIKE '%\"name\":\"act\"%' ORDER BY seq LIMIT 1", (episode["episode_id"],))
    data = json.loads(row[0]["data"])
    data["structured"]["result"] = {"forged": True}
    import sqlite3

    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE events SET data = ? WHERE id = ?", (json.dumps(data), row[0]["id"]))
    scored, failures = score_db(db, run_id=run_id, show_progress=False)
    assert scored == 0 and "diverged" in failures[0][1]


def test_seed_ranges_and_lists_parse() -> None:
    assert parse_seeds("0-3") == [0, 1, 2, 3]
    assert parse_seeds("1,5,9") == [1, 5, 9]
    assert parse_seeds("2") == [2]


def test_an_agent_that_stops_early_is_recorded_as_abandoned(tmp_path: Path) -> None:
    """A scripted model that answers without acting leaves the sequence unfinished: reason abandoned."""
    from langchain_core.messages import AIMessage
    from testbeds_agents import ReplayChatModel, run_agent
    from testbeds_evals.runner import TranscriptSink
    from testbeds_latentgym.server import build
    from testbeds_serving import ServeOptions

    db = tmp_path / "runs.db"

    async def go() -> str:
        with Store(db) as store:
            run_id = store.create_run(suite="latentgym", model="replay")
            server = build(ServeOptions(record=db, record_run_id=run_id, record_model="replay"))
            sink = TranscriptSink(store)
            outcome = await run_agent(server, ReplayChatModel(responses=[AIMessage("I give up.")]), brief="play",
                                      start=("start_sequence", {"env": "secretary", "seed": 1}), on_event=sink)
            store.end_episode(sink.episode_id, "abandoned", detail=outcome.stop_reason)
            return sink.episode_id

    episode_id = anyio.run(go)
    with Store(db) as store:
        assert store.episode(episode_id)["termination"] == "abandoned"


async def test_under_the_hand_off_protocol_the_agent_continues_after_the_reference(tmp_path: Path) -> None:
    """bayes plays tasks 1-2, the scripted no_transfer agent the rest; the scorer credits T(C→agent)."""
    db = tmp_path / "runs.db"
    run_id = await record(db, "no_transfer", "bandit", seeds=(4,), n_tasks=5, structure="latent",
                          handoff_from="bayes", handoff_at=2)
    score_db(db, run_id=run_id, show_progress=False)
    with Store(db) as store:
        (row,) = store.latest_scores(run_id=run_id)
    settings = SequenceSettings(env="bandit", n_tasks=5, structure="latent", handoff_from="bayes", handoff_at=2)
    expected = run_reference(settings, 4, "no_transfer")
    assert row["metrics"]["rewards"] == expected.true_rewards[2:]  # the agent's own tasks only
    assert row["metrics"]["tasks_played"] == 3
    assert row["metrics"]["handoff_return"] == pytest.approx(sum(expected.true_rewards[2:]))
    assert row["metrics"]["reference_no_transfer_handoff_return"] == pytest.approx(sum(expected.true_rewards[2:]))


def test_an_llm_like_agent_recovers_from_invalid_actions_and_they_are_counted(tmp_path: Path) -> None:
    """A fake LLM sends an illegal action and a malformed one, then plays: the errors reach it as tool
    messages, the episode finishes, and the scorer counts the invalid actions."""
    from langchain_core.messages import AIMessage
    from testbeds_agents import ReplayChatModel, call_tools, run_agent, tool_call
    from testbeds_evals.runner import TranscriptSink
    from testbeds_latentgym.server import build
    from testbeds_serving import ServeOptions

    db = tmp_path / "runs.db"
    script = [call_tools(tool_call("act", {"action": {"type": "hire"}})),
              call_tools(tool_call("act", {"action": "accept please"})),
              call_tools(tool_call("act", {"action": {"type": "accept"}})),
              AIMessage("Done: I accepted the first candidate.")]

    async def go():
        with Store(db) as store:
            run_id = store.create_run(suite="latentgym", model="replay")
            server = build(ServeOptions(record=db, record_run_id=run_id, record_model="replay"))
            sink = TranscriptSink(store)
            outcome = await run_agent(server, ReplayChatModel(responses=script), brief="play",
                                      start=("start_sequence", {"env": "secretary", "seed": 1, "n_tasks": 1}),
                                      on_event=sink)
            return outcome, sink.episode_id, run_id

    outcome, episode_id, run_id = anyio.run(go)
    errors = [m for m in outcome.messages if getattr(m, "status", None) == "error"]
    assert len(errors) == 2 and '"accept"' in errors[0].content
    assert outcome.stop_reason == "completed"
    score_db(db, run_id=run_id, show_progress=False)
    with Store(db) as store:
        (row,) = store.latest_scores(run_id=run_id)
        assert store.episode(episode_id)["termination"] == "completed"
    assert row["metrics"]["invalid_actions"] == 2 and row["metrics"]["tasks_played"] == 1


async def test_scoring_in_two_processes_gives_the_same_scores_and_failures(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    run_id = await record(db, "bayes", "bandit", seeds=(0, 1, 2), n_tasks=3)
    assert score_db(db, run_id=run_id, show_progress=False) == (3, [])
    with Store(db) as store:
        serial = {r["episode_id"]: r["metrics"] for r in store.latest_scores(run_id=run_id)}
    assert score_db(db, run_id=run_id, rescore=True, show_progress=False, jobs=2) == (3, [])
    with Store(db) as store:
        parallel = {r["episode_id"]: r["metrics"] for r in store.latest_scores(run_id=run_id)}
    assert parallel == serial
