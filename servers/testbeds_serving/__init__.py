"""Shared plumbing of the testbeds MCP servers: errors, handle registry, server, CLI, recording.

Domain code imports only the mcp-free parts (`testbeds_serving.errors`, `testbeds_serving.registry`);
the MCP-facing names below are imported on first use, so `import testbeds_serving` never loads mcp.
See README.md for an example suite.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from testbeds_serving.errors import EpisodeEnded, InvalidArgument, NotFound, UserError
from testbeds_serving.options import ServeOptions
from testbeds_serving.registry import Entry, Registry

if TYPE_CHECKING:
    from testbeds_serving.cli import main as serve_main
    from testbeds_serving.server import SuiteServer

__all__ = [
    "Entry",
    "EpisodeEnded",
    "InvalidArgument",
    "NotFound",
    "Registry",
    "ServeOptions",
    "SuiteServer",
    "UserError",
    "serve_main",
]

_LAZY = {"SuiteServer": ("testbeds_serving.server", "SuiteServer"), "serve_main": ("testbeds_serving.cli", "main")}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
