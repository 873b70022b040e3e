"""`testbeds score`: score recorded episodes. Scoring reads events and appends scores; it never rewrites
events, so it can be re-run (a newer score supersedes an older one in reports)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .progress import progress
from .store import Store
from .suites import PLUGINS, plugin


def score_db(db: Path, *, run_id: str | None = None, rescore: bool = False, show_progress: bool = True
             ) -> tuple[int, list[tuple[str, str]]]:
    """Score every episode of a known suite that has a handle (and, unless `rescore`, no score yet).

    Returns (episodes scored, [(episode id, why it could not be scored)])."""
    failures: list[tuple[str, str]] = []
    scored = 0
    with Store(db) as store:
        done = {(r["episode_id"], r["scorer"]) for r in store.latest_scores(run_id=run_id)}
        todo = []
        for episode in store.episodes(run_id=run_id):
            if episode["suite"] not in PLUGINS or not episode.get("handle"):
                continue
            scorer = plugin(episode["suite"]).SCORER
            if rescore or (episode["episode_id"], scorer) not in done:
                todo.append(episode)
        with progress(len(todo), "scoring", enabled=show_progress) as advance:
            for episode in todo:
                suite = plugin(episode["suite"])
                try:
                    metrics = suite.score_episode(episode, store.events(episode["episode_id"]))
                except Exception as exc:  # one unscorable episode must not stop the others
                    failures.append((episode["episode_id"], f"{type(exc).__name__}: {exc}"))
                else:
                    store.add_score(episode["episode_id"], suite.SCORER, metrics)
                    scored += 1
                advance()
    return scored, failures


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("score", help="score recorded episodes (appends scores; events are never changed)")
    p.add_argument("db", metavar="DB", help="the SQLite transcript store")
    p.add_argument("--run", metavar="ID", help="only this run")
    p.add_argument("--rescore", action="store_true", help="score episodes that already have a score again")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_score)


def _score(args: argparse.Namespace) -> int:
    db = Path(args.db)
    if not db.is_file():
        print(f"testbeds: error: no database at {db}", file=sys.stderr)
        return 2
    scored, failures = score_db(db, run_id=args.run, rescore=args.rescore, show_progress=not args.no_progress)
    print(f"scored {scored} episodes in {db}")
    for episode_id, why in failures:
        print(f"  could not score {episode_id}: {why}", file=sys.stderr)
    return 1 if failures else 0
