"""The progress helper is silent off a terminal and with --no-progress."""

from __future__ import annotations

import io

import pytest
from testbeds_evals.progress import progress


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_prints_nothing_when_stdout_is_not_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    with progress(3, "episodes") as advance:
        for _ in range(3):
            advance()
    assert capsys.readouterr() == ("", "")


def test_progress_draws_a_bar_on_a_terminal() -> None:
    terminal = FakeTerminal()
    with progress(3, "episodes", file=terminal) as advance:
        advance(3)
    assert "episodes" in terminal.getvalue()
    assert "3/3" in terminal.getvalue()


def test_no_progress_silences_the_bar_even_on_a_terminal() -> None:
    terminal = FakeTerminal()
    with progress(3, "episodes", enabled=False, file=terminal) as advance:
        advance()
    assert terminal.getvalue() == ""
