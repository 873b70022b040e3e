"""The transcript store: runs, episodes, events and scores in one SQLite file.

Several processes write the same file at once (a server subprocess records tool calls while the
runner records messages), so the database runs in WAL mode with a busy timeout, and every write is
one `BEGIN IMMEDIATE` transaction: the per-episode sequence number is computed under the write
lock, which keeps it gap-free and ordered across processes. Within a process, one connection is
shared by all threads behind a lock. JSON columns are plain text so the file opens in Datasette.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.metadata
import json
import os
import platform
import sqlite3
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

from sqlite_utils import Database

from .events import EpisodeEnd, Event, TerminationReason, event_to_dict, parse_event
from .jsonable import dumps, to_jsonable
from .migrations import migrate, schema_version

BUSY_TIMEOUT_MS = 30_000
"""How long a writer waits for another process's write transaction before giving up."""

VERSIONED_PACKAGES: tuple[str, ...] = ("testbeds", "mcp", "langgraph", "langchain-core", "pydantic", "numpy")


def connect(path: str | os.PathLike[str]) -> sqlite3.Connection:
    """A connection set up the way every testbeds SQLite file is used: several processes and threads, WAL.

    isolation_level=None: no implicit transactions; every write opens its own BEGIN IMMEDIATE."""
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        _enter_wal(conn)
        # NORMAL is crash-safe in WAL mode and avoids an fsync per event.
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
    except BaseException:
        conn.close()
        raise
    return conn


