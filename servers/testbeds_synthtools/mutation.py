"""Audit accuracy by fault injection: correct pairs from the engine, labelled mutations, per-class rates.

**Correct pairs.** `clean_pairs(toolset, seed, n)` fuzzes calls from the schema and runs them, in one
trajectory, on an engine session; each call's engine response, with the world before and after it, is a
correct pair (the engine is the reference). Calls mix valid ones (example arguments, the generator's
`valid_arguments`, ids of live rows, schema-valid values, boundary values such as the exact minimum or
`maxItems` items) and invalid ones (omit a required parameter, misspell one, retype one, out of bounds, a
value outside the enum, a mixed-type array, a broken rule, an unknown id), for which the correct response is
the error. After a successful write the fuzzer often reads the written row back, so stale reads have
something to be stale about.

**Mutations** (design §6), each with the verdict the auditor should give:

| class | mutation | expected verdict |
|---|---|---|
| flip_to_error | a success becomes one of the tool's errors (state left as before) | should_have_succeeded |
| flip_to_success | an error becomes a schema-valid output | should_have_failed |
| wrong_status | an error keeps its code, another status | inappropriate_response |
| wrong_code | an error gets another check's code (and its status) | inappropriate_response |
| missing_key, extra_key, retyped_key | an output key dropped, added, or of another JSON type | inappropriate_response |
| mixed_array | an output array gets an item of another type | inappropriate_response |
| wrong_value | one output value changed (type kept) | inappropriate_response |
| dangling_id | an id in the output names no row | inappropriate_response |
| stale_read | a read reports the row as it was before an earlier write | inappropriate_response |
| lost_write | a write reports success but the state is unchanged | inappropriate_response |
| side_effect_on_error | an error, but a row changed | inappropriate_response |

A class that needs state (dangling_id, stale_read, lost_write, side_effect_on_error) does not apply to a
stateless toolset (every imported SynthTools toolset but the curated one). A mutant counts only when it
really differs from the correct pair (`confirmed`): e.g. a wrong value equal to the old one after number
normalisation is dropped.

`audit_accuracy(toolsets, seed, n_pairs)` audits every clean pair and every confirmed mutant and reports,
per class, recall (the expected verdict) and detection (any verdict but `correct`); per verdict, precision;
the false-positive rate on clean pairs; all with counts and Wilson 95% intervals.
"""

from __future__ import annotations

import copy
import math
import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from . import compute as comp
from .audit import (
    VERDICTS,
    AuditPair,
    AuditResponse,
    Oracle,
    Verdict,
    WorldState,
    audit_pair,
    row_bound_keys,
    value_diffs,
)
from .engine import Session
from .gateway import json_type, type_ok
from .spec import Tool, Toolset, canonical_json, sha256_hex

MutationClass = Literal["flip_to_error", "flip_to_success", "wrong_status", "wrong_code", "missing_key", "extra_key",
                        "retyped_key", "mixed_array", "wrong_value", "dangling_id", "stale_read", "lost_write",
                        "side_effect_on_error"]
MUTATION_CLASSES: tuple[MutationClass, ...] = (
    "flip_to_error", "flip_to_success", "wrong_status", "wrong_code", "missing_key", "extra_key", "retyped_key",
    "mixed_array", "wrong_value", "dangling_id", "stale_read", "lost_write", "side_effect_on_error")
EXPECTED_VERDICT: dict[str, Verdict] = {c: "inappropriate_response" for c in MUTATION_CLASSES}
EXPECTED_VERDICT.update({"flip_to_error": "should_have_succeeded", "flip_to_success": "should_have_failed"})
STATEFUL_CLASSES = frozenset({"dangling_id", "stale_read", "lost_write", "side_effect_on_error"})
"""Classes that need a state schema; not applicable to stateless toolsets."""

