"""The toolset spec format: pydantic models, JSON on disk and on the wire.

A `Toolset` holds metadata (field, sub-field, task, version, seed, provenance, tool budget, workflows,
dependencies), an optional `StateSchema` (tables with typed columns, keys, id prefixes, unique constraints
and seed rows) and its `Tool`s. A tool has JSON-Schema `input_schema`/`output_schema`, `errors`
(`ErrorSpec`: code, title, guidance, HTTP-like status, optional `when` rule), `constraints` (rules that
must hold), an `Effect` binding it to the state (read, list, search, create, update, delete or compute),
MCP `Annotations` derived from the effect, `examples`, `inferred` keywords and its `Source`.

Every model forbids unknown keys and round-trips: `Toolset.model_validate_json(t.model_dump_json())`
equals `t`, and `canonical_json(t)` is byte-stable (sorted keys, no spaces).

**Rules** (`rules.py`) are checked when a spec loads; a spec with a rule outside the language is invalid.

**Money.** A column with `money_scale: 2` stores integer cents; arguments, results, seed rows and examples
carry decimal amounts (`149.48`) and the engine scales them with `Decimal(str(x))`, ROUND_HALF_UP.

**Date-times.** Schemas use `format: "date-time"` (RFC 3339, e.g. `2025-03-15T10:00:00Z`). A toolset with
`lenient_dates: true` (every imported SynthTools toolset) also accepts a plain date `YYYY-MM-DD` there,
because the corpus' own examples pass dates such as `1985-03-15`. `format_checker(lenient_dates)` and
`schema_validator(schema, lenient_dates)` implement exactly this rule.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from typing import Any, Literal

import jsonschema
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from . import rules
from .names import NAME_RE

SPEC_FORMAT = "testbeds.synthtools.toolset/1"

EffectKind = Literal["read", "list", "search", "create", "update", "delete", "compute"]
ColumnType = Literal["string", "integer", "number", "boolean", "date-time", "json"]
Tier = Literal["simple", "medium", "complex"]
Confidence = Literal["high", "medium", "low"]
FilterOp = Literal["eq", "ne", "lt", "le", "gt", "ge", "in", "contains", "match"]

EFFECT_KINDS: tuple[str, ...] = ("read", "list", "search", "create", "update", "delete", "compute")
WRITE_KINDS = frozenset({"create", "update", "delete"})
ENV_NAMES = frozenset({"row", "rows", "now", "count"})
"""Names the engine binds when evaluating rules besides the arguments: `row` (the bound row, a mapping),
`rows` (the matched rows of a list/search), `now` (the simulated clock, RFC 3339), `count` (rows matched)."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=False)


