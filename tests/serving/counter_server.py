"""A tiny suite for testing `testbeds_serving`: counters behind handles.

Runnable as a server (`python -m counter_server [--transport http ...]`) for subprocess tests,
and importable (`build(options)`) for in-memory ones.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated

import anyio
from mcp import MCPError
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field
from testbeds_serving import InvalidArgument, Registry, ServeOptions, SuiteServer, serve_main


class Counter(BaseModel):
    total: int = 0
    history: list[int] = Field(default_factory=list)


class Started(BaseModel):
    handle: str = Field(description="Pass this to every other tool.")


class Total(BaseModel):
    total: int
    steps: int


Handle = Annotated[str, Field(description="The handle `start` returned.")]


def build(
    options: ServeOptions,
    *,
    idle_seconds: float | None = 3600.0,
    max_entries: int | None = 100,
    clock: Callable[[], float] = time.monotonic,
) -> SuiteServer:
    server = SuiteServer("counter", instructions="Counters. Call start, then add.", version="0.0.1",
                         options=options)
    counters = server.attach(Registry[Counter](kind="counter", start_tool="start", idle_seconds=idle_seconds,
                                               max_entries=max_entries, clock=clock))
    server.counters = counters  # type: ignore[attr-defined]  # tests reach the registry through this

    @server.tool(annotations=ToolAnnotations(destructive_hint=False))
    async def start(label: str = "", seed: int = 0) -> Started:
        """Start a new counter at zero."""
        return Started(handle=counters.create(Counter(), evaluator_info={"seed": seed, "secret": 42}))

    @server.tool(annotations=ToolAnnotations(idempotent_hint=False))
    async def add(handle: Handle, amount: int) -> Total:
        """Add an amount to the counter."""
        async with counters.use(handle) as entry:
            entry.state.total += amount
            entry.state.history.append(amount)
            return Total(total=entry.state.total, steps=len(entry.state.history))

    @server.tool()
    async def add_slowly(handle: Handle, amount: int) -> Total:
        """Read, wait, then write: loses updates unless calls on one handle are serialised."""
        async with counters.use(handle) as entry:
            seen = entry.state.total
            await anyio.sleep(0.02)
            entry.state.total = seen + amount
            entry.state.history.append(amount)
            return Total(total=entry.state.total, steps=len(entry.state.history))

    @server.tool()
    async def divide(handle: Handle, by: int) -> Total:
        """Divide the counter (integer division)."""
        async with counters.use(handle) as entry:
            if by == 0:
                raise InvalidArgument("cannot divide by 0; pass a non-zero 'by'")
            entry.state.total //= by
            entry.state.history.append(0)
            return Total(total=entry.state.total, steps=len(entry.state.history))

    @server.tool()
    async def explode(handle: Handle) -> Total:
        """Change the counter, then hit a bug."""
        async with counters.use(handle, atomic=True) as entry:
            entry.state.total += 1000
            entry.state.history.append(1000)
            raise RuntimeError("secret-internal-detail")

    @server.tool()
    async def finish(handle: Handle) -> Total:
        """End the episode."""
        async with counters.use(handle) as entry:
            entry.end("finished by the agent")
            entry.evaluator_info["final"] = entry.state.total
            return Total(total=entry.state.total, steps=len(entry.state.history))

    @server.tool(annotations=ToolAnnotations(read_only_hint=True))
    async def peek(handle: Handle) -> Total:
        """Read the counter, also after the episode ended."""
        async with counters.use(handle, allow_ended=True) as entry:
            return Total(total=entry.state.total, steps=len(entry.state.history))

    @server.tool()
    async def reject(handle: Handle) -> Total:
        """Fail at the protocol level (what e.g. a missing sampling capability does)."""
        raise MCPError(code=-32021, message="client did not declare the sampling capability")

    @server.evaluator_resource("counter://{handle}/secret")
    def secret(handle: str) -> str:
        """The hidden setting of a counter (evaluator face only)."""
        return str(counters.get(handle).evaluator_info["secret"])

    return server


def main(argv: list[str] | None = None) -> None:
    serve_main(build, argv, prog="counter-server")


if __name__ == "__main__":
    main()
