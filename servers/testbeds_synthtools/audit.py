"""The audit: judge (call, response) pairs against the engine as oracle, and check whole trajectories.

**Pairs.** An `AuditPair` is engine-independent: a tool name, arguments, the world before the call
(`WorldState`: domain tables, id counters, clock tick; None means the toolset's seed state), the response
under audit (`AuditResponse`: ok, status, code, message, result) and optionally the world after the call.
It can come from our engine, the LLM simulator or any external simulator's transcript.

`audit_pair` decides what the correct response is *without looking at the response*: it restores the
pre-call world into an oracle session (`Oracle`) and replays the call on the deterministic engine. It then
compares, in order:

1. the decision (ok vs error): `should_have_succeeded` / `should_have_failed` (SynthTools'
   should_success_got_error / should_error_got_success);
2. with the same decision, the content; any difference gives `inappropriate_response`:
   errors: status and code (messages are free text and not compared); successes: status 2xx, the result's
   shape (Draft 2020-12 validation against `output_schema`, undeclared keys, keys the oracle returns but
   the response lacks), values (exact for strings, booleans and integers, money exact to the cent, other
   numbers within 1e-9 relative, date-times as instants), references (an id-named value that no row of the
   referenced table holds), and the world after the call (the response's post state vs the replay's: a lost
   write, a write on error, a write the call should not make).

Keys the engine *synthesised* (seeded values, `_meta.synthetic_keys`) are compared exactly when
`strict_synthetic=True` (transcripts of our deterministic engine, whose synthesis is seeded); for the LLM
simulator or an external one pass `strict_synthetic=False`: those keys are then checked for shape only,
plus echo (a key named like an argument must carry the argument's value when the engine echoes it).

**Trajectories.** `audit_trajectory` needs no oracle: over a transcript with states (or state hashes) it
checks that errors change nothing, read-only tools keep the state, idempotent repeats change nothing
(volatile columns such as `updated_at` aside), repeated reads with no write in between are equal, and a
read of a row reports the row as the earlier writes left it.
"""

from __future__ import annotations

import copy
import math
import os
import shutil
import sqlite3
import tempfile
import weakref
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import jsonschema
from pydantic import BaseModel, ConfigDict, Field

from . import compute as comp
from .engine import CallResult, Session, encode
from .gateway import type_ok
from .spec import Tool, Toolset, canonical_json, parse_instant, schema_validator, sha256_hex

Verdict = Literal["correct", "should_have_succeeded", "should_have_failed", "inappropriate_response"]
VERDICTS: tuple[Verdict, ...] = ("correct", "should_have_succeeded", "should_have_failed", "inappropriate_response")
SYNTHTOOLS_VERDICT_IDS: dict[str, str] = {
    "correct": "correct",
    "should_have_succeeded": "should_success_got_error",
    "should_have_failed": "should_error_got_success",
    "inappropriate_response": "inappropriate_response",
}
"""Our verdict names -> the SynthTools judge's ids."""

ReasonKind = Literal["decision", "status", "code", "shape", "missing_key", "extra_key", "type", "value",
                     "dangling_reference", "state"]

_REL_TOL = 1e-9


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ------------------------------------------------------------------------------------------------ models


class WorldState(_Model):
    """The simulated world at one point: domain tables (wire values, rows by key), id counters, clock tick.

    `counters` None: inferred from the rows (largest numeric id suffix, at least the seed-row count);
    `tick` None: 0."""

    tables: dict[str, list[dict[str, Any]]] = Field(default_factory=dict, description="Table -> rows.")
    counters: dict[str, int] | None = Field(None, description="Table -> id counter (last id number issued).")
    tick: int | None = Field(None, ge=0, description="Clock tick (committed writes so far).")

    @classmethod
    def capture(cls, session: Session) -> WorldState:
        """The world of an engine session now."""
        return cls(tables=session.snapshot(), counters=session.counters(), tick=session.tick)

    @classmethod
    def seed(cls, toolset: Toolset) -> WorldState:
        """The toolset's initial world (seed rows, counters from the seed rows, tick 0)."""
        s = Session(toolset)
        try:
            return cls.capture(s)
        finally:
            s.close()

    def state_hash(self) -> str:
        """sha256 of the canonical JSON of the tables: equals `Session.state_hash()` for the same world."""
        return sha256_hex(self.tables)


