"""A progress bar that stays silent where it would only be noise.

Off when the output stream is not a terminal (pipes, files, CI logs, pytest's capture) or when
the user passed `--no-progress`; then it writes nothing at all, not even ANSI codes.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

Advance = Callable[..., None]


def is_terminal(stream: TextIO) -> bool:
    """Whether `stream` is an interactive terminal."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


@contextlib.contextmanager
def progress(
    total: int | None, description: str = "", *, enabled: bool = True, file: TextIO | None = None
) -> Iterator[Advance]:
    """Show a progress bar of `total` steps; yields `advance(steps=1)`.

    `enabled=False` (the CLI's `--no-progress`) or a non-terminal `file` (default: stdout) turns
    it into a no-op. Example::

        with progress(len(episodes), "episodes", enabled=not args.no_progress) as advance:
            for episode in episodes:
                run(episode)
                advance()
    """
    stream = file if file is not None else sys.stdout
    if not (enabled and is_terminal(stream)):

        def skip(steps: int = 1) -> None:
            return None

        yield skip
        return
    console = Console(file=stream, force_terminal=True)
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )
    with bar:
        task = bar.add_task(description, total=total)

        def advance(steps: int = 1) -> None:
            bar.advance(task, steps)

        yield advance
