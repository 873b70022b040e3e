"""Pure, seeded outputs: example replay, declared formulas, and schema-valid synthesis.

`compute(...)` answers a compute tool in three steps: an example whose canonical arguments (defaults
applied, integral floats as ints, keys sorted) equal the call's returns its result exactly; else the
effect's `formula` (rule language, one expression per output key) gives the keys it names; every key still
missing is synthesised by `synthesize_value` from `random.Random(int(sha256(seed, toolset, tool, canonical
args, key)[:16], 16))`. Synthesis echoes arguments of the same name (ids), follows input array lengths,
keeps dates inside the range the arguments span (else near the simulated clock) and is schema-valid; the
keys it made are reported as synthetic so callers can flag them in `_meta`.

Nothing here reads wall time, `hash()` or set order: the same inputs give the same bytes in any process.
"""

from __future__ import annotations

import copy
import datetime as dt
import math
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import rules
from .spec import Tool, parse_instant, sha256_hex

_DESC_LIST = re.compile(r":\s*([A-Za-z0-9_\- ]+(?:\s*,\s*[A-Za-z0-9_\- ]+)+)\s*\.?\s*$")
_WORDS = ("alpha", "bravo", "cedar", "delta", "ember", "falcon", "granite", "harbor", "indigo", "juniper",
          "kestrel", "lumen", "meadow", "nova", "orchid", "pioneer", "quartz", "river", "summit", "tundra")


@dataclass
class ComputeOutcome:
    """A computed result, where it came from (`example`, `formula`, `synthetic`) and the synthesised keys."""

    result: dict[str, Any]
    source: str
    synthetic_keys: list[str] = field(default_factory=list)


def _norm(v: Any) -> Any:
    if isinstance(v, float) and math.isfinite(v) and v.is_integer():
        return int(v)
    if isinstance(v, list):
        return [_norm(x) for x in v]
    if isinstance(v, dict):
        return {k: _norm(x) for k, x in sorted(v.items())}
    return v


def canonical_arguments(tool: Tool, arguments: Mapping[str, Any]) -> dict[str, Any]:
    """Arguments with the schema's defaults applied, nulls dropped, integral floats as ints, keys sorted."""
    props = tool.input_schema.get("properties", {})
    out: dict[str, Any] = {}
    for name, s in props.items():
        v = arguments.get(name)
        if v is None and isinstance(s, dict) and s.get("default") is not None:
            v = copy.deepcopy(s["default"])
        if v is not None:
            out[name] = _norm(v)
    for name, v in arguments.items():
        if name not in props and v is not None:
            out[name] = _norm(v)
    return dict(sorted(out.items()))


def replay_example(tool: Tool, arguments: Mapping[str, Any]) -> dict[str, Any] | None:
    """The result of the first example whose canonical arguments equal the call's, else None."""
    key = sha256_hex(canonical_arguments(tool, arguments))
    for ex in tool.examples:
        if ex.result is not None and ex.error is None and sha256_hex(canonical_arguments(tool, ex.arguments)) == key:
            return copy.deepcopy(ex.result)
    return None


def fit(value: Any, schema: Mapping[str, Any]) -> Any:
    """Small representation fixes before validation: integral floats under `integer`, date -> date-time."""
    t = schema.get("type")
    if t == "integer" and isinstance(value, float) and value.is_integer():
        return int(value)
    if t == "number" and isinstance(value, float) and not math.isfinite(value):
        return value
    if schema.get("format") == "date-time" and isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return f"{value}T00:00:00Z"
    if t == "array" and isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [fit(v, schema["items"]) for v in value]
    return value


def apply_formula(tool: Tool, env: Mapping[str, Any]) -> dict[str, Any]:
    """Output keys the effect's `formula` names, evaluated over `env` (arguments, `now`). Raises RuleEvalError."""
    props = tool.output_schema.get("properties", {})
    out: dict[str, Any] = {}
    for k, expr in (tool.effect.formula or {}).items():
        out[k] = fit(rules.evaluate(expr, {**env, **out}), props.get(k, {}))
    return out


def rng_for(seed: int, scope: str, tool: str, arguments: Mapping[str, Any], key: str) -> random.Random:
    """The generator for one output key: sha256 of canonical JSON of (seed, scope, tool, args, key)."""
    digest = sha256_hex([seed, scope, tool, dict(sorted(arguments.items())), key])
    return random.Random(int(digest[:16], 16))


