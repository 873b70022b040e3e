"""MCP-safe tool names: slugs of titles, unique per toolset.

A name matches `^[a-z][a-z0-9_]{0,47}$`: lowercase, every run of other characters becomes one `_`, no `__`,
no leading or trailing `_`, starts with a letter, at most 48 characters. That fits the strictest client
pattern (`^[a-zA-Z0-9_-]{1,64}$`) even after a client prepends `mcp__<server>__`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence

MAX_NAME = 48
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,47}$")
_OTHER = re.compile(r"[^a-z0-9]+")


def slug(text: str, *, prefix: str = "t", fallback: str = "tool", max_len: int = MAX_NAME) -> str:
    """The slug of `text`: `"A/B Test Manager"` -> `"a_b_test_manager"`.

    Accents fold to ASCII; a slug starting with a digit gets `prefix + "_"`; an empty one is `fallback`."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()
    s = _OTHER.sub("_", folded).strip("_")
    if not s:
        s = fallback
    if not s[0].isalpha():
        s = f"{prefix}_{s}"
    return _cut(s, max_len)


def _cut(s: str, n: int) -> str:
    return s if len(s) <= n else s[:n].rstrip("_")


def with_suffix(base: str, k: int, max_len: int = MAX_NAME) -> str:
    """`base` with collision suffix `_k`, cutting `base` so the result stays within `max_len`."""
    suffix = f"_{k}"
    return _cut(base, max_len - len(suffix)) + suffix


def unique_names(
    items: Sequence[tuple[str, str]], reserved: Iterable[str] = (), *, max_len: int = MAX_NAME
) -> dict[str, str]:
    """Map each `(source_id, title)` to a unique slug.

    Items are taken in source-id order; the first of equal slugs keeps it, later ones get `_2`, `_3`, ...
    A slug in `reserved` (e.g. the server's own tool names) is never handed out: its first holder gets `_2`.
    """
    taken = set(reserved)
    out: dict[str, str] = {}
    for source_id, title in sorted(items, key=lambda it: it[0]):
        if source_id in out:
            raise ValueError(f"duplicate source id {source_id!r}")
        base = slug(title, max_len=max_len)
        name, k = base, 1
        while name in taken:
            k += 1
            name = with_suffix(base, k, max_len)
        taken.add(name)
        out[source_id] = name
    return out


def is_valid_name(name: str) -> bool:
    """Whether `name` is an MCP-safe tool name by our rule."""
    return bool(NAME_RE.match(name)) and "__" not in name and not name.endswith("_")
