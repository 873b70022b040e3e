"""SuiteServer in memory, in both protocol eras: error mapping, state, schemas, evaluator face."""

from __future__ import annotations

import logging
import subprocess
import sys
from typing import Any

import anyio
import pytest
from counter_server import build
from mcp import Client, MCPError
from testbeds_serving import ServeOptions

pytestmark = pytest.mark.anyio

MODES = pytest.mark.parametrize("mode", ["auto", "legacy"])


async def start(client: Client) -> str:
    result = await client.call_tool("start", {"seed": 1})
    return str(result.structured_content["handle"])


def text(result: Any) -> str:
    return "\n".join(c.text for c in result.content if c.type == "text")


@MODES
async def test_a_user_error_reaches_the_client_verbatim(mode: str) -> None:
    async with Client(build(ServeOptions()), mode=mode) as client:
        handle = await start(client)
        result = await client.call_tool("divide", {"handle": handle, "by": 0})
    assert result.is_error
    assert text(result) == "cannot divide by 0; pass a non-zero 'by'"


@MODES
async def test_a_bug_becomes_a_clean_error_and_the_server_keeps_serving(
    mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with Client(build(ServeOptions()), mode=mode) as client:
        handle = await start(client)
        with caplog.at_level(logging.ERROR, logger="testbeds.serving"):
            failed = await client.call_tool("explode", {"handle": handle})
        after = await client.call_tool("add", {"handle": handle, "amount": 2})
    assert failed.is_error
    assert "internal error in tool 'explode'" in text(failed)
    assert "state is unchanged" in text(failed)
    assert "secret-internal-detail" not in text(failed)
    assert not after.is_error and after.structured_content == {"total": 2, "steps": 1}
    logged = [r for r in caplog.records if r.name == "testbeds.serving" and r.levelno == logging.ERROR]
    assert logged and "secret-internal-detail" in str(logged[0].exc_info[1])  # type: ignore[index]


@MODES
async def test_state_is_unchanged_after_a_failing_call(mode: str) -> None:
    async with Client(build(ServeOptions()), mode=mode) as client:
        handle = await start(client)
        await client.call_tool("add", {"handle": handle, "amount": 3})
        await client.call_tool("explode", {"handle": handle})
        await client.call_tool("divide", {"handle": handle, "by": 0})
        await client.call_tool("add", {"handle": handle, "amount": "three"})
        peek = await client.call_tool("peek", {"handle": handle})
    assert peek.structured_content == {"total": 3, "steps": 1}


@MODES
async def test_an_unknown_handle_gets_an_error_naming_the_start_tool(mode: str) -> None:
    async with Client(build(ServeOptions()), mode=mode) as client:
        result = await client.call_tool("add", {"handle": "not-a-handle", "amount": 1})
    assert result.is_error
    assert text(result) == "unknown counter handle 'not-a-handle'; call start first and pass the handle it returns"


async def test_an_expired_handle_gets_a_clear_error() -> None:
    now = [0.0]
    async with Client(build(ServeOptions(), idle_seconds=30, clock=lambda: now[0])) as client:
        handle = await start(client)
        now[0] += 31
        result = await client.call_tool("add", {"handle": handle, "amount": 1})
    assert result.is_error
    assert "expired after 30 s without use; call start to begin a new counter" in text(result)


async def test_two_handles_on_one_connection_are_isolated() -> None:
    async with Client(build(ServeOptions())) as client:
        a, b = await start(client), await start(client)
        await client.call_tool("add", {"handle": a, "amount": 5})
        await client.call_tool("add", {"handle": b, "amount": 7})
        totals = [(await client.call_tool("peek", {"handle": h})).structured_content for h in (a, b)]
    assert totals == [{"total": 5, "steps": 1}, {"total": 7, "steps": 1}]


@MODES
async def test_parallel_calls_on_one_handle_are_serialised(mode: str) -> None:
    async with Client(build(ServeOptions()), mode=mode) as client:
        handle = await start(client)
        async with anyio.create_task_group() as tg:
            for _ in range(5):
                tg.start_soon(client.call_tool, "add_slowly", {"handle": handle, "amount": 1})
        peek = await client.call_tool("peek", {"handle": handle})
    assert peek.structured_content == {"total": 5, "steps": 5}


async def test_tools_keep_their_schemas_descriptions_and_annotations() -> None:
    async with Client(build(ServeOptions())) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    add = tools["add"]
    assert add.description == "Add an amount to the counter."
    assert add.input_schema["required"] == ["handle", "amount"]
    assert add.input_schema["properties"]["handle"]["description"] == "The handle `start` returned."
    assert add.output_schema is not None and set(add.output_schema["properties"]) == {"total", "steps"}
    assert add.annotations is not None and add.annotations.idempotent_hint is False
    assert tools["peek"].annotations is not None and tools["peek"].annotations.read_only_hint is True


async def test_evaluator_resources_exist_only_with_the_evaluator_flag() -> None:
    async with Client(build(ServeOptions(evaluator=True))) as client:
        handle = await start(client)
        secret = await client.read_resource(f"counter://{handle}/secret")
        templates = (await client.list_resource_templates()).resource_templates
    assert secret.contents[0].text == "42"  # type: ignore[union-attr]
    assert [t.uri_template for t in templates] == ["counter://{handle}/secret"]
    async with Client(build(ServeOptions())) as client:
        assert (await client.list_resource_templates()).resource_templates == []


async def test_a_user_error_in_a_resource_reaches_the_client() -> None:
    async with Client(build(ServeOptions(evaluator=True))) as client:
        with pytest.raises(MCPError, match=r"unknown counter handle 'zzz'; call start first"):
            await client.read_resource("counter://zzz/secret")


async def test_agent_facing_results_never_show_evaluator_info() -> None:
    async with Client(build(ServeOptions())) as client:
        started = await client.call_tool("start", {"seed": 1})
        handle = str(started.structured_content["handle"])
        finished = await client.call_tool("finish", {"handle": handle})
    for result in (started, finished):
        assert "secret" not in text(result) and "42" not in text(result)


def test_domain_imports_do_not_load_mcp() -> None:
    code = (
        "import sys, testbeds_serving, testbeds_serving.errors, testbeds_serving.registry; "
        "sys.exit('mcp' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
