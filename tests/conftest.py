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


def require_soffice() -> None:
    """Skip where LibreOffice is absent, except in CI: `.ci/run` installs it and sets TESTBEDS_REQUIRE_SOFFICE, so
    a missing engine there fails instead of silently skipping the agreement tests."""
    from testbeds_sheets.engine.libreoffice import soffice_available

    if soffice_available():
        return
    if os.environ.get("TESTBEDS_REQUIRE_SOFFICE"):
        pytest.fail("LibreOffice is required here (TESTBEDS_REQUIRE_SOFFICE is set), but soffice or python3-uno "
                    "is missing")
    pytest.skip("LibreOffice (soffice and python3-uno) is not installed")
