"""The `testbeds` command line.

Every subcommand is registered by a function `add_parser(subparsers)` that adds its parser and
sets `func(args) -> int`. `export`, `report` and `serve` live here; `run`, `score` and `demo` live
in their own modules (listed in `SUBCOMMAND_MODULES`) and are registered when those modules exist,
so adding a subcommand means writing one module and listing it.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

SUITES: dict[str, str] = {
    "latentgym": "testbeds_latentgym",
    "sheets": "testbeds_sheets",
    "synthtools": "testbeds_synthtools",
    "mixopt": "testbeds_mixopt",
}
"""Suite name -> import package whose `__main__.main(argv)` serves it."""

# --- Hooks: subcommands defined in other modules of this package, registered if present. ---------
SUBCOMMAND_MODULES: tuple[str, ...] = (
    "testbeds_evals.runner",  # testbeds run
    "testbeds_evals.scoring",  # testbeds score
    "testbeds_evals.demo",  # testbeds demo
)

DEFAULT_GROUP_BY: tuple[str, ...] = ("suite", "model")


class CLIError(Exception):
    """A user error: printed as `testbeds: error: ...` with exit status 2, without a traceback."""


def main(argv: list[str] | None = None) -> int:
    """Run the `testbeds` command line with `argv` (default: `sys.argv[1:]`); return the exit status."""
    from .migrations import SchemaTooNewError
    from .store import NotFoundError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status = args.func(args)
    except (CLIError, NotFoundError, SchemaTooNewError) as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 2
    return int(status or 0)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every available subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="testbeds",
        description="Research testbeds for LLM agents: run agents, serve suites, score and report.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    registrars: list[Callable[[Any], None]] = [m.add_parser for m in _subcommand_modules()]
    registrars += [add_report_parser, add_export_parser, add_serve_parser]
    for add_parser in registrars:
        add_parser(subparsers)
    return parser


def _subcommand_modules() -> list[ModuleType]:
    modules = []
    for name in SUBCOMMAND_MODULES:
        # find_spec is None only when the module does not exist; import errors inside one propagate.
        if importlib.util.find_spec(name) is not None:
            modules.append(importlib.import_module(name))
    return modules


def _existing_db(path: str) -> Path:
    db = Path(path)
    if not db.is_file():
        raise CLIError(f"no database at {path}; record one with `testbeds run` or a server's --record")
    return db


# --- export -------------------------------------------------------------------------------------


def add_export_parser(subparsers: Any) -> None:
    """Register `testbeds export DB [--run ID] [-o FILE]`."""
    parser = subparsers.add_parser(
        "export", help="write a database's runs, episodes, events and scores as JSON Lines",
        description="Write runs, episodes, events and scores as JSON Lines, each with a 'kind'.",
    )
    parser.add_argument("db", metavar="DB", help="the SQLite transcript store")
    parser.add_argument("--run", metavar="ID", help="export only this run")
    parser.add_argument("-o", "--output", metavar="FILE", help="write here instead of standard output")
    parser.set_defaults(func=_export)


def _export(args: argparse.Namespace) -> int:
    from .store import Store

    with Store(_existing_db(args.db)) as store:
        if args.output:
            lines = store.export_jsonl(args.output, run_id=args.run)
            print(f"wrote {lines} lines to {args.output}", file=sys.stderr)
        else:
            store.export_jsonl(sys.stdout, run_id=args.run)
    return 0


# --- report -------------------------------------------------------------------------------------


def add_report_parser(subparsers: Any) -> None:
    """Register `testbeds report DB [--out DIR] [--metric M ...] [--group-by K ...]`."""
    parser = subparsers.add_parser(
        "report", help="summarise the latest scores as tables (Markdown, HTML, terminal) and plots",
        description=(
            "Summarise the latest score of each episode: mean ± standard error per group, pass^k where "
            "tasks are repeated. Keys are looked up in the row (model, suite, seed, scorer, termination), "
            "then the episode settings, then the metrics."
        ),
    )
    parser.add_argument("db", metavar="DB", help="the SQLite transcript store")
    parser.add_argument("--out", metavar="DIR", default="report", help="output directory (default: report)")
    parser.add_argument("--metric", metavar="M", nargs="+", action="extend", dest="metrics",
                        help="metrics to summarise (default: the suites' headline metrics, else every "
                             "numeric metric)")
    parser.add_argument("--group-by", metavar="K", nargs="+", action="extend", dest="group_by",
                        help=f"keys to group by (default: {' '.join(DEFAULT_GROUP_BY)})")
    parser.add_argument("--run", metavar="ID", help="only this run")
    parser.add_argument("--scorer", metavar="NAME", help="only this scorer")
    parser.add_argument("--title", default="testbeds report", help="report title")
    parser.add_argument("--pass-metric", default="passed", metavar="M",
                        help="0/1 metric for pass^k (default: passed)")
    parser.add_argument("--task-key", metavar="K", nargs="+", action="extend", dest="task_key",
                        help="keys identifying a task, whose repeats give pass^k (default: task)")
    parser.set_defaults(func=_report)


def _report(args: argparse.Namespace) -> int:
    from rich.console import Console

    from .report import print_summary, summarize, write_summary
    from .store import Store

    with Store(_existing_db(args.db)) as store:
        rows = store.latest_scores(run_id=args.run, scorer=args.scorer)
    if not rows:
        raise CLIError(f"no scores in {args.db}; score the episodes first (`testbeds score {args.db}`)")
    options: dict[str, Any] = {"pass_metric": args.pass_metric, "task_key": args.task_key or "task"}
    group_by = args.group_by or list(DEFAULT_GROUP_BY)
    summary = summarize(rows, args.metrics or default_metrics(rows), group_by, title=args.title, **options)
    print_summary(summary, Console())
    path = write_summary(summary, args.out)
    print(f"wrote {path}, {path.with_suffix('.html')} and plots in {path.parent}")
    return 0


def default_metrics(rows: list[dict[str, Any]]) -> list[str] | None:
    """The headline metrics the rows' suites declare (REPORT_METRICS), in order; None (every numeric metric) when
    a scorer declares none. A sheets score also holds every check's score: the table shows the headline ones."""
    from .suites import PLUGINS, plugin

    names: list[str] = []
    for scorer in dict.fromkeys(str(r.get("scorer")) for r in rows):
        declared = getattr(plugin(scorer), "REPORT_METRICS", None) if scorer in PLUGINS else None
        if declared is None:
            return None
        names.extend(m for m in declared if m not in names)
    return names


