"""Real transports: a stdio subprocess and streamable HTTP (subprocess with a token, in-process without),
in both protocol eras."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx2
import pytest
from counter_server import build
from mcp import MCPError
from testbeds_evals.store import Store
from testbeds_serving import ServeOptions
from testbeds_serving.testing import http_client, http_server, serve_http, stdio_client

pytestmark = pytest.mark.anyio

MODES = pytest.mark.parametrize("mode", ["auto", "legacy"])
ERAS = {"auto": "2026-07-28", "legacy": "2025-11-25"}
TOKEN = "test-token-5b1e"


async def test_a_stdio_subprocess_serves_and_records_in_both_eras(tmp_path: Path) -> None:
    # Both eras at once: each spawn mostly waits on interpreter start-up, so they overlap well.
    async def session(mode: str) -> None:
        db = tmp_path / f"{mode}.db"
        env = {"TESTBEDS_RECORD": str(db), "TESTBEDS_RUN_ID": f"run-{mode}"}
        async with stdio_client("counter_server", env=env, mode=mode) as client:
            assert client.protocol_version == ERAS[mode]
            handle = (await client.call_tool("start", {})).structured_content["handle"]
            added = await client.call_tool("add", {"handle": handle, "amount": 3})
            failed = await client.call_tool("divide", {"handle": handle, "by": 0})
        assert added.structured_content == {"total": 3, "steps": 1}
        assert failed.is_error and "cannot divide by 0" in failed.content[0].text  # type: ignore[union-attr]
        with Store(db) as store:
            episode = store.episode(store.episode_for_handle(handle))  # type: ignore[arg-type]
            assert episode["run_id"] == f"run-{mode}"
            assert [e.type for e in store.events(episode["episode_id"])] == ["tool_call", "tool_result"] * 3
        finished.append(mode)

    finished: list[str] = []
    async with anyio.create_task_group() as tg:
        for mode in ERAS:
            tg.start_soon(session, mode)
    assert sorted(finished) == ["auto", "legacy"]


@pytest.fixture(scope="module")
def token_server() -> Iterator[str]:
    with http_server("counter_server", "--token", TOKEN) as url:
        yield url


@MODES
async def test_http_with_a_token_accepts_the_right_token(mode: str, token_server: str) -> None:
    async with http_client(token_server, token=TOKEN, mode=mode) as client:
        assert client.protocol_version == ERAS[mode]
        handle = (await client.call_tool("start", {})).structured_content["handle"]
        added = await client.call_tool("add", {"handle": handle, "amount": 2})
    assert added.structured_content == {"total": 2, "steps": 1}


@MODES
@pytest.mark.parametrize("token", ["wrong-token", None])
async def test_http_with_a_token_refuses_a_wrong_or_missing_token(
    mode: str, token: str | None, token_server: str
) -> None:
    with pytest.raises(BaseException) as caught:
        async with http_client(token_server, token=token, mode=mode) as client:
            await client.call_tool("start", {})
    assert _contains(caught.value, MCPError)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx2.AsyncClient(headers=headers) as http:
        response = await http.post(token_server, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert response.status_code == 401


@MODES
async def test_http_without_a_token_serves_in_both_eras(mode: str) -> None:
    async with serve_http(build(ServeOptions(transport="http"))) as url:
        async with http_client(url, mode=mode) as client:
            assert client.protocol_version == ERAS[mode]
            handle = (await client.call_tool("start", {})).structured_content["handle"]
            failed = await client.call_tool("explode", {"handle": handle})
            peek = await client.call_tool("peek", {"handle": handle})
    assert failed.is_error and "internal error in tool 'explode'" in failed.content[0].text  # type: ignore[union-attr]
    assert peek.structured_content == {"total": 0, "steps": 0}


def _contains(exc: BaseException, kind: type[BaseException]) -> bool:
    if isinstance(exc, kind):
        return True
    return any(_contains(e, kind) for e in getattr(exc, "exceptions", ()))
