"""The handle registry on its own: isolation, locking, expiry, the cap, errors."""

from __future__ import annotations

import anyio
import pytest
from testbeds_serving.errors import EpisodeEnded, NotFound, UserError
from testbeds_serving.registry import Registry

pytestmark = pytest.mark.anyio


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(**kwargs: object) -> tuple[Registry[dict[str, int]], Clock]:
    clock = Clock()
    registry: Registry[dict[str, int]] = Registry(kind="episode", start_tool="start_sequence", clock=clock,
                                                  **kwargs)  # type: ignore[arg-type]
    return registry, clock


async def test_two_handles_have_separate_state() -> None:
    registry, _ = make()
    a = registry.create({"n": 0})
    b = registry.create({"n": 0})
    async with registry.use(a) as entry:
        entry.state["n"] += 5
    assert registry.get(a).state == {"n": 5}
    assert registry.get(b).state == {"n": 0}
    assert a != b


def test_handles_are_long_and_unguessable() -> None:
    registry, _ = make(max_entries=None)
    handles = {registry.create({}) for _ in range(200)}
    assert len(handles) == 200
    assert min(len(h) for h in handles) >= 32


def test_the_registry_cannot_list_its_handles() -> None:
    registry, _ = make()
    registry.create({})
    with pytest.raises(TypeError):
        iter(registry)  # type: ignore[call-overload]
    assert len(registry) == 1


def test_an_unknown_handle_says_to_call_the_start_tool() -> None:
    registry, _ = make()
    with pytest.raises(NotFound, match=r"unknown episode handle 'nope'; call start_sequence first"):
        registry.get("nope")


async def test_concurrent_uses_of_one_handle_are_serialised() -> None:
    registry, _ = make()
    handle = registry.create({"n": 0})

    async def increment() -> None:
        async with registry.use(handle) as entry:
            seen = entry.state["n"]
            await anyio.sleep(0.001)  # a read-modify-write that loses updates if interleaved
            entry.state["n"] = seen + 1

    async with anyio.create_task_group() as tg:
        for _ in range(20):
            tg.start_soon(increment)
    assert registry.get(handle).state["n"] == 20


async def test_the_same_workload_without_the_lock_loses_updates() -> None:
    # Shows the serialisation test above can fail: the race is real.
    registry, _ = make()
    handle = registry.create({"n": 0})

    async def increment() -> None:
        entry = registry.get(handle)
        seen = entry.state["n"]
        await anyio.sleep(0.001)
        entry.state["n"] = seen + 1

    async with anyio.create_task_group() as tg:
        for _ in range(20):
            tg.start_soon(increment)
    assert registry.get(handle).state["n"] < 20


def test_an_idle_handle_expires_with_a_clear_error() -> None:
    registry, clock = make(idle_seconds=60)
    handle = registry.create({})
    clock.now += 59
    registry.get(handle)
    clock.now += 2
    with pytest.raises(NotFound, match=r"expired after 60 s without use; call start_sequence"):
        registry.get(handle)
    assert len(registry) == 0


async def test_using_a_handle_resets_its_idle_time() -> None:
    registry, clock = make(idle_seconds=60)
    handle = registry.create({})
    for _ in range(3):
        clock.now += 50
        async with registry.use(handle):
            pass
    assert handle in registry


async def test_a_handle_in_use_does_not_expire() -> None:
    registry, clock = make(idle_seconds=60)
    handle = registry.create({})
    other = registry.create({})
    async with registry.use(handle):
        clock.now += 120
        assert registry.sweep() == 1  # only `other`
    assert handle in registry and other not in registry


def test_at_the_cap_the_longest_idle_handle_is_evicted() -> None:
    registry, clock = make(max_entries=2)
    oldest = registry.create({})
    clock.now += 1
    newer = registry.create({})
    clock.now += 1
    newest = registry.create({})
    assert len(registry) == 2 and newer in registry and newest in registry
    with pytest.raises(NotFound, match=r"limit of 2 live episodes; call start_sequence"):
        registry.get(oldest)


