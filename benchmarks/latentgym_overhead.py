"""Per-step cost of a latentgym action over stdio, against a bare MCPServer no-op tool in the same run.

    .venv/bin/python benchmarks/latentgym_overhead.py [--calls 300] [--rounds 3]

Prints the per-call wall time of each (best of the rounds, after warm-up), their ratio (target <= 1.3),
and in-process steps per second of `Sequence.act` for every environment (random legal actions)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import anyio
from mcp import Client, StdioServerParameters
from testbeds_latentgym.envs import get_env
from testbeds_latentgym.models import ENV_NAMES, SequenceSettings
from testbeds_latentgym.policies import make_policy
from testbeds_latentgym.sequence import Sequence
from testbeds_serving.testing import child_env

HERE = Path(__file__).resolve().parent
WARMUP = 30


def next_action(state: dict) -> dict:
    return {"type": "accept"} if state.get("must_accept") else {"type": "continue"}


async def time_calls(client: Client, handle_of, calls: int) -> float:
    """Seconds per `act` call, timing only the calls (sequence restarts happen outside the clock)."""
    handle, state = await handle_of()
    spent = 0.0
    for _ in range(calls):
        action = next_action(state)
        t0 = time.perf_counter()
        result = await client.call_tool("act", {"handle": handle, "action": action})
        spent += time.perf_counter() - t0
        out = result.structured_content
        if result.is_error:
            raise RuntimeError(result.content)
        if out["sequence_done"]:
            handle, state = await handle_of()
        else:
            state = (out["next"] or {}).get("state") if out["task_done"] else {
                "must_accept": out["result"].get("position") == 10}
    return spent / calls


async def measure(calls: int, rounds: int) -> dict[str, float]:
    ours = StdioServerParameters(command=sys.executable, args=["-m", "testbeds_latentgym"], env=child_env())
    bare = StdioServerParameters(command=sys.executable, args=[str(HERE / "bare_noop_server.py")], env=child_env())
    best = {"latentgym": float("inf"), "bare": float("inf")}
    async with Client(ours) as lg, Client(bare) as bb:
        async def lg_start():
            started = await lg.call_tool("start_sequence", {"env": "secretary", "n_tasks": 100, "seed": 1})
            brief = started.structured_content
            return brief["handle"], brief["observation"]["state"]

        async def bare_start():
            return "h", {}

        await time_calls(lg, lg_start, WARMUP)
        await time_calls(bb, bare_start, WARMUP)
        for _ in range(rounds):  # interleave rounds so drift in machine load hits both alike
            best["latentgym"] = min(best["latentgym"], await time_calls(lg, lg_start, calls))
            best["bare"] = min(best["bare"], await time_calls(bb, bare_start, calls))
    return best


def in_process_steps_per_second(seconds: float = 2.0) -> dict[str, float]:
    """`Sequence.act` calls per second of act time (the policy's choices and set-up are not timed),
    over as many random-policy sequences as fit in `seconds` of wall time per environment."""
    rates = {}
    for name in ENV_NAMES:
        get_env(name)  # build tables outside the clock
        steps, spent, seed = 0, 0.0, 0
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            seq = Sequence(SequenceSettings(env=name, n_tasks=10), seed)
            policy = make_policy("random", seq.env, seed=seed)
            while not seq.done:  # decide outside the clock: we time the environment, not the policy
                action = policy.act(seq.views)
                t0 = time.perf_counter()
                seq.act(action)
                spent += time.perf_counter() - t0
                steps += 1
            seed += 1
        rates[name] = steps / spent
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    best = anyio.run(measure, args.calls, args.rounds)
    ratio = best["latentgym"] / best["bare"]
    print(f"stdio per call: latentgym act {best['latentgym'] * 1e3:.3f} ms, "
          f"bare MCPServer no-op {best['bare'] * 1e3:.3f} ms")
    print(f"ratio latentgym/bare = {ratio:.3f} (target <= 1.3)")
    for name, rate in in_process_steps_per_second().items():
        print(f"in-process Sequence.act, {name}: {rate:,.0f} steps/s")


if __name__ == "__main__":
    main()
