"""The command line every suite server shares: `testbeds-<suite> [--transport http] [--record runs.db] ...`.

A suite's `__main__.py` is

    def main(argv: list[str] | None = None) -> None:
        serve_main(build, argv, prog="testbeds-latentgym")

where `build(options: ServeOptions) -> SuiteServer` creates the server and registers its tools.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from testbeds_serving.options import LogLevel, ServeOptions
from testbeds_serving.server import SuiteServer

log = logging.getLogger("testbeds.serving")

_LEVELS: tuple[LogLevel, ...] = ("WARNING", "INFO", "DEBUG")


def parser(prog: str | None = None, description: str | None = None) -> argparse.ArgumentParser:
    """The shared argument parser (exposed so a suite can add its own flags)."""
    p = argparse.ArgumentParser(prog=prog, description=description)
    p.add_argument("--transport", choices=["stdio", "http"], default="stdio",
                   help="stdio (default: the client spawns this process) or http (streamable HTTP at /mcp)")
    p.add_argument("--host", default="127.0.0.1", help="HTTP bind address (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="HTTP port (default 8000)")
    p.add_argument("--record", type=Path, default=None, metavar="PATH",
                   help="record every tool call into this SQLite store (env TESTBEDS_RECORD)")
    p.add_argument("--token", default=None,
                   help="require this bearer token from HTTP clients (env TESTBEDS_TOKEN; ignored on stdio)")
    p.add_argument("--evaluator", action="store_true",
                   help="expose evaluator resources (ground truth, grades); never for agents under test")
    p.add_argument("-v", "--verbose", action="count", default=0,
                   help="log more to stderr (-v info, -vv debug)")
    return p


def options_from_args(args: argparse.Namespace) -> ServeOptions:
    """Build `ServeOptions` from parsed arguments, falling back to TESTBEDS_RECORD / TESTBEDS_TOKEN."""
    record = args.record or (Path(os.environ["TESTBEDS_RECORD"]) if os.environ.get("TESTBEDS_RECORD") else None)
    token = args.token or os.environ.get("TESTBEDS_TOKEN") or None
    return ServeOptions(
        transport=args.transport,
        host=args.host,
        port=args.port,
        record=record,
        token=token,
        evaluator=args.evaluator,
        log_level=_LEVELS[min(args.verbose, len(_LEVELS) - 1)],
    )


def parse_options(argv: Sequence[str] | None = None, prog: str | None = None) -> ServeOptions:
    """Parse `argv` (default `sys.argv[1:]`) into `ServeOptions`."""
    return options_from_args(parser(prog).parse_args(argv))


def configure_logging(level: LogLevel) -> None:
    """Send logs to stderr: on stdio, stdout is the protocol pipe."""
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def run(server: SuiteServer, options: ServeOptions) -> None:
    """Serve `server` on the transport `options` name; returns when the server stops."""
    if not isinstance(server, SuiteServer):
        raise TypeError(f"build() must return a SuiteServer, got {type(server).__name__}")
    if options.transport == "http":
        log.info("serving %s on %s%s", server.name, options.url, " (token required)" if options.token else "")
        server.run("streamable-http", host=options.host, port=options.port)
    else:
        server.run("stdio")


def main(build: Callable[[ServeOptions], SuiteServer], argv: Sequence[str] | None = None,
         prog: str | None = None) -> None:
    """Parse the shared flags, build the suite's server with them, and serve until stopped."""
    options = parse_options(argv, prog)
    configure_logging(options.log_level)
    server = build(options)
    try:
        run(server, options)
    except KeyboardInterrupt:
        pass
