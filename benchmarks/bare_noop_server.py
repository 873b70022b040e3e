"""The baseline of latentgym_overhead.py: a bare MCPServer whose tool does nothing but echo a small dict.

It takes the same arguments as latentgym's `act` and returns a pydantic model of similar size, so the
ratio isolates what our plumbing and the environment step add to the SDK's own per-call cost."""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import MCPServer
from pydantic import BaseModel

bare = MCPServer("bare", log_level="WARNING")


class Echo(BaseModel):
    task: int
    action: dict[str, Any]
    result: dict[str, Any]
    task_done: bool
    feedback: dict[str, Any] | None = None
    sequence_done: bool
    next: dict[str, Any] | None = None


@bare.tool()
async def act(handle: str, action: dict[str, Any]) -> Echo:
    """Do nothing; echo the action."""
    return Echo(task=1, action=action, result={"position": 2, "rank_among_seen": 1}, task_done=False,
                sequence_done=False)


if __name__ == "__main__":
    bare.run("stdio")
