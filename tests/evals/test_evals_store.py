"""The SQLite transcript store: runs, episodes, ordered events, scores and JSONL export."""

from __future__ import annotations

import io
import json
import sqlite3
import threading
from pathlib import Path

import numpy as np
import pytest
from testbeds_evals.events import EpisodeEnd, Error, Message, ToolCall, ToolResult, parse_event, payload
from testbeds_evals.store import NotFoundError, Store, package_versions


@pytest.fixture
def store(tmp_path: Path) -> Store:
    with Store(tmp_path / "runs.db") as opened:
        yield opened


def _episode(store: Store, **settings: object) -> str:
    run_id = store.create_run(suite="latentgym", model="scripted", seed=1)
    return store.create_episode(run_id, suite="latentgym", handle="h", settings=dict(settings))


def test_appended_events_come_back_in_order_with_consecutive_seqs(store: Store) -> None:
    episode = _episode(store)
    events = [
        Message(role="user", content="start"),
        ToolCall(call_id="1", name="pull", arguments={"arm": 0}),
        ToolResult(call_id="1", name="pull", content="1", structured={"reward": 1}),
        Error(message="oops"),
    ]
    seqs = [store.append(episode, e) for e in events]
    assert seqs == [0, 1, 2, 3]
    assert store.events(episode) == events


def test_an_event_can_be_appended_as_a_dict(store: Store) -> None:
    episode = _episode(store)
    store.append(episode, {"type": "tool_call", "call_id": "7", "name": "pull", "source": "server"})
    stored = store.events(episode)
    assert stored == [ToolCall(call_id="7", name="pull", source="server", ts=stored[0].ts)]


def test_each_episode_numbers_its_events_from_zero(store: Store) -> None:
    first, second = _episode(store), _episode(store)
    assert store.append(first, Message(role="user", content="a")) == 0
    assert store.append(first, Message(role="user", content="b")) == 1
    assert store.append(second, Message(role="user", content="c")) == 0


def test_appending_to_an_unknown_episode_fails_with_a_clear_error(store: Store) -> None:
    with pytest.raises(NotFoundError, match="no episode 'nope'"):
        store.append("nope", Message(role="user", content="x"))


def test_an_episode_needs_an_existing_run(store: Store) -> None:
    with pytest.raises(NotFoundError, match="no run 'ghost'"):
        store.create_episode("ghost", suite="sheets")


def test_the_first_end_of_an_episode_wins(store: Store) -> None:
    episode = _episode(store)
    store.append(episode, Message(role="user", content="go"))
    store.end_episode(episode, "completed", "submitted")
    store.end_episode(episode, "timeout")
    assert store.append(episode, EpisodeEnd(reason="error")) == 1
    row = store.episode(episode)
    assert (row["termination"], row["termination_detail"]) == ("completed", "submitted")
    assert row["ended_at"] is not None
    ends = [e for e in store.events(episode) if isinstance(e, EpisodeEnd)]
    assert [(e.reason, e.detail) for e in ends] == [("completed", "submitted")]


def test_appending_an_episode_end_event_sets_the_termination(store: Store) -> None:
    episode = _episode(store)
    store.append(episode, EpisodeEnd(reason="max_steps"))
    assert store.episode(episode)["termination"] == "max_steps"


def test_create_run_records_versions_and_is_idempotent_for_a_given_id(store: Store) -> None:
    config = {"n": np.int64(2)}
    run_id = store.create_run(suite="sheets", model="scripted", seed=3, config=config, run_id="r1")
    again = store.create_run(suite="other", model="other", run_id="r1")
    assert run_id == again == "r1"
    (run,) = store.runs()
    assert (run["suite"], run["model"], run["seed"], run["config"]) == ("sheets", "scripted", 3, {"n": 2})
    assert run["versions"]["pydantic"] == package_versions()["pydantic"]
    assert "git_commit" in run


def test_generated_ids_are_unique(store: Store) -> None:
    assert store.create_run(suite="s", model="m") != store.create_run(suite="s", model="m")


def test_episode_for_handle_finds_the_newest_episode_with_that_handle(store: Store) -> None:
    run_id = store.create_run(suite="latentgym", model="m")
    store.create_episode(run_id, suite="latentgym", handle="abc", episode_id="old")
    store.create_episode(run_id, suite="latentgym", handle="abc", episode_id="new")
    assert store.episode_for_handle("abc") == "new"
    assert store.episode_for_handle("unknown") is None


def test_update_settings_merges_keys(store: Store) -> None:
    episode = _episode(store, env="bandit", seed=1)
    store.update_settings(episode, {"seed": 2, "policy": "greedy"})
    assert store.episode(episode)["settings"] == {"env": "bandit", "seed": 2, "policy": "greedy"}


def test_episodes_filter_by_run_and_suite(store: Store) -> None:
    run_a = store.create_run(suite="latentgym", model="m")
    run_b = store.create_run(suite="sheets", model="m")
    a = store.create_episode(run_a, suite="latentgym")
    b = store.create_episode(run_b, suite="sheets")
    assert [e["episode_id"] for e in store.episodes()] == [a, b]
    assert [e["episode_id"] for e in store.episodes(run_id=run_b)] == [b]
    assert [e["episode_id"] for e in store.episodes(suite="latentgym")] == [a]


