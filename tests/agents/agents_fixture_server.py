"""A small MCP server for the agent tests: a seeded sequence of tasks behind a handle.

Each task has a hidden target number. `div` is plain arithmetic (and fails on b == 0), `reveal`
shows the current target, and `finish_task` answers the task: its structured result marks the
task boundary and says what the next task is. Run directly, it serves over stdio.
"""

from __future__ import annotations

import random
import secrets
from dataclasses import dataclass, field

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel


class Started(BaseModel):
    handle: str
    task: int
    tasks: int


class Revealed(BaseModel):
    task: int
    target: int


class Finished(BaseModel):
    task_done: bool
    correct: bool
    summary: str
    next_task: int | None


@dataclass
class Episode:
    targets: list[int]
    task: int = 1
    answers: list[float] = field(default_factory=list)


def make_server(seed: int = 0) -> MCPServer:
    """A fresh server whose task targets come only from `seed` (handles are random)."""
    mcp = MCPServer("agents-fixture", log_level="WARNING")
    rng = random.Random(seed)
    episodes: dict[str, Episode] = {}

    def episode(handle: str) -> Episode:
        if handle not in episodes:
            raise ToolError(f"unknown handle {handle!r}; call start first")
        return episodes[handle]

    @mcp.tool()
    async def start(tasks: int = 3) -> Started:
        """Start a sequence of tasks and return its handle."""
        handle = secrets.token_urlsafe(12)
        episodes[handle] = Episode(targets=[rng.randint(2, 99) for _ in range(tasks)])
        return Started(handle=handle, task=1, tasks=tasks)

    @mcp.tool()
    async def div(handle: str, a: float, b: float) -> float:
        """Divide a by b."""
        episode(handle)
        if b == 0:
            raise ToolError("b must not be 0; use a non-zero divisor")
        return a / b

    @mcp.tool()
    async def reveal(handle: str) -> Revealed:
        """Show the current task's target."""
        ep = episode(handle)
        return Revealed(task=ep.task, target=ep.targets[ep.task - 1])

    @mcp.tool()
    async def finish_task(handle: str, answer: float) -> Finished:
        """Answer the current task with half its target."""
        ep = episode(handle)
        if ep.task > len(ep.targets):
            raise ToolError("all tasks are finished")
        target = ep.targets[ep.task - 1]
        correct = answer == target / 2
        summary = f"task {ep.task}: answered {answer:g} for target {target} ({'right' if correct else 'wrong'})"
        ep.answers.append(answer)
        ep.task += 1
        next_task = ep.task if ep.task <= len(ep.targets) else None
        return Finished(task_done=True, correct=correct, summary=summary, next_task=next_task)

    return mcp


if __name__ == "__main__":
    make_server(seed=7).run()
