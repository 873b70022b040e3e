"""State behind explicit, unguessable handles (DESIGN.md §5).

A start tool calls `Registry.create(state)` and returns the handle; every stateful tool takes the
handle and works on the entry inside `async with registry.use(handle) as entry:`, which holds the
entry's own lock (one MCP session does not serialise its calls, so parallel calls on one handle
would otherwise interleave). Handles are capabilities: the registry never lists them.

This module must not import `mcp`, so domain code and tests can use it directly.
"""

from __future__ import annotations

import copy
import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

import anyio

from testbeds_serving.errors import EpisodeEnded, NotFound, UserError

log = logging.getLogger("testbeds.serving.registry")

T = TypeVar("T")

RemovalReason = Literal["expired", "evicted", "closed"]
"""Why an entry left the registry: idle too long, pushed out by the cap, or closed explicitly."""

RemovalListener = Callable[["Entry[Any]", RemovalReason], None]

# Remembering removed handles turns "unknown handle" into "this handle expired": worth a few
# hundred kilobytes at most, and bounded so a long-running server does not grow without limit.
_TOMBSTONES = 10_000
_HANDLE_ECHO = 40


@dataclass(eq=False)
class Entry(Generic[T]):
    """One live piece of state and what the evaluator needs to know about it.

    `state` is the suite's own object. `evaluator_info` holds hidden settings (seed, generator
    parameters, ...) for recording and scoring; never return it from an agent-facing tool.
    """

    handle: str = field(repr=False)
    state: T
    evaluator_info: dict[str, Any]
    created_at: float
    last_used: float
    ended: bool = False
    end_detail: str | None = None
    lock: anyio.Lock = field(default_factory=anyio.Lock, repr=False)
    # Callers inside or waiting for `use`: an entry in use is never expired or evicted.
    users: int = field(default=0, repr=False)

    def end(self, detail: str | None = None) -> None:
        """Mark the episode finished (submitted, solved, out of steps).

        The entry stays readable (`use(..., allow_ended=True)`), and a recording server ends the
        handle's episode with reason "completed" once the current call's result is recorded.
        """
        self.ended = True
        self.end_detail = detail