def canonical_json(obj: Any) -> str:
    """Canonical JSON: sorted keys, compact separators, UTF-8 kept. Models are dumped in JSON mode first."""
    if isinstance(obj, BaseModel):
        obj = obj.model_dump(mode="json")
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def sha256_hex(obj: Any) -> str:
    """sha256 of `canonical_json(obj)`."""
    return hashlib.sha256(canonical_json(obj).encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------------------------- provenance


class Source(_Model):
    """Where one tool came from."""

    corpus: str = Field("synthtools", description="Corpus or generator name ('synthtools', 'generated', 'manual').")
    id: str = Field(description="Source id: for SynthTools the file stem `<field>_tool_spec_<N>__<Name>`.")
    path: str | None = Field(None, description="File path relative to the corpus root, when there is one.")
    title: str | None = Field(None, description="The title exactly as the source spelled it (SynthTools `tool_name`).")


class Provenance(_Model):
    """Where a toolset came from and how it was made."""

    origin: Literal["synthtools", "generated", "manual"] = Field(
        description="'synthtools': imported from the SynthTools corpus; 'generated': procedural generator; "
        "'manual': written by hand.")
    corpus: str | None = Field(None, description="Corpus name and version, e.g. 'namkoong-lab/SynthTools@64d4488'.")
    source_ids: list[str] = Field(default_factory=list, description="Source ids of the files it was built from.")
    generator: str | None = Field(None, description="Generator name and version for generated toolsets.")
    curated: bool = Field(False, description="True when effects/state were bound by hand (not mechanical import).")
    notes: list[str] = Field(default_factory=list, description="Import notes: what was dropped or could not parse.")


# ------------------------------------------------------------------------------------------------- state


class Column(_Model):
    """A typed column of a state table."""

    type: ColumnType = Field(description="string | integer | number | boolean | date-time | json (lists, objects).")
    description: str = Field("", description="What the column holds.")
    enum: list[Any] | None = Field(None, description="Allowed values, if closed.")
    ref: str | None = Field(None, description="Foreign key 'table.column' this column references.")
    money_scale: int | None = Field(
        None, ge=0, le=6, description="Decimal places of a money column; 2 -> stored as integer cents.")
    volatile: bool = Field(False, description="Set by the engine (clock, counters); excluded from task diffs.")
    nullable: bool = Field(True, description="Whether the column may be NULL.")
    default: Any = Field(None, description="Value on insert when nothing sets it (None: NULL).")
    transitions: dict[str, list[str]] | None = Field(
        None, description="State machine: allowed next values from each value; an update outside it is a 409.")

    @field_validator("ref")
    @classmethod
    def _ref_shape(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*", v):
            raise ValueError(f"ref must be 'table.column', got {v!r}")
        return v

    @model_validator(mode="after")
    def _money_is_numeric(self) -> Column:
        if self.money_scale is not None and self.type not in ("number", "integer"):
            raise ValueError("money_scale needs a number or integer column")
        return self


class Table(_Model):
    """A state table: its key, id scheme, uniqueness, columns (in order) and seed rows."""

    name: str = Field(description="Table name (lowercase identifier).")
    description: str = Field("", description="What the table holds.")
    key: str = Field(description="Primary-key column.")
    id_prefix: str | None = Field(
        None, description="Prefix of generated keys, e.g. 'RET-' -> 'RET-000004'; None: keys must be supplied.")
    id_width: int = Field(6, ge=1, le=12, description="Zero-padded digits of generated keys.")
    unique: list[list[str]] = Field(default_factory=list, description="Column lists that must be unique together.")
    columns: dict[str, Column] = Field(description="Columns by name, in order; must include `key`.")
    seed_rows: list[dict[str, Any]] = Field(
        default_factory=list, description="Initial rows, values as on the wire (money as decimal amounts).")
    parent: str | None = Field(
        None, description="For a child table split from a nested list: 'parent_table.column' it came from.")

    @field_validator("name")
    @classmethod
    def _name_shape(cls, v: str) -> str:
        if not re.fullmatch(r"[a-z][a-z0-9_]{0,62}", v):
            raise ValueError(f"table name must be a lowercase identifier, got {v!r}")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Table:
        cols = set(self.columns)
        for c in cols:
            if not re.fullmatch(r"[a-z][a-z0-9_]{0,62}", c):
                raise ValueError(f"{self.name}: column name must be a lowercase identifier, got {c!r}")
        if self.key not in cols:
            raise ValueError(f"{self.name}: key {self.key!r} is not a column")
        for group in self.unique:
            missing = [c for c in group if c not in cols]
            if not group or missing:
                raise ValueError(f"{self.name}: unique group {group} names unknown columns {missing}")
        seen: set[str] = set()
        for i, row in enumerate(self.seed_rows):
            extra = set(row) - cols
            if extra:
                raise ValueError(f"{self.name}: seed row {i} has unknown columns {sorted(extra)}")
            k = row.get(self.key)
            if k is None:
                raise ValueError(f"{self.name}: seed row {i} lacks key {self.key!r}")
            if canonical_json(k) in seen:
                raise ValueError(f"{self.name}: duplicate key {k!r} in seed rows")
            seen.add(canonical_json(k))
        return self


class StateSchema(_Model):
    """The toolset's world: tables and the simulated clock."""

    tables: list[Table] = Field(default_factory=list, description="Tables, parents before children.")
    clock_start: str = Field("2025-01-01T09:00:00Z", description="Simulated time at tick 0 (RFC 3339, UTC).")
    clock_step_seconds: int = Field(60, ge=1, description="Seconds the clock advances per committed write.")

    @model_validator(mode="after")
    def _refs_resolve(self) -> StateSchema:
        names = [t.name for t in self.tables]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate table names in {names}")
        by = {t.name: t for t in self.tables}
        for t in self.tables:
            for cname, col in t.columns.items():
                if col.ref is not None:
                    rt, rc = col.ref.split(".")
                    if rt not in by or rc not in by[rt].columns:
                        raise ValueError(f"{t.name}.{cname}: ref {col.ref!r} does not resolve")
        _parse_datetime(self.clock_start, lenient=False)
        return self

    def table(self, name: str) -> Table:
        """The table called `name` (KeyError if absent)."""
        for t in self.tables:
            if t.name == name:
                return t
        raise KeyError(name)


# ----------------------------------------------------------------------------------------------- tools


class ErrorSpec(_Model):
    """One error a tool can return."""

    code: str = Field(description="Stable code: slug of the title, unique within the tool.")
    title: str = Field(description="Short title, e.g. 'Return request not found'.")
    guidance: str = Field("", description="The remedy shown to the caller, e.g. 'Check the return_request_id.'")
    status: int = Field(description="HTTP-like status: 400 validation, 401, 403, 404, 409, 429, 500.")
    when: str | None = Field(
        None, description="Rule (rule language): the error fires when it evaluates true; None: fired by the "
        "engine's own checks (not found, conflict) or never deterministically.")

    @field_validator("when")
    @classmethod
    def _rule(cls, v: str | None) -> str | None:
        return None if v is None else rules.check(v)

    @field_validator("status")
    @classmethod
    def _status(cls, v: int) -> int:
        if not 400 <= v <= 599:
            raise ValueError(f"error status must be 4xx or 5xx, got {v}")
        return v


class Constraint(_Model):
    """A cross-field rule that must hold for a call to pass (checked after schema checks)."""

    rule: str = Field(description="Rule-language expression over arguments (and `row` when bound) that must be true.")
    error: str | None = Field(None, description="Code of the tool error returned when it fails; None: generic 400.")
    description: str = Field("", description="The rule in words.")

    @field_validator("rule")
    @classmethod
    def _rule(cls, v: str) -> str:
        return rules.check(v)


class Filter(_Model):
    """One filter of a list/search effect: compare argument `arg` with column `column` (skipped when absent)."""

    arg: str = Field(description="Argument name.")
    column: str = Field(description="Column of the effect's table.")
    op: FilterOp = Field("eq", description="eq ne lt le gt ge: column OP argument; in: column in the argument list; "
                         "contains: column (json list) contains the argument; match: case-insensitive "
                         "substring text match (search).")


class Effect(_Model):
    """How a tool touches the state.

    `read`: fetch the row of `table` whose key equals argument `key` (missing -> 404).
    `list`/`search`: rows of `table` passing `filters` (absent arguments skip their filter), ordered by
    (match score,) key, at most `page_size` rows.
    `create`: insert a row; `set` maps arguments to columns, `assign` computes columns; the key comes from
    the table counter (`id_prefix`) unless `key` names an argument supplying it; duplicate -> 409.
    `update`: write `set`/`assign` columns of the row keyed by argument `key` (missing -> 404; a column's
    `transitions` are enforced -> 409); with none of the set-arguments given it behaves as a read.
    `delete`: delete the row keyed by `key`, or when `assign` is non-empty write those columns instead
    (status flag).
    `compute`: touch no state; outputs come from an example with equal arguments, else `formula`, else
    deterministic synthesis.
    `returns` maps output keys to rule expressions over arguments, `row` (the row after the call),
    `rows` (matched rows), `count` and `now`; output keys it omits are synthesised.
    """

    kind: EffectKind = Field("compute", description="read | list | search | create | update | delete | compute.")
    table: str | None = Field(None, description="Table the effect binds (required except for compute).")
    key: str | None = Field(None, description="Argument whose value is the row key (read/update/delete; "
                            "create with a caller-supplied key).")
    set: dict[str, str] = Field(default_factory=dict, description="Argument -> column written (create/update).")
    assign: dict[str, str] = Field(default_factory=dict, description="Column -> rule expression written "
                                   "(create/update/delete), e.g. {'status': \"'cancelled'\", 'updated_at': 'now'}.")
    filters: list[Filter] = Field(default_factory=list, description="list/search filters.")
    page_size: int = Field(20, ge=1, le=1000, description="Maximum rows a list/search returns.")
    returns: dict[str, str] = Field(default_factory=dict, description="Output key -> rule expression.")
    formula: dict[str, str] | None = Field(
        None, description="compute: output key -> rule expression over the arguments (optional).")

    @field_validator("assign", "returns")
    @classmethod
    def _rules(cls, v: dict[str, str]) -> dict[str, str]:
        for expr in v.values():
            rules.check(expr)
        return v

    @field_validator("formula")
    @classmethod
    def _formula(cls, v: dict[str, str] | None) -> dict[str, str] | None:
        for expr in (v or {}).values():
            rules.check(expr)
        return v

    @model_validator(mode="after")
    def _shape(self) -> Effect:
        if self.kind == "compute":
            if self.table is not None or self.set or self.assign or self.filters:
                raise ValueError("a compute effect binds no table")
        else:
            if self.table is None:
                raise ValueError(f"a {self.kind} effect needs a table")
            if self.formula is not None:
                raise ValueError("formula is for compute effects only")
        if self.kind in ("read", "update", "delete") and self.key is None:
            raise ValueError(f"a {self.kind} effect needs `key` (the argument holding the row key)")
        if self.kind not in ("list", "search") and self.filters:
            raise ValueError("filters are for list/search effects")
        if self.kind not in ("create", "update") and self.set:
            raise ValueError("set is for create/update effects")
        return self


class Annotations(_Model):
    """MCP tool annotations (hints), derived from the effect unless given."""

    read_only: bool = Field(description="readOnlyHint: the tool changes no state.")
    destructive: bool = Field(description="destructiveHint: the tool may overwrite or delete existing data.")
    idempotent: bool = Field(
        description="idempotentHint: repeating the call with equal arguments changes nothing more.")
    open_world: bool = Field(False, description="openWorldHint: always false, the world is the simulated state.")

    @classmethod
    def for_effect(cls, kind: str) -> Annotations:
        """read/list/search/compute: read-only; create: additive, not idempotent; update: destructive,
        idempotent; delete: destructive, idempotent."""
        if kind in ("read", "list", "search", "compute"):
            return cls(read_only=True, destructive=False, idempotent=True)
        if kind == "create":
            return cls(read_only=False, destructive=False, idempotent=False)
        return cls(read_only=False, destructive=True, idempotent=True)


class Example(_Model):
    """A call with its expected result (SynthTools tool_meta, curated solutions or generated)."""

    arguments: dict[str, Any] = Field(description="Call arguments, as sent.")
    result: dict[str, Any] | None = Field(None, description="Structured result of a successful call.")
    error: str | None = Field(None, description="Error code when the call is expected to fail.")
    source: str = Field("", description="Where it came from, e.g. 'tool_meta/<file>'.")


class Inferred(_Model):
    """A schema keyword that is not structured in the source but was read from its prose."""

    path: str = Field(description="JSON Pointer into input_schema (or output_schema when it starts with "
                      "'output:') of the schema object that got the keyword, e.g. '/properties/status'.")
    keyword: str = Field(description="The keyword added: enum, minimum, maximum, exclusiveMinimum, ...")
    value: Any = Field(description="The keyword's value.")
    source: str = Field(description="Where it was read: 'error:<i>' (0-based error index), 'description', 'usage'.")
    confidence: Confidence = Field(description="high: an explicit 'one of [...]' list or bound; medium: a value "
                                   "list in the description only; low: weaker cues.")


class Tool(_Model):
    """One tool of a toolset."""

    name: str = Field(description="MCP-safe unique name within the toolset, ^[a-z][a-z0-9_]{0,47}$.")
    title: str = Field(description="Human title, e.g. 'Return Status Tracker'.")
    description: str = Field("", description="What the tool does.")
    usage: str = Field("", description="How to call it (SynthTools 'usage').")
    input_schema: dict[str, Any] = Field(description="JSON Schema (2020-12) object of the arguments.")
    output_schema: dict[str, Any] = Field(description="JSON Schema (2020-12) object of a successful result.")
    errors: list[ErrorSpec] = Field(default_factory=list, description="Errors the tool can return, in spec order.")
    constraints: list[Constraint] = Field(default_factory=list, description="Cross-field rules that must hold.")
    effect: Effect = Field(default_factory=Effect, description="State binding; compute when unbound.")
    annotations: Annotations | None = Field(None, description="MCP hints; derived from the effect when omitted.")
    examples: list[Example] = Field(default_factory=list, description="Example calls with results.")
    inferred: list[Inferred] = Field(default_factory=list, description="Keywords inferred from prose.")
    source: Source | None = Field(None, description="Origin of the tool.")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not NAME_RE.match(v) or "__" in v or v.endswith("_"):
            raise ValueError(f"tool name {v!r} is not MCP-safe (^[a-z][a-z0-9_]{{0,47}}$, no '__')")
        return v

    @field_validator("input_schema", "output_schema")
    @classmethod
    def _object_schema(cls, v: dict[str, Any]) -> dict[str, Any]:
        if v.get("type") != "object":
            raise ValueError("input and output schemas are JSON Schema objects (type: object)")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Tool:
        if self.annotations is None:
            self.annotations = Annotations.for_effect(self.effect.kind)
        codes = [e.code for e in self.errors]
        if len(set(codes)) != len(codes):
            raise ValueError(f"{self.name}: duplicate error codes")
        args = set(self.input_schema.get("properties", {}))
        outs = set(self.output_schema.get("properties", {}))
        allowed = args | ENV_NAMES
        for c in self.constraints:
            _names_known(self.name, c.rule, allowed)
            if c.error is not None and c.error not in codes:
                raise ValueError(f"{self.name}: constraint names unknown error {c.error!r}")
        for e in self.errors:
            if e.when is not None:
                _names_known(self.name, e.when, allowed)
        eff = self.effect
        for arg in [eff.key, *eff.set, *(f.arg for f in eff.filters)]:
            if arg is not None and arg not in args:
                raise ValueError(f"{self.name}: effect names unknown argument {arg!r}")
        for k, expr in {**eff.returns, **(eff.formula or {})}.items():
            if k not in outs:
                raise ValueError(f"{self.name}: effect returns unknown output key {k!r}")
            _names_known(self.name, expr, allowed | outs)
        for expr in eff.assign.values():
            _names_known(self.name, expr, allowed)
        return self

    def error(self, code: str) -> ErrorSpec:
        """The error with `code` (KeyError if absent)."""
        for e in self.errors:
            if e.code == code:
                return e
        raise KeyError(code)


def _names_known(tool: str, expr: str, allowed: set[str] | frozenset[str]) -> None:
    unknown = rules.parse(expr).names - allowed
    if unknown:
        raise ValueError(f"{tool}: rule {expr!r} uses unknown names {sorted(unknown)}")


class Workflow(_Model):
    """A multi-tool plan (SynthTools STEP 4), in order."""

    tier: Tier = Field(description="simple | medium | complex.")
    label: str = Field("", description="The plan's label as written.")
    steps: list[str] = Field(default_factory=list, description="Step titles as written (may merge steps 'A + B').")
    tools: list[str] = Field(default_factory=list, description="Tool names the steps resolved to, in order.")
    resolved: bool = Field(False, description="True when every step resolved to exactly one tool of the toolset.")


class Dependency(_Model):
    """What a tool consumes and produces (SynthTools STEP 3)."""

    title: str = Field(description="Tool title as written in the plan.")
    tool: str | None = Field(None, description="The tool's name when the title resolves; None otherwise.")
    consumes: list[str] = Field(default_factory=list, description="Inputs it needs (free text items).")
    produces: list[str] = Field(default_factory=list, description="Outputs it yields (free text items).")


class Toolset(_Model):
    """A toolset: metadata, optional state schema and tools."""

    spec_format: Literal["testbeds.synthtools.toolset/1"] = Field(SPEC_FORMAT, description="Format tag.")
    id: str = Field(description="Toolset id; imported: '<field>.<N>' (e.g. 'ecommerce_and_retail.43').")
    title: str = Field("", description="Short human title.")
    field: str = Field(description="Domain field, e.g. 'ecommerce_and_retail'.")
    sub_field: str = Field("", description="Sub-field.")
    task: str = Field("", description="The task the toolset serves.")
    description: str = Field("", description="Longer description.")
    version: str = Field("1.0.0", description="Version of this toolset's content.")
    seed: int = Field(0, description="Seed for anything the engine synthesises for this toolset.")
    provenance: Provenance = Field(description="Where it came from.")
    difficulty: str | None = Field(None, description="Declared difficulty (easy | medium | hard) if any.")
    tool_budget: int | None = Field(None, description="Declared tool budget (may differ from len(tools)).")
    lenient_dates: bool = Field(False, description="Date-time inputs also accept YYYY-MM-DD (imported specs).")
    workflows: list[Workflow] = Field(default_factory=list, description="Plans, by tier.")
    dependencies: list[Dependency] = Field(default_factory=list, description="consumes -> produces per tool.")
    state_schema: StateSchema | None = Field(None, description="State tables; None: stateless (all compute).")
    tools: list[Tool] = Field(description="The tools, in source order.")

    @model_validator(mode="after")
    def _consistent(self) -> Toolset:
        names = [t.name for t in self.tools]
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"{self.id}: duplicate tool names {dup}")
        tables = {t.name: t for t in self.state_schema.tables} if self.state_schema else {}
        for tool in self.tools:
            eff = tool.effect
            if eff.table is None:
                continue
            if eff.table not in tables:
                raise ValueError(f"{self.id}/{tool.name}: effect table {eff.table!r} is not in the state schema")
            cols = tables[eff.table].columns
            bad = [c for c in [*eff.set.values(), *eff.assign, *(f.column for f in eff.filters)] if c not in cols]
            if bad:
                raise ValueError(f"{self.id}/{tool.name}: effect names unknown columns {bad} of {eff.table}")
        return self

    def tool(self, name: str) -> Tool:
        """The tool called `name` (KeyError if absent)."""
        for t in self.tools:
            if t.name == name:
                return t
        raise KeyError(name)

    def spec_hash(self) -> str:
        """sha256 of the canonical JSON of the whole toolset (cache keys, provenance)."""
        return sha256_hex(self)


# --------------------------------------------------------------------------------------- schema checking

_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})?$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _parse_datetime(value: str, *, lenient: bool) -> dt.datetime:
    if _RFC3339.match(value):
        text = value.replace("z", "Z").replace("Z", "+00:00")
        return dt.datetime.fromisoformat(text.replace("t", "T"))
    if lenient and _DATE.match(value):
        return dt.datetime.fromisoformat(value)
    raise ValueError(f"not a date-time: {value!r}")


