"""`SuiteServer`: an `MCPServer` with the project's error mapping, recording and token gate.

Tools are registered with the SDK's own decorator (`@server.tool(annotations=...)`), so they keep
their pydantic input and output schemas, docstrings and annotations. The error mapping lives in
`call_tool` and `read_resource`, which every tool call and resource read goes through, so no
tool writes try/except and tools added later with `add_tool` are covered too.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.lowlevel.helper_types import ReadResourceContents
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import (
    ResourceError,
    ResourceNotFoundError,
    ToolError,
    UnexpectedResourceError,
    UnexpectedToolError,
)
from mcp.types import CallToolResult, InputRequiredResult
from pydantic import AnyUrl

from testbeds_serving.errors import NotFound, UserError
from testbeds_serving.options import ServeOptions
from testbeds_serving.registry import Registry

log = logging.getLogger("testbeds.serving")

R = TypeVar("R", bound=Registry[Any])
F = TypeVar("F", bound=Callable[..., Any])


class StaticToken:
    """A `TokenVerifier` accepting exactly one bearer token (compared in constant time)."""

    def __init__(self, token: str) -> None:
        self._token = token

    async def verify_token(self, token: str) -> AccessToken | None:
        if hmac.compare_digest(token.encode(), self._token.encode()):
            return AccessToken(token=token, client_id="testbeds", scopes=[])
        return None


def _auth_kwargs(options: ServeOptions) -> dict[str, Any]:
    if options.token is None:
        return {}
    if options.transport != "http":
        # On stdio the client spawned the process: there is nobody else to keep out.
        log.warning("--token only applies to --transport http; ignored on %s", options.transport)
        return {}
    return {
        "token_verifier": StaticToken(options.token),
        # Strings, not URL objects: AuthSettings keeps a path-less issuer without a trailing slash.
        "auth": AuthSettings.model_validate({
            "issuer_url": options.base_url,
            "resource_server_url": options.url,
            # Our verifier checks the token itself; there is no resource-bound authorization server.
            "validate_token_resource": False,
        }),
    }


def _cause(exc: BaseException) -> BaseException:
    """The exception a tool raised, under the SDK's `Unexpected...Error` wrappers."""
    while isinstance(exc, UnexpectedToolError | UnexpectedResourceError) and exc.__cause__ is not None:
        exc = exc.__cause__
    return exc


class SuiteServer(MCPServer[Any]):
    """The MCP server of one suite.

    Args:
        name: the suite's name ("latentgym"); also the recorded run's suite.
        instructions: what the server is for and how to start, shown to the client.
        version: the suite's version.
        options: from the command line (`testbeds_serving.cli.main`); defaults serve stdio,
            without recording.
        **kwargs: passed to `MCPServer` (e.g. `lifespan`, `title`).

    Errors: a `UserError` raised in a tool (or resource) reaches the client verbatim with
    `is_error=True`; any other exception is logged with its traceback to stderr and the client
    gets "internal error in tool 'x' ... state is unchanged" (keep that promise: validate before
    mutating, or use `registry.use(handle, atomic=True)`). The server keeps serving.
    """

    def __init__(
        self,
        name: str,
        *,
        instructions: str,
        version: str = "",
        options: ServeOptions | None = None,
        **kwargs: Any,
    ) -> None:
        options = options or ServeOptions()
        super().__init__(
            name,
            instructions=instructions,
            version=version,
            log_level=options.log_level,
            **_auth_kwargs(options),
            **kwargs,
        )
        self.options = options
        self._registries: list[Registry[Any]] = []
        self.recorder = None
        if options.record is not None:
            from testbeds_serving.recording import Recorder

            self.recorder = Recorder(options.record, suite=name, model=options.record_model,
                                     run_id=options.record_run_id)
            self.middleware.append(self.recorder)

    def advertise_tool_list_changes(self) -> None:
        """Declare `tools.listChanged` in the 2025-11-25 handshake, for a server whose tool list changes at run
        time (synthtools). The SDK derives the flag from `NotificationOptions`, which `MCPServer` does not take, so
        the low-level server's default options are set here; the 2026-07-28 era derives it from the listen
        stream by itself. A test asserts the advertised capability, so an SDK change cannot silently drop it."""
        low = self._lowlevel_server
        derive = low.get_capabilities

        def get_capabilities(notification_options: Any = None, *args: Any, **kwargs: Any) -> Any:
            from mcp.server.lowlevel.server import NotificationOptions

            options = notification_options or NotificationOptions()
            options.tools_changed = True
            return derive(options, *args, **kwargs)

        low.get_capabilities = get_capabilities  # type: ignore[method-assign]

    @property
    def evaluator(self) -> bool:
        """True when the server runs with `--evaluator` (evaluator resources are exposed)."""
        return self.options.evaluator

    def attach(self, registry: R) -> R:
        """Declare a handle registry of this server, so recording can key episodes on its handles.

        Returns the registry, for `episodes = server.attach(Registry[Episode](...))`.
        """
        self._registries.append(registry)
        if self.recorder is not None:
            self.recorder.watch(registry)
        return registry

    def evaluator_resource(self, uri: str, **kwargs: Any) -> Callable[[F], F]:
        """Like `resource(uri, ...)`, but registered only when the server runs with `--evaluator`."""
        if self.options.evaluator:
            return self.resource(uri, **kwargs)
        return lambda fn: fn

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        """Run a tool, mapping `UserError` to its message and any other failure to a clean error."""
        try:
            return await super().call_tool(name, arguments, context)
        except UnexpectedToolError as exc:
            cause = _cause(exc)
            if isinstance(cause, UserError):
                raise ToolError(str(cause)) from cause
            ref = secrets.token_hex(4)
            log.error("internal error in tool %r (ref %s)", name, ref, exc_info=cause)
            raise ToolError(
                f"internal error in tool {name!r} (ref {ref}): a bug in the {self.name} server, not in "
                "your call. The call had no effect and state is unchanged; you may retry or continue."
            ) from cause

    async def read_resource(
        self, uri: AnyUrl | str, context: Context[Any, Any] | None = None
    ) -> Iterable[ReadResourceContents] | InputRequiredResult:
        """Read a resource, with the same error mapping as `call_tool`."""
        try:
            return await super().read_resource(uri, context)
        except UnexpectedResourceError as exc:
            cause = _cause(exc)
            if isinstance(cause, NotFound):
                raise ResourceNotFoundError(str(cause)) from cause
            if isinstance(cause, UserError):
                raise ResourceError(str(cause)) from cause
            ref = secrets.token_hex(4)
            log.error("internal error reading resource %s (ref %s)", uri, ref, exc_info=cause)
            raise ResourceError(f"internal error reading resource {uri} (ref {ref}): a bug in the server") from cause