def _enter_wal(conn: sqlite3.Connection) -> None:
    """Switch to WAL, retrying: when several processes open a fresh file at once, the switch can fail at once with
    "database is locked" (SQLite does not always call the busy handler for it), although it succeeds moments later."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    delay = 0.005
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.2)


class NotFoundError(LookupError):
    """A run or episode id that is not in the store."""


class Store:
    """A transcript store backed by one SQLite file; safe across threads and processes.

    Use it as a context manager, or call `close()` when done.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = connect(path)
        self._lock = threading.RLock()
        self._closed = False
        try:
            self._db = Database(self._conn, execute_plugins=False)
            migrate(self._db)
        except BaseException:
            self._conn.close()
            raise

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection; further calls fail. Closing twice is harmless."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        """The schema version of the open file (`migrations.LATEST_VERSION` once opened)."""
        with self._lock:
            return schema_version(self._conn)

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction holding SQLite's write lock from the start (no upgrade deadlocks)."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                if self._conn.in_transaction:  # some errors (disk full) already rolled back
                    self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _query(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> list[dict[str, Any]]:
        with self._lock:
            cursor = self._conn.execute(sql, params)
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row)) for row in cursor.fetchall()]

    # -- runs and episodes -------------------------------------------------------------------

    def create_run(
        self,
        *,
        suite: str,
        model: str,
        seed: int | None = None,
        config: dict[str, Any] | None = None,
        run_id: str | None = None,
    ) -> str:
        """Record a run and return its id (a new uuid4 hex unless given).

        An existing `run_id` is returned unchanged, so a run can be resumed or shared by processes.
        The git commit of the working directory's repository and package versions are recorded.
        """
        run_id = run_id or uuid.uuid4().hex
        row = {
            "run_id": run_id,
            "suite": suite,
            "model": model,
            "seed": None if seed is None else int(seed),
            "config": dumps(config or {}),
            "git_commit": git_commit(),
            "versions": dumps(package_versions()),
            "created_at": _now(),
        }
        with self._write() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO runs"
                " (run_id, suite, model, seed, config, git_commit, versions, created_at)"
                " VALUES (:run_id, :suite, :model, :seed, :config, :git_commit, :versions, :created_at)",
                row,
            )
        return run_id

    def create_episode(
        self,
        run_id: str,
        *,
        suite: str,
        handle: str | None = None,
        settings: dict[str, Any] | None = None,
        episode_id: str | None = None,
    ) -> str:
        """Record an episode of a run and return its id (a new uuid4 hex unless given; idempotent)."""
        episode_id = episode_id or uuid.uuid4().hex
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone() is None:
                raise NotFoundError(f"no run {run_id!r} in {self.path}; create it with create_run() first")
            conn.execute(
                "INSERT OR IGNORE INTO episodes (episode_id, run_id, suite, handle, settings, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (episode_id, run_id, suite, handle, dumps(settings or {}), _now()),
            )
        return episode_id

    def episode_for_handle(self, handle: str) -> str | None:
        """The id of the newest episode recorded under `handle`, or None."""
        rows = self._query(
            "SELECT episode_id FROM episodes WHERE handle = ? ORDER BY created_at DESC, rowid DESC LIMIT 1",
            (handle,),
        )
        return rows[0]["episode_id"] if rows else None

    def update_settings(self, episode_id: str, settings: dict[str, Any]) -> None:
        """Merge `settings` into the episode's settings (new keys win)."""
        with self._write() as conn:
            row = conn.execute("SELECT settings FROM episodes WHERE episode_id = ?", (episode_id,)).fetchone()
            if row is None:
                raise NotFoundError(_no_episode(episode_id, self.path))
            merged = {**json.loads(row[0]), **to_jsonable(settings)}
            conn.execute("UPDATE episodes SET settings = ? WHERE episode_id = ?", (dumps(merged), episode_id))

    # -- events ------------------------------------------------------------------------------

    def append(self, episode_id: str, event: Event) -> int:
        """Append an event (or an event dict) to an episode's transcript; return its seq (0, 1, 2, ...).

        Appending an `EpisodeEnd` ends the episode like `end_episode`: the first end wins, and a
        later one is not stored (the seq of the existing end is returned instead).
        """
        if isinstance(event, dict):
            event = parse_event(event)
        with self._write() as conn:
            if isinstance(event, EpisodeEnd):
                return self._end(conn, episode_id, event)
            self._require_episode(conn, episode_id)
            return self._insert_event(conn, episode_id, event)

    def end_episode(self, episode_id: str, reason: TerminationReason, detail: str | None = None) -> None:
        """End an episode: append an `EpisodeEnd` event and set its termination reason.

        The first end wins; ending an ended episode changes nothing.
        """
        with self._write() as conn:
            self._end(conn, episode_id, EpisodeEnd(reason=reason, detail=detail))

    def _end(self, conn: sqlite3.Connection, episode_id: str, event: EpisodeEnd) -> int:
        row = conn.execute("SELECT termination FROM episodes WHERE episode_id = ?", (episode_id,)).fetchone()
        if row is None:
            raise NotFoundError(_no_episode(episode_id, self.path))
        if row[0] is not None:
            existing = conn.execute(
                "SELECT MAX(seq) FROM events WHERE episode_id = ? AND type = 'episode_end'", (episode_id,)
            ).fetchone()[0]
            return int(existing) if existing is not None else -1
        seq = self._insert_event(conn, episode_id, event)
        conn.execute(
            "UPDATE episodes SET termination = ?, termination_detail = ?, ended_at = ? WHERE episode_id = ?",
            (event.reason, event.detail, _now(), episode_id),
        )
        return seq

    def _require_episode(self, conn: sqlite3.Connection, episode_id: str) -> None:
        if conn.execute("SELECT 1 FROM episodes WHERE episode_id = ?", (episode_id,)).fetchone() is None:
            raise NotFoundError(_no_episode(episode_id, self.path))

    @staticmethod
    def _insert_event(conn: sqlite3.Connection, episode_id: str, event: Event) -> int:
        # Runs inside BEGIN IMMEDIATE, so no other writer can take the same seq between these two lines.
        seq = conn.execute(
            "SELECT COALESCE(MAX(seq), -1) + 1 FROM events WHERE episode_id = ?", (episode_id,)
        ).fetchone()[0]
        data = event_to_dict(event)
        conn.execute(
            "INSERT INTO events (episode_id, seq, type, source, ts, data) VALUES (?, ?, ?, ?, ?, ?)",
            (episode_id, seq, event.type, event.source, event.ts, dumps(data)),
        )
        return int(seq)

    # -- scores ------------------------------------------------------------------------------

    def add_score(self, episode_id: str, scorer: str, metrics: dict[str, Any]) -> None:
        """Append a score row for an episode. Events are never touched; re-scoring adds a newer row."""
        with self._write() as conn:
            self._require_episode(conn, episode_id)
            conn.execute(
                "INSERT INTO scores (episode_id, scorer, metrics, created_at) VALUES (?, ?, ?, ?)",
                (episode_id, scorer, dumps(metrics), _now()),
            )

    # -- reading -----------------------------------------------------------------------------

    def runs(self) -> list[dict[str, Any]]:
        """All runs, oldest first, with `config` and `versions` decoded."""
        return [_decode_run(r) for r in self._query("SELECT * FROM runs ORDER BY created_at, rowid")]

    def run(self, run_id: str) -> dict[str, Any]:
        """One run, with `config` and `versions` decoded."""
        rows = self._query("SELECT * FROM runs WHERE run_id = ?", (run_id,))
        if not rows:
            raise NotFoundError(f"no run {run_id!r} in {self.path}")
        return _decode_run(rows[0])

    def episodes(self, run_id: str | None = None, suite: str | None = None) -> list[dict[str, Any]]:
        """Episodes, oldest first, optionally of one run and/or suite, with `settings` decoded."""
        clauses, params = _filters({"run_id": run_id, "suite": suite})
        where = " WHERE " + " AND ".join(clauses) if clauses else ""
        rows = self._query(f"SELECT * FROM episodes{where} ORDER BY created_at, rowid", params)
        return [_decode_episode(r) for r in rows]

    def episode(self, episode_id: str) -> dict[str, Any]:
        """One episode, with `settings` decoded."""
        rows = self._query("SELECT * FROM episodes WHERE episode_id = ?", (episode_id,))
        if not rows:
            raise NotFoundError(_no_episode(episode_id, self.path))
        return _decode_episode(rows[0])

    def events(self, episode_id: str) -> list[Event]:
        """An episode's transcript in sequence order."""
        return [event for _, event in self.events_with_seq(episode_id)]

    def events_with_seq(self, episode_id: str) -> list[tuple[int, Event]]:
        """An episode's transcript as (seq, event) pairs in sequence order."""
        rows = self._query("SELECT seq, data FROM events WHERE episode_id = ? ORDER BY seq", (episode_id,))
        return [(int(r["seq"]), parse_event(json.loads(r["data"]))) for r in rows]

    def latest_scores(self, run_id: str | None = None, scorer: str | None = None) -> list[dict[str, Any]]:
        """The newest score per (episode, scorer), joined with episode settings and run model/suite/seed.

        Each row has: score_id, episode_id, run_id, scorer, metrics (dict), scored_at, suite, handle,
        settings (dict), termination, model, seed.
        """
        clauses, params = _filters({"e.run_id": run_id, "s.scorer": scorer})
        clauses.insert(0, "s.id IN (SELECT MAX(id) FROM scores GROUP BY episode_id, scorer)")
        rows = self._query(
            f"""SELECT s.id AS score_id, s.episode_id, e.run_id, s.scorer, s.metrics,
                       s.created_at AS scored_at, e.suite, e.handle, e.settings, e.termination,
                       r.model, r.seed
                FROM scores AS s
                JOIN episodes AS e ON e.episode_id = s.episode_id
                JOIN runs AS r ON r.run_id = e.run_id
                WHERE {" AND ".join(clauses)}
                ORDER BY e.created_at, e.rowid, s.scorer""",
            params,
        )
        for row in rows:
            row["metrics"] = json.loads(row["metrics"])
            row["settings"] = json.loads(row["settings"])
        return rows

    def score_history(self, episode_id: str) -> list[dict[str, Any]]:
        """Every score row of an episode, oldest first, with `metrics` decoded."""
        rows = self._query("SELECT * FROM scores WHERE episode_id = ? ORDER BY id", (episode_id,))
        for row in rows:
            row["metrics"] = json.loads(row["metrics"])
        return rows

    # -- export ------------------------------------------------------------------------------

    def export_jsonl(self, out: str | os.PathLike[str] | TextIO, run_id: str | None = None) -> int:
        """Write runs, episodes, events and scores as JSON Lines; return the number of lines.

        Each line has a `kind`: "run" (the run row), "episode" (the episode row), "event"
        (`episode_id`, `seq` and the event's own fields) or "score" (`episode_id`, `scorer`,
        `metrics`, `created_at`, `score_id`). Each run is followed by its episodes, each episode by
        its events and then its scores (oldest first).
        """
        if isinstance(out, (str, os.PathLike)):
            with open(out, "w", encoding="utf-8") as handle:
                return self.export_jsonl(handle, run_id)
        runs = [self.run(run_id)] if run_id is not None else self.runs()
        written = 0

        def emit(record: dict[str, Any]) -> None:
            nonlocal written
            out.write(dumps(record) + "\n")
            written += 1

        for run in runs:
            emit({"kind": "run", **run})
            for episode in self.episodes(run_id=run["run_id"]):
                emit({"kind": "episode", **episode})
                for seq, event in self.events_with_seq(episode["episode_id"]):
                    emit({"kind": "event", "episode_id": episode["episode_id"], "seq": seq,
                          **event_to_dict(event)})
                for score in self.score_history(episode["episode_id"]):
                    emit({"kind": "score", "score_id": score["id"], "episode_id": score["episode_id"],
                          "scorer": score["scorer"], "metrics": score["metrics"],
                          "created_at": score["created_at"]})
        return written