def parse_instant(value: str) -> dt.datetime | None:
    """The instant a date-time string (by the lenient rule) names, in UTC when it carries no offset; None when it
    is not one. Compares values written with different offsets or precision."""
    try:
        d = _parse_datetime(value, lenient=True)
    except ValueError:
        return None
    return d if d.tzinfo else d.replace(tzinfo=dt.timezone.utc)


def is_datetime(value: Any, *, lenient: bool = False) -> bool:
    """Our date-time rule: RFC 3339 date-time (a missing offset is read as UTC); with `lenient`, also
    `YYYY-MM-DD`. Non-strings pass (type checks are separate, as in JSON Schema)."""
    if not isinstance(value, str):
        return True
    try:
        _parse_datetime(value, lenient=lenient)
    except ValueError:
        return False
    return True


def format_checker(lenient_dates: bool = False) -> jsonschema.FormatChecker:
    """A jsonschema FormatChecker that knows only `date-time`, by our rule (see `is_datetime`)."""
    checker = jsonschema.FormatChecker(formats=())

    @checker.checks("date-time")
    def _dt(value: object) -> bool:
        return is_datetime(value, lenient=lenient_dates)

    return checker


def schema_validator(schema: dict[str, Any], lenient_dates: bool = False) -> jsonschema.Draft202012Validator:
    """A Draft 2020-12 validator for `schema` that enforces `date-time` by our rule."""
    return jsonschema.Draft202012Validator(schema, format_checker=format_checker(lenient_dates))
