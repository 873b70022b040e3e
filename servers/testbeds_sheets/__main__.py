"""`python -m testbeds_sheets` == the `testbeds-sheets` console script.

The shared flags (transport, record, token, evaluator, -v) plus sheets' own: `--engine embedded|libreoffice`
(default $TESTBEDS_SHEETS_ENGINE or embedded), `--root DIR` (default $TESTBEDS_SHEETS_ROOT or
~/.local/state/testbeds/sheets), `--judge off|sampling|provider:model` (default $TESTBEDS_SHEETS_JUDGE or off) and
`--tasks-dir DIR` (default $TESTBEDS_SHEETS_TASKS_DIR; none).
"""

from __future__ import annotations

import os
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> None:
    from testbeds_serving.cli import configure_logging, options_from_args, parser, run

    from .judging import JUDGE_ENV, parse_judge_setting
    from .server import ENGINE_ENV, TASKS_DIR_ENV, build
    from .workspace import ROOT_ENV

    p = parser("testbeds-sheets", description="The sheets MCP server: finance models as real .xlsx workbooks.")
    p.add_argument("--engine", choices=["embedded", "libreoffice"], default=os.environ.get(ENGINE_ENV) or "embedded",
                   help=f"recalculation engine (env {ENGINE_ENV}; libreoffice needs soffice installed)")
    p.add_argument("--root", default=None, metavar="DIR",
                   help=f"folder workbooks are saved in (env {ROOT_ENV}; default ~/.local/state/testbeds/sheets)")
    p.add_argument("--judge", default=os.environ.get(JUDGE_ENV) or "off", metavar="JUDGE",
                   help=f"optional LLM judge of the subjective criteria (env {JUDGE_ENV}): off (default), sampling "
                        "(the MCP client's model, asked at submit), or a chat model 'provider:model'")
    p.add_argument("--tasks-dir", default=os.environ.get(TASKS_DIR_ENV) or None, metavar="DIR",
                   help=f"folder of task folders (prompt.md + solution.xlsx + optional outputs.json) that "
                        f"start_task(folder=...) starts (env {TASKS_DIR_ENV})")
    args = p.parse_args(argv)
    options = options_from_args(args)
    configure_logging(options.log_level)
    if args.engine not in ("embedded", "libreoffice"):  # a default from the environment skips argparse's check
        p.error(f"{ENGINE_ENV}={args.engine!r}: choose embedded or libreoffice")
    if args.engine == "libreoffice":
        from .engine.libreoffice import soffice_available

        if not soffice_available():
            p.error("--engine libreoffice needs LibreOffice (soffice) and python3-uno; use --engine embedded")
    try:
        parse_judge_setting(args.judge)
    except ValueError as exc:
        p.error(f"--judge: {exc}")
    if args.tasks_dir is not None and not os.path.isdir(args.tasks_dir):
        p.error(f"--tasks-dir {args.tasks_dir!r} is not a folder (env {TASKS_DIR_ENV})")
    try:
        server = build(options, root=args.root, engine=args.engine, judge=args.judge, tasks_dir=args.tasks_dir)
    except (ValueError, ImportError) as exc:  # a provider judge whose package or API key is missing
        p.error(f"--judge {args.judge}: {exc}")
    try:
        run(server, options)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