class Registry(Generic[T]):
    """Handles to live entries, with a lock per entry, idle expiry and a cap.

    Args:
        kind: what an entry is called in error messages ("episode", "workspace", "study").
        start_tool: the tool that creates entries, named in error messages.
        idle_seconds: an entry unused this long is removed (None: never).
        max_entries: cap on live entries (None: no cap). At the cap, `create` evicts the entry
            unused the longest, preferring ended ones; entries in use are never evicted, and if
            every entry is in use `create` raises `UserError`.
        clock: seconds, monotonic; injectable for tests.
        loader: for suites that persist their state (e.g. a study in SQLite): called with a handle the
            registry does not hold (never created here, or expired, evicted or closed) and returning
            `(state, evaluator_info)` to bring it back under the same handle, or None if unknown. So a
            persisted entry survives a server restart and idle expiry.
    """

    def __init__(
        self,
        *,
        kind: str = "episode",
        start_tool: str = "start",
        idle_seconds: float | None = 3600.0,
        max_entries: int | None = 1000,
        clock: Callable[[], float] = time.monotonic,
        loader: Callable[[str], tuple[T, dict[str, Any]] | None] | None = None,
    ) -> None:
        if max_entries is not None and max_entries < 1:
            raise ValueError("max_entries must be at least 1 or None")
        self.kind = kind
        self.start_tool = start_tool
        self.idle_seconds = idle_seconds
        self.max_entries = max_entries
        self._clock = clock
        self._loader = loader
        self._entries: dict[str, Entry[T]] = {}
        self._tombstones: OrderedDict[str, RemovalReason] = OrderedDict()
        self._listeners: list[RemovalListener] = []
        # Sync tools run in worker threads; the dict operations stay consistent under them.
        self._guard = threading.RLock()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, handle: object) -> bool:
        return isinstance(handle, str) and handle in self._entries

    def add_listener(self, listener: RemovalListener) -> None:
        """Call `listener(entry, reason)` whenever an entry is expired, evicted or closed."""
        self._listeners.append(listener)

    def create(self, state: T, evaluator_info: dict[str, Any] | None = None) -> str:
        """Store `state` and return its new handle (unguessable, URL-safe)."""
        return self._insert(state, evaluator_info, secrets.token_urlsafe(24))

    def _insert(self, state: T, evaluator_info: dict[str, Any] | None, handle: str) -> str:
        removed: list[tuple[Entry[T], RemovalReason]] = []
        with self._guard:
            removed.extend((e, "expired") for e in self._sweep_locked())
            if self.max_entries is not None and len(self._entries) >= self.max_entries:
                victim = self._eviction_candidate()
                if victim is None:
                    raise UserError(
                        f"the server already holds its limit of {self.max_entries} live {self.kind}s "
                        f"and all are in use; retry {self.start_tool} shortly"
                    )
                self._remove_locked(victim, "evicted")
                removed.append((victim, "evicted"))
            now = self._clock()
            self._entries[handle] = Entry(
                handle=handle,
                state=state,
                evaluator_info=dict(evaluator_info or {}),
                created_at=now,
                last_used=now,
            )
        self._notify(removed)
        return handle

    def get(self, handle: str) -> Entry[T]:
        """The entry for `handle`, without its lock (for reads that need no consistency).

        Raises `NotFound` with a message saying what to do for an unknown, expired, evicted or
        closed handle.
        """
        removed: list[tuple[Entry[T], RemovalReason]] = []
        try:
            with self._guard:
                entry = self._entries.get(handle) if isinstance(handle, str) else None
                if entry is not None and self._is_expired(entry):
                    self._remove_locked(entry, "expired")
                    removed.append((entry, "expired"))
                    entry = None
                if entry is not None:
                    return entry
        finally:
            self._notify(removed)
        return self._restore(handle)

    def _restore(self, handle: str) -> Entry[T]:
        """Bring a persisted entry back through the loader, or raise the not-found error."""
        loaded = self._loader(handle) if self._loader is not None and isinstance(handle, str) else None
        if loaded is None:
            raise self._not_found(handle)
        with self._guard:
            if handle not in self._entries:  # another caller may have restored it meanwhile
                self._tombstones.pop(handle, None)
                self._insert(loaded[0], loaded[1], handle)
            return self._entries[handle]

    def find(self, handle: str) -> Entry[T] | None:
        """The entry for `handle` or None; no error, no expiry check (for infrastructure)."""
        return self._entries.get(handle) if isinstance(handle, str) else None

    @asynccontextmanager
    async def use(self, handle: str, *, allow_ended: bool = False, atomic: bool = False) -> AsyncIterator[Entry[T]]:
        """Hold `handle`'s entry under its lock for one tool call.

        Args:
            allow_ended: let read-only tools see an ended entry; otherwise an ended entry raises
                `EpisodeEnded`.
            atomic: snapshot state (deep copy) first and restore it if the block raises, so a
                failing call has no effect even if it had already changed something. Costs one
                deep copy per call; leave it off when the tool validates before it mutates.
        """
        entry = self.get(handle)
        entry.users += 1
        try:
            async with entry.lock:
                if self._entries.get(entry.handle) is not entry:  # closed while we waited
                    raise self._not_found(handle)
                if entry.ended and not allow_ended:
                    raise EpisodeEnded(
                        f"this {self.kind} has ended; call {self.start_tool} to begin a new one"
                    )
                entry.last_used = self._clock()
                if not atomic:
                    yield entry
                    return
                snapshot = copy.deepcopy((entry.state, entry.evaluator_info, entry.ended, entry.end_detail))
                try:
                    yield entry
                except BaseException:
                    entry.state, entry.evaluator_info, entry.ended, entry.end_detail = snapshot
                    raise
        finally:
            entry.users -= 1
            entry.last_used = self._clock()

    def close(self, handle: str) -> Entry[T]:
        """Remove `handle`'s entry and return it; later calls with the handle get a clear error."""
        with self._guard:
            entry = self._entries.get(handle) if isinstance(handle, str) else None
            if entry is None:
                raise self._not_found(handle)
            self._remove_locked(entry, "closed")
        self._notify([(entry, "closed")])
        return entry

    def close_all(self) -> None:
        """Remove every entry (server shutdown)."""
        with self._guard:
            entries = list(self._entries.values())
            for entry in entries:
                self._remove_locked(entry, "closed")
        self._notify([(e, "closed") for e in entries])

    def sweep(self) -> int:
        """Remove entries idle longer than `idle_seconds`; return how many. `create` calls it."""
        with self._guard:
            expired = self._sweep_locked()
        self._notify([(e, "expired") for e in expired])
        return len(expired)

    def _is_expired(self, entry: Entry[T]) -> bool:
        return (
            self.idle_seconds is not None
            and entry.users == 0
            and self._clock() - entry.last_used > self.idle_seconds
        )

    def _sweep_locked(self) -> list[Entry[T]]:
        expired = [e for e in self._entries.values() if self._is_expired(e)]
        for entry in expired:
            self._remove_locked(entry, "expired")
        return expired

    def _eviction_candidate(self) -> Entry[T] | None:
        idle = [e for e in self._entries.values() if e.users == 0]
        if not idle:
            return None
        return min(idle, key=lambda e: (not e.ended, e.last_used))

    def _remove_locked(self, entry: Entry[T], reason: RemovalReason) -> None:
        del self._entries[entry.handle]
        self._tombstones[entry.handle] = reason
        while len(self._tombstones) > _TOMBSTONES:
            self._tombstones.popitem(last=False)

    def _not_found(self, handle: object) -> NotFound:
        again = f"call {self.start_tool} to begin a new {self.kind}"
        reason = self._tombstones.get(handle) if isinstance(handle, str) else None
        if reason == "expired":
            return NotFound(f"this {self.kind} handle expired after {self.idle_seconds:g} s without use; {again}")
        if reason == "evicted":
            return NotFound(
                f"this {self.kind} handle was dropped because the server reached its limit of "
                f"{self.max_entries} live {self.kind}s; {again}"
            )
        if reason == "closed":
            return NotFound(f"this {self.kind} handle was closed; {again}")
        shown = repr(handle) if len(repr(handle)) <= _HANDLE_ECHO else repr(handle)[:_HANDLE_ECHO] + "..."
        return NotFound(
            f"unknown {self.kind} handle {shown}; call {self.start_tool} first and pass the handle it returns"
        )

    def _notify(self, removed: list[tuple[Entry[T], RemovalReason]]) -> None:
        for entry, reason in removed:
            for listener in self._listeners:
                try:
                    listener(entry, reason)
                except Exception:
                    log.warning("registry removal listener failed", exc_info=True)
