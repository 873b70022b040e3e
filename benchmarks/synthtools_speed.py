"""Synthtools speed: corpus import time, and deterministic simulator calls per second in-process and over stdio.

    .venv/bin/python benchmarks/synthtools_speed.py [--imports 3] [--metaschema 500] [--seconds 3] \
        [--calls 300] [--rounds 3] [--field healthcare] [--seed 0] [--corpus PATH]

1. Corpus import: wall time of `import_corpus(root)` in a fresh subprocess each time (no per-process cache; the
   OS file cache is warm after the first run), median of `--imports` runs, and specs per second. The first
   subprocess also times Draft 2020-12 metaschema validation of a seeded sample of `--metaschema` of the
   imported schemas (0: skip, -1: all ~11,800, which takes about a minute) and extrapolates to all of them.
2. In-process: `Session.call` on a generated toolset (default generate_toolset('healthcare', 0)) over a mix
   of read tools (get/list/search and other reads), write tools (create/update) and compute tools (quote),
   each with `generator.valid_arguments`, so every call succeeds. Each round of the mix runs on a fresh
   session (set up outside the clock: a repeated create would hit a unique column). Baseline: a plain Python
   no-op function called with the same tool name and argument dict, timed the same way (informative only).
3. Over stdio: the same mix through `python -m testbeds_synthtools` (load_toolset outside the clock, one fresh
   world per round of the mix, then each tool by its MCP name with the handle), against the same number of
   calls to the bare MCPServer no-op tool (benchmarks/bare_noop_server.py, sent the same argument dicts).
   Warm-up calls first, then interleaved rounds; calls/s from the best round, p50/p95 over all timed calls.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
from mcp import Client, StdioServerParameters
from testbeds_serving.testing import child_env
from testbeds_synthtools.engine import Session
from testbeds_synthtools.generator import generate_toolset, valid_arguments
from testbeds_synthtools.spec import Toolset

HERE = Path(__file__).resolve().parent
DEFAULT_CORPUS = HERE.parents[1] / "shared" / "data" / "synthtools"
WARMUP = 30
CLASS_OF = {"read": "read", "list": "read", "search": "read", "create": "write", "update": "write",
            "compute": "compute"}
CLASSES = ("read", "write", "compute")

Step = tuple[str, str, dict[str, Any]]  # (class, tool name, arguments)
Timed = list[tuple[str, float]]  # (class, seconds) per call

# Run in a fresh interpreter so no module-level cache of a previous import helps.
IMPORT_SCRIPT = r"""
import json, random, sys, time
from pathlib import Path
t0 = time.perf_counter()
from testbeds_synthtools.importer import import_corpus
t1 = time.perf_counter()
toolsets, report = import_corpus(Path(sys.argv[1]))
t2 = time.perf_counter()
out = {"module_import": t1 - t0, "import_corpus": t2 - t1, "toolsets": len(toolsets),
       "specs": sum(len(t.tools) for t in toolsets)}
sample = int(sys.argv[2])
if sample:
    import jsonschema
    meta = jsonschema.Draft202012Validator(jsonschema.Draft202012Validator.META_SCHEMA)
    schemas = [s for t in toolsets for tool in t.tools for s in (tool.input_schema, tool.output_schema)]
    chosen = schemas if sample < 0 or sample >= len(schemas) else random.Random(0).sample(schemas, sample)
    t3 = time.perf_counter()
    invalid = sum(not meta.is_valid(s) for s in chosen)
    out["meta"] = {"checked": len(chosen), "total": len(schemas), "invalid": invalid,
                   "seconds": time.perf_counter() - t3}
