"""`python -m testbeds_sheets` == the `testbeds-sheets` console script.

The shared flags (transport, record, token, evaluator, -v) plus sheets' own: `--engine embedded|libreoffice`
(default $TESTBEDS_SHEETS_ENGINE or embedded) and `--root DIR` (default $TESTBEDS_SHEETS_ROOT or
~/.local/state/testbeds/sheets).
"""

from __future__ import annotations

import os
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> None:
    from testbeds_serving.cli import configure_logging, options_from_args, parser, run

    from .server import ENGINE_ENV, build
    from .workspace import ROOT_ENV

    p = parser("testbeds-sheets", description="The sheets MCP server: finance models as real .xlsx workbooks.")
    p.add_argument("--engine", choices=["embedded", "libreoffice"], default=os.environ.get(ENGINE_ENV) or "embedded",
                   help=f"recalculation engine (env {ENGINE_ENV}; libreoffice needs soffice installed)")
    p.add_argument("--root", default=None, metavar="DIR",
                   help=f"folder workbooks are saved in (env {ROOT_ENV}; default ~/.local/state/testbeds/sheets)")
    args = p.parse_args(argv)
    options = options_from_args(args)
    configure_logging(options.log_level)
    if args.engine not in ("embedded", "libreoffice"):  # a default from the environment skips argparse's check
        p.error(f"{ENGINE_ENV}={args.engine!r}: choose embedded or libreoffice")
    if args.engine == "libreoffice":
        from .engine.libreoffice import soffice_available

        if not soffice_available():
            p.error("--engine libreoffice needs LibreOffice (soffice) and python3-uno; use --engine embedded")
    server = build(options, root=args.root, engine=args.engine)
    try:
        run(server, options)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
