"""Schema migrations for the transcript store, tracked with `PRAGMA user_version`.

Migration N upgrades a database at version N-1 to version N. They run inside one
`BEGIN IMMEDIATE` transaction, so when two processes open a fresh file at once, one migrates and
the other waits, then finds nothing left to do. Add a migration by appending a function to
`MIGRATIONS`; never edit one that has shipped, since databases in the wild already ran it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from sqlite_utils import Database


class SchemaTooNewError(RuntimeError):
    """The database was written by a newer testbeds than the one reading it."""


def _v1_initial(db: Database) -> None:
    db["runs"].create(
        {
            "run_id": str,
            "suite": str,
            "model": str,
            "seed": int,
            "config": str,
            "git_commit": str,
            "versions": str,
            "created_at": str,
        },
        pk="run_id",
        not_null=["suite", "model", "config", "versions", "created_at"],
    )
    db["episodes"].create(
        {
            "episode_id": str,
            "run_id": str,
            "suite": str,
            "handle": str,
            "settings": str,
            "termination": str,
            "termination_detail": str,
            "created_at": str,
        },
        pk="episode_id",
        foreign_keys=[("run_id", "runs", "run_id")],
        not_null=["run_id", "suite", "settings", "created_at"],
    )
    db["episodes"].create_index(["run_id"])
    db["episodes"].create_index(["handle"])
    db["events"].create(
        {
            "id": int,
            "episode_id": str,
            "seq": int,
            "type": str,
            "source": str,
            "ts": float,
            "data": str,
        },
        pk="id",
        foreign_keys=[("episode_id", "episodes", "episode_id")],
        not_null=["episode_id", "seq", "type", "source", "ts", "data"],
    )
    # The unique index is the last line of defence for gap-free, duplicate-free sequence numbers.
    db["events"].create_index(["episode_id", "seq"], unique=True)
    db["scores"].create(
        {
            "id": int,
            "episode_id": str,
            "scorer": str,
            "metrics": str,
            "created_at": str,
        },
        pk="id",
        foreign_keys=[("episode_id", "episodes", "episode_id")],
        not_null=["episode_id", "scorer", "metrics", "created_at"],
    )
    db["scores"].create_index(["episode_id", "scorer"])


def _v2_end_time_and_views(db: Database) -> None:
    db["episodes"].add_column("ended_at", str)
    db["events"].create_index(["type"])
    # Views make the common questions one click away in Datasette.
    db.create_view(
        "tool_calls",
        """SELECT events.episode_id, events.seq, events.source,
       json_extract(events.data, '$.call_id') AS call_id,
       json_extract(events.data, '$.name') AS name,
       json_extract(events.data, '$.arguments') AS arguments,
       events.ts
FROM events WHERE events.type = 'tool_call'""",
    )
    db.create_view(
        "latest_scores",
        """SELECT scores.id, scores.episode_id, scores.scorer, scores.metrics, scores.created_at,
       episodes.run_id, episodes.suite, episodes.settings, episodes.termination
FROM scores JOIN episodes ON episodes.episode_id = scores.episode_id
WHERE scores.id = (SELECT MAX(s2.id) FROM scores AS s2
                   WHERE s2.episode_id = scores.episode_id AND s2.scorer = scores.scorer)""",
    )


Migration = Callable[[Database], None]

MIGRATIONS: tuple[Migration, ...] = (_v1_initial, _v2_end_time_and_views)
LATEST_VERSION = len(MIGRATIONS)


def schema_version(conn: sqlite3.Connection) -> int:
    """The schema version recorded in the database file (0 for a new file)."""
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(db: Database, target: int | None = None) -> int:
    """Apply the pending migrations up to `target` (default: all) in one write transaction.

    Returns the schema version afterwards. The connection must be in driver autocommit mode
    (`isolation_level=None`) so that the explicit `BEGIN IMMEDIATE` here is the only transaction.
    """
    latest = len(MIGRATIONS)
    target = latest if target is None else target
    if not 0 <= target <= latest:
        raise ValueError(f"target version {target} is outside 0..{latest}")
    conn = db.conn
    current = schema_version(conn)
    if current <= latest and current >= target:
        return current  # the common case, a file already up to date: no write lock needed
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Re-read under the write lock: another process may have migrated meanwhile.
        current = schema_version(conn)
        if current > latest:
            raise SchemaTooNewError(
                f"database schema version {current} is newer than this testbeds supports ({latest}); "
                "upgrade testbeds to read it"
            )
        for version in range(current + 1, target + 1):
            MIGRATIONS[version - 1](db)
        if target > current:
            conn.execute(f"PRAGMA user_version = {int(target)}")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return max(current, target)