print(json.dumps(out))
"""


def quantile(values: list[float], q: float) -> float:
    """The q-quantile of `values` (nearest rank on the sorted list)."""
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


# ---------------------------------------------------------------------------------------------- 1. import


def corpus_import(root: Path, runs: int, meta_sample: int) -> dict[str, Any]:
    """Import the corpus `runs` times, each in a fresh subprocess; the first also checks schemas."""
    results = []
    for i in range(runs):
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", IMPORT_SCRIPT, str(root), str(meta_sample if i == 0 else 0)],
                              capture_output=True, text=True, check=True)
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        out["process"] = time.perf_counter() - t0 - out.get("meta", {}).get("seconds", 0.0)
        results.append(out)
    return {"runs": results, "median": statistics.median(r["import_corpus"] for r in results),
            "median_process": statistics.median(r["process"] for r in results),
            "median_module": statistics.median(r["module_import"] for r in results),
            "specs": results[0]["specs"], "toolsets": results[0]["toolsets"], "meta": results[0].get("meta")}


# ---------------------------------------------------------------------------------------------- 2. in-process


def tool_mix(toolset: Toolset) -> list[Step]:
    """Every read, write (create/update) and compute tool of `toolset` with valid arguments, reads first so
    they see the seed state; deletes are left out (not in the mix asked for)."""
    steps = [(CLASS_OF[t.effect.kind], t.name, valid_arguments(toolset, t.name))
             for t in toolset.tools if t.effect.kind in CLASS_OF]
    return sorted(steps, key=lambda s: CLASSES.index(s[0]))


def noop(tool_name: str, arguments: dict[str, Any]) -> None:
    """The in-process baseline: a call that does nothing with the same arguments."""


def in_process(toolset: Toolset, mix: list[Step], seconds: float) -> tuple[Timed, Timed]:
    """Per-call times of `Session.call` over rounds of `mix` (a fresh session per round, made outside the
    clock) for `seconds` of wall time, then the same number of no-op calls over the same mix."""
    ours: Timed = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        session = Session(toolset, toolset.seed)
        for cls, name, args in mix:
            t0 = time.perf_counter()
            result = session.call(name, args)
            ours.append((cls, time.perf_counter() - t0))
            if not result.ok:
                raise RuntimeError(f"{name}({args}) failed: {result.message}")
        session.close()
    base: Timed = []
    while len(base) < len(ours):
        for cls, name, args in mix:
            t0 = time.perf_counter()
            noop(name, args)
            base.append((cls, time.perf_counter() - t0))
    return ours, base[:len(ours)]


# ---------------------------------------------------------------------------------------------- 3. stdio


async def stdio(mix: list[Step], field: str, seed: int, calls: int, rounds: int) -> dict[str, Any]:
    """Per-call times over stdio of the mix on our server and of the bare no-op tool, interleaved rounds."""
    ours_params = StdioServerParameters(command=sys.executable, args=["-m", "testbeds_synthtools"], env=child_env())
    bare_params = StdioServerParameters(command=sys.executable, args=[str(HERE / "bare_noop_server.py")],
                                        env=child_env())
    timed: dict[str, Timed] = {"ours": [], "bare": []}
    best = {"ours": float("inf"), "bare": float("inf")}
    async with Client(ours_params) as st, Client(bare_params) as bb:
        toolset_id: list[str] = []

        async def ours_calls(n: int) -> Timed:
            out: Timed = []
            while len(out) < n:
                loaded = await st.call_tool("load_toolset", {"field": field, "seed": seed})
                if loaded.is_error:
                    raise RuntimeError(loaded.content)
                got = loaded.structured_content
                toolset_id.append(got["toolset_id"])
                names = {t["spec_name"]: t["name"] for t in got["tools"]}
                for cls, name, args in mix[:n - len(out)]:
                    t0 = time.perf_counter()
                    result = await st.call_tool(names[name], {"handle": got["handle"], **args})
                    out.append((cls, time.perf_counter() - t0))
                    if result.is_error:
                        raise RuntimeError(f"{name}: {result.content}")
            return out

        async def bare_calls(n: int) -> Timed:
            out: Timed = []
            while len(out) < n:
                for cls, _name, args in mix[:n - len(out)]:
                    t0 = time.perf_counter()
                    result = await bb.call_tool("act", {"handle": "h", "action": args})
                    out.append((cls, time.perf_counter() - t0))
                    if result.is_error:
                        raise RuntimeError(result.content)
            return out

        runners: dict[str, Callable[[int], Awaitable[Timed]]] = {"ours": ours_calls, "bare": bare_calls}
        for run in runners.values():
            await run(WARMUP)
        for _ in range(rounds):  # interleave rounds so drift in machine load hits both alike
            for key, run in runners.items():
                got = await run(calls)
                timed[key] += got
                best[key] = min(best[key], sum(t for _, t in got) / len(got))
    return {"timed": timed, "best": best, "toolset_id": toolset_id[0]}


# ---------------------------------------------------------------------------------------------- report


def row(label: str, times: list[float], per_call: float | None = None, scale: float = 1e3) -> str:
    """A table row: count, calls/s (from `per_call` seconds, else the mean), p50 and p95 in 1/`scale` s."""
    mean = per_call if per_call is not None else sum(times) / len(times)
    return (f"| {label} | {len(times):,} | {1 / mean:,.0f} | {quantile(times, 0.5) * scale:.3f} | "
            f"{quantile(times, 0.95) * scale:.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--imports", type=int, default=3, help="fresh-subprocess imports (median; 0 skips)")
    parser.add_argument("--metaschema", type=int, default=500,
                        help="schemas to check against the metaschema (0 skips, -1 all)")
    parser.add_argument("--field", default="healthcare")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seconds", type=float, default=3.0, help="in-process wall time budget")
    parser.add_argument("--calls", type=int, default=300, help="timed stdio calls per round and server")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    started = time.perf_counter()

    print("## 1. corpus import (fresh subprocess each run)\n")
    if args.imports > 0 and (args.corpus / "tool_json").is_dir():
        imp = corpus_import(args.corpus, args.imports, args.metaschema)
        runs = ", ".join(f"{r['import_corpus']:.2f}" for r in imp["runs"])
        print(f"{imp['specs']:,} specs in {imp['toolsets']} toolsets from {args.corpus}")
        print(f"import_corpus: median {imp['median']:.2f} s of {args.imports} ({runs} s), "
              f"{imp['specs'] / imp['median']:,.0f} specs/s")
        print(f"whole subprocess (interpreter start to exit) median {imp['median_process']:.2f} s "
              f"(module import {imp['median_module']:.2f} s)")
        meta = imp["meta"]
        if meta:
            per = meta["seconds"] / meta["checked"]
            print(f"metaschema (Draft 2020-12) check: {meta['checked']:,} of {meta['total']:,} schemas in "
                  f"{meta['seconds']:.2f} s ({per * 1e3:.2f} ms each, all ≈ {per * meta['total']:.0f} s), "
                  f"{meta['invalid']} invalid")
    else:
        print(f"skipped (--imports 0 or no corpus at {args.corpus})")

    toolset = generate_toolset(args.field, args.seed)
    mix = tool_mix(toolset)
    counts = {c: sum(1 for s in mix if s[0] == c) for c in CLASSES}
    print(f"\n## 2. in-process Session.call, {toolset.id} ({len(mix)} tools in the mix: "
          + ", ".join(f"{n} {c}" for c, n in counts.items()) + ")\n")
    ours, base = in_process(toolset, mix, args.seconds)
    print("| calls | n | calls/s | p50 µs | p95 µs |\n|---|---|---|---|---|")
    for c in CLASSES:
        print(row(f"Session.call, {c}", [t for k, t in ours if k == c], scale=1e6))
    print(row("**Session.call, whole mix**", [t for _, t in ours], scale=1e6))
    print(row("plain Python no-op, same args", [t for _, t in base], scale=1e6))
    all_ours, all_base = sum(t for _, t in ours), sum(t for _, t in base)
    print(f"\nratio Session.call / no-op per call = {all_ours / all_base:,.0f} (informative only)")

    print(f"\n## 3. over stdio: python -m testbeds_synthtools vs bare MCPServer no-op "
          f"({WARMUP} warm-up, {args.rounds} x {args.calls} timed calls each)\n")
    got = anyio.run(stdio, mix, args.field, args.seed, args.calls, args.rounds)
    if got["toolset_id"] != toolset.id:
        raise RuntimeError(f"server loaded {got['toolset_id']}, in-process used {toolset.id}")
    st, bb = got["timed"]["ours"], got["timed"]["bare"]
    print("| calls | n | calls/s (mix rows: best round) | p50 ms | p95 ms |\n|---|---|---|---|---|")
    for c in CLASSES:
        print(row(f"synthtools, {c}", [t for k, t in st if k == c]))
    print(row("**synthtools, whole mix**", [t for _, t in st], got["best"]["ours"]))
    print(row("bare no-op, same args", [t for _, t in bb], got["best"]["bare"]))
    ratio = got["best"]["ours"] / got["best"]["bare"]
    p50 = quantile([t for _, t in st], 0.5) / quantile([t for _, t in bb], 0.5)
    print(f"\nratio synthtools/bare per call: {ratio:.3f} (best-round mean), {p50:.3f} (p50)")
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
