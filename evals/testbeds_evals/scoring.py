"""`testbeds score`: score recorded episodes. Scoring reads events and appends scores; it never rewrites
events, so it can be re-run (a newer score supersedes an older one in reports)."""

from __future__ import annotations

import argparse
import multiprocessing
import sys
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .progress import progress
from .store import Store
from .suites import PLUGINS, plugin


def _score_one(suite_name: str, episode: dict[str, Any], events: list[Any]) -> dict[str, Any]:
    return plugin(suite_name).score_episode(episode, events)


def score_db(db: Path, *, run_id: str | None = None, rescore: bool = False, show_progress: bool = True,
             jobs: int = 1) -> tuple[int, list[tuple[str, str]]]:
    """Score every episode of a known suite that has a handle (and, unless `rescore`, no score yet).

    With `jobs` > 1 the episodes are scored in that many processes (scorers that replay are CPU-bound); scores
    are still written by this process, in episode order. Returns (episodes scored, [(episode id, why it could
    not be scored)])."""
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
        with progress(len(todo), "scoring", enabled=show_progress) as advance, _pool(jobs, len(todo)) as pool:
            pending = [(e, pool.submit(_score_one, e["suite"], e, store.events(e["episode_id"])) if pool else None)
                       for e in todo]
            for episode, future in pending:
                try:
                    metrics = future.result() if future is not None else \
                        _score_one(episode["suite"], episode, store.events(episode["episode_id"]))
                except Exception as exc:  # one unscorable episode must not stop the others
                    failures.append((episode["episode_id"], f"{type(exc).__name__}: {exc}"))
                else:
                    store.add_score(episode["episode_id"], plugin(episode["suite"]).SCORER, metrics)
                    scored += 1
                advance()
    return scored, failures


@contextmanager
def _pool(jobs: int, n: int) -> Iterator[ProcessPoolExecutor | None]:
    if jobs <= 1 or n <= 1:
        yield None
        return
    # spawn: a forked child would inherit the store's open SQLite connection and the parent's threads
    with ProcessPoolExecutor(max_workers=min(jobs, n), mp_context=multiprocessing.get_context("spawn")) as pool:
        yield pool


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("score", help="score recorded episodes (appends scores; events are never changed)")
    p.add_argument("db", metavar="DB", help="the SQLite transcript store")
    p.add_argument("--run", metavar="ID", help="only this run")
    p.add_argument("--rescore", action="store_true", help="score episodes that already have a score again")
    p.add_argument("--jobs", type=int, default=1, help="score in this many processes (default 1)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_score)


def _score(args: argparse.Namespace) -> int:
    db = Path(args.db)
    if not db.is_file():
        print(f"testbeds: error: no database at {db}", file=sys.stderr)
        return 2
    scored, failures = score_db(db, run_id=args.run, rescore=args.rescore, show_progress=not args.no_progress,
                                jobs=args.jobs)
    print(f"scored {scored} episodes in {db}")
    for episode_id, why in failures:
        print(f"  could not score {episode_id}: {why}", file=sys.stderr)
    return 1 if failures else 0
