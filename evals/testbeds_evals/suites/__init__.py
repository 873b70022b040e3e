"""Per-suite glue for the runner, the scorer and the demo: what the harness starts, how a scripted agent
plays, and how a recorded episode is scored. One module per suite, looked up by name."""

from __future__ import annotations

from importlib import import_module
from typing import Any, Protocol


class SuitePlugin(Protocol):
    SUITE: str
    SCORER: str

    def score_episode(self, episode: dict[str, Any], events: list[Any]) -> dict[str, Any]: ...


PLUGINS = {"latentgym": "testbeds_evals.suites.latentgym", "mixopt": "testbeds_evals.suites.mixopt"}


def plugin(suite: str) -> Any:
    try:
        return import_module(PLUGINS[suite])
    except KeyError:
        raise KeyError(f"no runner or scorer for suite {suite!r} yet; known: {', '.join(PLUGINS)}") from None
