"""Errors a caller made, raised by domain code and shown to the agent verbatim.

This module must not import `mcp`: domain modules raise these without knowing they are served.
`testbeds_serving.server.SuiteServer` turns a `UserError` into the SDK's `ToolError` (one place);
any other exception escaping a tool is treated as a bug in the server.
"""

from __future__ import annotations


class UserError(Exception):
    """An error the caller made; the message reaches the agent as is.

    Write it so the agent can act on it: say what was wrong and what to do instead,
    e.g. ``cell 'Z0' is not an A1 reference; use e.g. 'B3'``.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class NotFound(UserError):
    """The caller named something that does not exist (a handle, a task, a cell, a file)."""


class InvalidArgument(UserError):
    """An argument passed schema validation but is not acceptable in this state."""


class EpisodeEnded(UserError):
    """The caller used a handle whose episode has already ended."""