Z95 = 1.959963984540054


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for k successes in n trials (95% by default); (0, 1) when n = 0.
    0 of n gives (0, z²/(n+z²)) ≈ (0, 3.84/n)."""
    if n <= 0:
        return (0.0, 1.0)
    p = k / n
    z2 = z * z
    denom = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


class Rate(BaseModel):
    """k of n with its Wilson 95% interval."""

    model_config = ConfigDict(extra="forbid")

    k: int
    n: int
    value: float | None = Field(description="k / n; None when n = 0.")
    low: float
    high: float

    @classmethod
    def of(cls, k: int, n: int) -> Rate:
        lo, hi = wilson(k, n)
        return cls(k=k, n=n, value=(k / n) if n else None, low=lo, high=hi)

    def text(self) -> str:
        """'99.6% (k/n, 95% CI 98.1-99.9)'; 'n/a' when n = 0."""
        if not self.n:
            return "n/a"
        return f"{100 * (self.value or 0):.1f}% ({self.k}/{self.n}, CI {100 * self.low:.1f}-{100 * self.high:.1f})"


# ------------------------------------------------------------------------------------------------ pairs


class CleanPair(BaseModel):
    """A correct pair from the engine, with what mutations need to know."""

    model_config = ConfigDict(extra="forbid")

    pair: AuditPair
    intent: str = Field(description="How the call was made: 'valid:example', 'invalid:omit', ...")
    synthetic_keys: list[str] = Field(default_factory=list)
    history: dict[str, list[dict[str, Any]]] = Field(
        default_factory=dict, description="'table/key' -> earlier versions of that row in this trajectory.")


def _props(tool: Tool) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in tool.input_schema.get("properties", {}).items() if isinstance(v, dict)}


def _types(schema: Mapping[str, Any]) -> list[str]:
    t = schema.get("type")
    return [] if t is None else [t] if isinstance(t, str) else list(t)


class _Fuzzer:
    """Draws calls for one toolset, looking at the live session state for ids."""

    def __init__(self, toolset: Toolset, rng: random.Random):
        self.toolset = toolset
        self.rng = rng
        self.generated = toolset.provenance.origin == "generated"
        self.idcols: dict[str, str] = {}
        if toolset.state_schema is not None:
            for t in toolset.state_schema.tables:
                self.idcols[t.key] = t.name
                for c, col in t.columns.items():
                    if col.ref is not None:
                        self.idcols.setdefault(c, col.ref.split(".")[0])

    def _live_id(self, name: str, tool: Tool, world: WorldState) -> Any:
        table = tool.effect.table if tool.effect.key == name and tool.effect.table else self.idcols.get(name)
        if table is None:
            return None
        rows = world.tables.get(table, [])
        if not rows:
            return None
        key = next(t.key for t in self.toolset.state_schema.tables if t.name == table)  # type: ignore[union-attr]
        return self.rng.choice(rows).get(key)

    def valid(self, tool: Tool, world: WorldState) -> tuple[str, dict[str, Any]]:
        rng = self.rng
        choices: list[str] = ["schema", "schema"]
        if any(ex.result is not None for ex in tool.examples):
            choices += ["example"] * 2
        if self.generated:
            choices += ["generator"] * 3
        how = rng.choice(choices)
        if how == "example":
            ex = rng.choice([ex for ex in tool.examples if ex.result is not None])
            return "valid:example", copy.deepcopy(ex.arguments)
        if how == "generator":
            from .generator import valid_arguments

            try:
                args = valid_arguments(self.toolset, tool.name)
            except (KeyError, StopIteration, IndexError, AssertionError, ValueError):
                args = None
            if args is not None:
                for name in list(args):
                    if name in self.idcols or name == tool.effect.key:
                        live = self._live_id(name, tool, world)
                        if live is not None and rng.random() < 0.5:
                            args[name] = live
                return "valid:generator", args
        props = _props(tool)
        required = set(tool.input_schema.get("required", []))
        args = {}
        boundary = rng.random() < 0.2
        for name, s in props.items():
            if name not in required and rng.random() < 0.5:
                continue
            live = self._live_id(name, tool, world)
            if live is not None:
                args[name] = live
                continue
            args[name] = self._value(name, s, boundary)
        return ("valid:boundary" if boundary else "valid:schema"), args

    def _value(self, name: str, s: Mapping[str, Any], boundary: bool) -> Any:
        rng = self.rng
        if boundary:
            for kw in ("minimum", "maximum"):
                if isinstance(s.get(kw), int | float) and rng.random() < 0.5:
                    return s[kw]
            if "array" in _types(s) and isinstance(s.get("maxItems"), int) and s["maxItems"] <= 20:
                one = comp.synthesize_value(name, s.get("items", {}) if isinstance(s.get("items"), dict) else {},
                                            {}, rng, "2025-03-15T10:00:00Z", depth=1)
                return [copy.deepcopy(one) for _ in range(s["maxItems"])]
        return comp.synthesize_value(name, s, {}, rng, "2025-03-15T10:00:00Z", depth=1)

    def invalid(self, tool: Tool, base: dict[str, Any]) -> tuple[str, Any]:
        rng = self.rng
        props = _props(tool)
        required = [p for p in tool.input_schema.get("required", []) if p in base]
        args = copy.deepcopy(base)
        kinds = ["misspell", "retype", "unknown_id", "rule_break"]
        if required:
            kinds += ["omit", "null_required"]
        bounded = [p for p in args if p in props and any(k in props[p] for k in ("minimum", "maximum"))
                   and isinstance(args[p], int | float)]
        enums = [p for p in args if p in props and "enum" in props[p]]
        arrays = [p for p in args if p in props and isinstance(args[p], list)]
        if bounded:
            kinds.append("out_of_bounds")
        if enums:
            kinds.append("bad_enum")
        if arrays:
            kinds += ["mixed_array", "too_many_items"]
        kind = rng.choice(kinds)
        if kind == "omit":
            del args[rng.choice(required)]
        elif kind == "null_required":
            args[rng.choice(required)] = None
        elif kind == "misspell" and args:
            name = rng.choice(sorted(args))
            args[name[:-1] if len(name) > 1 else name + "x"] = args.pop(name)
        elif kind == "misspell":
            args["unexpected_parameter"] = 1
        elif kind == "retype" and args:
            name = rng.choice(sorted(args))
            args[name] = _other_type(args[name], props.get(name, {}), rng)
        elif kind == "out_of_bounds":
            name = rng.choice(bounded)
            s = props[name]
            if "maximum" in s and (rng.random() < 0.5 or "minimum" not in s):
                args[name] = s["maximum"] + (1 if "integer" in _types(s) else 0.5)
            else:
                args[name] = s["minimum"] - 1
        elif kind == "bad_enum":
            args[rng.choice(enums)] = "not_a_listed_value"
        elif kind == "mixed_array":
            name = rng.choice(arrays)
            item = args[name][0] if args[name] else "x"
            args[name] = [*args[name], _other_type(item, props[name].get("items", {}) or {}, rng)]
        elif kind == "too_many_items":
            name = rng.choice(arrays)
            hi = props[name].get("maxItems")
            fill = args[name][0] if args[name] else "x"
            args[name] = [copy.deepcopy(fill) for _ in range((hi + 1) if isinstance(hi, int) else 0)]
        elif kind == "unknown_id":
            ids = [p for p in args if p in self.idcols or p.endswith("_id")]
            if ids:
                args[rng.choice(ids)] = "ZZ-999999"
            else:
                kind = "rule_break"
        if kind == "rule_break":
            # perturb numbers and array lengths; whatever the engine says about the result is the truth
            for name, v in list(args.items()):
                if isinstance(v, list) and v and rng.random() < 0.5:
                    args[name] = v[:-1] if len(v) > 1 else v * 2
                elif isinstance(v, int | float) and not isinstance(v, bool) and rng.random() < 0.5:
                    args[name] = -abs(v) - 1 if rng.random() < 0.5 else v * 1000 + 1
        return f"invalid:{kind}", args


def _other_type(v: Any, schema: Mapping[str, Any], rng: random.Random) -> Any:
    """A value of a JSON type the schema does not accept (booleans for numbers, text for numbers, ...)."""
    types = _types(schema) or [json_type(v)]
    candidates: list[Any] = [str(v) if not isinstance(v, str) else 12345, True, 7.25, 12345, "text", [v],
                             {"value": v}]
    rng.shuffle(candidates)
    for c in candidates:
        if not any(type_ok(c, t) for t in types):
            return c
    return None


def clean_pairs(toolset: Toolset, seed: int = 0, n_pairs: int = 100, *, session_seed: int = 0,
                invalid_share: float = 0.35) -> list[CleanPair]:
    """`n_pairs` correct pairs from one engine trajectory of fuzzed calls (see module docstring)."""
    rng = random.Random(int(sha256_hex(["clean_pairs", toolset.id, seed])[:16], 16))
    fuzz = _Fuzzer(toolset, rng)
    session = Session(toolset, seed=session_seed)
    history: dict[str, list[dict[str, Any]]] = defaultdict(list)
    readers: dict[str, list[Tool]] = defaultdict(list)
    for t in toolset.tools:
        if t.effect.kind == "read" and t.effect.table is not None:
            readers[t.effect.table].append(t)
    out: list[CleanPair] = []
    queue: list[tuple[str, Tool, Any]] = []
    try:
        while len(out) < n_pairs:
            world = WorldState.capture(session)
            if queue:
                intent, tool, args = queue.pop(0)
            else:
                tool = rng.choice(toolset.tools)
                intent, args = fuzz.valid(tool, world)
                if rng.random() < invalid_share:
                    intent, args = fuzz.invalid(tool, args)
            got = session.call(tool.name, copy.deepcopy(args))
            post = WorldState.capture(session)
            pair = AuditPair(tool=tool.name, arguments=copy.deepcopy(args), pre_state=world,
                             response=AuditResponse.from_call_result(got), post_state=post,
                             session_seed=session_seed)
            hist = {k: copy.deepcopy(v) for k, v in history.items()}
            out.append(CleanPair(pair=pair, intent=intent, synthetic_keys=list(got.meta.get("synthetic_keys", [])),
                                 history=hist))
            for ch in got.changes:
                if ch.before is not None:
                    history[f"{ch.table}/{canonical_json(ch.key)}"].append(ch.before)
                if ch.after is not None and ch.table in readers and (ch.before is not None or rng.random() < 0.5):
                    reader = rng.choice(readers[ch.table])
                    queue.append(("valid:read_back", reader, {reader.effect.key: ch.key}))
        return out
    finally:
        session.close()


# ------------------------------------------------------------------------------------------------ mutants


class Mutant(BaseModel):
    """A labelled mutant of a clean pair."""

    model_config = ConfigDict(extra="forbid")

    cls: MutationClass
    expected: Verdict
    pair: AuditPair
    note: str = ""


def _leaves(v: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], Any]]:
    if isinstance(v, dict):
        return [x for k in v for x in _leaves(v[k], (*path, k))]
    if isinstance(v, list):
        return [x for i, item in enumerate(v) for x in _leaves(item, (*path, i))]
    return [(path, v)]


def _set(obj: Any, path: tuple[Any, ...], value: Any) -> None:
    for p in path[:-1]:
        obj = obj[p]
    obj[path[-1]] = value


def _schema_at(schema: Mapping[str, Any], path: tuple[Any, ...]) -> Mapping[str, Any]:
    s: Any = schema
    for p in path:
        if not isinstance(s, Mapping):
            return {}
        s = s.get("items", {}) if isinstance(p, int) else s.get("properties", {}).get(p, {})
    return s if isinstance(s, Mapping) else {}


def _changed_value(v: Any, schema: Mapping[str, Any], rng: random.Random) -> Any:
    """Another value of the same JSON type (another enum member when there is one)."""
    enum = schema.get("enum")
    if isinstance(enum, list):
        others = [e for e in enum if canonical_json(e) != canonical_json(v)]
        if others:
            return copy.deepcopy(rng.choice(others))
    if isinstance(v, bool):
        return not v
    if isinstance(v, int):
        return v + rng.choice([1, 2, 7, -1]) if v > 1 else v + rng.choice([1, 2, 7])
    if isinstance(v, float):
        return round(v + rng.choice([0.01, 1.0, 2.5, -0.01]), 6) if v > 0.02 else round(v + 1.25, 6)
    if isinstance(v, str):
        if schema.get("format") == "date-time" and len(v) >= 10 and v[:4].isdigit():
            return str(int(v[:4]) + 1) + v[4:]
        return v + "-x" if v else "x"
    return None


def _error_for(tool: Tool | None, rng: random.Random, avoid: tuple[int, str | None] | None = None
               ) -> tuple[int, str, str]:
    pool = [(e.status, e.code, f"{e.title}: {e.guidance}") for e in (tool.errors if tool else [])]
    pool += [(400, "invalid_type", "Invalid type for a parameter"), (404, "not_found", "Not found"),
             (409, "conflict", "Conflict"), (400, "constraint_violated", "Constraint violated")]
    pool = [p for p in pool if avoid is None or (p[0], p[1]) != avoid]
    return rng.choice(pool)


def mutate(toolset: Toolset, clean: CleanPair, cls: MutationClass, rng: random.Random) -> Mutant | None:
    """A confirmed `cls` mutant of `clean`, or None (the class does not apply, or the mutant equals the
    correct response)."""
    m = propose(toolset, clean, cls, rng)
    return m if m is not None and confirmed(clean.pair, m.pair) else None


def propose(toolset: Toolset, clean: CleanPair, cls: MutationClass, rng: random.Random) -> Mutant | None:
    """A `cls` mutant of `clean` before confirmation, or None when the class does not apply to this pair."""
    pair = clean.pair
    r = pair.response
    tool = next((t for t in toolset.tools if t.name == pair.tool), None)
    stateful = toolset.state_schema is not None and bool(toolset.state_schema.tables)
    if cls in STATEFUL_CLASSES and not stateful:
        return None
    # worlds are shared, not copied: mutations replace them, never edit them in place
    new = pair.model_copy(update={"response": pair.response.model_copy(deep=True)})
    resp = new.response
    note = ""
    if cls == "flip_to_error":
        if not r.ok:
            return None
        status, code, message = _error_for(tool, rng)
        new.response = AuditResponse(ok=False, status=status, code=code, message=message)
        new.post_state = copy.deepcopy(pair.pre_state)
    elif cls == "flip_to_success":
        if r.ok or tool is None:
            return None
        args = pair.arguments if isinstance(pair.arguments, dict) else {}
        result, _ = comp.synthesize_output(tool, {k: v for k, v in args.items() if v is not None}, {},
                                           seed=rng.randrange(1 << 30), scope="mutant", now="2025-03-15T10:00:00Z")
        new.response = AuditResponse(ok=True, status=200, result=result)
    elif cls == "wrong_status":
        if r.ok:
            return None
        resp.status = rng.choice([s for s in (400, 401, 403, 404, 409, 422, 429, 500) if s != r.status])
    elif cls == "wrong_code":
        if r.ok:
            return None
        same = [e for e in (tool.errors if tool else []) if e.code != r.code and e.status == r.status]
        if same:
            e = rng.choice(same)
            resp.code, resp.message = e.code, f"{e.title}: {e.guidance}"
        else:
            resp.status, resp.code, resp.message = _error_for(tool, rng, avoid=(r.status, r.code))
    elif cls in ("missing_key", "extra_key", "retyped_key", "mixed_array", "wrong_value", "dangling_id"):
        if not r.ok or not isinstance(resp.result, dict) or tool is None:
            return None
        res = resp.result
        out_props = tool.output_schema.get("properties", {})
        if cls == "missing_key":
            if not res:
                return None
            k = rng.choice(sorted(res))
            del res[k]
            note = k
        elif cls == "extra_key":
            k = rng.choice(["debug_info", "internal_note", "confidence_score", "extra_field"])
            while k in out_props:
                k += "_x"
            res[k] = rng.choice(["simulated", 0.87, True, 42])
            note = k
        elif cls == "retyped_key":
            if not res:
                return None
            k = rng.choice(sorted(res))
            other = _other_type(res[k], out_props.get(k, {}), rng)
            if canonical_json(other) == canonical_json(res[k]):
                return None
            res[k] = other
            note = k
        elif cls == "mixed_array":
            arrays = [(p, v) for p, v in _paths_of_arrays(res) if v]
            if not arrays:
                return None
            p, arr = rng.choice(arrays)
            items = _schema_at(tool.output_schema, (*p, 0))
            if not _types(items):
                return None
            arr.append(_other_type(arr[0], items, rng))
            note = ".".join(map(str, p))
        elif cls == "wrong_value":
            leaves = [(p, v) for p, v in _leaves(res) if p and v is not None]
            bound = [(p, v) for p, v in leaves if p[0] not in clean.synthetic_keys]
            pool = bound or leaves
            if not pool:
                return None
            p, v = rng.choice(pool)
            changed = _changed_value(v, _schema_at(tool.output_schema, p), rng)
            if changed is None:
                return None
            _set(res, p, changed)
            note = ".".join(map(str, p))
        else:  # dangling_id
            idnames = set()
            for t in toolset.state_schema.tables:  # type: ignore[union-attr]
                idnames.add(t.key)
                idnames |= {c for c, col in t.columns.items() if col.ref is not None}
            leaves = [(p, v) for p, v in _leaves(res) if p and isinstance(p[-1], str) and p[-1] in idnames
                      and isinstance(v, str)]
            if not leaves:
                return None
            p, v = rng.choice(leaves)
            _set(res, p, f"{v.split('-')[0]}-UNKNOWN-{rng.randint(100, 999)}" if "-" in v else f"{v}_UNKNOWN")
            note = ".".join(map(str, p))
    elif cls == "stale_read":
        if not r.ok or tool is None or tool.effect.kind != "read" or not isinstance(resp.result, dict):
            return None
        t = toolset.state_schema.table(tool.effect.table)  # type: ignore[union-attr, arg-type]
        key = pair.arguments.get(tool.effect.key) if isinstance(pair.arguments, dict) else None
        older = clean.history.get(f"{t.name}/{canonical_json(key)}", [])
        props = tool.output_schema.get("properties", {})
        bound = row_bound_keys(toolset, tool)
        for old in reversed(older):
            stale = {k: (comp.fit(old[bound[k]], props.get(k, {})) if k in bound and bound[k] in old else v)
                     for k, v in resp.result.items()}
            if value_diffs(resp.result, stale, tool.output_schema):
                resp.result = stale
                break
        else:
            return None
    elif cls == "lost_write":
        if not r.ok or pair.pre_state is None or pair.post_state is None:
            return None
        if pair.pre_state.state_hash() == pair.post_state.state_hash():
            return None
        new.post_state = copy.deepcopy(pair.pre_state)
    elif cls == "side_effect_on_error":
        if r.ok or pair.pre_state is None:
            return None
        post = copy.deepcopy(pair.pre_state)
        if not _touch_a_row(toolset, tool, post, pair.arguments, rng):
            return None
        new.post_state = post
    return Mutant(cls=cls, expected=EXPECTED_VERDICT[cls], pair=new, note=note)


def _paths_of_arrays(v: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], list[Any]]]:
    out: list[tuple[tuple[Any, ...], list[Any]]] = []
    if isinstance(v, dict):
        for k, x in v.items():
            out += _paths_of_arrays(x, (*path, k))
    elif isinstance(v, list):
        out.append((path, v))
        for i, x in enumerate(v):
            out += _paths_of_arrays(x, (*path, i))
    return out


def _touch_a_row(toolset: Toolset, tool: Tool | None, world: WorldState, arguments: Any, rng: random.Random) -> bool:
    """Change one non-key value of a row (preferring the row the call names), as a simulator that wrote
    before failing would."""
    assert toolset.state_schema is not None
    tables = [t for t in toolset.state_schema.tables if world.tables.get(t.name)]
    if tool is not None and tool.effect.table is not None:
        tables = [t for t in tables if t.name == tool.effect.table] or tables
    if not tables:
        return False
    t = tables[0]
    rows = world.tables[t.name]
    key = arguments.get(tool.effect.key) if tool is not None and tool.effect.key and isinstance(arguments, dict) \
        else None
    row = next((r for r in rows if canonical_json(r.get(t.key)) == canonical_json(key)), None) or rng.choice(rows)
    cols = [c for c, col in t.columns.items() if c != t.key and col.ref is None and row.get(c) is not None]
    if not cols:
        return False
    c = rng.choice(cols)
    changed = _changed_value(row[c], {"enum": t.columns[c].enum} if t.columns[c].enum else {}, rng)
    if changed is None:
        return False
    row[c] = changed
    return True


def _norm(v: Any) -> Any:
    if isinstance(v, float) and math.isfinite(v) and v.is_integer():
        return int(v)
    if isinstance(v, list):
        return [_norm(x) for x in v]
    if isinstance(v, dict):
        return {k: _norm(x) for k, x in v.items()}
    return v


def confirmed(clean: AuditPair, mutant: AuditPair) -> bool:
    """Whether the mutant really differs from the correct pair: decision, status, code, result (integral
    floats read as integers) or the world after the call."""
    a, b = clean.response, mutant.response
    if (a.ok, a.status, a.code) != (b.ok, b.status, b.code):
        return True
    if canonical_json(_norm(a.result)) != canonical_json(_norm(b.result)):
        return True
    pa = clean.post_state.tables if clean.post_state else None
    pb = mutant.post_state.tables if mutant.post_state else None
    return canonical_json(_norm(pa)) != canonical_json(_norm(pb))


# ------------------------------------------------------------------------------------------------ accuracy


class ClassAccuracy(BaseModel):
    """Accuracy on one mutation class."""

    model_config = ConfigDict(extra="forbid")

    cls: str
    expected: Verdict
    recall: Rate = Field(description="Mutants given the expected verdict.")
    detection: Rate = Field(description="Mutants given any verdict but 'correct'.")
    not_applicable: int = Field(0, description="Clean pairs the class could not mutate (wrong kind, no state).")
    unconfirmed: int = Field(0, description="Mutants dropped because they equal the correct response.")
    verdicts: dict[str, int] = Field(default_factory=dict, description="Verdict -> count on this class.")


class VerdictPrecision(BaseModel):
    """Precision of one verdict over clean pairs and mutants."""

    model_config = ConfigDict(extra="forbid")

    verdict: Verdict
    precision: Rate


class AccuracyReport(BaseModel):
    """The audit's accuracy on labelled mutants and clean pairs."""

    model_config = ConfigDict(extra="forbid")

    toolsets: int
    stateful_toolsets: int
    clean_pairs: int
    clean_errors: int = Field(description="Clean pairs whose correct response is an error.")
    false_positives: Rate = Field(description="Clean pairs judged anything but 'correct'.")
    classes: list[ClassAccuracy]
    verdicts: list[VerdictPrecision]
    overall_detection: Rate
    overall_recall: Rate
    misses: list[dict[str, Any]] = Field(default_factory=list, description="A few missed or mislabelled cases.")

    def table(self) -> str:
        """The report as a Markdown table."""
        lines = ["| class | expected verdict | recall | detection | n/a pairs | unconfirmed |",
                 "|---|---|---|---|---|---|"]
        for c in self.classes:
            na = f"{c.not_applicable}" + (" (needs state)" if c.cls in STATEFUL_CLASSES and not self.stateful_toolsets
                                           else "")
            lines.append(f"| {c.cls} | {c.expected} | {c.recall.text()} | {c.detection.text()} | {na} | "
                         f"{c.unconfirmed} |")
        lines.append(f"| **all mutants** | | {self.overall_recall.text()} | {self.overall_detection.text()} | | |")
        lines.append(f"| **clean pairs (FP rate)** | correct | | {self.false_positives.text()} | | |")
        lines += ["", "| verdict | precision |", "|---|---|"]
        lines += [f"| {v.verdict} | {v.precision.text()} |" for v in self.verdicts]
        return "\n".join(lines)


