"""Studies on disk: one SQLite row per study, rewritten atomically after every change, so a study survives
a server restart (the handle keeps working) and a failed call never leaves a half-written study."""

from __future__ import annotations

import json
import threading
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import sqlite_utils
from testbeds_evals.store import connect

from .backends import make_backend
from .models import Point, RecordedRun, RunRecord, StudySpec
from .study import LedgerEntry, Study


class StudyStore:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite_utils.Database(connect(self.path))
        self._lock = threading.Lock()
        # Several servers may open a fresh file at once (the harness runs episodes in parallel): create the
        # table idempotently inside one write transaction.
        with self._lock, self.db.conn:
            self.db.conn.execute("BEGIN IMMEDIATE")
            self.db.conn.execute(
                "CREATE TABLE IF NOT EXISTS studies (handle TEXT PRIMARY KEY, spec TEXT, backend TEXT, "
                "backend_path TEXT, method TEXT, runs TEXT, points TEXT, ledger TEXT, checkpoints TEXT, "
                "created_at TEXT, updated_at TEXT)")

    def save(self, handle: str, study: Study, backend_name: str, backend_path: str | None) -> None:
        now = datetime.now(UTC).isoformat()
        row = {"handle": handle, "spec": study.spec.model_dump_json(), "backend": backend_name,
               "backend_path": backend_path or "", "method": study.method,
               "runs": json.dumps([r.model_dump() for r in study.runs]),
               "points": json.dumps([p.model_dump() for p in study.points]),
               "ledger": json.dumps([asdict(e) for e in study.ledger]),
               "checkpoints": json.dumps([c.model_dump() for c in study.checkpoints]), "updated_at": now}
        with self._lock, self.db.conn:  # one transaction: the row is replaced whole or not at all
            self.db.conn.execute("BEGIN IMMEDIATE")
            existing = self.db["studies"].count_where("handle = ?", [handle])
            self.db["studies"].upsert({**row, "created_at": now} if not existing else row, pk="handle")

    def load(self, handle: str) -> tuple[Study, str, str | None] | None:
        with self._lock:
            rows = list(self.db["studies"].rows_where("handle = ?", [handle]))
        if not rows:
            return None
        row = rows[0]
        path = row["backend_path"] or None
        study = Study(spec=StudySpec.model_validate_json(row["spec"]), backend=make_backend(row["backend"], path),
                      method=row["method"],
                      runs=[RunRecord(**r) for r in json.loads(row["runs"])],
                      points=[Point(**p) for p in json.loads(row["points"])],
                      ledger=[LedgerEntry(**e) for e in json.loads(row["ledger"])],
                      checkpoints=[RecordedRun(**c) for c in json.loads(row["checkpoints"])])
        return study, row["backend"], path

    def close(self) -> None:
        self.db.close()
