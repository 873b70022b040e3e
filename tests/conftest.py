"""Shared test configuration: anyio on asyncio only (no pytest-asyncio)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def shared_data(*parts: str) -> Path:
    """A path under the project's shared test data (`../shared/data` beside the repository, or
    `$TESTBEDS_SHARED/data`): read from there, never copied into the repository."""
    root = Path(os.environ.get("TESTBEDS_SHARED", Path(__file__).resolve().parents[2] / "shared"))
    return root.joinpath("data", *parts)