class AuditResponse(_Model):
    """A response under audit, in any simulator's terms."""

    ok: bool = Field(description="True for a successful result, False for an error.")
    status: int = Field(200, description="200 (2xx) on success, else the HTTP-like error status.")
    code: str | None = Field(None, description="Error code (errors only).")
    message: str | None = Field(None, description="Error message (not compared: free text).")
    result: Any = Field(None, description="Structured result of a success (an object).")

    @classmethod
    def from_call_result(cls, r: CallResult) -> AuditResponse:
        """The engine's `CallResult` as an audit response."""
        return cls(ok=r.ok, status=r.status, code=r.code, message=r.message, result=copy.deepcopy(r.result))


class AuditPair(_Model):
    """One (call, response) pair with the world before (and optionally after) the call."""

    tool: str = Field(description="Tool name as called.")
    arguments: Any = Field(default_factory=dict, description="Arguments as sent (normally an object).")
    pre_state: WorldState | None = Field(None, description="World before the call; None: the seed world.")
    response: AuditResponse = Field(description="The response under audit.")
    post_state: WorldState | None = Field(None, description="World after the call, if the transcript has it.")
    session_seed: int = Field(0, description="Seed of the session that answered (seeded synthesis).")


class AuditReason(_Model):
    """Why a pair is not correct."""

    kind: ReasonKind
    path: str = Field("", description="Where: an output key path ('items[0].status') or 'table/key'.")
    message: str


class AuditVerdict(_Model):
    """The verdict on one pair, its reasons and the oracle's expected response."""

    verdict: Verdict
    reasons: list[AuditReason] = Field(default_factory=list)
    expected: AuditResponse | None = Field(None, description="The oracle's response to the same call.")

    @property
    def synthtools_id(self) -> str:
        """The verdict under SynthTools' naming."""
        return SYNTHTOOLS_VERDICT_IDS[self.verdict]


class Expectation(_Model):
    """The oracle's answer to a pair's call on the pair's pre-call world."""

    response: AuditResponse
    pre: WorldState
    post: WorldState
    synthetic_keys: list[str] = Field(default_factory=list)


# ------------------------------------------------------------------------------------------------ oracle


