"""The MCP -> LangChain bridge: schemas, handle binding, hidden tools, results and errors."""

from __future__ import annotations

import pytest
from agents_fixture_server import make_server
from langchain_core.messages import ToolMessage
from langchain_core.utils.function_calling import convert_to_openai_tool
from mcp import Client
from mcp.types import CallToolResult, EmbeddedResource, ImageContent, TextContent, TextResourceContents
from testbeds_agents import McpBridge, ToolEvent
from testbeds_agents.bridge import result_text, tool_call_scope, without_param

pytestmark = pytest.mark.anyio


def call(name: str, args: dict, call_id: str = "call_1") -> dict:
    return {"name": name, "args": args, "id": call_id, "type": "tool_call"}


async def started_bridge(client: Client, events: list | None = None) -> tuple[McpBridge, str]:
    bridge = McpBridge(client, on_event=events.append if events is not None else None)
    outcome = await bridge.call("start", {"tasks": 2})
    bridge.bind(outcome.structured["handle"])
    return bridge, outcome.structured["handle"]


async def test_a_bound_handle_is_dropped_from_the_schema_the_model_sees():
    async with Client(make_server()) as client:
        bridge, _ = await started_bridge(client)
        tools = {tool.name: tool for tool in await bridge.tools(hide={"start"})}
    shown = convert_to_openai_tool(tools["div"])["function"]["parameters"]
    assert set(shown["properties"]) == {"a", "b"}
    assert shown["required"] == ["a", "b"]
    # A tool whose only argument was the handle shows no required arguments at all.
    assert "required" not in tools["reveal"].args_schema
    assert tools["reveal"].args_schema["properties"] == {}


async def test_the_bound_handle_is_injected_into_every_model_call():
    events: list[ToolEvent] = []
    async with Client(make_server()) as client:
        bridge, handle = await started_bridge(client, events)
        tools = {tool.name: tool for tool in await bridge.tools(hide={"start"})}
        with tool_call_scope("call_9"):
            result = await tools["div"].ainvoke(call("div", {"a": 84, "b": 2}, "call_9"))
    assert isinstance(result, ToolMessage)
    assert result.status == "success"
    assert events[-1].args == {"a": 84, "b": 2, "handle": handle}
    assert events[-1].call_id == "call_9"


async def test_the_model_cannot_replace_the_bound_handle():
    async with Client(make_server()) as client:
        bridge, _ = await started_bridge(client)
        tools = {tool.name: tool for tool in await bridge.tools(hide={"start"})}
        result = await tools["reveal"].ainvoke(call("reveal", {"handle": "forged"}))
    assert result.status == "success"
    assert result.artifact["task"] == 1


async def test_hidden_tools_are_not_offered_to_the_model():
    async with Client(make_server()) as client:
        bridge = McpBridge(client)
        names = [tool.name for tool in await bridge.tools(hide={"start", "div"})]
    assert names == ["reveal", "finish_task"]


async def test_hiding_a_tool_the_server_does_not_have_is_a_clear_error():
    async with Client(make_server()) as client:
        with pytest.raises(ValueError, match=r"cannot hide \['strat'\].*it lists"):
            await McpBridge(client).tools(hide={"strat"})


async def test_without_handle_binding_the_schema_keeps_the_handle():
    async with Client(make_server()) as client:
        tools = {tool.name: tool for tool in await McpBridge(client).tools(bind_handle=False)}
    assert "handle" in tools["div"].args_schema["properties"]
    assert "handle" in tools["div"].args_schema["required"]


async def test_a_handle_tool_called_before_binding_says_no_handle_is_bound():
    async with Client(make_server()) as client:
        tools = {tool.name: tool for tool in await McpBridge(client).tools()}
        result = await tools["reveal"].ainvoke(call("reveal", {}))
    assert result.status == "error"
    assert "none is bound yet" in result.content


async def test_text_becomes_the_message_content_and_structured_content_the_artifact():
    async with Client(make_server()) as client:
        bridge, _ = await started_bridge(client)
        tools = {tool.name: tool for tool in await bridge.tools()}
        result = await tools["div"].ainvoke(call("div", {"a": 1, "b": 4}))
    assert result.content == "0.25"
    assert result.artifact == {"result": 0.25}


async def test_a_tool_error_becomes_an_error_tool_message_with_the_servers_text():
    events: list[ToolEvent] = []
    async with Client(make_server()) as client:
        bridge, _ = await started_bridge(client, events)
        tools = {tool.name: tool for tool in await bridge.tools()}
        result = await tools["div"].ainvoke(call("div", {"a": 1, "b": 0}))
    assert result.status == "error"
    assert "b must not be 0; use a non-zero divisor" in result.content
    assert result.tool_call_id == "call_1"
    assert events[-1].is_error and "b must not be 0" in events[-1].text


async def test_harness_calls_get_the_bound_handle_unless_they_pass_one():
    events: list[ToolEvent] = []
    async with Client(make_server()) as client:
        bridge, handle = await started_bridge(client, events)
        injected = await bridge.call("reveal")
        explicit = await bridge.call("reveal", {"handle": "someone-else"})
    assert not injected.is_error and injected.structured["task"] == 1
    assert explicit.is_error and "unknown handle 'someone-else'" in explicit.text
    assert [e.call_id for e in events] == [None, None, None]
    assert events[1].args == {"handle": handle}


async def test_tools_listed_over_several_pages_are_all_bridged():
    class Paged:
        """Serves the real listing two tools per page."""

        def __init__(self, client: Client) -> None:
            self.client = client

        async def list_tools(self, cursor: str | None = None):
            listing = await self.client.list_tools()
            start = int(cursor or 0)
            page = listing.model_copy(
                update={
                    "tools": listing.tools[start : start + 2],
                    "next_cursor": str(start + 2) if start + 2 < len(listing.tools) else None,
                }
            )
            return page

    async with Client(make_server()) as client:
        tools = await McpBridge(Paged(client)).tools()  # type: ignore[arg-type]
    assert [tool.name for tool in tools] == ["start", "div", "reveal", "finish_task"]


def test_non_text_blocks_are_named_not_inlined_and_resources_give_their_text():
    result = CallToolResult(
        content=[
            TextContent(type="text", text="chart below"),
            ImageContent(type="image", data="AAAA", mime_type="image/png"),
            EmbeddedResource(
                type="resource", resource=TextResourceContents(uri="file:///a.txt", text="inside the file")
            ),
        ]
    )
    assert result_text(result) == "chart below\n[image content, image/png omitted]\ninside the file"


def test_a_result_with_only_structured_content_shows_it_as_json():
    assert result_text(CallToolResult(content=[], structured_content={"b": 1, "a": 2})) == '{"a": 2, "b": 1}'


def test_dropping_the_handle_leaves_the_original_schema_untouched():
    schema = {"type": "object", "properties": {"handle": {"type": "string"}}, "required": ["handle"]}
    assert without_param(schema, "handle") == {"type": "object", "properties": {}}
    assert schema["required"] == ["handle"]
