"""The deterministic engine: one SQLite database per session, atomic calls, exact money, a logical clock.

`Session(toolset, seed, path, faults)` opens (or creates) the session database: one table per state table
(columns typed, key as PRIMARY KEY, `unique` groups as UNIQUE) plus internal tables `_counters(tbl, value)`,
`_clock(id, tick)` and `_changes(seq, call, tick, tbl, pk, op, before, after)`. `session.call(tool, args)`
runs the gateway (`gateway.py`), an optional seeded fault (`faults.py`), the effect's preconditions (missing
row 404, duplicate key or bad transition 409, dangling reference 404), then the effect, inside
`SAVEPOINT c<n>`: released on success, `ROLLBACK TO` + `RELEASE` on any failure, so ids, the clock and the
change log never move for a failed call. Errors are results (`CallResult.ok == False`), never exceptions;
an output that does not validate against the tool's `output_schema` is an engine bug and raises
`InternalError`.

Money columns (`money_scale: 2`) hold integer cents: inputs go through `Decimal(str(x))` rounded half up;
results, snapshots and the change log carry decimal amounts (`149.48`). The clock reads
`clock_start + tick * clock_step_seconds`; a tick passes per committed write, never wall time.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import sqlite3
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from . import compute as comp
from . import rules
from .faults import FaultConfig, FaultInjector
from .gateway import Checked, Failure, Gateway, spec_failure, type_ok
from .spec import Column, ErrorSpec, Table, Tool, Toolset, canonical_json, schema_validator, sha256_hex

if TYPE_CHECKING:
    from .llm_sim import Simulator

ChangeOp = Literal["insert", "update", "delete"]


class InternalError(RuntimeError):
    """An engine bug or a spec the engine cannot honour (e.g. an output that fails its own schema)."""


class Change(BaseModel):
    """One row change of the log."""

    model_config = ConfigDict(extra="forbid")

    seq: int = Field(description="Position in the session's change log (1-based).")
    call: int = Field(description="Index of the call that made it.")
    tick: int = Field(description="Clock tick the change was committed at.")
    table: str = Field(description="Table name.")
    key: Any = Field(description="Row key.")
    op: ChangeOp = Field(description="insert | update | delete.")
    before: dict[str, Any] | None = Field(None, description="Row before (None for insert).")
    after: dict[str, Any] | None = Field(None, description="Row after (None for delete).")


class CallResult(BaseModel):
    """The outcome of one call: a result, or an error with status, code and message."""

    model_config = ConfigDict(extra="forbid")

    ok: bool = Field(description="True when the call succeeded.")
    status: int = Field(description="200 on success, else the HTTP-like error status.")
    code: str | None = Field(None, description="Stable error code (spec error code or gateway code).")
    message: str | None = Field(None, description="Error message with its remedy.")
    result: dict[str, Any] | None = Field(None, description="Structured result (validates against output_schema).")
    call_index: int = Field(description="0-based index of this call in the session.")
    tick: int = Field(description="Clock tick after the call.")
    changes: list[Change] = Field(default_factory=list, description="Row changes this call committed.")
    stage: str | None = Field(None, description="Failing stage: a gateway stage, 'fault', 'precondition', "
                              "'effect' or 'simulation'.")
    meta: dict[str, Any] = Field(default_factory=dict, description="`_meta`: source of the values "
                                 "(example | formula | state | synthetic | llm | cache | fallback), synthetic keys.")


@dataclass
class _Draft:
    """A successful call before output validation and commit."""

    checked: Checked
    result: dict[str, Any]
    bound: set[str]
    synthetic: list[str]
    source: str
    row: dict[str, Any] | None = None
    rows: list[dict[str, Any]] = field(default_factory=list)


class _Fail(Exception):
    """Internal control flow: a failure found while the effect runs (rolled back by the caller)."""

    def __init__(self, failure: Failure):
        super().__init__(failure.message)
        self.failure = failure


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


_SQL_TYPE = {"string": "TEXT", "integer": "INTEGER", "number": "REAL", "boolean": "INTEGER", "date-time": "TEXT",
             "json": "TEXT"}


def money_to_units(value: Any, scale: int) -> int:
    """A decimal amount as integer units of 10^-scale, rounded half up (149.99 -> 14999)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise ValueError(f"expected an amount, got {type(value).__name__}")
    try:
        d = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"not an amount: {value!r}") from None
    if not d.is_finite():
        raise ValueError(f"not a finite amount: {value!r}")
    return int((d * (Decimal(10) ** scale)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def units_to_money(units: int, scale: int) -> float | int:
    """Integer units back to a decimal amount (14948 -> 149.48)."""
    d = Decimal(units).scaleb(-scale)
    return int(d) if scale == 0 else float(d)


def encode(col: Column, value: Any) -> Any:
    """A wire value as stored in SQLite; raises ValueError when it does not fit the column."""
    if value is None:
        return None
    if col.enum is not None and not any(value == e and type(value) is type(e) or (
            type_ok(value, "number") and type_ok(e, "number") and value == e) for e in col.enum):
        raise ValueError(f"{value!r} is not one of {col.enum}")
    if col.money_scale is not None:
        return money_to_units(value, col.money_scale)
    t = col.type
    if t == "json":
        return canonical_json(value)
    if t == "boolean":
        if not isinstance(value, bool):
            raise ValueError(f"expected a boolean, got {value!r}")
        return int(value)
    if t == "integer":
        if not type_ok(value, "integer"):
            raise ValueError(f"expected an integer, got {value!r}")
        return int(value)
    if t == "number":
        if not type_ok(value, "number"):
            raise ValueError(f"expected a number, got {value!r}")
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
    return value


def decode(col: Column, value: Any) -> Any:
    """A stored value back on the wire."""
    if value is None:
        return None
    if col.money_scale is not None:
        return units_to_money(int(value), col.money_scale)
    if col.type == "json":
        return json.loads(value)
    if col.type == "boolean":
        return bool(value)
    return value


def diff(before: Mapping[str, list[dict[str, Any]]], after: Mapping[str, list[dict[str, Any]]],
         keys: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """Per table: `inserted` rows, `updated` [{key, before, after}] and `deleted` keys between two snapshots.
    `keys` maps table -> key column. Tables without changes are left out."""
    out: dict[str, dict[str, Any]] = {}
    for table in sorted(set(before) | set(after)):
        k = keys[table]
        b = {canonical_json(r[k]): r for r in before.get(table, [])}
        a = {canonical_json(r[k]): r for r in after.get(table, [])}
        inserted = [a[x] for x in a if x not in b]
        deleted = [b[x][k] for x in b if x not in a]
        updated = [{"key": a[x][k], "before": b[x], "after": a[x]} for x in a
                   if x in b and canonical_json(a[x]) != canonical_json(b[x])]
        if inserted or deleted or updated:
            out[table] = {"inserted": inserted, "updated": updated, "deleted": deleted}
    return out


class Session:
    """One simulated world for one toolset: a SQLite database, a gateway and a seeded generator."""

    def __init__(self, toolset: Toolset, seed: int = 0, path: str | Path | None = None,
                 faults: FaultConfig | None = None, simulator: Simulator | None = None):
        self.toolset = toolset
        self.seed = seed
        self.gateway = Gateway(toolset)
        self.faults = FaultInjector(faults)
        self.simulator = simulator
        self.state = toolset.state_schema
        self.tables: dict[str, Table] = {t.name: t for t in self.state.tables} if self.state else {}
        self._lock = threading.Lock()
        self._alock: Any = None
        self._open = False
        self._history: list[dict[str, Any]] = []
        self._validators = {t.name: schema_validator(t.output_schema, toolset.lenient_dates) for t in toolset.tools}
        self._prop_validators: dict[tuple[str, str], Any] = {}
        self.path = ":memory:" if path is None else str(path)
        self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA foreign_keys = OFF")
        exists = self._conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='_clock'").fetchone() is not None
        if not exists:
            self._create()
        stored = self._conn.execute("SELECT value FROM _session WHERE key = 'spec_hash'").fetchone()
        if stored is None or stored[0] != toolset.spec_hash():
            self._conn.close()
            raise ValueError(f"{self.path} holds a session of another toolset (or version) than {toolset.id}")
        self._calls = (self._conn.execute("SELECT COALESCE(MAX(call) + 1, 0) FROM _changes").fetchone()[0])
        self._scope = f"{toolset.id}@{toolset.version}#{toolset.seed}"

    # ------------------------------------------------------------------------------------------ setup

    def _create(self) -> None:
        c = self._conn
        c.execute("BEGIN")
        c.execute("CREATE TABLE _counters (tbl TEXT PRIMARY KEY, value INTEGER NOT NULL)")
        c.execute("CREATE TABLE _clock (id INTEGER PRIMARY KEY CHECK (id = 0), tick INTEGER NOT NULL)")
        c.execute("CREATE TABLE _changes (seq INTEGER PRIMARY KEY, call INTEGER NOT NULL, tick INTEGER NOT NULL, "
                  "tbl TEXT NOT NULL, pk TEXT NOT NULL, op TEXT NOT NULL, before TEXT, after TEXT)")
        c.execute("INSERT INTO _clock (id, tick) VALUES (0, 0)")
        c.execute("CREATE TABLE _session (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        c.execute("INSERT INTO _session (key, value) VALUES ('spec_hash', ?), ('toolset', ?)",
                  (self.toolset.spec_hash(), self.toolset.id))
        for t in self.tables.values():
            cols = []
            for name, col in t.columns.items():
                sql_type = "INTEGER" if col.money_scale is not None else _SQL_TYPE[col.type]
                null = " NOT NULL" if (name == t.key or not col.nullable) else ""
                pk = " PRIMARY KEY" if name == t.key else ""
                cols.append(f"{_q(name)} {sql_type}{null}{pk}")
            for group in t.unique:
                cols.append(f"UNIQUE ({', '.join(_q(g) for g in group)})")
            c.execute(f"CREATE TABLE {_q(t.name)} ({', '.join(cols)})")
            for row in t.seed_rows:
                self._insert(t, {k: row.get(k, t.columns[k].default) for k in t.columns})
            c.execute("INSERT INTO _counters (tbl, value) VALUES (?, ?)", (t.name, self._initial_counter(t)))
        c.execute("COMMIT")

    @staticmethod
    def _initial_counter(t: Table) -> int:
        n = len(t.seed_rows)
        if t.id_prefix:
            for r in t.seed_rows:
                k = r.get(t.key)
                if isinstance(k, str) and k.startswith(t.id_prefix) and k[len(t.id_prefix):].isdigit():
                    n = max(n, int(k[len(t.id_prefix):]))
        return n

    # ------------------------------------------------------------------------------------------ rows

    def _insert(self, t: Table, row: Mapping[str, Any]) -> None:
        names = list(t.columns)
        values = [encode(t.columns[n], row.get(n)) for n in names]
        self._conn.execute(f"INSERT INTO {_q(t.name)} ({', '.join(map(_q, names))}) VALUES "
                           f"({', '.join('?' for _ in names)})", values)

    def _decode_row(self, t: Table, values: tuple[Any, ...]) -> dict[str, Any]:
        return {n: decode(t.columns[n], v) for n, v in zip(t.columns, values, strict=True)}

    def _get(self, t: Table, key: Any) -> dict[str, Any] | None:
        try:
            k = encode(t.columns[t.key], key)
        except ValueError:
            return None
        cur = self._conn.execute(f"SELECT {', '.join(map(_q, t.columns))} FROM {_q(t.name)} WHERE {_q(t.key)} = ?",
                                 (k,))
        got = cur.fetchone()
        return None if got is None else self._decode_row(t, got)

    def _all(self, t: Table) -> list[dict[str, Any]]:
        cur = self._conn.execute(f"SELECT {', '.join(map(_q, t.columns))} FROM {_q(t.name)} ORDER BY {_q(t.key)}")
        return [self._decode_row(t, r) for r in cur.fetchall()]

    # ------------------------------------------------------------------------------------------ clock

    @property
    def tick(self) -> int:
        """The clock's tick (committed writes so far)."""
        return int(self._conn.execute("SELECT tick FROM _clock WHERE id = 0").fetchone()[0])

    def now(self, tick: int | None = None) -> str:
        """Simulated time at `tick` (default: now), RFC 3339 UTC."""
        start_text = self.state.clock_start if self.state else "2025-01-01T09:00:00Z"
        step = self.state.clock_step_seconds if self.state else 60
        start = dt.datetime.fromisoformat(start_text.replace("Z", "+00:00").replace("z", "+00:00"))
        if start.tzinfo is None:
            start = start.replace(tzinfo=dt.timezone.utc)
        t = self.tick if tick is None else tick
        return (start + dt.timedelta(seconds=t * step)).astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

    def counters(self) -> dict[str, int]:
        """Id counters by table."""
        return dict(self._conn.execute("SELECT tbl, value FROM _counters ORDER BY tbl").fetchall())

    # ------------------------------------------------------------------------------------------ state views

    def snapshot(self) -> dict[str, list[dict[str, Any]]]:
        """Domain tables -> rows (wire values) ordered by key."""
        return {name: self._all(t) for name, t in self.tables.items()}

    def state_hash(self) -> str:
        """sha256 of the canonical JSON of the domain tables, rows by key."""
        return sha256_hex(self.snapshot())

    def diff(self, before: Mapping[str, list[dict[str, Any]]],
             after: Mapping[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
        """`diff(before, after)` with this toolset's table keys."""
        return diff(before, after, {n: t.key for n, t in self.tables.items()})

    def changes(self, since: int = 0) -> list[Change]:
        """Change-log entries with `seq > since`, in order."""
        cur = self._conn.execute("SELECT seq, call, tick, tbl, pk, op, before, after FROM _changes WHERE seq > ? "
                                 "ORDER BY seq", (since,))
        return [Change(seq=s, call=c, tick=tk, table=tb, key=json.loads(pk), op=op,
                       before=None if b is None else json.loads(b), after=None if a is None else json.loads(a))
                for s, c, tk, tb, pk, op, b, a in cur.fetchall()]

    def history(self, last: int = 5) -> list[dict[str, Any]]:
        """The last calls: tool, arguments and result or error (context for the LLM simulator)."""
        return copy.deepcopy(self._history[-last:]) if last > 0 else []

    def close(self) -> None:
        """Close the database."""
        self._conn.close()

    # ------------------------------------------------------------------------------------------ calls

    def call(self, tool_name: str, arguments: dict[str, Any]) -> CallResult:
        """Run one call deterministically and atomically. Never raises for caller errors."""
        with self._lock:
            if self._open:
                raise RuntimeError("an async call is in flight on this session; do not mix call() and acall()")
            idx = self._begin()
            try:
                got = self._execute(idx, tool_name, arguments)
                out = got if isinstance(got, CallResult) else self._finish(idx, got)
            except BaseException:
                self._rollback(idx)
                raise
            return self._end(idx, tool_name, arguments, out)

    async def acall(self, tool_name: str, arguments: dict[str, Any]) -> CallResult:
        """Like `call`, with the session's simulator (LLM mode) filling values and proposing patches.
        Raises `llm_sim.ReplayMiss` when replaying and the cache lacks the call (nothing is written)."""
        import anyio

        if self._alock is None:
            self._alock = anyio.Lock()
        async with self._alock:
            with self._lock:
                idx = self._begin()
                self._open = True
            try:
                with self._lock:
                    got = self._execute(idx, tool_name, arguments)
                if isinstance(got, CallResult) or self.simulator is None:
                    with self._lock:
                        out = got if isinstance(got, CallResult) else self._finish(idx, got)
                else:
                    out = await self._simulate(idx, got)
            except BaseException:
                with self._lock:
                    self._open = False
                    self._rollback(idx)
                raise
            with self._lock:
                self._open = False
                return self._end(idx, tool_name, arguments, out)

    def _begin(self) -> int:
        idx = self._calls
        self._calls += 1
        self._conn.execute(f"SAVEPOINT c{idx}")
        self._touched = False
        return idx

    def _rollback(self, idx: int) -> None:
        self._conn.execute(f"ROLLBACK TO c{idx}")
        self._conn.execute(f"RELEASE c{idx}")

    def _end(self, idx: int, tool_name: str, arguments: Any, out: CallResult) -> CallResult:
        if out.ok:
            self._conn.execute(f"RELEASE c{idx}")
        else:
            self._rollback(idx)
            out = out.model_copy(update={"tick": self.tick, "changes": []})
        self._history.append({"call": idx, "tool": tool_name, "arguments": copy.deepcopy(arguments),
                              "ok": out.ok, "result": out.result, "error": None if out.ok else out.message})
        return out

    def _failed(self, idx: int, f: Failure) -> CallResult:
        return CallResult(ok=False, status=f.status, code=f.code, message=f.message, call_index=idx,
                          tick=self.tick, stage=f.stage)

    def _bind(self, tool: Tool, args: dict[str, Any]) -> dict[str, Any]:
        """Rule environment for constraints and `when`: the bound row (or matched rows) and the clock."""
        env: dict[str, Any] = {"now": self.now()}
        eff = tool.effect
        if eff.table is not None and eff.table in self.tables:
            t = self.tables[eff.table]
            if eff.key is not None and args.get(eff.key) is not None:
                env["row"] = self._get(t, args[eff.key])
            if eff.kind in ("list", "search"):
                rows = self._match(tool, t, args)
                env["rows"], env["count"] = rows, len(rows)
        return env

    def _execute(self, idx: int, tool_name: str, arguments: Any) -> _Draft | CallResult:
        checked = self.gateway.check(tool_name, arguments, bind=self._bind)
        if isinstance(checked, Failure):
            return self._failed(idx, checked)
        tool, args = checked.tool, checked.arguments
        fault = self.faults.draw(idx, tool, comp.canonical_arguments(tool, args))
        if fault is not None:
            return self._failed(idx, fault)
        try:
            return self._effect(idx, checked)
        except _Fail as exc:
            return self._failed(idx, exc.failure)

    # ------------------------------------------------------------------------------------------ effects

    def _write_tick(self) -> int:
        """The tick this call's writes carry: advanced once, at the call's first write."""
        if not self._touched:
            self._conn.execute("UPDATE _clock SET tick = tick + 1 WHERE id = 0")
            self._touched = True
        return self.tick

    def _log(self, idx: int, t: Table, key: Any, op: ChangeOp, before: dict[str, Any] | None,
             after: dict[str, Any] | None) -> None:
        tick = self._write_tick()
        self._conn.execute("INSERT INTO _changes (call, tick, tbl, pk, op, before, after) VALUES (?, ?, ?, ?, ?, ?, ?)",
                           (idx, tick, t.name, canonical_json(key), op,
                            None if before is None else canonical_json(before),
                            None if after is None else canonical_json(after)))

    def _not_found(self, tool: Tool, t: Table, key: Any, what: str | None = None) -> Failure:
        err = _pick_error(tool, 404, [t.name, t.key, *(t.name.split("_"))], prefer=("not found", "not exist"))
        if err is not None:
            return spec_failure(err, "precondition")
        label = what or t.key
        return Failure(404, "not_found", f"Not found: no {t.name} row with {label} {key!r}. Check the identifier "
                       "(list or search the records first).", "precondition")

    def _conflict(self, tool: Tool, t: Table, message: str, words: tuple[str, ...], code: str = "conflict") -> Failure:
        err = _pick_error(tool, None, [t.name, t.key], prefer=words, statuses=(409, 400))
        if err is not None:
            return spec_failure(err, "precondition")
        return Failure(409, code, message, "precondition")

    def _encode_or_fail(self, t: Table, col: str, value: Any) -> Any:
        try:
            return encode(t.columns[col], value)
        except ValueError as exc:
            raise _Fail(Failure(400, "invalid_value", f"Invalid value for {col}: {exc}", "effect")) from None

    def _check_refs(self, tool: Tool, t: Table, values: Mapping[str, Any]) -> None:
        for col, v in values.items():
            ref = t.columns[col].ref
            if ref is None or v is None:
                continue
            rt, _ = ref.split(".")
            target = self.tables[rt]
            if self._get(target, v) is None:
                raise _Fail(self._not_found(tool, target, v, what=col))

    def _check_transitions(self, tool: Tool, t: Table, before: Mapping[str, Any], values: Mapping[str, Any]) -> None:
        for col, new in values.items():
            tr = t.columns[col].transitions
            old = before.get(col)
            if tr is None or new == old:
                continue
            allowed = tr.get(str(old), [])
            if new not in allowed:
                ok = ", ".join(allowed) if allowed else "none (final state)"
                raise _Fail(self._conflict(
                    tool, t, f"Invalid transition for {col}: {old!r} -> {new!r}. Allowed from {old!r}: {ok}",
                    ("transition",), code="invalid_transition"))

    def _assign(self, tool: Tool, env: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for col, expr in tool.effect.assign.items():
            try:
                out[col] = rules.evaluate(expr, env)
            except rules.RuleEvalError as exc:
                raise InternalError(f"{tool.name}: assign {col} = {expr!r} failed: {exc}") from exc
        return out

    def _effect(self, idx: int, checked: Checked) -> _Draft:
        tool, args = checked.tool, checked.arguments
        eff = tool.effect
        if eff.kind == "compute":
            try:
                outcome = comp.compute(tool, args, seed=self.seed, scope=self._scope, now=self.now())
            except rules.RuleEvalError as exc:
                raise _Fail(Failure(400, "calculation_error", f"Calculation error: {exc}. Check the input values.",
                                    "effect")) from None
            bound = set(outcome.result) - set(outcome.synthetic_keys)
            return _Draft(checked, outcome.result, bound, outcome.synthetic_keys, outcome.source)
        t = self.tables[eff.table]  # type: ignore[index]
        env: dict[str, Any] = {**args, "now": self.now()}
        row: dict[str, Any] | None = None
        rows: list[dict[str, Any]] = []
        if eff.kind == "read":
            row = self._get(t, args.get(eff.key))  # type: ignore[arg-type]
            if row is None:
                raise _Fail(self._not_found(tool, t, args.get(eff.key)))  # type: ignore[arg-type]
        elif eff.kind in ("list", "search"):
            rows = self._match(tool, t, args)
        elif eff.kind == "create":
            row = self._create_row(idx, tool, t, args, checked.given)
        elif eff.kind == "update":
            row = self._update_row(idx, tool, t, args, checked.given)
        elif eff.kind == "delete":
            row = self._delete_row(idx, tool, t, args)
        env.update({"now": self.now(), "row": row, "rows": rows[: eff.page_size], "count": len(rows)})
        result, bound, synthetic = self._outputs(tool, t, env, row, rows[: eff.page_size], len(rows))
        return _Draft(checked, result, bound, synthetic, "state" if not synthetic else "state+synthetic", row,
                      rows[: eff.page_size])

    def _match(self, tool: Tool, t: Table, args: Mapping[str, Any]) -> list[dict[str, Any]]:
        eff = tool.effect
        scored: list[tuple[int, int, dict[str, Any]]] = []
        for pos, r in enumerate(self._all(t)):
            score, match_given, ok = 0, False, True
            for f in eff.filters:
                a = args.get(f.arg)
                if a is None:
                    continue
                v = r.get(f.column)
                if f.op == "match":
                    match_given = True
                    if isinstance(a, str) and a.lower() in canonical_json(v).lower() if v is not None else False:
                        score += 1
                    continue
                if not _filter(f.op, v, a):
                    ok = False
                    break
            if ok and (not match_given or score > 0):
                scored.append((-score, pos, r))
        scored.sort(key=lambda x: (x[0], x[1]))
        return [r for _, _, r in scored]

    def _new_key(self, t: Table) -> str:
        value = int(self._conn.execute("SELECT value FROM _counters WHERE tbl = ?", (t.name,)).fetchone()[0])
        while True:
            value += 1
            key = f"{t.id_prefix}{value:0{t.id_width}d}"
            if self._get(t, key) is None:
                break
        self._conn.execute("UPDATE _counters SET value = ? WHERE tbl = ?", (value, t.name))
        return key

    def _create_row(self, idx: int, tool: Tool, t: Table, args: Mapping[str, Any],
                    given: frozenset[str]) -> dict[str, Any]:
        eff = tool.effect
        values: dict[str, Any] = {c: copy.deepcopy(col.default) for c, col in t.columns.items()}
        for a, c in eff.set.items():
            if a in args:
                values[c] = copy.deepcopy(args[a])
        if eff.key is not None:
            key = args.get(eff.key)
            if key is None:
                raise _Fail(Failure(400, "missing_key", f"Missing value for {eff.key}: it supplies the new "
                                    f"{t.name} key.", "precondition"))
            if self._get(t, key) is not None:
                raise _Fail(self._conflict(tool, t, f"Conflict: {t.name} {key!r} already exists. Use another "
                                           f"{t.key} or update the existing record.",
                                           ("already", "duplicate", "exist")))
        elif t.id_prefix is not None:
            key = self._new_key(t)
        else:
            raise InternalError(f"{tool.name}: create on {t.name} has neither a key argument nor an id_prefix")
        values[t.key] = key
        env = {**args, "now": self.now(), "row": values}
        self._write_tick()
        env["now"] = self.now()
        values.update(self._assign(tool, env))
        self._check_refs(tool, t, {c: values[c] for c in t.columns if c != t.key})
        missing = [c for c, col in t.columns.items() if not col.nullable and values.get(c) is None]
        if missing:
            raise _Fail(Failure(400, "missing_value", f"Missing value for {missing[0]}: the new {t.name} record "
                                "needs it.", "precondition"))
        encoded = {c: self._encode_or_fail(t, c, values.get(c)) for c in t.columns}
        try:
            self._conn.execute(f"INSERT INTO {_q(t.name)} ({', '.join(map(_q, t.columns))}) VALUES "
                               f"({', '.join('?' for _ in t.columns)})", [encoded[c] for c in t.columns])
        except sqlite3.IntegrityError:
            raise _Fail(self._conflict(tool, t, f"Conflict: a {t.name} record with these values already exists "
                                       f"(unique {t.unique}).", ("already", "duplicate", "exist"))) from None
        after = self._get(t, key)
        self._log(idx, t, key, "insert", None, after)
        return after  # type: ignore[return-value]

    def _update_row(self, idx: int, tool: Tool, t: Table, args: Mapping[str, Any],
                    given: frozenset[str]) -> dict[str, Any]:
        eff = tool.effect
        key = args.get(eff.key)  # type: ignore[arg-type]
        before = self._get(t, key)
        if before is None:
            raise _Fail(self._not_found(tool, t, key))
        if eff.set and not any(a in given for a in eff.set):
            return before
        values = {c: copy.deepcopy(args[a]) for a, c in eff.set.items() if a in given}
        env = {**args, "row": before, "now": self.now(tick=self.tick + 1)}
        values.update(self._assign(tool, env))
        return self._apply_update(idx, tool, t, key, before, values)

    def _apply_update(self, idx: int, tool: Tool, t: Table, key: Any, before: dict[str, Any],
                      values: Mapping[str, Any]) -> dict[str, Any]:
        self._check_transitions(tool, t, before, values)
        self._check_refs(tool, t, values)
        encoded = {c: self._encode_or_fail(t, c, v) for c, v in values.items()}
        if not encoded:
            return before
        sets = ", ".join(f"{_q(c)} = ?" for c in encoded)
        try:
            self._conn.execute(f"UPDATE {_q(t.name)} SET {sets} WHERE {_q(t.key)} = ?",
                               [*encoded.values(), encode(t.columns[t.key], key)])
        except sqlite3.IntegrityError:
            raise _Fail(self._conflict(tool, t, f"Conflict: the update would duplicate another {t.name} record.",
                                       ("already", "duplicate", "exist"))) from None
        after = self._get(t, key)
        if canonical_json(after) != canonical_json(before):
            self._log(idx, t, key, "update", before, after)
        return after  # type: ignore[return-value]

    def _delete_row(self, idx: int, tool: Tool, t: Table, args: Mapping[str, Any]) -> dict[str, Any]:
        eff = tool.effect
        key = args.get(eff.key)  # type: ignore[arg-type]
        before = self._get(t, key)
        if before is None:
            raise _Fail(self._not_found(tool, t, key))
        if eff.assign:
            values = self._assign(tool, {**args, "row": before, "now": self.now(tick=self.tick + 1)})
            return self._apply_update(idx, tool, t, key, before, values)
        for other in self.tables.values():
            for cname, col in other.columns.items():
                if col.ref == f"{t.name}.{t.key}" and self._conn.execute(
                        f"SELECT 1 FROM {_q(other.name)} WHERE {_q(cname)} = ? LIMIT 1",
                        (encode(t.columns[t.key], key),)).fetchone() is not None:
                    raise _Fail(self._conflict(tool, t, f"Conflict: {t.name} {key!r} is still referenced by "
                                               f"{other.name}.{cname}; remove those records first.",
                                               ("in use", "referenced", "conflict")))
        self._conn.execute(f"DELETE FROM {_q(t.name)} WHERE {_q(t.key)} = ?", (encode(t.columns[t.key], key),))
        self._log(idx, t, key, "delete", before, None)
        return before

    # ------------------------------------------------------------------------------------------ outputs

    def _prop_ok(self, tool: Tool, k: str, schema: dict[str, Any], v: Any) -> bool:
        key = (tool.name, k)
        if key not in self._prop_validators:
            self._prop_validators[key] = schema_validator(schema, self.toolset.lenient_dates)
        return bool(self._prop_validators[key].is_valid(v))

    def _outputs(self, tool: Tool, t: Table, env: Mapping[str, Any], row: dict[str, Any] | None,
                 rows: list[dict[str, Any]], count: int) -> tuple[dict[str, Any], set[str], list[str]]:
        props: dict[str, Any] = tool.output_schema.get("properties", {})
        fixed: dict[str, Any] = {}
        for k, expr in tool.effect.returns.items():
            try:
                fixed[k] = comp.fit(rules.evaluate(expr, env), props.get(k, {}))
            except rules.RuleEvalError as exc:
                raise InternalError(f"{tool.name}: returns {k} = {expr!r} failed: {exc}") from exc
        list_like = tool.effect.kind in ("list", "search")
        for k, s in props.items():
            if k in fixed:
                continue
            v: Any = None
            if not list_like and row is not None and row.get(k) is not None:
                v = comp.fit(row[k], s)
            elif list_like:
                v = _list_output(k, s, t, rows, count)
            if v is not None and self._prop_ok(tool, k, s, v):
                fixed[k] = v
        # synthesis sees the arguments only, never the rule environment (rows, clock)
        args_only = {a: env[a] for a in tool.input_schema.get("properties", {}) if a in env}
        result, made = comp.synthesize_output(tool, args_only, fixed, seed=self.seed, scope=self._scope,
                                              now=str(env.get("now")))
        return result, set(fixed), made

    def _finish(self, idx: int, draft: _Draft, source: str | None = None, extra_meta: dict[str, Any] | None = None
                ) -> CallResult:
        tool = draft.checked.tool
        errors = sorted(self._validators[tool.name].iter_errors(draft.result), key=lambda e: list(e.path))
        if errors:
            e = errors[0]
            raise InternalError(f"{tool.name}: output fails its schema at {list(e.absolute_path)}: {e.message}")
        changes = [c for c in self.changes(self._since(idx)) if c.call == idx]
        meta: dict[str, Any] = {"source": source or draft.source}
        if draft.synthetic:
            meta["synthetic"] = True
            meta["synthetic_keys"] = list(draft.synthetic)
        meta.update(extra_meta or {})
        return CallResult(ok=True, status=200, result=draft.result, call_index=idx, tick=self.tick,
                          changes=changes, meta=meta)

    def _since(self, idx: int) -> int:
        got = self._conn.execute("SELECT MIN(seq) FROM _changes WHERE call = ?", (idx,)).fetchone()[0]
        return 0 if got is None else int(got) - 1

    # ------------------------------------------------------------------------------------------ LLM mode

    async def _simulate(self, idx: int, draft: _Draft) -> CallResult:
        from .llm_sim import Patch, SimRequest

        tool = draft.checked.tool
        if not draft.synthetic:
            with self._lock:
                return self._finish(idx, draft)
        with self._lock:
            state_hash = self.state_hash()
            bound_rows = [draft.row] if draft.row is not None else list(draft.rows)
            request = SimRequest(
                toolset_id=self.toolset.id, tool=tool, arguments=comp.canonical_arguments(tool,
                                                                                          draft.checked.arguments),
                fixed={k: draft.result[k] for k in draft.bound if k in draft.result}, draft=draft.result,
                free_keys=list(draft.synthetic), rows=bound_rows, recent_calls=self.history(),
                state_hash=state_hash, now=self.now(), writable=self.writable(tool),
                lenient_dates=self.toolset.lenient_dates)

        bound_key = self.bound_key(tool, draft.checked.arguments, draft.row)

        def check(result: dict[str, Any], patches: list[Patch]) -> list[str]:
            with self._lock:
                return self.check_patches(tool, patches, bound_key) + self._result_problems(tool, result)

        assert self.simulator is not None
        response = await self.simulator.simulate(request, check)
        with self._lock:
            merged = {**response.result, **request.fixed}
            merged = {k: merged[k] for k in tool.output_schema.get("properties", {}) if k in merged}
            if response.patches:
                problems = self.check_patches(tool, response.patches, bound_key)
                if problems:
                    raise InternalError(f"{tool.name}: simulator returned refused patches: {problems}")
                for p in response.patches:
                    t = self.tables[p.table]
                    before = self._get(t, p.key)
                    assert before is not None
                    try:
                        self._apply_update(idx, tool, t, p.key, before, p.set)
                    except _Fail as exc:
                        return self._failed(idx, exc.failure)
            new = _Draft(draft.checked, merged, draft.bound,
                         [] if response.source in ("llm", "cache") else draft.synthetic, draft.source,
                         draft.row, draft.rows)
            meta = {"simulator": response.source, "tries": response.tries}
            if response.refusals:
                meta["refusals"] = response.refusals
            return self._finish(idx, new, source=response.source if response.source != "fallback" else None,
                                extra_meta=meta)

    def writable(self, tool: Tool) -> dict[str, list[str]]:
        """Columns an LLM patch may write for `tool`: the declared (`set`/`assign`) columns of its effect's
        table; nothing for read-only tools."""
        ann = tool.annotations
        eff = tool.effect
        if ann is None or ann.read_only or eff.table is None:
            return {}
        t = self.tables[eff.table]
        cols = [c for c in t.columns if c in set(eff.set.values()) | set(eff.assign)
                and c != t.key and not t.columns[c].volatile]
        return {eff.table: cols} if cols else {}

    def bound_key(self, tool: Tool, arguments: Mapping[str, Any], row: Mapping[str, Any] | None = None) -> Any:
        """Key of the one row a call is about: the row its effect bound (e.g. the created row), else its key
        argument; `None` when the call is about no single row."""
        t = self.tables.get(tool.effect.table) if tool.effect.table is not None else None
        if t is None:
            return None
        if row is not None and row.get(t.key) is not None:
            return row[t.key]
        return arguments.get(tool.effect.key) if tool.effect.key is not None else None

    def check_patches(self, tool: Tool, patches: list[Any], bound_key: Any = None) -> list[str]:
        """Why proposed patches would be refused (empty: all acceptable). A patch may only touch the row the
        call is bound to (`bound_key`, see `bound_key`): an LLM must not rewrite other records of the table."""
        problems: list[str] = []
        allowed = self.writable(tool)
        for p in patches:
            if p.table not in allowed:
                problems.append(f"table {p.table!r} is not writable by {tool.name}")
                continue
            t = self.tables[p.table]
            if bound_key is None or p.key != bound_key:
                target = f"only the row {bound_key!r} of this call" if bound_key is not None else "no row (the call " \
                    "is bound to none)"
                problems.append(f"patch of {p.table} row {p.key!r} refused: {tool.name} may change {target}")
                continue
            bad = [c for c in p.set if c not in allowed[p.table]]
            if bad:
                problems.append(f"columns {bad} of {p.table} are not declared writable (allowed: "
                                f"{allowed[p.table]})")
                continue
            before = self._get(t, p.key)
            if before is None:
                problems.append(f"no {p.table} row with key {p.key!r}")
                continue
            for c, v in p.set.items():
                try:
                    encode(t.columns[c], v)
                except ValueError as exc:
                    problems.append(f"{p.table}.{c}: {exc}")
                tr = t.columns[c].transitions
                if tr is not None and v != before.get(c) and v not in tr.get(str(before.get(c)), []):
                    problems.append(f"{p.table}.{c}: transition {before.get(c)!r} -> {v!r} is not allowed")
        return problems

    def _result_problems(self, tool: Tool, result: Any) -> list[str]:
        if not isinstance(result, dict):
            return ["result is not an object"]
        return [f"result{list(e.absolute_path)}: {e.message}" for e in
                sorted(self._validators[tool.name].iter_errors(result), key=lambda e: list(e.path))][:5]


def _filter(op: str, v: Any, a: Any) -> bool:
    if op == "eq":
        return bool(v == a) or (isinstance(v, str) and isinstance(a, str) and v.lower() == a.lower())
    if op == "ne":
        return bool(v != a)
    if op == "in":
        return isinstance(a, list) and v in a
    if op == "contains":
        return isinstance(v, list) and a in v
    if v is None:
        return False
    try:
        if op == "lt":
            return bool(v < a)
        if op == "le":
            return bool(v <= a)
        if op == "gt":
            return bool(v > a)
        return bool(v >= a)
    except TypeError:
        return False


def _list_output(k: str, s: Mapping[str, Any], t: Table, rows: list[dict[str, Any]], count: int) -> Any:
    typ = s.get("type")
    if typ == "integer" and k in ("count", "total", "total_count", "total_results", "num_results", "result_count"):
        return count
    if typ != "array":
        return None
    items = s.get("items") if isinstance(s.get("items"), dict) else {}
    if items.get("type") == "object":
        props = items.get("properties")
        return [{c: r.get(c) for c in props} if props else r for r in rows]
    if k in t.columns:
        return [r.get(k) for r in rows]
    singular = k[:-1] if k.endswith("s") else k
    if singular in t.columns:
        return [r.get(singular) for r in rows]
    if singular == t.key or k in (t.name, "results", "items", "records", "rows"):
        return [r.get(t.key) for r in rows]
    return None


def _pick_error(tool: Tool, status: int | None, words: list[str], prefer: tuple[str, ...],
                statuses: tuple[int, ...] = ()) -> ErrorSpec | None:
    """The spec's own error for an engine-detected condition: by status, preferring titles with `prefer` words
    and mentions of the table or key."""
    pool = [e for e in tool.errors if (e.status == status if status is not None else e.status in statuses)]
    if status is None:
        pool = [e for e in pool if any(p in e.title.lower() for p in prefer)]
    if not pool:
        return None
    forms = {w.lower().replace("_", " ") for w in words if w} | {w.lower() for w in words if w}
    forms |= {f[:-1] for f in forms if f.endswith("s")}

    def score(e: ErrorSpec) -> tuple[int, int]:
        low = f"{e.title} {e.guidance}".lower()
        return (sum(1 for p in prefer if p in e.title.lower()), sum(1 for f in forms if f and f in low))

    best = max(pool, key=score)
    return best