def test_scores_are_appended_and_the_latest_per_scorer_wins(store: Store) -> None:
    episode = _episode(store, env="bandit")
    store.append(episode, Message(role="user", content="x"))
    store.add_score(episode, "exact", {"passed": False, "regret": np.float64(1.5)})
    store.add_score(episode, "exact", {"passed": True, "regret": 0.0})
    store.add_score(episode, "judge", {"passed": False})
    assert [s["metrics"] for s in store.score_history(episode)] == [
        {"passed": False, "regret": 1.5},
        {"passed": True, "regret": 0.0},
        {"passed": False},
    ]
    latest = {row["scorer"]: row for row in store.latest_scores()}
    assert latest["exact"]["metrics"] == {"passed": True, "regret": 0.0}
    assert latest["judge"]["metrics"] == {"passed": False}
    assert latest["exact"]["settings"] == {"env": "bandit"}
    exact = latest["exact"]
    assert (exact["model"], exact["suite"], exact["seed"]) == ("scripted", "latentgym", 1)
    assert [r["scorer"] for r in store.latest_scores(scorer="judge")] == ["judge"]
    assert len(store.events(episode)) == 1  # scoring never touches the transcript


def test_latest_scores_filter_by_run(store: Store) -> None:
    run_a = store.create_run(suite="s", model="a")
    run_b = store.create_run(suite="s", model="b")
    for run_id in (run_a, run_b):
        store.add_score(store.create_episode(run_id, suite="s"), "x", {"v": 1})
    assert [r["model"] for r in store.latest_scores(run_id=run_b)] == ["b"]


def test_threads_sharing_one_store_get_unique_ordered_seqs(store: Store) -> None:
    episode = _episode(store)
    per_thread = 40

    def write(tag: int) -> None:
        for i in range(per_thread):
            store.append(episode, Message(role="user", content=f"{tag}:{i}"))

    threads = [threading.Thread(target=write, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    contents = [e.content for e in store.events(episode)]  # type: ignore[union-attr]
    assert len(contents) == 4 * per_thread
    for tag in range(4):
        assert [c for c in contents if c.startswith(f"{tag}:")] == [f"{tag}:{i}" for i in range(per_thread)]


def test_export_jsonl_parses_back_to_the_same_records(store: Store, tmp_path: Path) -> None:
    episode = _episode(store, env="bandit")
    events = [Message(role="user", content="hi"), ToolCall(call_id="1", name="t", arguments={"a": [1, 2]})]
    for event in events:
        store.append(episode, event)
    store.end_episode(episode, "completed")
    store.add_score(episode, "exact", {"passed": True})
    out = tmp_path / "export.jsonl"
    written = store.export_jsonl(out)
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert written == len(lines) == 1 + 1 + 3 + 1
    assert [line["kind"] for line in lines] == ["run", "episode", "event", "event", "event", "score"]
    parsed = [
        parse_event({k: v for k, v in line.items() if k not in ("kind", "episode_id", "seq")})
        for line in lines if line["kind"] == "event"
    ]
    assert parsed == store.events(episode)
    assert [line["seq"] for line in lines if line["kind"] == "event"] == [0, 1, 2]
    assert lines[1]["settings"] == {"env": "bandit"}
    assert lines[-1]["metrics"] == {"passed": True}


def test_export_jsonl_to_a_stream_can_select_one_run(store: Store) -> None:
    keep = store.create_run(suite="s", model="keep")
    store.create_episode(keep, suite="s")
    store.create_episode(store.create_run(suite="s", model="skip"), suite="s")
    buffer = io.StringIO()
    assert store.export_jsonl(buffer, run_id=keep) == 2
    assert {json.loads(line)["run_id"] for line in buffer.getvalue().splitlines()} == {keep}


def test_the_file_is_plain_sqlite_with_json_text_columns(store: Store) -> None:
    episode = _episode(store, env="bandit")
    store.append(episode, ToolCall(call_id="1", name="pull", arguments={"arm": 3}))
    conn = sqlite3.connect(store.path)
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"runs", "episodes", "events", "scores"} <= tables
        arm = conn.execute("SELECT json_extract(data, '$.arguments.arm') FROM events").fetchone()[0]
        env = conn.execute("SELECT json_extract(settings, '$.env') FROM episodes").fetchone()[0]
        view = conn.execute("SELECT name, arguments FROM tool_calls").fetchone()
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    finally:
        conn.close()
    assert (arm, env, view, mode) == (3, "bandit", ("pull", '{"arm":3}'), "wal")


def test_reopening_a_store_keeps_its_data(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    with Store(path) as store:
        episode = _episode(store)
        store.append(episode, Message(role="user", content="kept"))
    with Store(path) as store:
        assert [payload(e)["content"] for e in store.events(episode)] == ["kept"]
