"""Record every `tools/call` a server answers into the transcript store, keyed by handle.

`Recorder` is server middleware (`server.middleware.append(recorder)`; `SuiteServer` does it for
`--record`). It sees each call before validation, so calls naming an unknown tool or failing
validation are recorded with their `is_error` result too. Where the events go:

- the call's arguments hold a `handle`: that handle's episode;
- the result's structured content holds a `handle` (a start tool): a new episode for it, with the
  registry entry's `evaluator_info` merged over the call's arguments as settings;
- otherwise: an "unbound" episode per process (per MCP session id over legacy HTTP).

The run is created on first use: suite = server name, model from `TESTBEDS_MODEL` (default
"mcp-client"), and the run id from `TESTBEDS_RUN_ID` when set, so a runner's run collects the
episodes its server subprocess records. When a registry entry is ended (`entry.end()`), its episode
ends "completed" after that call's result is recorded; an entry expired, evicted or closed before
ending ends "abandoned". Interim `input_required` results (2026-07-28 multi-round calls) are not
recorded; the completing round is.

Recording never changes what the client sees: a store failure is logged as a warning and the call's
result is returned untouched. Store writes run in a worker thread, so a busy database file does not
stall other calls.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
from pydantic import BaseModel

from testbeds_serving.registry import Entry, Registry, RemovalReason

if TYPE_CHECKING:
    from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
    from testbeds_evals.store import Store

log = logging.getLogger("testbeds.serving.recording")

DEFAULT_MODEL = "mcp-client"


@dataclass
class _Pending:
    """What is known about one call before its result arrives."""

    call: Any  # testbeds_evals.events.ToolCall
    handle: str | None
    session_id: str | None


class Recorder:
    """Middleware recording tool calls and results into a `testbeds_evals` store.

    Args:
        path: the SQLite file (created if missing).
        suite: the run's and episodes' suite name.
        model: the run's model; default `TESTBEDS_MODEL` or "mcp-client".
        run_id: attach to this run; default `TESTBEDS_RUN_ID` or a new run.
    """

    def __init__(self, path: str | os.PathLike[str], *, suite: str, model: str | None = None,
                 run_id: str | None = None) -> None:
        self.path = Path(path)
        self.suite = suite
        self.model = model or os.environ.get("TESTBEDS_MODEL") or DEFAULT_MODEL
        self._wanted_run_id = run_id or os.environ.get("TESTBEDS_RUN_ID") or None
        self._store: Store | None = None
        self._run_id: str | None = None
        self._registries: list[Registry[Any]] = []
        self._episodes: dict[str, str] = {}  # handle -> episode id
        self._unbound: dict[str | None, str] = {}  # MCP session id (None: the process) -> episode id
        self._ended: set[str] = set()  # episode ids this recorder ended
        self._removed: deque[tuple[Entry[Any], RemovalReason]] = deque()
        self._lock = threading.Lock()  # recording runs in worker threads, one call at a time
        self._failures = 0
        self._call_numbers = itertools.count(1)

    @property
    def run_id(self) -> str | None:
        """The run being recorded into, once the first call was recorded."""
        return self._run_id

    def watch(self, registry: Registry[Any]) -> None:
        """Key episodes on `registry`'s handles and end them when its entries end or go away."""
        self._registries.append(registry)
        registry.add_listener(lambda entry, reason: self._removed.append((entry, reason)))

    def close(self) -> None:
        """Close the store (the next recorded call reopens it)."""
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.method != "tools/call" or ctx.request_id is None:
            return await call_next(ctx)
        pending = self._safely(self._begin, ctx)
        try:
            result = await call_next(ctx)
        except BaseException as exc:
            if pending is not None and isinstance(exc, Exception | anyio.get_cancelled_exc_class()):
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(self._safely, self._record_failure, pending, exc)
            raise
        if pending is not None:
            await anyio.to_thread.run_sync(self._safely, self._record_result, pending, result)
        return result

    # -- steps, each run through `_safely` -----------------------------------------------------

    def _begin(self, ctx: ServerRequestContext[Any, Any]) -> _Pending:
        from testbeds_evals.events import ToolCall

        params: Mapping[str, Any] = ctx.params or {}
        arguments = params.get("arguments")
        arguments = dict(arguments) if isinstance(arguments, Mapping) else {}
        handle = arguments.get("handle")
        call = ToolCall(
            # Numbered per process, not random: the same calls give the same transcript.
            call_id=f"call-{next(self._call_numbers)}",
            name=str(params.get("name", "")),
            arguments=arguments,
            source="server",
        )
        return _Pending(call=call, handle=handle if isinstance(handle, str) else None,
                        session_id=_session_id(ctx))

    def _record_result(self, pending: _Pending, result: HandlerResult) -> None:
        from testbeds_evals.events import ToolResult

        wire = result.model_dump(by_alias=True, mode="json", exclude_none=True) if isinstance(
            result, BaseModel) else dict(result or {})
        if wire.get("resultType") == "input_required":
            return
        structured = wire.get("structuredContent")
        structured = structured if isinstance(structured, dict) else None
        is_error = bool(wire.get("isError", False))
        event = ToolResult(
            call_id=pending.call.call_id,
            name=pending.call.name,
            is_error=is_error,
            content=_text(wire.get("content")),
            structured=structured,
            source="server",
        )
        new_handle = structured.get("handle") if structured and not is_error and pending.handle is None else None
        with self._lock:
            store = self._open()
            if isinstance(new_handle, str):
                episode = self._start_episode(store, new_handle, pending.call.arguments)
                handle: str | None = new_handle
            else:
                episode, handle = self._episode_for(store, pending)
            store.append(episode, pending.call)
            store.append(episode, event)
            if handle is not None:
                self._end_if_ended(store, handle, episode)
            self._drain_removed(store)

    def _record_failure(self, pending: _Pending, exc: BaseException) -> None:
        from testbeds_evals.events import Error

        message = "cancelled" if not isinstance(exc, Exception) else f"{type(exc).__name__}: {exc}"
        with self._lock:
            store = self._open()
            episode, _ = self._episode_for(store, pending)
            store.append(episode, pending.call)
            store.append(episode, Error(message=message, where=f"tools/call {pending.call.name}", source="server"))
            self._drain_removed(store)

    # -- helpers (called with self._lock held) ----------------------------------------------------

    def _open(self) -> Store:
        from testbeds_evals.store import Store

        if self._store is None:
            self._store = Store(self.path)
        if self._run_id is None:
            self._run_id = self._store.create_run(
                suite=self.suite, model=self.model, seed=None, config={"recorded_by": "server"},
                run_id=self._wanted_run_id,
            )
        return self._store

    def _entry(self, handle: str) -> Entry[Any] | None:
        for registry in self._registries:
            if (entry := registry.find(handle)) is not None:
                return entry
        return None

    def _start_episode(self, store: Store, handle: str, arguments: dict[str, Any]) -> str:
        entry = self._entry(handle)
        settings = {**arguments, **(entry.evaluator_info if entry is not None else {})}
        assert self._run_id is not None
        episode = store.create_episode(self._run_id, suite=self.suite, handle=handle, settings=settings)
        self._episodes[handle] = episode
        return episode

    def _episode_for(self, store: Store, pending: _Pending) -> tuple[str, str | None]:
        """The episode for a call's handle, else the unbound one; and the handle it is keyed on."""
        handle = pending.handle
        if handle is not None:
            if handle in self._episodes:
                return self._episodes[handle], handle
            if (episode := store.episode_for_handle(handle)) is not None:
                self._episodes[handle] = episode
                return episode, handle
            if self._entry(handle) is not None:  # live, but its start was not recorded
                return self._start_episode(store, handle, {}), handle
        return self._unbound_episode(store, pending.session_id), None

    def _unbound_episode(self, store: Store, session_id: str | None) -> str:
        if session_id not in self._unbound:
            settings: dict[str, Any] = {"unbound": True, "pid": os.getpid()}
            if session_id is not None:
                settings["mcp_session_id"] = session_id
            assert self._run_id is not None
            self._unbound[session_id] = store.create_episode(self._run_id, suite=self.suite, settings=settings)
        return self._unbound[session_id]

    def _end_if_ended(self, store: Store, handle: str, episode: str) -> None:
        entry = self._entry(handle)
        if entry is not None and entry.ended:
            self._end(store, episode, entry, "completed", entry.end_detail)

    def _drain_removed(self, store: Store) -> None:
        while self._removed:
            entry, reason = self._removed.popleft()
            episode = self._episodes.get(entry.handle)
            if episode is None:
                continue
            if entry.ended:
                self._end(store, episode, entry, "completed", entry.end_detail)
            else:
                self._end(store, episode, entry, "abandoned", f"handle {reason} before the episode ended")

    def _end(self, store: Store, episode: str, entry: Entry[Any], reason: str, detail: str | None) -> None:
        if episode in self._ended:
            return
        if entry.evaluator_info:  # hidden settings the suite added during the episode
            store.update_settings(episode, entry.evaluator_info)
        store.end_episode(episode, reason, detail)  # type: ignore[arg-type]
        self._ended.add(episode)

    def _safely(self, step: Any, *args: Any) -> Any:
        try:
            return step(*args)
        except Exception:
            self._failures += 1
            # A full traceback once, then one line each: a broken store must not flood stderr.
            log.warning("recording to %s failed; the tool call itself is unaffected", self.path,
                        exc_info=self._failures == 1)
            return None


def _text(content: Any) -> str:
    if not isinstance(content, list):
        return ""
    parts = []
    for item in content:
        if isinstance(item, Mapping):
            parts.append(str(item["text"]) if item.get("type") == "text" else f"[{item.get('type', 'content')}]")
    return "\n".join(parts)


def _session_id(ctx: ServerRequestContext[Any, Any]) -> str | None:
    headers = getattr(ctx.request, "headers", None)
    if headers is None:
        return None
    value = headers.get("mcp-session-id")
    return str(value) if value else None