def _fmt_dt(d: dt.datetime) -> str:
    return d.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _date_bounds(arguments: Mapping[str, Any], now: str) -> tuple[dt.datetime, dt.datetime]:
    found: list[dt.datetime] = []
    for v in arguments.values():
        for x in v if isinstance(v, list) else [v]:
            if isinstance(x, str):
                d = parse_instant(x)
                if d is not None:
                    found.append(d)
    if found:
        lo, hi = min(found), max(found)
        if lo == hi:
            hi = lo + dt.timedelta(days=30)
        return lo, hi
    base = parse_instant(now) or dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
    return base, base + dt.timedelta(days=30)


def _tokens(name: str) -> set[str]:
    return {t.rstrip("s") for t in re.split(r"[^a-z0-9]+", name.lower()) if t}


def _related_array(key: str, arguments: Mapping[str, Any], item_type: str | None) -> list[Any] | None:
    """The input array most related to output `key` by shared name tokens (any array when none shares one)."""
    arrays = [(k, v) for k, v in arguments.items() if isinstance(v, list)]
    if not arrays:
        return None
    best = max(arrays, key=lambda kv: (len(_tokens(kv[0]) & _tokens(key)), -list(arguments).index(kv[0])))
    return best[1]


def _echo(key: str, schema: Mapping[str, Any], arguments: Mapping[str, Any]) -> Any:
    """An argument of the same name whose value fits the output schema (ids and names flow through)."""
    from .gateway import type_ok  # local: gateway imports nothing from here, keep the graph acyclic

    if key in arguments:
        v = arguments[key]
        t = schema.get("type")
        if t is None or (isinstance(t, str) and type_ok(v, t)):
            if not (isinstance(v, list) and isinstance(schema.get("items"), dict)
                    and not all(type_ok(x, schema["items"].get("type", "")) or "type" not in schema["items"]
                                for x in v)):
                return copy.deepcopy(v)
    return None


def synthesize_value(key: str, schema: Mapping[str, Any], arguments: Mapping[str, Any], rnd: random.Random,
                     now: str, depth: int = 0) -> Any:
    """A schema-valid value for output `key`, consistent with the arguments (see module docstring)."""
    echoed = _echo(key, schema, arguments) if depth == 0 else None
    if echoed is not None:
        return echoed
    t = schema.get("type")
    if isinstance(t, list):
        non_null = [x for x in t if x != "null"]
        t = non_null[0] if non_null else "null"
    if "enum" in schema and schema["enum"]:
        return copy.deepcopy(rnd.choice(schema["enum"]))
    if "const" in schema:
        return copy.deepcopy(schema["const"])
    low = key.lower()
    desc = str(schema.get("description", ""))
    if t == "string":
        return _string(low, schema, desc, arguments, rnd, now)
    if t == "integer":
        return _integer(low, schema, arguments, rnd)
    if t == "number":
        return _number(low, schema, desc, rnd)
    if t == "boolean":
        return rnd.random() < 0.5
    if t == "array":
        items = schema.get("items") if isinstance(schema.get("items"), dict) else {}
        related = _related_array(key, arguments, items.get("type"))
        n = len(related) if related is not None else rnd.randint(1, 3)
        lo, hi = schema.get("minItems", 0), schema.get("maxItems")
        n = max(n, lo)
        if hi is not None:
            n = min(n, hi)
        if related is not None and items.get("type") == "string" and all(isinstance(x, str) for x in related) \
                and (_tokens(key) & set().union(*(_tokens(a) for a, v in arguments.items() if v is related))) \
                and "enum" not in items:
            return list(related[:n]) + [synthesize_value(key, items, arguments, rnd, now, depth + 1)
                                        for _ in range(n - len(related[:n]))]
        singular = key[:-1] if key.endswith("s") else key
        return [synthesize_value(singular, items, arguments, rnd, now, depth + 1) for _ in range(n)]
    if t == "object":
        props = schema.get("properties", {})
        return {k: synthesize_value(k, s, arguments, rnd, now, depth + 1) for k, s in props.items()}
    if t == "null":
        return None
    return f"{key}_{rnd.randint(1000, 9999)}"


