"""`python -m testbeds_mixopt` == the `testbeds-mixopt` console script."""

from __future__ import annotations

from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> None:
    from testbeds_serving.cli import main as serve_main

    from .server import build

    serve_main(build, argv, prog="testbeds-mixopt")


if __name__ == "__main__":
    main()
