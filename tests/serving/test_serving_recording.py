"""--record: every tool call and result lands in the store, in the episode of its handle."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from counter_server import build
from mcp import Client, MCPError
from testbeds_evals.store import Store
from testbeds_serving import ServeOptions, SuiteServer

pytestmark = pytest.mark.anyio


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("TESTBEDS_RUN_ID", raising=False)
    monkeypatch.delenv("TESTBEDS_MODEL", raising=False)
    return tmp_path / "runs.db"


@pytest.fixture
def store(db: Path) -> Iterator[Store]:
    with Store(db) as s:
        yield s


def recording(db: Path, **kwargs: Any) -> SuiteServer:
    return build(ServeOptions(record=db), **kwargs)


def summary(store: Store, episode_id: str) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    for event in store.events(episode_id):
        if event.type == "tool_call":
            out.append(("call", event.name, event.arguments))
        elif event.type == "tool_result":
            out.append(("result", event.name, event.is_error))
        elif event.type == "episode_end":
            out.append(("end", event.reason, event.detail))
        else:
            out.append((event.type,))
    return out


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_calls_and_results_are_recorded_in_the_handles_episode(mode: str, db: Path, store: Store) -> None:
    server = recording(db)
    async with Client(server, mode=mode) as client:
        handle = (await client.call_tool("start", {"seed": 5, "label": "x"})).structured_content["handle"]
        await client.call_tool("add", {"handle": handle, "amount": 2})
        await client.call_tool("divide", {"handle": handle, "by": 0})
    episode = store.episode_for_handle(handle)
    assert episode is not None
    assert summary(store, episode) == [
        ("call", "start", {"seed": 5, "label": "x"}),
        ("result", "start", False),
        ("call", "add", {"handle": handle, "amount": 2}),
        ("result", "add", False),
        ("call", "divide", {"handle": handle, "by": 0}),
        ("result", "divide", True),
    ]
    events = store.events(episode)
    assert events[3].structured == {"total": 2, "steps": 1}  # type: ignore[union-attr]
    assert events[5].content == "cannot divide by 0; pass a non-zero 'by'"  # type: ignore[union-attr]
    assert {e.source for e in events} == {"server"}
    assert events[0].call_id == events[1].call_id != events[2].call_id  # type: ignore[union-attr]


async def test_a_start_episode_gets_evaluator_info_over_the_start_arguments(db: Path, store: Store) -> None:
    async with Client(recording(db)) as client:
        handle = (await client.call_tool("start", {"seed": 5, "label": "x"})).structured_content["handle"]
    row = store.episode(store.episode_for_handle(handle))  # type: ignore[arg-type]
    assert row["settings"] == {"seed": 5, "label": "x", "secret": 42}
    assert row["suite"] == "counter" and row["handle"] == handle


async def test_interleaved_handles_go_to_their_own_episodes(db: Path, store: Store) -> None:
    async with Client(recording(db)) as client:
        a = (await client.call_tool("start", {})).structured_content["handle"]
        b = (await client.call_tool("start", {})).structured_content["handle"]
        for handle, amount in [(a, 1), (b, 2), (a, 3)]:
            await client.call_tool("add", {"handle": handle, "amount": amount})
    amounts = {
        h: [e.arguments["amount"] for e in store.events(store.episode_for_handle(h))  # type: ignore[arg-type]
            if e.type == "tool_call" and e.name == "add"]
        for h in (a, b)
    }
    assert amounts == {a: [1, 3], b: [2]}


async def test_calls_without_a_known_handle_go_to_the_unbound_episode(db: Path, store: Store) -> None:
    async with Client(recording(db)) as client:
        await client.call_tool("no_such_tool", {"x": 1})
        await client.call_tool("add", {"amount": 1})
        await client.call_tool("add", {"handle": "made-up", "amount": 1})
    [unbound] = [e for e in store.episodes() if e["settings"].get("unbound")]
    assert unbound["handle"] is None
    assert summary(store, unbound["episode_id"]) == [
        ("call", "no_such_tool", {"x": 1}),
        ("result", "no_such_tool", True),
        ("call", "add", {"amount": 1}),
        ("result", "add", True),
        ("call", "add", {"handle": "made-up", "amount": 1}),
        ("result", "add", True),
    ]


async def test_a_protocol_error_is_recorded_as_an_error_event(db: Path, store: Store) -> None:
    async with Client(recording(db)) as client:
        handle = (await client.call_tool("start", {})).structured_content["handle"]
        with pytest.raises(MCPError):
            await client.call_tool("reject", {"handle": handle})
    events = store.events(store.episode_for_handle(handle))  # type: ignore[arg-type]
    assert [e.type for e in events] == ["tool_call", "tool_result", "tool_call", "error"]
    assert "sampling capability" in events[-1].message  # type: ignore[union-attr]
    assert events[-1].where == "tools/call reject"  # type: ignore[union-attr]


async def test_an_ended_entry_ends_its_episode_completed_after_the_last_result(db: Path, store: Store) -> None:
    async with Client(recording(db)) as client:
        handle = (await client.call_tool("start", {})).structured_content["handle"]
        await client.call_tool("add", {"handle": handle, "amount": 4})
        await client.call_tool("finish", {"handle": handle})
    episode = store.episode_for_handle(handle)
    assert summary(store, episode)[-3:] == [  # type: ignore[arg-type]
        ("call", "finish", {"handle": handle}),
        ("result", "finish", False),
        ("end", "completed", "finished by the agent"),
    ]
    row = store.episode(episode)  # type: ignore[arg-type]
    assert row["termination"] == "completed"
    assert row["settings"]["final"] == 4  # evaluator info added during the episode


async def test_an_expired_entry_ends_its_episode_abandoned(db: Path, store: Store) -> None:
    now = [0.0]
    async with Client(recording(db, idle_seconds=10, clock=lambda: now[0])) as client:
        handle = (await client.call_tool("start", {})).structured_content["handle"]
        now[0] += 11
        await client.call_tool("start", {})  # creating sweeps the idle entry
    row = store.episode(store.episode_for_handle(handle))  # type: ignore[arg-type]
    assert row["termination"] == "abandoned"
    assert row["termination_detail"] == "handle expired before the episode ended"


async def test_the_run_joins_the_runners_run_and_names_its_model(
    db: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = store.create_run(suite="counter", model="scripted", run_id="run-from-runner")
    monkeypatch.setenv("TESTBEDS_RUN_ID", run_id)
    monkeypatch.setenv("TESTBEDS_MODEL", "ignored-for-an-existing-run")
    async with Client(recording(db)) as client:
        handle = (await client.call_tool("start", {})).structured_content["handle"]
    assert store.episode(store.episode_for_handle(handle))["run_id"] == run_id  # type: ignore[arg-type]
    assert [r["run_id"] for r in store.runs()] == [run_id]


async def test_a_new_run_takes_its_model_from_the_environment(
    db: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TESTBEDS_MODEL", "claude-desktop")
    async with Client(recording(db)) as client:
        await client.call_tool("start", {})
    [run] = store.runs()
    assert (run["suite"], run["model"]) == ("counter", "claude-desktop")


async def test_a_broken_store_changes_nothing_for_the_client(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    results = {}
    for name, options in [("plain", ServeOptions()), ("broken", ServeOptions(record=blocker / "runs.db"))]:
        with caplog.at_level(logging.WARNING, logger="testbeds.serving.recording"):
            async with Client(build(options)) as client:
                handle = (await client.call_tool("start", {})).structured_content["handle"]
                added = await client.call_tool("add", {"handle": handle, "amount": 2})
                failed = await client.call_tool("divide", {"handle": handle, "by": 0})
        results[name] = (added.structured_content, added.is_error, failed.content, failed.is_error)
    assert results["broken"] == results["plain"]
    assert any("recording to" in r.getMessage() for r in caplog.records)