def test_the_cap_evicts_ended_entries_first() -> None:
    registry, clock = make(max_entries=2)
    active = registry.create({})
    clock.now += 1
    done = registry.create({})
    registry.get(done).end()
    registry.create({})
    assert active in registry and done not in registry


async def test_the_cap_refuses_when_every_entry_is_in_use() -> None:
    registry, _ = make(max_entries=1)
    handle = registry.create({})
    async with registry.use(handle):
        with pytest.raises(UserError, match=r"limit of 1 live episodes and all are in use"):
            registry.create({})
    assert handle in registry


async def test_a_closed_handle_says_it_was_closed() -> None:
    registry, _ = make()
    handle = registry.create({})
    registry.close(handle)
    with pytest.raises(NotFound, match=r"was closed; call start_sequence"):
        async with registry.use(handle):
            pass


async def test_an_ended_entry_is_refused_unless_reads_are_allowed() -> None:
    registry, _ = make()
    handle = registry.create({"n": 1})
    async with registry.use(handle) as entry:
        entry.end("submitted")
    with pytest.raises(EpisodeEnded, match=r"has ended; call start_sequence"):
        async with registry.use(handle):
            pass
    async with registry.use(handle, allow_ended=True) as entry:
        assert entry.state == {"n": 1} and entry.end_detail == "submitted"


async def test_an_atomic_use_rolls_back_when_the_block_fails() -> None:
    registry, _ = make()
    handle = registry.create({"n": 1})
    with pytest.raises(RuntimeError):
        async with registry.use(handle, atomic=True) as entry:
            entry.state["n"] = 99
            entry.end()
            raise RuntimeError("bug")
    entry = registry.get(handle)
    assert entry.state == {"n": 1} and not entry.ended


async def test_a_plain_use_keeps_changes_made_before_a_failure() -> None:
    registry, _ = make()
    handle = registry.create({"n": 1})
    with pytest.raises(RuntimeError):
        async with registry.use(handle) as entry:
            entry.state["n"] = 99
            raise RuntimeError("bug")
    assert registry.get(handle).state == {"n": 99}


def test_listeners_hear_why_entries_left() -> None:
    registry, clock = make(idle_seconds=10, max_entries=2)
    heard: list[str] = []
    registry.add_listener(lambda entry, reason: heard.append(reason))
    closed = registry.create({})
    registry.close(closed)
    registry.create({})
    clock.now += 11
    registry.create({})  # sweeps the idle one
    registry.create({})
    registry.create({})  # at the cap: evicts
    assert heard == ["closed", "expired", "evicted"]


def test_evaluator_info_is_kept_with_the_entry() -> None:
    registry, _ = make()
    handle = registry.create({}, evaluator_info={"seed": 7})
    assert registry.get(handle).evaluator_info == {"seed": 7}


def test_a_loader_brings_a_persisted_entry_back_under_the_same_handle_after_expiry() -> None:
    now = [0.0]
    saved: dict[str, tuple[str, dict]] = {}
    registry: Registry[str] = Registry(kind="study", start_tool="create_study", idle_seconds=10,
                                       clock=lambda: now[0], loader=lambda h: saved.get(h))
    handle = registry.create("state-1", {"seed": 3})
    saved[handle] = ("state-1", {"seed": 3})
    now[0] = 100.0
    registry.sweep()
    assert handle not in registry
    entry = registry.get(handle)
    assert entry.state == "state-1" and entry.evaluator_info == {"seed": 3} and entry.handle == handle
    with pytest.raises(NotFound, match="create_study"):
        registry.get("never-saved")


def test_a_registry_without_a_loader_still_reports_unknown_handles() -> None:
    registry: Registry[int] = Registry(kind="study", start_tool="create_study")
    with pytest.raises(NotFound, match="unknown study handle"):
        registry.get("nope")
