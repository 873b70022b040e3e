"""Schema migrations: old files upgrade in place, reopening is a no-op, newer files are refused."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlite_utils import Database
from testbeds_evals.events import Message
from testbeds_evals.migrations import LATEST_VERSION, SchemaTooNewError, migrate, schema_version
from testbeds_evals.store import Store


def _make_v1_database(path: Path) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        assert migrate(Database(conn), target=1) == 1
        conn.execute(
            "INSERT INTO runs (run_id, suite, model, seed, config, git_commit, versions, created_at)"
            " VALUES ('r1', 'latentgym', 'scripted', 4, '{}', NULL, '{}', '2025-01-01T00:00:00+00:00')"
        )
        conn.execute(
            "INSERT INTO episodes (episode_id, run_id, suite, handle, settings, created_at)"
            " VALUES ('e1', 'r1', 'latentgym', 'h1', '{\"env\": \"bandit\"}', '2025-01-01T00:00:01+00:00')"
        )
        conn.execute(
            "INSERT INTO events (episode_id, seq, type, source, ts, data) VALUES"
            " ('e1', 0, 'message', 'agent', 1.0,"
            " '{\"type\":\"message\",\"source\":\"agent\",\"ts\":1.0,\"role\":\"user\",\"content\":\"old\"}')"
        )
    finally:
        conn.close()


def _columns(path: Path, table: str) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
    finally:
        conn.close()


def test_a_version_one_database_has_no_end_time_column(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _make_v1_database(path)
    assert "ended_at" not in _columns(path, "episodes")


def test_opening_an_old_database_upgrades_it_and_keeps_its_data(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _make_v1_database(path)
    with Store(path) as store:
        assert store.schema_version == LATEST_VERSION > 1
        assert [e.content for e in store.events("e1")] == ["old"]  # type: ignore[union-attr]
        assert store.append("e1", Message(role="user", content="new")) == 1
        store.end_episode("e1", "completed")
        assert store.episode("e1")["ended_at"] is not None
        assert store.runs()[0]["seed"] == 4
    assert "ended_at" in _columns(path, "episodes")


def test_reopening_an_up_to_date_database_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    with Store(path) as store:
        run_id = store.create_run(suite="s", model="m")
    with Store(path) as store:
        assert store.schema_version == LATEST_VERSION
        assert [r["run_id"] for r in store.runs()] == [run_id]


def test_a_database_from_a_newer_testbeds_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {LATEST_VERSION + 1}")
    conn.close()
    with pytest.raises(SchemaTooNewError, match="upgrade testbeds"):
        Store(path)


def test_a_failing_migration_leaves_the_database_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import testbeds_evals.migrations as migrations

    def broken(db: Database) -> None:
        db["half_done"].create({"x": int})
        raise RuntimeError("boom")

    path = tmp_path / "old.db"
    _make_v1_database(path)
    monkeypatch.setattr(migrations, "MIGRATIONS", (migrations.MIGRATIONS[0], broken))
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        with pytest.raises(RuntimeError, match="boom"):
            migrations.migrate(Database(conn))
        assert schema_version(conn) == 1
        assert "half_done" not in Database(conn).table_names()
    finally:
        conn.close()
