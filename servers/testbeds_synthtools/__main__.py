"""`python -m testbeds_synthtools` == the `testbeds-synthtools` console script.

The shared flags (`--transport`, `--record`, `--evaluator`, ...) plus the suite's own; each of these falls back
to a TESTBEDS_SYNTHTOOLS_* environment variable.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path


def _suite_parser(prog: str) -> argparse.ArgumentParser:
    from testbeds_serving.cli import parser

    p = parser(prog, description="MCP server of the synthtools suite: simulated tool ecosystems and tasks.")
    p.add_argument("--corpus", type=Path, default=None, metavar="PATH",
                   help="SynthTools corpus root (the folder holding tool_json/); env TESTBEDS_SYNTHTOOLS_CORPUS. "
                        "Without it, generated toolsets and spec files still work.")
    p.add_argument("--state-dir", type=Path, default=None, metavar="DIR",
                   help="keep each session's SQLite database in DIR (default: in memory); "
                        "env TESTBEDS_SYNTHTOOLS_STATE_DIR")
    p.add_argument("--simulator", choices=["deterministic", "llm"], default=None,
                   help="deterministic (default) or llm (values the engine cannot bind come from the client's "
                        "model through MCP sampling); env TESTBEDS_SYNTHTOOLS_SIMULATOR")
    p.add_argument("--sim-cache", type=Path, default=None, metavar="PATH",
                   help="LLM-mode answer cache (a .db file or a directory); env TESTBEDS_SYNTHTOOLS_SIM_CACHE")
    p.add_argument("--sim-cache-mode", choices=["record", "replay", "off"], default=None,
                   help="record (default with --sim-cache), replay (misses are errors, no sampling) or off; "
                        "env TESTBEDS_SYNTHTOOLS_SIM_CACHE_MODE")
    p.add_argument("--sim-model", default=None, metavar="PROVIDER:MODEL",
                   help="the model for clients that cannot be sampled (no sampling capability, or a "
                        "2026-07-28 connection), used by LLM simulation and by generate_toolset, e.g. "
                        "anthropic:<model>, openai:<model>, ollama:<model> "
                        "(testbeds_agents.make_model; needs the provider's extra and key); "
                        "env TESTBEDS_SYNTHTOOLS_SIM_MODEL")
    return p


def main(argv: Sequence[str] | None = None) -> None:
    from dataclasses import replace

    from testbeds_serving.cli import configure_logging, options_from_args, run

    from .server import SynthtoolsSettings, build

    prog = "testbeds-synthtools"
    p = _suite_parser(prog)
    args = p.parse_args(argv)
    options = options_from_args(args)
    configure_logging(options.log_level)
    try:
        settings = SynthtoolsSettings.from_env()
    except ValueError as exc:
        p.error(str(exc))
    flags = {"corpus": args.corpus, "state_dir": args.state_dir, "simulator": args.simulator,
             "sim_cache": args.sim_cache, "sim_cache_mode": args.sim_cache_mode, "sim_model": args.sim_model}
    settings = replace(settings, **{k: v for k, v in flags.items() if v is not None})
    if args.sim_cache is not None and args.sim_cache_mode is None and settings.sim_cache_mode == "off":
        settings = replace(settings, sim_cache_mode="record")
    if settings.sim_cache_mode == "replay" and settings.sim_cache is None:
        p.error("--sim-cache-mode replay needs --sim-cache PATH")
    if settings.corpus is not None and not (settings.corpus / "tool_json").is_dir():
        p.error(f"--corpus {settings.corpus} has no tool_json/ folder")
    try:
        server = build(options, settings)
    except (ValueError, ImportError) as exc:  # an unusable --sim-model: bad spec, missing extra or key
        p.error(str(exc))
    try:
        run(server, options)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
