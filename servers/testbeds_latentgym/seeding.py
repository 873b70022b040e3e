"""Deterministic randomness: every stream of an episode comes from one seed through a SeedSequence tree.

Streams are keyed by names hashed with `zlib.crc32` (stable across processes, unlike the salted `hash()`),
so adding a stream never shifts another and the same seed gives the same bytes under any PYTHONHASHSEED.
"""

from __future__ import annotations

import zlib

import numpy as np


def _key(part: str | int) -> int:
    if isinstance(part, int):
        return part
    return zlib.crc32(part.encode("utf-8"))


def rng_for(seed: int, *path: str | int) -> np.random.Generator:
    """A generator for the stream named by `path` under `seed`, e.g. `rng_for(7, "theta", 3)`."""
    entropy = [int(seed) & 0xFFFFFFFF, (int(seed) >> 32) & 0xFFFFFFFF]
    return np.random.default_rng(np.random.SeedSequence(entropy + [_key(p) for p in path]))