def _infer_counters(toolset: Toolset, tables: Mapping[str, list[dict[str, Any]]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for t in toolset.state_schema.tables if toolset.state_schema else []:
        n = len(t.seed_rows)
        if t.id_prefix:
            for r in [*t.seed_rows, *tables.get(t.name, [])]:
                k = r.get(t.key)
                if isinstance(k, str) and k.startswith(t.id_prefix) and k[len(t.id_prefix):].isdigit():
                    n = max(n, int(k[len(t.id_prefix):]))
        out[t.name] = n
    return out


class Oracle:
    """The engine as reference implementation: replays calls on a restored world.

    One file-backed engine session is kept open; before each replay a second connection rewrites its domain
    tables, counters and clock to the pair's pre-call world (the documented `_counters`/`_clock` tables), so
    no per-pair session setup is paid. Answers are cached by (world, tool, arguments). Use as a context
    manager or call `close()`; the temporary directory is removed at exit either way."""

    def __init__(self, toolset: Toolset, seed: int = 0):
        self.toolset = toolset
        self.seed = seed
        self._dir = Path(tempfile.mkdtemp(prefix="synthtools-oracle-", dir=_fast_tmp()))
        self._path = self._dir / "oracle.db"
        self._session = Session(toolset, seed=seed, path=self._path)
        self._seed_state = WorldState.capture(self._session)
        self._writer = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        self._writer.execute("PRAGMA synchronous = OFF")  # a scratch copy: durability buys nothing here
        self._tables = {t.name: t for t in toolset.state_schema.tables} if toolset.state_schema else {}
        self._cache: dict[str, Expectation] = {}
        self._finalizer = weakref.finalize(self, _cleanup, self._session, self._writer, self._dir)

    def close(self) -> None:
        """Close the oracle's databases and remove its files."""
        self._finalizer()

    def __enter__(self) -> Oracle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def seed_state(self) -> WorldState:
        """The toolset's seed world."""
        return self._seed_state

    def _restore(self, state: WorldState) -> None:
        w = self._writer
        counters = state.counters if state.counters is not None else _infer_counters(self.toolset, state.tables)
        w.execute("BEGIN IMMEDIATE")
        try:
            for name, t in self._tables.items():
                w.execute(f'DELETE FROM "{name}"')
                cols = list(t.columns)
                sql = (f'INSERT INTO "{name}" ({", ".join(chr(34) + c + chr(34) for c in cols)}) '
                       f'VALUES ({", ".join("?" for _ in cols)})')
                for row in state.tables.get(name, []):
                    w.execute(sql, [encode(t.columns[c], row.get(c)) for c in cols])
            for name, value in counters.items():
                w.execute("UPDATE _counters SET value = ? WHERE tbl = ?", (int(value), name))
            w.execute("UPDATE _clock SET tick = ? WHERE id = 0", (int(state.tick or 0),))
            w.execute("DELETE FROM _changes")
            w.execute("COMMIT")
        except BaseException:
            w.execute("ROLLBACK")
            raise

    def expect(self, tool: str, arguments: Any, pre: WorldState | None = None) -> Expectation:
        """The engine's response to `tool(arguments)` on the world `pre` (None: the seed world)."""
        pre = pre if pre is not None else self._seed_state
        key = sha256_hex([pre.model_dump(mode="json"), tool, _jsonable(arguments)])
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        self._restore(pre)
        got = self._session.call(tool, copy.deepcopy(arguments))
        post = WorldState.capture(self._session)
        exp = Expectation(response=AuditResponse.from_call_result(got), pre=pre, post=post,
                          synthetic_keys=list(got.meta.get("synthetic_keys", [])))
        if len(self._cache) > 20_000:
            self._cache.clear()
        self._cache[key] = exp
        return exp


def _fast_tmp() -> str | None:
    """A RAM-backed temporary directory where there is one (commits there cost no disk sync)."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


def _cleanup(session: Session, writer: sqlite3.Connection, directory: Path) -> None:
    writer.close()
    session.close()
    shutil.rmtree(directory, ignore_errors=True)


def _jsonable(v: Any) -> Any:
    try:
        canonical_json(v)
    except (TypeError, ValueError):
        return repr(v)
    return v


# ------------------------------------------------------------------------------------------- comparisons


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def numbers_equal(a: float | int, b: float | int) -> bool:
    """Equal numbers: exact for integers and cents (any difference of a cent or more is far outside the
    tolerance), else within 1e-9 relative (float noise such as 0.1 + 0.2)."""
    if a == b:
        return True
    if not (math.isfinite(a) and math.isfinite(b)):
        return False
    return math.isclose(a, b, rel_tol=_REL_TOL, abs_tol=_REL_TOL)


def value_diffs(expected: Any, got: Any, schema: Mapping[str, Any] | None = None, path: str = "") -> list[str]:
    """Paths (with a short why) where `got` differs from `expected`: numbers by `numbers_equal`, date-time
    strings as instants, objects key by key, arrays item by item."""
    schema = schema if isinstance(schema, Mapping) else {}
    where = path or "result"
    if expected is None or got is None:
        return [] if expected is None and got is None else [f"{where}: expected {_short(expected)}, got {_short(got)}"]
    if isinstance(expected, bool) or isinstance(got, bool):
        ok = isinstance(expected, bool) and isinstance(got, bool) and expected == got
        return [] if ok else [f"{where}: expected {_short(expected)}, got {_short(got)}"]
    if _is_number(expected) and _is_number(got):
        return [] if numbers_equal(expected, got) else [f"{where}: expected {_short(expected)}, got {_short(got)}"]
    if isinstance(expected, str) and isinstance(got, str):
        if expected == got:
            return []
        if schema.get("format") == "date-time":
            a, b = parse_instant(expected), parse_instant(got)
            if a is not None and b is not None and a == b:
                return []
        return [f"{where}: expected {_short(expected)}, got {_short(got)}"]
    if isinstance(expected, list) and isinstance(got, list):
        if len(expected) != len(got):
            return [f"{where}: expected {len(expected)} items, got {len(got)}"]
        items = schema.get("items") if isinstance(schema.get("items"), Mapping) else {}
        out: list[str] = []
        for i, (e, g) in enumerate(zip(expected, got, strict=True)):
            out += value_diffs(e, g, items, f"{path}[{i}]")
        return out
    if isinstance(expected, dict) and isinstance(got, dict):
        props = schema.get("properties") if isinstance(schema.get("properties"), Mapping) else {}
        out = []
        for k in sorted(set(expected) | set(got)):
            sub = f"{path}.{k}" if path else k
            if k not in got:
                out.append(f"{sub}: missing")
            elif k not in expected:
                out.append(f"{sub}: unexpected")
            else:
                out += value_diffs(expected[k], got[k], props.get(k, {}), sub)
        return out
    return [f"{where}: expected {_short(expected)}, got {_short(got)}"]


def _short(v: Any) -> str:
    text = canonical_json(_jsonable(v))
    return text if len(text) <= 60 else text[:57] + "..."


def _strip_volatile(toolset: Toolset, tables: Mapping[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    vol = {t.name: {c for c, col in t.columns.items() if col.volatile}
           for t in (toolset.state_schema.tables if toolset.state_schema else [])}
    return {name: [{c: v for c, v in r.items() if c not in vol.get(name, set())} for r in rows]
            for name, rows in tables.items()}


def state_diffs(toolset: Toolset, expected: Mapping[str, list[dict[str, Any]]],
                got: Mapping[str, list[dict[str, Any]]], *, volatile: bool = True) -> list[str]:
    """Row-level differences between two worlds' tables ('table/key: ...'), keyed by each table's key."""
    if not volatile:
        expected, got = _strip_volatile(toolset, expected), _strip_volatile(toolset, got)
    if expected == got:  # fast path; == also equates 3 and 3.0, which the detailed walk would too
        return []
    keys = {t.name: t.key for t in toolset.state_schema.tables} if toolset.state_schema else {}
    out: list[str] = []
    for name in sorted(set(expected) | set(got)):
        k = keys.get(name)
        if k is None:
            if canonical_json(expected.get(name, [])) != canonical_json(got.get(name, [])):
                out.append(f"{name}: differs")
            continue
        e = {canonical_json(r.get(k)): r for r in expected.get(name, [])}
        g = {canonical_json(r.get(k)): r for r in got.get(name, [])}
        for pk in sorted(set(e) | set(g)):
            if pk not in g:
                out.append(f"{name}/{pk}: row missing (expected {_short(e[pk])})")
            elif pk not in e:
                out.append(f"{name}/{pk}: unexpected row {_short(g[pk])}")
            else:
                diffs = value_diffs(e[pk], g[pk], None, "")
                if diffs:
                    out.append(f"{name}/{pk}: " + "; ".join(diffs[:3]))
    return out


def _id_columns(toolset: Toolset) -> dict[str, list[tuple[str, str]]]:
    """Column name -> [(table, key column)] it must name a row of: table keys and `ref` columns."""
    out: dict[str, list[tuple[str, str]]] = {}
    if toolset.state_schema is None:
        return out
    for t in toolset.state_schema.tables:
        out.setdefault(t.key, []).append((t.name, t.key))
        for cname, col in t.columns.items():
            if col.ref is not None:
                rt, rc = col.ref.split(".")
                out.setdefault(cname, []).append((rt, rc))
    return out


def known_ids(toolset: Toolset, worlds: Sequence[WorldState]) -> dict[tuple[str, str], set[str]]:
    """(table, key column) -> canonical JSON of the ids its rows hold in any of `worlds`."""
    wanted = {ref for refs in _id_columns(toolset).values() for ref in refs}
    known: dict[tuple[str, str], set[str]] = {ref: set() for ref in wanted}
    for w in worlds:
        for name, col in wanted:
            for r in w.tables.get(name, []):
                known[(name, col)].add(canonical_json(r.get(col)))
    return known


def dangling_references(toolset: Toolset, result: Any, worlds: Sequence[WorldState],
                        known: Mapping[tuple[str, str], set[str]] | None = None) -> list[str]:
    """Id-named values in `result` (keys named like a table key or a `ref` column) that no row of the
    referenced table holds in any of `worlds` (pre and post: a delete echoes the row it removed).
    `known` (from `known_ids(toolset, worlds)`) saves recomputing the ids."""
    idcols = _id_columns(toolset)
    if not idcols:
        return []
    known = known if known is not None else known_ids(toolset, worlds)
    out: list[str] = []

    def walk(v: Any, path: str) -> None:
        if isinstance(v, dict):
            for k, x in v.items():
                sub = f"{path}.{k}" if path else k
                if k in idcols and isinstance(x, str | int) and not isinstance(x, bool):
                    if not any(canonical_json(x) in known.get(ref, set()) for ref in idcols[k]):
                        out.append(f"{sub}: {x!r} names no {idcols[k][0][0]} row")
                else:
                    walk(x, sub)
        elif isinstance(v, list):
            for i, x in enumerate(v):
                walk(x, f"{path}[{i}]")

    walk(result, "")
    return out


# -------------------------------------------------------------------------------------------------- judge


def _types(schema: Mapping[str, Any]) -> list[str]:
    t = schema.get("type")
    return [] if t is None else [t] if isinstance(t, str) else list(t)


def _shape_reasons(tool: Tool, result: Any, expected: Mapping[str, Any], lenient_dates: bool) -> list[AuditReason]:
    if not isinstance(result, dict):
        return [AuditReason(kind="shape", message=f"result is not an object: {_short(result)}")]
    props: dict[str, Any] = tool.output_schema.get("properties", {})
    out: list[AuditReason] = []
    for k in result:
        if k not in props:
            out.append(AuditReason(kind="extra_key", path=k, message=f"undeclared output key {k!r}"))
    for k in [*tool.output_schema.get("required", []), *expected]:
        if k not in result and not any(r.path == k for r in out):
            out.append(AuditReason(kind="missing_key", path=k, message=f"output key {k!r} is missing"))
    for k, v in result.items():
        s = props.get(k)
        if not isinstance(s, Mapping):
            continue
        types = _types(s)
        if types and not any(type_ok(v, t) for t in types):
            out.append(AuditReason(kind="type", path=k, message=f"{k}: expected {'/'.join(types)}, got {_short(v)}"))
    validator = _output_validator(tool, lenient_dates)
    seen = {r.path for r in out}
    try:
        errors = sorted(validator.iter_errors(result), key=lambda e: [str(p) for p in e.absolute_path])
    except jsonschema.exceptions.SchemaError as exc:  # a broken spec: lint reports it; do not crash the audit
        errors, out = [], [*out, AuditReason(kind="shape", message=f"output schema is invalid: {exc.message}")]
    for e in errors:
        path = "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else str(p))
                       for i, p in enumerate(e.absolute_path))
        top = str(e.absolute_path[0]) if e.absolute_path else ""
        if top in seen and len(e.absolute_path) <= 1:
            continue
        out.append(AuditReason(kind="shape", path=path, message=f"{path or 'result'}: {e.message}"))
    return out


_VALIDATORS: dict[tuple[str, bool], Any] = {}


def _output_validator(tool: Tool, lenient_dates: bool) -> Any:
    key = (sha256_hex(tool.output_schema), lenient_dates)
    v = _VALIDATORS.get(key)
    if v is None:
        if len(_VALIDATORS) > 4096:
            _VALIDATORS.clear()
        v = _VALIDATORS[key] = schema_validator(tool.output_schema, lenient_dates)
    return v


def judge(toolset: Toolset, pair: AuditPair, exp: Expectation, *, strict_synthetic: bool = True,
          compare_volatile: bool = True) -> AuditVerdict:
    """The verdict on `pair` given the oracle's `exp` for the same call and world (see module docstring)."""
    r, e = pair.response, exp.response
    reasons: list[AuditReason] = []
    if e.ok and not r.ok:
        reasons.append(AuditReason(kind="decision", message=f"expected success, got error {r.status} {r.code}"))
        return AuditVerdict(verdict="should_have_succeeded", reasons=reasons, expected=e)
    if not e.ok and r.ok:
        reasons.append(AuditReason(kind="decision", message=f"expected error {e.status} {e.code}: {e.message}"))
        return AuditVerdict(verdict="should_have_failed", reasons=reasons, expected=e)
    if not e.ok:
        if r.status != e.status:
            reasons.append(AuditReason(kind="status", message=f"expected status {e.status}, got {r.status}"))
        if r.code != e.code:
            reasons.append(AuditReason(kind="code", message=f"expected code {e.code!r}, got {r.code!r}"))
    else:
        if not 200 <= r.status < 300:
            reasons.append(AuditReason(kind="status", message=f"a success with status {r.status}"))
        tool = toolset.tool(pair.tool)
        expected = e.result if isinstance(e.result, dict) else {}
        reasons += _shape_reasons(tool, r.result, expected, toolset.lenient_dates)
        props = tool.output_schema.get("properties", {})
        args = pair.arguments if isinstance(pair.arguments, dict) else {}
        canon = comp.canonical_arguments(tool, args)
        volatile = _volatile_keys(toolset, tool) if not compare_volatile else set()
        if isinstance(r.result, dict):
            for k, ev in expected.items():
                if k not in r.result or k in volatile:
                    continue
                if k in exp.synthetic_keys and not strict_synthetic:
                    if not _echoed(k, props.get(k, {}), canon, ev):
                        continue
                for d in value_diffs(ev, r.result[k], props.get(k, {}), k):
                    reasons.append(AuditReason(kind="value", path=d.split(":", 1)[0], message=d))
            worlds = [w for w in (exp.pre, exp.post, pair.post_state) if w is not None]
            # ids the engine itself returns unresolved (a compute tool echoing an argument) are not the
            # response's fault: only new dangling paths count
            known = known_ids(toolset, worlds)
            own = {d.split(":", 1)[0] for d in dangling_references(toolset, expected, worlds, known)}
            for d in dangling_references(toolset, r.result, worlds, known):
                if d.split(":", 1)[0] in own:
                    continue
                reasons.append(AuditReason(kind="dangling_reference", path=d.split(":", 1)[0], message=d))
    if pair.post_state is not None:
        for d in state_diffs(toolset, exp.post.tables, pair.post_state.tables, volatile=compare_volatile):
            reasons.append(AuditReason(kind="state", path=d.split(":", 1)[0], message=d))
    return AuditVerdict(verdict="inappropriate_response" if reasons else "correct", reasons=reasons, expected=e)


def _echoed(key: str, schema: Mapping[str, Any], canon: Mapping[str, Any], value: Any) -> bool:
    """Whether a synthesised output key carries a same-named argument (ids flow through): then its value is
    bound even for a free simulator."""
    if key not in canon or value_diffs(canon[key], value, schema):
        return False
    types = _types(schema)
    return not types or any(type_ok(value, t) for t in types)


def _volatile_keys(toolset: Toolset, tool: Tool) -> set[str]:
    if toolset.state_schema is None or tool.effect.table is None:
        return set()
    t = toolset.state_schema.table(tool.effect.table)
    return {c for c, col in t.columns.items() if col.volatile}


def audit_pair(toolset: Toolset, pair: AuditPair, *, oracle: Oracle | None = None, strict_synthetic: bool = True,
               compare_volatile: bool = True) -> AuditVerdict:
    """Judge one pair: replay its call on the engine restored to the pair's pre-call world, then compare.

    Pass a long-lived `oracle` (one per toolset and session seed) when auditing many pairs. An unknown tool
    name is judged like any other call (the engine's answer is an `unknown_tool` error)."""
    own = oracle is None
    oracle = oracle or Oracle(toolset, seed=pair.session_seed)
    try:
        exp = oracle.expect(pair.tool, pair.arguments, pair.pre_state)
        return judge(toolset, pair, exp, strict_synthetic=strict_synthetic, compare_volatile=compare_volatile)
    finally:
        if own:
            oracle.close()


def audit_pairs(toolset: Toolset, pairs: Iterable[AuditPair], *, strict_synthetic: bool = True,
                compare_volatile: bool = True) -> list[AuditVerdict]:
    """Judge many pairs of one toolset with shared oracles (one per session seed)."""
    oracles: dict[int, Oracle] = {}
    try:
        out = []
        for p in pairs:
            o = oracles.get(p.session_seed)
            if o is None:
                o = oracles[p.session_seed] = Oracle(toolset, seed=p.session_seed)
            out.append(audit_pair(toolset, p, oracle=o, strict_synthetic=strict_synthetic,
                                  compare_volatile=compare_volatile))
        return out
    finally:
        for o in oracles.values():
            o.close()


# ------------------------------------------------------------------------------------------- trajectories

TrajectoryCheck = Literal["error_state", "read_only_state", "idempotent_repeat", "repeated_read", "read_after_write"]


class TrajectoryStep(_Model):
    """One call of a transcript: the call, its response and the world (or its hash) around it."""

    tool: str
    arguments: Any = Field(default_factory=dict)
    response: AuditResponse
    pre_state: WorldState | None = Field(None, description="World before; None: the previous step's post.")
    post_state: WorldState | None = Field(None, description="World after.")
    state_hash_before: str | None = Field(None, description="Used when pre_state is absent.")
    state_hash_after: str | None = Field(None, description="Used when post_state is absent.")


class TrajectoryFinding(_Model):
    """A trajectory inconsistency."""

    check: TrajectoryCheck
    step: int = Field(description="0-based index of the offending step.")
    other_step: int | None = Field(None, description="The earlier step it contradicts, if any.")
    message: str


def record_trajectory(toolset: Toolset, calls: Sequence[tuple[str, Any]], seed: int = 0,
                      session: Session | None = None) -> list[TrajectoryStep]:
    """Run `calls` on an engine session (a fresh one unless given) and record each step with its worlds."""
    own = session is None
    s = session or Session(toolset, seed=seed)
    try:
        steps = []
        for tool, args in calls:
            pre = WorldState.capture(s)
            got = s.call(tool, copy.deepcopy(args))
            steps.append(TrajectoryStep(tool=tool, arguments=copy.deepcopy(args),
                                        response=AuditResponse.from_call_result(got), pre_state=pre,
                                        post_state=WorldState.capture(s)))
        return steps
    finally:
        if own:
            s.close()


def audit_trajectory(toolset: Toolset, steps: Sequence[TrajectoryStep]) -> list[TrajectoryFinding]:
    """Oracle-free consistency checks over a transcript (see module docstring). Steps whose worlds are
    unknown (no state, no hash, no previous post) are skipped by the checks that need them."""
    tools = {t.name: t for t in toolset.tools}
    pre_h: list[str | None] = []
    post_h: list[str | None] = []
    pre_s: list[WorldState | None] = []
    stable_pre: list[str | None] = []
    stable_post: list[str | None] = []
    prev_post: WorldState | None = None
    prev_hash: str | None = None
    for st in steps:
        pre = st.pre_state if st.pre_state is not None else prev_post
        pre_s.append(pre)
        pre_h.append(pre.state_hash() if pre is not None else (st.state_hash_before or prev_hash))
        post_h.append(st.post_state.state_hash() if st.post_state is not None else st.state_hash_after)
        stable_pre.append(sha256_hex(_strip_volatile(toolset, pre.tables)) if pre is not None else pre_h[-1])
        stable_post.append(sha256_hex(_strip_volatile(toolset, st.post_state.tables))
                           if st.post_state is not None else post_h[-1])
        prev_post, prev_hash = st.post_state, post_h[-1]
    out: list[TrajectoryFinding] = []
    for i, st in enumerate(steps):
        tool = tools.get(st.tool)
        changed = pre_h[i] is not None and post_h[i] is not None and pre_h[i] != post_h[i]
        if not st.response.ok and changed:
            out.append(TrajectoryFinding(check="error_state", step=i, message=f"{st.tool} failed "
                                         f"({st.response.status} {st.response.code}) but the state changed"))
        elif tool is not None and tool.annotations is not None and tool.annotations.read_only and changed:
            out.append(TrajectoryFinding(check="read_only_state", step=i,
                                         message=f"read-only {st.tool} changed the state"))
        if tool is None or not isinstance(st.arguments, dict):
            continue
        canon = canonical_json(comp.canonical_arguments(tool, st.arguments))
        for j in range(i - 1, -1, -1):
            prev = steps[j]
            if prev.tool != st.tool or not isinstance(prev.arguments, dict) or \
                    canonical_json(comp.canonical_arguments(tool, prev.arguments)) != canon:
                continue
            ann = tool.annotations
            if ann is not None and ann.read_only and post_h[j] is not None and post_h[j] == pre_h[i]:
                if prev.response.ok != st.response.ok or (st.response.ok and value_diffs(
                        prev.response.result, st.response.result, tool.output_schema)) or (
                        not st.response.ok and (prev.response.status, prev.response.code) !=
                        (st.response.status, st.response.code)):
                    out.append(TrajectoryFinding(check="repeated_read", step=i, other_step=j,
                                                 message=f"{st.tool} answered differently with no write in between"))
            elif ann is not None and not ann.read_only and ann.idempotent and prev.response.ok \
                    and st.response.ok and stable_post[j] is not None and stable_post[j] == stable_pre[i] \
                    and stable_post[i] is not None and stable_pre[i] != stable_post[i]:
                out.append(TrajectoryFinding(check="idempotent_repeat", step=i, other_step=j,
                                             message=f"repeating idempotent {st.tool} changed the state again"))
            break
        out += _read_after_write(toolset, tool, i, st, pre_s[i])
    return out


def row_bound_keys(toolset: Toolset, tool: Tool) -> dict[str, str]:
    """Output key -> column of the effect's table it reports: `returns` entries that are exactly `row.<column>`,
    and undeclared-in-`returns` keys named like a column (the engine copies those from the row)."""
    if toolset.state_schema is None or tool.effect.table is None:
        return {}
    cols = toolset.state_schema.table(tool.effect.table).columns
    out: dict[str, str] = {}
    for k in tool.output_schema.get("properties", {}):
        expr = tool.effect.returns.get(k)
        if expr is None:
            if k in cols:
                out[k] = k
        else:
            text = expr.replace(" ", "")
            if text.startswith("row.") and text[4:] in cols:
                out[k] = text[4:]
    return out


def _read_after_write(toolset: Toolset, tool: Tool, i: int, st: TrajectoryStep,
                      pre: WorldState | None) -> list[TrajectoryFinding]:
    eff = tool.effect
    if eff.kind != "read" or pre is None or toolset.state_schema is None or eff.table is None \
            or not st.response.ok or not isinstance(st.response.result, dict):
        return []
    t = toolset.state_schema.table(eff.table)
    key = st.arguments.get(eff.key or "")
    rows = [r for r in pre.tables.get(t.name, []) if canonical_json(r.get(t.key)) == canonical_json(key)]
    if not rows:
        return [TrajectoryFinding(check="read_after_write", step=i,
                                  message=f"{st.tool} returned a {t.name} row {key!r} the state does not hold")]
    row = rows[0]
    props = tool.output_schema.get("properties", {})
    diffs: list[str] = []
    bound = row_bound_keys(toolset, tool)
    for k, v in st.response.result.items():
        c = bound.get(k)
        if c is not None and row.get(c) is not None:
            diffs += value_diffs(comp.fit(row[c], props.get(k, {})), v, props.get(k, {}), k)
    if diffs:
        return [TrajectoryFinding(check="read_after_write", step=i,
                                  message=f"{st.tool} disagrees with the state left by earlier writes: "
                                          + "; ".join(diffs[:3]))]
    return []
