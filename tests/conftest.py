"""Shared test configuration: anyio on asyncio only (no pytest-asyncio)."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