def _string(low: str, schema: Mapping[str, Any], desc: str, arguments: Mapping[str, Any], rnd: random.Random,
            now: str) -> str:
    is_dt = schema.get("format") == "date-time"
    dateish = re.search(r"\b(date|timestamp)\b", desc.lower()) and not re.search(r"\b(status|id|identifier)\b", low)
    if is_dt or dateish or re.search(r"(date|time|timestamp)$|_at$|^(date|time)", low):
        lo, hi = _date_bounds(arguments, now)
        span = max(0, int((hi - lo).total_seconds()))
        d = lo + dt.timedelta(seconds=rnd.randint(0, span // 60) * 60 if span else 0)
        if not is_dt and "time" not in low and not low.endswith("_at"):
            return d.strftime("%Y-%m-%d")
        return _fmt_dt(d)
    m = _DESC_LIST.search(desc)
    if m and ("status" in low or "type" in low or "level" in low or "state" in low or "category" in low):
        options = [o.strip() for o in m.group(1).split(",") if o.strip()]
        if options:
            return rnd.choice(options)
    if low == "id" or low.endswith("_id") or low.endswith("_number") or low.endswith("reference") \
            or low.endswith("_code") or low.endswith("_ref"):
        stem = low.removesuffix("_id").removesuffix("_number").removesuffix("_reference").removesuffix("_code")
        prefix = "".join(w[0] for w in stem.split("_") if w)[:4].upper() or "ID"
        return f"{prefix}-{rnd.randint(0, 999999):06d}"
    if "url" in low or "link" in low:
        return f"https://example.com/{low}/{rnd.randint(1000, 9999)}"
    if "email" in low:
        return f"user{rnd.randint(100, 999)}@example.com"
    words = low.replace("_", " ").strip() or "value"
    text = f"{words.capitalize()} {rnd.choice(_WORDS)}-{rnd.randint(100, 999)}"
    lo_len, hi_len = schema.get("minLength"), schema.get("maxLength")
    if isinstance(hi_len, int):
        text = text[:hi_len]
    if isinstance(lo_len, int) and len(text) < lo_len:
        text = text + "x" * (lo_len - len(text))
    return text


def _integer(low: str, schema: Mapping[str, Any], arguments: Mapping[str, Any], rnd: random.Random) -> int:
    lo, hi = schema.get("minimum"), schema.get("maximum")
    if re.search(r"count|number_of|total_items|quantity|num_", low):
        arrays = [v for v in arguments.values() if isinstance(v, list)]
        if arrays:
            return _clamp_int(len(arrays[0]), lo, hi)
    a = math.ceil(lo) if isinstance(lo, int | float) else 0
    b = math.floor(hi) if isinstance(hi, int | float) else max(a, 0) + 100
    return rnd.randint(a, max(a, b))


def _clamp_int(v: int, lo: Any, hi: Any) -> int:
    if isinstance(lo, int | float):
        v = max(v, math.ceil(lo))
    if isinstance(hi, int | float):
        v = min(v, math.floor(hi))
    return v


def _number(low: str, schema: Mapping[str, Any], desc: str, rnd: random.Random) -> float:
    lo, hi = schema.get("minimum"), schema.get("maximum")
    if lo is None and hi is None:
        if re.search(r"rate|ratio|probability|confidence|fraction|share", low) and "percent" not in desc.lower():
            lo, hi = 0, 1
        elif re.search(r"percent|pct|score", low):
            lo, hi = 0, 100
        else:
            lo, hi = 0, 1000
    lo = float(lo) if lo is not None else float(hi) - 1000
    hi = float(hi) if hi is not None else lo + 1000
    places = 4 if hi - lo <= 1 else 2
    v = round(rnd.uniform(lo, hi), places)
    return min(max(v, lo), hi)


def synthesize_output(tool: Tool, arguments: Mapping[str, Any], fixed: Mapping[str, Any], *, seed: int,
                      scope: str, now: str) -> tuple[dict[str, Any], list[str]]:
    """The output object: `fixed` keys as given, every other declared key synthesised. Returns the result (in
    schema key order) and the synthesised keys."""
    props: dict[str, Any] = tool.output_schema.get("properties", {})
    canon = canonical_arguments(tool, arguments)
    out: dict[str, Any] = {}
    made: list[str] = []
    for k, s in props.items():
        if k in fixed:
            out[k] = fixed[k]
        elif k in tool.output_schema.get("required", list(props)):
            out[k] = synthesize_value(k, s, canon, rng_for(seed, scope, tool.name, canon, k), now)
            made.append(k)
    for k, v in fixed.items():
        if k not in out:
            out[k] = v
    return out, made


def compute(tool: Tool, arguments: Mapping[str, Any], *, seed: int, scope: str, now: str,
            env: Mapping[str, Any] | None = None) -> ComputeOutcome:
    """A compute tool's result: example replay, else formula keys plus synthesis (see module docstring).
    Raises `rules.RuleEvalError` when a formula cannot be evaluated on these arguments."""
    hit = replay_example(tool, arguments)
    if hit is not None:
        return ComputeOutcome(result=hit, source="example")
    formula: dict[str, Any] = {}
    if tool.effect.formula:
        formula = apply_formula(tool, {**(env or {}), **arguments, "now": now})
    result, made = synthesize_output(tool, arguments, formula, seed=seed, scope=scope, now=now)
    return ComputeOutcome(result=result, source="formula" if formula else "synthetic", synthetic_keys=made)