def audit_accuracy(toolsets: Iterable[Toolset], seed: int = 0, n_pairs: int = 100, *,
                   classes: Sequence[MutationClass] = MUTATION_CLASSES, strict_synthetic: bool = True,
                   max_misses: int = 10) -> AccuracyReport:
    """Audit `n_pairs` clean pairs per toolset and one mutant per (pair, applicable class); see the module
    docstring for what is reported."""
    rng = random.Random(seed)
    fp = n_clean = n_clean_err = n_ts = n_stateful = 0
    per_class: dict[str, Counter[str]] = {c: Counter() for c in classes}
    na: Counter[str] = Counter()
    unconf: Counter[str] = Counter()
    predicted: Counter[str] = Counter()
    correct_pred: Counter[str] = Counter()
    misses: list[dict[str, Any]] = []
    for toolset in toolsets:
        n_ts += 1
        n_stateful += toolset.state_schema is not None and bool(toolset.state_schema.tables)
        with Oracle(toolset, seed=0) as oracle:
            for clean in clean_pairs(toolset, seed=rng.randrange(1 << 30), n_pairs=n_pairs):
                v = audit_pair(toolset, clean.pair, oracle=oracle, strict_synthetic=strict_synthetic)
                n_clean += 1
                n_clean_err += not clean.pair.response.ok
                predicted[v.verdict] += 1
                if v.verdict == "correct":
                    correct_pred["correct"] += 1
                else:
                    fp += 1
                    if len(misses) < max_misses:
                        misses.append({"kind": "false_positive", "toolset": toolset.id, "tool": clean.pair.tool,
                                       "intent": clean.intent, "reasons": [x.message for x in v.reasons[:3]]})
                for cls in classes:
                    m = propose(toolset, clean, cls, rng)
                    if m is None:
                        na[cls] += 1
                        continue
                    if not confirmed(clean.pair, m.pair):
                        unconf[cls] += 1
                        continue
                    mv = audit_pair(toolset, m.pair, oracle=oracle, strict_synthetic=strict_synthetic)
                    per_class[cls][mv.verdict] += 1
                    predicted[mv.verdict] += 1
                    if mv.verdict == m.expected:
                        correct_pred[mv.verdict] += 1
                    elif len(misses) < max_misses:
                        misses.append({"kind": "miss", "class": cls, "toolset": toolset.id, "tool": m.pair.tool,
                                       "got": mv.verdict, "note": m.note, "intent": clean.intent})
    out_classes = []
    tot_k = tot_d = tot_n = 0
    for cls in classes:
        cnt = per_class[cls]
        n = sum(cnt.values())
        k = cnt[EXPECTED_VERDICT[cls]]
        d = n - cnt["correct"]
        tot_k, tot_d, tot_n = tot_k + k, tot_d + d, tot_n + n
        out_classes.append(ClassAccuracy(cls=cls, expected=EXPECTED_VERDICT[cls], recall=Rate.of(k, n),
                                         detection=Rate.of(d, n), not_applicable=na[cls], unconfirmed=unconf[cls],
                                         verdicts=dict(sorted(cnt.items()))))
    return AccuracyReport(
        toolsets=n_ts, stateful_toolsets=n_stateful, clean_pairs=n_clean, clean_errors=n_clean_err,
        false_positives=Rate.of(fp, n_clean), classes=out_classes,
        verdicts=[VerdictPrecision(verdict=v, precision=Rate.of(correct_pred[v], predicted[v])) for v in VERDICTS],
        overall_detection=Rate.of(tot_d, tot_n), overall_recall=Rate.of(tot_k, tot_n), misses=misses)

