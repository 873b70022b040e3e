"""MCP tools as LangChain tools over one persistent MCP client session.

`langchain-mcp-adapters` pins mcp<2, so this is our own small bridge (DESIGN.md §3). It also binds
the episode handle: servers keep state behind a `handle` argument returned by a start tool, and the
bridge injects it so the model never has to copy an opaque token (DESIGN.md §5).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from langchain_core.tools import StructuredTool, ToolException
from mcp import Client, MCPError
from mcp.types import CallToolResult, TextResourceContents, Tool
from pydantic import BaseModel

from testbeds_agents.events import EventSink, ToolEvent, emit

HANDLE_PARAM = "handle"

# The graph's tool node sets this around each model tool call so the bridge's events carry the
# model's tool-call id; LangChain gives a dict-schema tool's coroutine no other way to learn it.
_current_call_id: ContextVar[str | None] = ContextVar("testbeds_tool_call_id", default=None)


@contextmanager
def tool_call_scope(call_id: str | None) -> Iterator[None]:
    """Attribute the bridge calls made inside this block to the model's tool call `call_id`."""
    token = _current_call_id.set(call_id)
    try:
        yield
    finally:
        _current_call_id.reset(token)


class CallOutcome(BaseModel):
    """The result of one MCP tool call, reduced to what agents and runners use."""

    text: str
    structured: Any = None
    is_error: bool = False


def result_text(result: CallToolResult) -> str:
    """The text a model should see for a tool result (non-text blocks are named, not inlined)."""
    parts: list[str] = []
    for block in result.content:
        if block.type == "text":
            parts.append(block.text)
        elif block.type == "resource" and isinstance(block.resource, TextResourceContents):
            parts.append(block.resource.text)
        elif block.type == "resource_link":
            parts.append(f"[resource {block.uri}]")
        else:
            mime = getattr(block, "mime_type", None) or getattr(block.resource, "mime_type", None)
            parts.append(f"[{block.type} content{', ' + mime if mime else ''} omitted]")
    text = "\n".join(parts)
    if not text and result.structured_content is not None:
        text = json.dumps(result.structured_content, sort_keys=True)
    return text


def has_param(schema: Mapping[str, Any], param: str) -> bool:
    """Whether a tool's JSON input schema declares the top-level property `param`."""
    properties = schema.get("properties")
    return isinstance(properties, Mapping) and param in properties


def without_param(schema: Mapping[str, Any], param: str) -> dict[str, Any]:
    """A copy of a JSON input schema with the top-level property `param` removed."""
    shown = copy.deepcopy(dict(schema))
    shown.get("properties", {}).pop(param, None)
    if "required" in shown:
        required = [name for name in shown["required"] if name != param]
        if required:
            shown["required"] = required
        else:
            del shown["required"]
    return shown


class McpBridge:
    """Expose the tools of one open MCP `Client` as LangChain tools.

    The caller opens the client (one session per episode) and keeps it open while the tools are used.
    `on_event` receives a `ToolEvent` for every call made through the bridge, by the model or the harness.
    """

    def __init__(
        self, client: Client, *, on_event: EventSink | None = None, handle_param: str = HANDLE_PARAM
    ) -> None:
        self.client = client
        self.on_event = on_event
        self.handle_param = handle_param
        self._handle: str | None = None
        self._listed: dict[str, Tool] | None = None

    @property
    def handle(self) -> str | None:
        """The bound episode handle, if any."""
        return self._handle

    def bind(self, handle: str | None) -> None:
        """Bind (or with None, unbind) the handle injected into every call of a handle-taking tool."""
        self._handle = handle

    async def list_tools(self) -> list[Tool]:
        """All tools the server lists (every page), in the server's order."""
        tools: list[Tool] = []
        cursor: str | None = None
        while True:
            page = await self.client.list_tools(cursor=cursor)
            tools.extend(page.tools)
            cursor = page.next_cursor
            if cursor is None:
                break
        self._listed = {tool.name: tool for tool in tools}
        return tools

    async def tools(self, *, hide: Iterable[str] = (), bind_handle: bool = True) -> list[StructuredTool]:
        """LangChain tools for the server's tools, except those named in `hide`.

        With `bind_handle`, tools taking a `handle` show the model a schema without it and get the
        bound handle injected on every call.
        """
        listed = await self.list_tools()
        hidden = set(hide)
        unknown = hidden - {tool.name for tool in listed}
        if unknown:
            raise ValueError(
                f"cannot hide {sorted(unknown)}: the server has no such tools; "
                f"it lists {sorted(tool.name for tool in listed)}"
            )
        return [self._to_langchain(tool, bind_handle) for tool in listed if tool.name not in hidden]

    async def call(self, name: str, args: Mapping[str, Any] | None = None) -> CallOutcome:
        """Call a tool for the harness (not the model).

        The bound handle is added when the tool takes one and `args` does not give it; MCP protocol
        errors come back as an error outcome rather than an exception.
        """
        arguments = dict(args or {})
        if self._handle is not None and self.handle_param not in arguments:
            listed = self._listed if self._listed is not None else {t.name: t for t in await self.list_tools()}
            tool = listed.get(name)
            if tool is not None and has_param(tool.input_schema, self.handle_param):
                arguments[self.handle_param] = self._handle
        return await self._call(name, arguments, call_id=None)

    async def _call(self, name: str, arguments: dict[str, Any], call_id: str | None) -> CallOutcome:
        try:
            result = await self.client.call_tool(name, arguments)
        except MCPError as error:
            # A JSON-RPC error is still something the model (or harness) can react to.
            outcome = CallOutcome(text=f"MCP error {error.error.code}: {error.error.message}", is_error=True)
        else:
            outcome = CallOutcome(
                text=result_text(result), structured=result.structured_content, is_error=result.is_error
            )
        await emit(
            self.on_event,
            ToolEvent(
                name=name,
                args=arguments,
                text=outcome.text,
                structured=outcome.structured,
                is_error=outcome.is_error,
                call_id=call_id,
            ),
        )
        return outcome

    def _to_langchain(self, tool: Tool, bind_handle: bool) -> StructuredTool:
        inject = bind_handle and has_param(tool.input_schema, self.handle_param)
        schema = without_param(tool.input_schema, self.handle_param) if inject else dict(tool.input_schema)

        async def run(**kwargs: Any) -> tuple[str, Any]:
            arguments = dict(kwargs)
            if inject:
                if self._handle is None:
                    raise ToolException(
                        f"{tool.name} needs the episode handle, but none is bound yet; "
                        "the harness must call the start tool first"
                    )
                arguments[self.handle_param] = self._handle
            outcome = await self._call(tool.name, arguments, call_id=_current_call_id.get())
            if outcome.is_error:
                raise ToolException(outcome.text or f"{tool.name} failed without a message")
            return outcome.text, outcome.structured

        return StructuredTool(
            name=tool.name,
            description=tool.description or tool.title or tool.name,
            args_schema=schema,
            coroutine=run,
            response_format="content_and_artifact",
            handle_tool_error=True,
        )
