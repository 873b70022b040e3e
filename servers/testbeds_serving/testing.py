"""Test helpers for suite servers: a real stdio subprocess, an HTTP server subprocess, a token client.

    async with stdio_client("testbeds_latentgym", mode="legacy") as client:
        await client.call_tool("start_sequence", {...})

    with http_server("testbeds_latentgym", "--token", "s3cret") as url:   # subprocess, via the CLI
        async with http_client(url, token="s3cret") as client:
            ...

    async with serve_http(build(ServeOptions())) as url:                  # in-process, fast
        async with http_client(url, mode="legacy") as client:
            ...

Subprocesses get the parent's `sys.path` as PYTHONPATH, so they import exactly what the test
imports (including test-support modules next to the test), plus only the `env` you pass: both
start from the SDK's minimal environment, not `os.environ`, so e.g. the parent's TESTBEDS_RECORD
does not leak into the server.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from typing import Any, Literal

import anyio
import httpx2
from mcp import Client, StdioServerParameters
from mcp.client.stdio import get_default_environment
from mcp.client.streamable_http import streamable_http_client
from mcp.server.mcpserver import MCPServer

Mode = Literal["auto", "legacy"]


def child_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """Variables a child server needs: the parent's import path, plus `env` (which wins)."""
    paths = [p for p in sys.path if p and os.path.isdir(p)]
    base = {"PYTHONPATH": os.pathsep.join(paths), "PYTHONUNBUFFERED": "1"}
    return {**base, **(env or {})}


@asynccontextmanager
async def stdio_client(module: str, *args: str, env: Mapping[str, str] | None = None,
                       mode: Mode = "auto", cwd: str | os.PathLike[str] | None = None) -> AsyncIterator[Client]:
    """Spawn `python -m module *args` as a stdio MCP server and yield a connected `Client`.

    The process ends when the block exits (the SDK closes stdin, then terminates it).
    """
    params = StdioServerParameters(command=sys.executable, args=["-m", module, *args], env=child_env(env), cwd=cwd)
    async with Client(params, mode=mode) as client:
        yield client


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


@contextmanager
def http_server(module: str, *args: str, env: Mapping[str, str] | None = None, host: str = "127.0.0.1",
                startup_timeout: float = 15.0, attempts: int = 3) -> Iterator[str]:
    """Run `python -m module --transport http --host H --port P *args`; yield its MCP URL once it accepts.

    Picks a free port, retrying with another if the server exits because the port was taken in
    between. The process is always terminated (then killed) on exit. On failure to start, the
    error includes the server's stderr.
    """
    last_error = ""
    for _ in range(attempts):
        port = free_port(host)
        command = [sys.executable, "-m", module, "--transport", "http", "--host", host, "--port", str(port), *args]
        with tempfile.TemporaryFile(mode="w+b") as stderr:
            proc = subprocess.Popen(
                command, env={**get_default_environment(), **child_env(env)}, stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=stderr,
            )
            try:
                deadline = time.monotonic() + startup_timeout
                while proc.poll() is None and not _accepts(host, port):
                    if time.monotonic() > deadline:
                        stderr.seek(0)
                        raise TimeoutError(f"{module} did not accept connections on {host}:{port} within "
                                           f"{startup_timeout} s; stderr:\n{stderr.read().decode(errors='replace')}")
                    time.sleep(0.05)
                if proc.poll() is None:
                    yield f"http://{host}:{port}/mcp"
                    return
                stderr.seek(0)
                last_error = stderr.read().decode(errors="replace")
                if "address already in use" not in last_error.lower():
                    break
            finally:
                _stop(proc)
    raise RuntimeError(f"{module} exited at startup; stderr:\n{last_error}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@asynccontextmanager
async def serve_http(server: MCPServer[Any], *, host: str = "127.0.0.1", port: int | None = None,
                     startup_timeout: float = 10.0) -> AsyncIterator[str]:
    """Serve `server` over streamable HTTP inside this process; yield its MCP URL.

    Much faster than `http_server` (no interpreter start-up), for suites' HTTP tests; the
    subprocess helper remains the test of the command line. A `SuiteServer` built with
    `ServeOptions(transport="http", port=p, token=...)` must be served on that same port.
    """
    import uvicorn

    port = port or free_port(host)
    app = server.streamable_http_app(host=host)
    # log_config=None leaves the process's logging alone; ws="none" skips importing websockets.
    config = uvicorn.Config(app, host=host, port=port, log_config=None, log_level="warning", ws="none")
    uv = uvicorn.Server(config)
    async with anyio.create_task_group() as tg:
        tg.start_soon(uv.serve)
        with anyio.fail_after(startup_timeout):
            while not uv.started:
                await anyio.sleep(0.01)
        try:
            yield f"http://{host}:{port}/mcp"
        finally:
            uv.should_exit = True


@asynccontextmanager
async def http_client(url: str, *, token: str | None = None, mode: Mode = "auto") -> AsyncIterator[Client]:
    """A `Client` for a streamable-HTTP server, sending `Authorization: Bearer <token>` when given."""
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    timeout = httpx2.Timeout(30.0, read=300.0)
    async with httpx2.AsyncClient(headers=headers, timeout=timeout) as http:
        async with Client(streamable_http_client(url, http_client=http), mode=mode) as client:
            yield client
