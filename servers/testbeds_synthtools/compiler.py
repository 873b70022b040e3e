"""Spec tool -> MCP tool description (pure data; `server.py` turns it into SDK objects).

The input schema is the spec's, minus nothing: unknown arguments stay forbidden and defaults stay visible.
The description joins the tool's description, its usage and a compact list of its errors, so a model sees
the remedies up front. Annotations come from the effect (`Annotations.for_effect`), `openWorldHint` false.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .spec import Tool, Toolset

MAX_ERRORS_IN_DESCRIPTION = 12


class CompiledTool(BaseModel):
    """What an MCP server lists for one tool."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="MCP tool name.")
    title: str = Field(description="Human title (MCP `title`, also `annotations.title`).")
    description: str = Field(description="Description shown to the model.")
    input_schema: dict[str, Any] = Field(description="MCP `inputSchema`.")
    output_schema: dict[str, Any] = Field(description="MCP `outputSchema` (structured content).")
    annotations: dict[str, Any] = Field(description="MCP `annotations`: title, readOnlyHint, destructiveHint, "
                                        "idempotentHint, openWorldHint.")


def describe(tool: Tool) -> str:
    """Description text: description, usage, then the errors as `- <status> <code>: <title>. <guidance>`."""
    parts = [tool.description.strip()]
    if tool.usage.strip():
        parts.append(f"Usage: {tool.usage.strip()}")
    if tool.errors:
        lines = [f"- {e.status} {e.code}: {e.title}" + (f". {e.guidance}" if e.guidance else "")
                 for e in tool.errors[:MAX_ERRORS_IN_DESCRIPTION]]
        if len(tool.errors) > MAX_ERRORS_IN_DESCRIPTION:
            lines.append(f"- ... and {len(tool.errors) - MAX_ERRORS_IN_DESCRIPTION} more")
        parts.append("Errors:\n" + "\n".join(lines))
    return "\n\n".join(p for p in parts if p)


def compile_tool(tool: Tool, *, extra_properties: dict[str, Any] | None = None,
                 extra_required: tuple[str, ...] = ()) -> CompiledTool:
    """Compile one spec tool. `extra_properties`/`extra_required` add arguments the server injects (e.g. the
    session `handle` of stateful tools); they must not collide with the tool's own arguments."""
    ann = tool.annotations
    assert ann is not None  # set by Tool's validator
    input_schema = copy.deepcopy(tool.input_schema)
    if extra_properties:
        props = input_schema.setdefault("properties", {})
        clash = set(props) & set(extra_properties)
        if clash:
            raise ValueError(f"{tool.name}: injected arguments collide with {sorted(clash)}")
        input_schema["properties"] = {**copy.deepcopy(extra_properties), **props}
        input_schema["required"] = [*extra_required, *input_schema.get("required", [])]
    return CompiledTool(
        name=tool.name,
        title=tool.title,
        description=describe(tool),
        input_schema=input_schema,
        output_schema=copy.deepcopy(tool.output_schema),
        annotations={
            "title": tool.title,
            "readOnlyHint": ann.read_only,
            "destructiveHint": ann.destructive,
            "idempotentHint": ann.idempotent,
            "openWorldHint": ann.open_world,
        },
    )


def compile_toolset(toolset: Toolset, **kwargs: Any) -> list[CompiledTool]:
    """Compile every tool of a toolset, in order (kwargs as for `compile_tool`)."""
    return [compile_tool(t, **kwargs) for t in toolset.tools]