def git_commit(cwd: str | os.PathLike[str] | None = None) -> str | None:
    """The HEAD commit of the git repository containing `cwd` (default: the working dir), or None."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "--verify", "HEAD"],
            cwd=cwd or os.getcwd(),
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    commit = result.stdout.strip()
    return commit if result.returncode == 0 and commit else None


def package_versions(packages: tuple[str, ...] = VERSIONED_PACKAGES) -> dict[str, str]:
    """Installed versions of `packages` (missing ones are left out), plus the Python version."""
    versions: dict[str, str] = {}
    for name in packages:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    versions["python"] = platform.python_version()
    return versions


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds")


def _no_episode(episode_id: str, path: Path) -> str:
    return f"no episode {episode_id!r} in {path}; create it with create_episode() first"


def _filters(filters: dict[str, Any]) -> tuple[list[str], list[Any]]:
    """Equality clauses for the filters that are set (column names are ours, never user input)."""
    clauses = [f"{column} = ?" for column, value in filters.items() if value is not None]
    params = [value for value in filters.values() if value is not None]
    return clauses, params


def _decode_run(row: dict[str, Any]) -> dict[str, Any]:
    row["config"] = json.loads(row["config"])
    row["versions"] = json.loads(row["versions"])
    return row


def _decode_episode(row: dict[str, Any]) -> dict[str, Any]:
    row["settings"] = json.loads(row["settings"])
    return row
