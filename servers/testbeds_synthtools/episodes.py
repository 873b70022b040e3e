"""Sessions behind handles, and the names under which loaded toolsets' tools are served.

An `Episode` is one simulated world (an engine `Session`, SQLite) for one toolset: a sandbox (`load_toolset`)
or a task attempt (`start_task`: the session serves only the task's allowed tools, so the engine's own gateway
answers a call to any other tool with its unknown-tool error, and the attempt is graded on `submit`).

`Exposure` decides the MCP names of generated tools. A process serves the tools of every toolset loaded into
it (the SDK's tool list is server-wide), so names must never clash:

- a tool keeps its spec name when no other loaded toolset serves a *different* tool under that name (the same
  tool, byte for byte, is shared: loading one toolset twice or two toolsets with equal tools adds nothing);
- otherwise it is served as `<prefix>__<name>`, `prefix` a short slug of the toolset id (`__` never occurs
  in spec names, so the split is unambiguous), with `_2`, `_3` on the prefix if even that is taken;
- the server's own tool names are never handed out.

Names are fixed at first load and kept for the life of the process, so a name never changes meaning.

This module must not import `mcp`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from testbeds_serving.errors import InvalidArgument

from .compiler import CompiledTool, compile_tool
from .engine import CallResult, Session
from .grading import Submission, TaskGrade, grade
from .names import slug, with_suffix
from .spec import Toolset
from .tasks import Task

PREFIX_LEN = 14
"""Prefix cap: 14 + 2 + 48 (longest spec name) = 64, the strictest client limit."""

HANDLE_PROPERTY: dict[str, Any] = {
    "type": "string",
    "description": "The handle load_toolset or start_task returned (selects the simulated world).",
}


@dataclass
class Episode:
    """One simulated world: the toolset, its engine session, and for a task attempt the task and its grade."""

    toolset: Toolset
    session: Session
    key: str  # spec hash of the full toolset: routes exposed tools to this episode
    task: Task | None = None
    grade: TaskGrade | None = None
    submission: Submission | None = None
    initial: dict[str, list[dict[str, Any]]] | None = None

    @property
    def kind(self) -> Literal["sandbox", "task"]:
        return "task" if self.task is not None else "sandbox"

    def submit(self, submission: Submission) -> TaskGrade:
        """Grade the attempt on the session's final state (once)."""
        assert self.task is not None
        self.submission = submission
        self.grade = grade(self.task, self.session, submission, initial=self.initial)
        return self.grade

    def actual_diff(self) -> dict[str, dict[str, Any]]:
        """The raw state change since the episode began (inserted, updated, deleted per table)."""
        before = self.initial if self.initial is not None else {}
        return self.session.diff(before, self.session.snapshot())

    def close(self) -> None:
        self.session.close()


def new_episode(toolset: Toolset, *, seed: int, task: Task | None = None, path: str | Path | None = None,
                simulator: Any = None) -> Episode:
    """A fresh episode; a task episode's session serves only `task.tools_allowed`."""
    served = toolset
    if task is not None:
        allowed = set(task.tools_allowed)
        # Same id, version, seed and state: the engine's results and ids are those of the full toolset.
        served = toolset.model_copy(update={"tools": [t for t in toolset.tools if t.name in allowed]})
    session = Session(served, seed=seed, path=path, simulator=simulator)
    return Episode(toolset=toolset, session=session, key=toolset.spec_hash(), task=task,
                   initial=session.snapshot())


@dataclass
class ExposedTool:
    """One MCP tool: its compiled description and which toolsets it serves, under which spec name."""

    name: str
    compiled: CompiledTool
    routes: dict[str, str] = field(default_factory=dict)  # toolset key -> spec tool name


class Exposure:
    """The MCP names of generated tools (see the module docstring)."""

    def __init__(self, reserved: frozenset[str]) -> None:
        self.reserved = reserved
        self.tools: dict[str, ExposedTool] = {}
        self.by_toolset: dict[str, dict[str, str]] = {}  # toolset key -> spec name -> MCP name
        self._prefixes: dict[str, str] = {}  # toolset key -> prefix
        self._guard = threading.Lock()

    def expose(self, toolset: Toolset, key: str) -> tuple[dict[str, str], bool]:
        """Expose `toolset`'s tools; returns spec name -> MCP name and whether the tool list changed.

        Every tool is compiled before any is registered, so a toolset that cannot be served (a tool with its
        own parameter named `handle`, which the served form injects) raises `InvalidArgument` naming the tool
        and leaves the exposed tools exactly as they were."""
        with self._guard:
            if key in self.by_toolset:
                return dict(self.by_toolset[key]), False
            compiled_tools: list[tuple[str, CompiledTool]] = []
            for tool in toolset.tools:
                try:
                    compiled_tools.append((tool.name, compile_tool(
                        tool, extra_properties={"handle": HANDLE_PROPERTY}, extra_required=("handle",))))
                except ValueError as exc:
                    raise InvalidArgument(
                        f"toolset {toolset.id!r} cannot be served: tool {tool.name!r} cannot be exposed ({exc}). "
                        "A parameter named 'handle' is reserved for the episode handle; rename it in the spec."
                    ) from None
            mapping: dict[str, str] = {}
            changed = False
            for spec_name, compiled in compiled_tools:
                name = self._name_for(toolset, key, compiled)
                if name not in self.tools:
                    self.tools[name] = ExposedTool(name=name, compiled=compiled.model_copy(update={"name": name}))
                    changed = True
                self.tools[name].routes[key] = spec_name
                mapping[spec_name] = name
            self.by_toolset[key] = mapping
            return dict(mapping), changed

    def _name_for(self, toolset: Toolset, key: str, compiled: CompiledTool) -> str:
        if self._fits(compiled.name, compiled):
            return compiled.name
        base = self._prefix(toolset, key)
        k = 1
        while True:
            prefix = base if k == 1 else with_suffix(base, k, PREFIX_LEN)
            name = f"{prefix}__{compiled.name}"
            if self._fits(name, compiled):
                return name
            k += 1

    def _fits(self, name: str, compiled: CompiledTool) -> bool:
        if name in self.reserved:
            return False
        held = self.tools.get(name)
        return held is None or _same(held.compiled, compiled)

    def _prefix(self, toolset: Toolset, key: str) -> str:
        if key not in self._prefixes:
            ident = toolset.id.removeprefix("generated.")
            self._prefixes[key] = slug(ident, max_len=PREFIX_LEN)
        return self._prefixes[key]

    def route(self, name: str, key: str) -> str | None:
        """The spec tool name MCP tool `name` runs for toolset `key`, or None if it does not serve it."""
        tool = self.tools.get(name)
        return None if tool is None else tool.routes.get(key)

    def mapping(self, key: str) -> dict[str, str]:
        """Spec name -> MCP name for an exposed toolset."""
        return dict(self.by_toolset.get(key, {}))


def _same(a: CompiledTool, b: CompiledTool) -> bool:
    return a.model_dump(exclude={"name"}) == b.model_dump(exclude={"name"})


def error_text(result: CallResult) -> str:
    """The text of a failed engine call as the agent sees it: status, code and message."""
    return f"Error {result.status} ({result.code}): {result.message}"