# --- serve --------------------------------------------------------------------------------------


def add_serve_parser(subparsers: Any) -> None:
    """Register `testbeds serve SUITE [server flags...]`."""
    parser = subparsers.add_parser(
        "serve", help="run a suite's MCP server (same as testbeds-SUITE)",
        description="Run a suite's MCP server; every argument after SUITE goes to the server.",
    )
    parser.add_argument("suite", metavar="SUITE", choices=SUITES, help=f"one of: {', '.join(SUITES)}")
    parser.add_argument("args", nargs=argparse.REMAINDER,
                        help="server flags (see testbeds serve SUITE --help)")
    parser.set_defaults(func=_serve)


def _serve(args: argparse.Namespace) -> int:
    return serve(args.suite, args.args)


def serve(suite: str, argv: Sequence[str]) -> int:
    """Import the suite's `__main__` and call its `main(argv)`; return its exit status."""
    if suite not in SUITES:
        raise CLIError(f"unknown suite {suite!r}; choose one of: {', '.join(SUITES)}")
    package = SUITES[suite]
    try:
        module = importlib.import_module(f"{package}.__main__")
    except ModuleNotFoundError as error:
        if error.name in (package, f"{package}.__main__"):
            raise CLIError(f"suite {suite!r} is not installed (no module {error.name})") from error
        raise CLIError(f"suite {suite!r} needs {error.name!r}, which is not installed") from error
    entry = getattr(module, "main", None)
    if not callable(entry):
        raise CLIError(f"{package}.__main__ has no main(argv) function")
    return int(entry(list(argv)) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
