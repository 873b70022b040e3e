"""Audit accuracy by fault injection: per-class recall and detection, per-verdict precision, false positives.

Run (default: about a minute on 2 cores):

    .venv/bin/python benchmarks/synthtools_audit_accuracy.py
    .venv/bin/python benchmarks/synthtools_audit_accuracy.py --corpus-sample 0 --pairs 30   # all 573 toolsets
    .venv/bin/python benchmarks/synthtools_audit_accuracy.py --generated 20 --gen-pairs 200 --free

(a) a seeded sample of the SynthTools corpus (`../shared/data/synthtools`, or `--corpus PATH`): imported
toolsets are stateless compute tools (one curated exception), so the classes that need state (dangling_id,
stale_read, lost_write, side_effect_on_error) are not applicable there and the table says so;
(b) toolsets from the procedural generator (state tables, CRUD tools), where every class applies.

The audited responses come from our deterministic engine, so seeded synthetic values are compared exactly
(`strict_synthetic`). `--free` adds the corpus run in free-synthesis mode, as for an LLM simulator:
synthesised keys are then checked for shape and echo only, so a wrong value in a synthesised key is *not*
detectable there (the table shows how much of the corpus' content that is).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "servers")]

from testbeds_synthtools.generator import generate_corpus  # noqa: E402
from testbeds_synthtools.importer import import_corpus  # noqa: E402
from testbeds_synthtools.mutation import AccuracyReport, audit_accuracy  # noqa: E402


def _print(title: str, report: AccuracyReport, seconds: float) -> None:
    print(f"\n## {title}\n")
    print(f"{report.toolsets} toolsets ({report.stateful_toolsets} with state), {report.clean_pairs} clean pairs "
          f"({report.clean_errors} whose correct response is an error), "
          f"{report.overall_recall.n} confirmed mutants, {seconds:.1f} s\n")
    print(report.table())
    if report.misses:
        print("\nmisses / false positives (first few):")
        for m in report.misses:
            print(f"  {m}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "data" / "synthtools")
    ap.add_argument("--corpus-sample", type=int, default=80, help="toolsets sampled from the corpus (0: all)")
    ap.add_argument("--pairs", type=int, default=20, help="clean pairs per corpus toolset")
    ap.add_argument("--generated", type=int, default=8, help="generated toolsets")
    ap.add_argument("--gen-pairs", type=int, default=100, help="clean pairs per generated toolset")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--free", action="store_true", help="also audit the corpus sample in free-synthesis mode")
    args = ap.parse_args(argv)

    if (args.corpus / "tool_json").is_dir():
        t0 = time.perf_counter()
        toolsets, _ = import_corpus(args.corpus)
        sample = toolsets if args.corpus_sample <= 0 or args.corpus_sample >= len(toolsets) else \
            random.Random(args.seed).sample(toolsets, args.corpus_sample)
        print(f"imported {len(toolsets)} toolsets in {time.perf_counter() - t0:.1f} s; auditing {len(sample)}")
        t0 = time.perf_counter()
        rep = audit_accuracy(sample, seed=args.seed, n_pairs=args.pairs)
        _print("(a) SynthTools corpus sample (stateless: state classes not applicable)", rep, time.perf_counter() - t0)
        if args.free:
            t0 = time.perf_counter()
            rep = audit_accuracy(sample, seed=args.seed, n_pairs=args.pairs, strict_synthetic=False)
            _print("(a') same sample, free-synthesis mode (LLM simulator rules)", rep, time.perf_counter() - t0)
    else:
        print(f"corpus not found at {args.corpus}: skipping (a)")
    if args.generated > 0:
        t0 = time.perf_counter()
        gen = generate_corpus(args.generated, seed=args.seed)
        rep = audit_accuracy(gen, seed=args.seed, n_pairs=args.gen_pairs)
        _print("(b) generated toolsets (stateful: every class applies)", rep, time.perf_counter() - t0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
