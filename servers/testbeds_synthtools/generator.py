"""Procedural toolset generator: a `Toolset` for a domain field from the bundled ontology, no LLM needed.

`generate_toolset(field, seed)` picks a sub-field and task, 2-4 related entities of the field (closed under
references), and builds:

- a state schema: one table per entity (key `<entity>_id`, id prefix `PFX-`, refs, money columns with
  `money_scale: 2`, a status column with its state machine, `created_at`/`updated_at` set by the engine's
  clock) with 5-20 realistic seed rows whose references resolve;
- tools per entity: `create_`, `get_`, `update_`, `update_<e>_status` (409 on a transition outside the state
  machine), `delete_`, `list_` (filters), `search_` (text), `list_<parent>_<children>` per relation,
  `summarize_` (count/sum/avg/min/max over filtered rows: a list effect with `returns`), `estimate_<e>_total`
  (tax and discount on a stored amount: a read with `returns`), `check_<e>_transition` and `quote_<e>`
  (a pure compute tool with a money-exact formula);
- workflows per tier (simple 3 steps, medium 5, complex 8) whose every argument is stated or flows from an
  earlier step's output, and `dependencies` (consumes -> produces) per tool.

**Argument flow.** Each workflow's `steps[i]` is `"<tool> <canonical JSON of arguments>"`; an argument value
`{"$step": j, "$path": "items.0.patient_id"}` means "take it from step j's output at that dotted path"
(numeric segments index arrays); any other value is stated. `workflow_steps(workflow)` parses the steps into
`PlanStep`s and `resolve_arguments(step, outputs)` binds them against earlier results.

Everything is drawn from `random.Random` seeded by sha256 of `(field, seed)`: equal inputs give
byte-identical JSON (`canonical_json`) in any process.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from . import ontology
from .names import slug
from .ontology import Attribute, Entity, FieldSpec
from .spec import (
    Column,
    Constraint,
    Dependency,
    Effect,
    ErrorSpec,
    Filter,
    Provenance,
    Source,
    StateSchema,
    Table,
    Tool,
    Toolset,
    Workflow,
    canonical_json,
    sha256_hex,
)

GENERATOR = "testbeds.synthtools.generator/1"
CLOCK_START = "2025-06-01T09:00:00Z"
_BASE_DAY = dt.datetime(2025, 1, 6, tzinfo=dt.UTC)
_TAX_RATES = (0.05, 0.06, 0.07, 0.08, 0.1)

_FIRST = ("Ava", "Liam", "Maya", "Noah", "Zara", "Omar", "Lena", "Ivan", "Chloe", "Mateo", "Priya", "Hugo",
          "Amara", "Jonas", "Sofia", "Kenji", "Elena", "Tariq", "Nora", "Diego", "Freya", "Malik", "Ines", "Arjun",
          "Clara", "Yusuf", "Greta", "Felix", "Leila", "Oscar", "Hana", "Ruben")
_LAST = ("Okafor", "Lindqvist", "Moreau", "Tanaka", "Alvarez", "Kowalski", "Haddad", "Nguyen", "Fischer", "Rossi",
         "Mensah", "Petrov", "Silva", "Larsen", "Chen", "Dubois", "Novak", "Ibrahim", "Walsh", "Costa", "Sato",
         "Brennan", "Kaur", "Varga", "Oduya", "Bianchi", "Holm", "Reyes", "Schmidt", "Abbasi")
_CITIES = ("Lisbon", "Denver", "Osaka", "Nairobi", "Toronto", "Porto", "Austin", "Lyon", "Leeds", "Perth",
           "Seville", "Boston", "Krakow", "Dublin", "Madison", "Tampere", "Oakland", "Ghent", "Quebec", "Malmo")
_COUNTRIES = ("Portugal", "Canada", "Japan", "Kenya", "Germany", "Brazil", "Norway", "India", "Mexico", "Spain",
              "Australia", "Ireland", "Chile", "Poland", "Ghana", "Italy")
_COMPANY = ("Group", "Partners", "Labs", "Works", "Holdings", "Collective", "Systems", "Supply", "Services", "Co")
_SUFFIX = ("Prime", "Select", "Classic", "Express", "Plus", "Core", "One", "Max", "Studio", "North", "Summit",
           "Harbor")
_TEXT = ("{w} follow-up requested", "Review {w} details before sign-off", "Customer asked about {w} options",
         "Routine {w} check", "Escalated {w} issue from last week", "Update {w} records after audit",
         "Confirm {w} schedule with the team", "Priority {w} request", "Second opinion on {w}",
         "Quarterly {w} review")
_START = frozenset({"start", "from", "in", "opens", "starts", "begin", "borrowed", "period_start"})
_END = frozenset({"end", "to", "out", "closes", "ends", "due", "period_end"})


# -------------------------------------------------------------------------------------------- plan model


class PlanArg(BaseModel):
    """One argument of a workflow step: a stated `value`, or `from_step`/`path` into an earlier output."""

    model_config = ConfigDict(extra="forbid")

    value: Any = Field(None, description="The stated value (when `from_step` is None).")
    from_step: int | None = Field(None, description="0-based index of the earlier step whose output holds it.")
    path: str | None = Field(None, description="Dotted path into that output; numeric segments index arrays.")


class PlanStep(BaseModel):
    """One parsed workflow step: the tool and where each argument comes from."""

    model_config = ConfigDict(extra="forbid")

    tool: str
    arguments: dict[str, PlanArg]


def format_step(tool: str, arguments: Mapping[str, Any]) -> str:
    """The step string `<tool> <canonical JSON>`; derived values are `{"$step": j, "$path": "a.0.b"}`."""
    return f"{tool} {canonical_json(dict(arguments))}"


def parse_step(text: str) -> PlanStep:
    """Parse a step string written by `format_step` (ValueError if it is not one)."""
    tool, _, rest = text.partition(" ")
    try:
        raw = json.loads(rest)
    except json.JSONDecodeError as exc:
        raise ValueError(f"step {text!r} has no JSON arguments: {exc.msg}") from None
    if not tool or not isinstance(raw, dict):
        raise ValueError(f"step {text!r} is not '<tool> <json object>'")
    args: dict[str, PlanArg] = {}
    for k, v in raw.items():
        if isinstance(v, dict) and set(v) == {"$step", "$path"}:
            args[k] = PlanArg(from_step=int(v["$step"]), path=str(v["$path"]))
        else:
            args[k] = PlanArg(value=v)
    return PlanStep(tool=tool, arguments=args)


def workflow_steps(workflow: Workflow) -> list[PlanStep]:
    """The parsed steps of a generated workflow, in order."""
    return [parse_step(s) for s in workflow.steps]


def lookup(value: Any, path: str) -> Any:
    """The value at dotted `path` inside `value` (KeyError/IndexError when absent)."""
    for part in path.split(".") if path else []:
        if isinstance(value, list):
            value = value[int(part)]
        elif isinstance(value, Mapping):
            value = value[part]
        else:
            raise KeyError(f"cannot descend into {type(value).__name__} at {part!r}")
    return value


def resolve_arguments(step: PlanStep, outputs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Concrete arguments of `step` given the results of the steps before it (`outputs[j]` for step j)."""
    out: dict[str, Any] = {}
    for name, arg in step.arguments.items():
        if arg.from_step is None:
            out[name] = arg.value
        else:
            if not 0 <= arg.from_step < len(outputs):
                raise ValueError(f"{step.tool}.{name}: step {arg.from_step} has not run yet")
            out[name] = lookup(outputs[arg.from_step], arg.path or "")
    return out


class _From:
    """A derived argument while building a plan."""

    def __init__(self, step: int, path: str):
        self.step, self.path = step, path

    def encode(self) -> dict[str, Any]:
        return {"$step": self.step, "$path": self.path}


# --------------------------------------------------------------------------------------------- helpers


def _rng(*parts: Any) -> random.Random:
    return random.Random(int(sha256_hex(["generator", *parts])[:16], 16))


def _words(name: str) -> str:
    return name.replace("_", " ")


def _a(words: str) -> str:
    return ("an " if words[:1] in "aeiou" else "a ") + words


def _title(name: str) -> str:
    return " ".join(w.capitalize() for w in name.split("_"))


def _iso(d: dt.datetime) -> str:
    return d.strftime("%Y-%m-%dT%H:%M:%SZ")


def _column_type(a: Attribute) -> str:
    return {"money": "number", "int": "integer", "num": "number", "pct": "number", "date": "date-time",
            "datetime": "date-time", "bool": "boolean"}.get(a.kind, "string")


def _is_date(a: Attribute) -> bool:
    return a.kind in ("date", "datetime")


def _date_pairs(e: Entity) -> list[tuple[str, str]]:
    """(earlier, later) date attributes whose names say they are ordered (start/end, check_in/check_out...)."""
    dates = [a for a in e.attributes if _is_date(a)]
    pairs = []
    for i, a in enumerate(dates):
        for b in dates[i + 1:]:
            ta, tb = set(a.name.split("_")) | {a.name}, set(b.name.split("_")) | {b.name}
            if ta & _START and tb & _END and not a.optional and not b.optional:
                pairs.append((a.name, b.name))
    return pairs


class _Values:
    """Realistic, seeded attribute values for one field."""

    def __init__(self, spec: FieldSpec, rng: random.Random):
        self.spec, self.rng = spec, rng
        self.used: dict[tuple[str, str], set[Any]] = {}

    def person(self) -> str:
        return f"{self.rng.choice(_FIRST)} {self.rng.choice(_LAST)}"

    def word(self) -> str:
        return self.rng.choice(self.spec.vocabulary).capitalize()

    def value(self, e: Entity, a: Attribute, row: Mapping[str, Any], when: dt.datetime) -> Any:
        """One value of attribute `a` for a row of `e` (dates come from `when`, kept ascending per row)."""
        r = self.rng
        k = a.kind
        if k == "person":
            v: Any = self.person()
        elif k == "company":
            v = f"{self.word()} {r.choice(_COMPANY)}"
        elif k == "title":
            v = f"{self.word()} {r.choice(_SUFFIX)}"
        elif k == "text":
            v = r.choice(_TEXT).format(w=r.choice(self.spec.vocabulary))
            v = v[0].upper() + v[1:]
        elif k == "email":
            who = next((row[x.name] for x in e.attributes if x.kind in ("person", "company") and x.name in row),
                       None) or f"{e.name} {r.randint(1, 999)}"
            v = f"{slug(str(who), fallback='user').replace('_', '.')}@example.com"
        elif k == "phone":
            v = f"+1-555-{r.randint(100, 999):03d}-{r.randint(0, 9999):04d}"
        elif k == "code":
            v = f"{a.name[:3].upper()}-{r.randint(1000, 99999)}"
        elif k == "city":
            v = r.choice(_CITIES)
        elif k == "country":
            v = r.choice(_COUNTRIES)
        elif k == "url":
            v = f"https://example.com/{e.name}/{r.randint(1, 9999)}"
        elif k == "money":
            lo, hi = a.lo or 0.0, a.hi or 1000.0
            v = round(r.uniform(lo, hi), 2) if hi - lo < 100 else float(round(r.uniform(lo, hi) * 20) / 20)
            v = round(v, 2)
        elif k == "int":
            v = r.randint(int(a.lo or 0), int(a.hi or 100))
        elif k in ("num", "pct"):
            v = round(r.uniform(a.lo or 0.0, a.hi or 100.0), 1)
        elif k == "bool":
            v = r.random() < 0.5
        elif k == "enum":
            v = r.choice(a.enum)
        elif k == "status":
            v = r.choice(a.enum)
        elif k == "date":
            if "birth" in a.name:
                v = _iso(dt.datetime(r.randint(1945, 2012), r.randint(1, 12), r.randint(1, 28), tzinfo=dt.UTC))
            else:
                v = _iso(when.replace(hour=0, minute=0))
        elif k == "datetime":
            v = _iso(when.replace(hour=r.randint(8, 17), minute=r.choice((0, 15, 30, 45))))
        else:  # pragma: no cover - the ontology parser admits no other kind
            raise ValueError(f"unknown attribute kind {k!r}")
        if a.unique:
            seen = self.used.setdefault((e.name, a.name), set())
            base, n = v, 1
            while v in seen:
                n += 1
                v = f"{base}-{n}" if isinstance(base, str) else base + n
            seen.add(v)
        return v

    def row(self, e: Entity, refs: Mapping[str, list[str]], index: int, *, optional: bool = True) -> dict[str, Any]:
        """Attribute values of one row; refs from `refs[attr name]`; optional attributes sometimes null."""
        r = self.rng
        row: dict[str, Any] = {}
        when = _BASE_DAY + dt.timedelta(days=r.randint(0, 150))
        for a in e.attributes:
            if a.kind == "ref":
                choices = refs[a.name]
                row[a.name] = choices[index % len(choices)] if index >= 0 else choices[0]
                continue
            if a.optional and optional and r.random() < 0.25:
                row[a.name] = None
                continue
            row[a.name] = self.value(e, a, row, when)
            if _is_date(a) and "birth" not in a.name:
                when += dt.timedelta(days=r.randint(1, 45))
        return row


# ------------------------------------------------------------------------------------------ selection


def _closure(spec: FieldSpec, names: Sequence[str]) -> list[str]:
    out: list[str] = []
    todo = list(names)
    while todo:
        n = todo.pop()
        if n in out:
            continue
        out.append(n)
        todo.extend(a.ref for a in spec.entity(n).refs if a.ref)
    return [e.name for e in spec.entities if e.name in out]


def _select(spec: FieldSpec, rng: random.Random, want: int) -> list[Entity]:
    with_refs = [e.name for e in spec.entities if e.refs and len(_closure(spec, [e.name])) <= 4]
    chosen = _closure(spec, [rng.choice(with_refs)])
    while len(chosen) < want:
        options = []
        for e in spec.entities:
            if e.name in chosen:
                continue
            grown = _closure(spec, [*chosen, e.name])
            if len(grown) > max(want, 4):
                continue
            linked = any(a.ref in chosen for a in e.refs) or any(
                a.ref == e.name for c in chosen for a in spec.entity(c).refs)
            options.append((0 if linked else 1, e.name, grown))
        if not options:
            break
        best = min(o[0] for o in options)
        _, _, grown = rng.choice([o for o in options if o[0] == best])
        chosen = grown
    return [e for e in spec.entities if e.name in chosen]


# --------------------------------------------------------------------------------------------- tables


def _table(e: Entity, spec: FieldSpec, plural: Mapping[str, str]) -> Table:
    cols: dict[str, Column] = {e.key: Column(type="string", description=f"{_title(e.name)} id.", nullable=False)}
    unique: list[list[str]] = []
    for a in e.attributes:
        desc = _words(a.name).capitalize() + "."
        if a.kind == "ref":
            target = spec.entity(a.ref or "")
            cols[a.name] = Column(type="string", description=f"{_title(target.name)} this {_words(e.name)} "
                                  "belongs to.", ref=f"{plural[target.name]}.{target.key}", nullable=False)
        elif a.kind == "status":
            cols[a.name] = Column(type="string", description=f"Lifecycle state of the {_words(e.name)}.",
                                  enum=list(a.enum), nullable=False, default=a.enum[0],
                                  transitions={k: list(v) for k, v in (a.transitions or {}).items()})
        else:
            cols[a.name] = Column(type=_column_type(a), description=desc, nullable=a.optional,
                                  enum=list(a.enum) if a.kind == "enum" else None,
                                  money_scale=2 if a.kind == "money" else None)
        if a.unique:
            unique.append([a.name])
    cols["created_at"] = Column(type="date-time", description="When the row was created.", volatile=True)
    cols["updated_at"] = Column(type="date-time", description="When the row last changed.", volatile=True)
    return Table(name=plural[e.name], description=f"{_title(plural[e.name])} of the {spec.title} domain.",
                 key=e.key, id_prefix=f"{e.prefix}-", id_width=6, unique=unique, columns=cols)


def _seed_rows(entities: list[Entity], values: _Values, rng: random.Random) -> dict[str, list[dict[str, Any]]]:
    """Seed rows per entity: 5-20 each, row 0 in the initial state, refs into the parent's rows except its
    last one (so every parent table has a row nothing references, which a delete can remove)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for e in entities:
        n = rng.randint(5, 20)
        refs = {a.name: [r[spec_key(a)] for r in out[a.ref or ""][:-1]] for a in e.refs}
        rows = []
        for i in range(n):
            body = values.row(e, refs, rng.randrange(1_000_000))
            for a in e.attributes:
                if a.kind == "status" and i == 0:
                    body[a.name] = a.enum[0]
            created = dt.datetime(2025, 1, 2, 8, 0, tzinfo=dt.UTC) + dt.timedelta(hours=rng.randint(0, 3500))
            updated = created + dt.timedelta(hours=rng.randint(0, 48))
            rows.append({e.key: f"{e.prefix}-{i + 1:06d}", **body, "created_at": _iso(created),
                         "updated_at": _iso(min(updated, dt.datetime(2025, 5, 31, tzinfo=dt.UTC)))})
        out[e.name] = rows
    return out


def spec_key(a: Attribute) -> str:
    """The key column of the entity a ref attribute points at (`<entity>_id`)."""
    return f"{a.ref}_id"


# ---------------------------------------------------------------------------------------------- schemas


def _prop(a: Attribute, e: Entity, spec: FieldSpec, *, describe: str | None = None) -> dict[str, Any]:
    """Input schema of an argument that sets attribute `a`."""
    s: dict[str, Any] = {"type": _column_type(a) if _column_type(a) != "date-time" else "string"}
    if a.kind == "ref":
        target = spec.entity(a.ref or "")
        s["pattern"] = f"^{target.prefix}-[0-9]{{6}}$"
        s["description"] = describe or f"Id of the {_words(target.name)} (e.g. {target.prefix}-000001)."
        return s
    if _is_date(a):
        s["format"] = "date-time"
    if a.kind in ("enum", "status"):
        s["enum"] = list(a.enum)
    if a.kind == "money":
        s["minimum"] = 0
        s["maximum"] = float(a.hi or 1000) * 10
    elif a.kind == "int":
        s["minimum"], s["maximum"] = int(a.lo or 0), int(a.hi or 100)
    elif a.kind in ("num", "pct"):
        s["minimum"], s["maximum"] = a.lo or 0, a.hi or 100
    if a.kind in ("person", "company", "title", "text", "code"):
        s["minLength"] = 1
        s["maxLength"] = 200
    unit = " (currency amount, 2 decimals)" if a.kind == "money" else " (RFC 3339)" if _is_date(a) else ""
    s["description"] = describe or f"{_words(a.name).capitalize()} of the {_words(e.name)}{unit}."
    return s


def _out_prop(col: Column) -> dict[str, Any]:
    t = "string" if col.type == "date-time" else "array" if col.type == "json" else col.type
    s: dict[str, Any] = {"type": [t, "null"] if col.nullable else t}
    if col.type == "date-time":
        s["format"] = "date-time"
    if col.enum is not None:
        s["enum"] = [*col.enum, None] if col.nullable else list(col.enum)
    if col.description:
        s["description"] = col.description
    return s


def _obj(props: Mapping[str, Any], required: Sequence[str] | None = None) -> dict[str, Any]:
    return {"type": "object", "properties": dict(props),
            "required": list(props) if required is None else list(required), "additionalProperties": False}


def _row_schema(table: Table) -> dict[str, Any]:
    return _obj({c: _out_prop(col) for c, col in table.columns.items()})


def _list_output(table: Table, noun: str) -> dict[str, Any]:
    return _obj({"items": {"type": "array", "items": _row_schema(table),
                           "description": f"Matching {noun}, ordered by id."},
                 "count": {"type": "integer", "minimum": 0,
                           "description": "Number of matching rows (items holds the first page)."}})


# ------------------------------------------------------------------------------------------------ tools


class _Builder:
    """Builds the tools of one toolset, entity by entity."""

    def __init__(self, spec: FieldSpec, entities: list[Entity], tables: dict[str, Table], tax_rate: float):
        self.spec, self.entities, self.tables, self.tax_rate = spec, entities, tables, tax_rate
        self.selected = {e.name for e in entities}
        self.tools: list[Tool] = []
        self.priority: dict[str, int] = {}

    def add(self, tool: Tool, priority: int) -> None:
        self.tools.append(tool)
        self.priority[tool.name] = priority

    def source(self, name: str) -> Source:
        return Source(corpus="generated", id=f"{self.spec.name}/{name}", title=_title(name))

    @staticmethod
    def not_found(e: Entity, lookup_hint: str) -> ErrorSpec:
        return ErrorSpec(code=f"{e.name}_not_found", title=f"{_title(e.name)} not found", status=404,
                         guidance=f"No {_words(e.name)} has this {e.key}; {lookup_hint}")

    def hint(self, e: Entity) -> str:
        plural = self.tables[e.name].name
        return f"use list_{plural} or search_{plural} to find a valid id."

    def ref_errors(self, e: Entity) -> list[ErrorSpec]:
        out: list[ErrorSpec] = []
        for a in e.refs:
            target = self.spec.entity(a.ref or "")
            code = f"{a.name[:-3]}_not_found"
            if code not in {x.code for x in out}:
                out.append(ErrorSpec(code=code, title=f"{_title(a.name[:-3])} not found", status=404,
                                     guidance=f"{a.name} must name an existing {_words(target.name)}; "
                                     f"{self.hint(target)}"))
        return out

    def entity_tools(self, e: Entity, focus: bool) -> None:
        t = self.tables[e.name]
        plural, key = t.name, e.key
        noun, nouns = _words(e.name), _words(plural)
        row_schema = _row_schema(t)
        returns_row = {c: f"row.{c}" for c in t.columns}
        status = next((a for a in e.attributes if a.kind == "status"), None)
        money = next((a for a in e.attributes if a.kind == "money"), None)
        measure = money or next((a for a in e.attributes if a.kind in ("int", "num")), None)
        first_date = next((a for a in e.attributes if _is_date(a) and not a.optional), None)
        editable = [a for a in e.attributes if a.kind not in ("ref", "status") and not a.unique]
        key_prop = {"type": "string", "pattern": f"^{e.prefix}-[0-9]{{6}}$",
                    "description": f"Id of the {noun} (e.g. {e.prefix}-000001)."}
        nf = self.not_found(e, self.hint(e))
        core = 0 if focus else 1

        # create
        props = {a.name: _prop(a, e, self.spec) for a in e.attributes if a.kind != "status"}
        required = [a.name for a in e.attributes if a.kind != "status" and not a.optional]
        errors = [*self.ref_errors(e)]
        for a in e.attributes:
            if a.unique:
                errors.append(ErrorSpec(code=f"duplicate_{a.name}", title=f"Duplicate {_words(a.name)}", status=409,
                                        guidance=f"Another {noun} already has this {_words(a.name)}; use a "
                                        "different value or update the existing one."))
        constraints = []
        pairs = _date_pairs(e)
        if pairs:
            errors.append(ErrorSpec(code="invalid_date_range", title="Invalid date range", status=400,
                                    guidance=" and ".join(f"{b} must not be before {a}" for a, b in pairs) + "."))
            constraints = [Constraint(rule=f"le({a}, {b})", error="invalid_date_range",
                                      description=f"{b} is on or after {a}") for a, b in pairs]
        initial = f" It starts in status '{status.enum[0]}'." if status else ""
        self.add(Tool(
            name=f"create_{e.name}", title=f"Create {_title(e.name)}",
            description=f"Create a {noun} and return it with its new {key}.{initial}",
            usage=f"Pass the {noun}'s fields; required: {', '.join(required)}.",
            input_schema=_obj(props, required), output_schema=row_schema, errors=errors, constraints=constraints,
            effect=Effect(kind="create", table=plural, set={n: n for n in props},
                          assign={"created_at": "now", "updated_at": "now"}, returns=returns_row),
            source=self.source(f"create_{e.name}")), core)

        # read
        self.add(Tool(
            name=f"get_{e.name}", title=f"Get {_title(e.name)}", description=f"Fetch one {noun} by its id.",
            usage=f"Pass {key}.", input_schema=_obj({key: key_prop}), output_schema=row_schema, errors=[nf],
            effect=Effect(kind="read", table=plural, key=key, returns=returns_row),
            source=self.source(f"get_{e.name}")), 0)

        # update (fields)
        if editable:
            uprops = {key: key_prop, **{a.name: _prop(a, e, self.spec, describe=f"New {_words(a.name)}"
                                                      f"{' (currency amount)' if a.kind == 'money' else ''}.")
                                        for a in editable}}
            self.add(Tool(
                name=f"update_{e.name}", title=f"Update {_title(e.name)}",
                description=f"Change fields of a {noun}; fields not passed keep their values.",
                usage=f"Pass {key} and any of: {', '.join(a.name for a in editable)}.",
                input_schema=_obj(uprops, [key]), output_schema=row_schema, errors=[nf],
                effect=Effect(kind="update", table=plural, key=key, set={a.name: a.name for a in editable},
                              assign={"updated_at": "now"}, returns=returns_row),
                source=self.source(f"update_{e.name}")), core + 1)

        # status transition + transition check
        if status is not None:
            trans = status.transitions or {}
            moves = "; ".join(f"{s} -> {', '.join(n)}" for s, n in trans.items() if n)
            self.add(Tool(
                name=f"update_{e.name}_status", title=f"Update {_title(e.name)} Status",
                description=f"Move a {noun} to a new status. Allowed moves: {moves}.",
                usage=f"Pass {key} and the target status.",
                input_schema=_obj({key: key_prop, "status": {"type": "string", "enum": list(status.enum),
                                                             "description": "Target status."}}),
                output_schema=row_schema,
                errors=[nf, ErrorSpec(code="invalid_status_transition", title="Invalid status transition",
                                      status=409, guidance=f"Allowed moves: {moves}. Check the current status "
                                      f"with get_{e.name} or check_{e.name}_transition first.")],
                effect=Effect(kind="update", table=plural, key=key, set={"status": "status"},
                              assign={"updated_at": "now"}, returns=returns_row),
                source=self.source(f"update_{e.name}_status")), 0)
            allowed = "[]"
            for s in reversed(list(trans)):
                if trans[s]:
                    allowed = f"{list(trans[s])!r} if row.status == {s!r} else {allowed}"
            self.add(Tool(
                name=f"check_{e.name}_transition", title=f"Check {_title(e.name)} Transition",
                description=f"Tell whether a {noun} can move to a target status now, and list its allowed moves.",
                usage=f"Pass {key} and target_status.",
                input_schema=_obj({key: key_prop, "target_status": {"type": "string", "enum": list(status.enum),
                                                                    "description": "Status to check."}}),
                output_schema=_obj({
                    key: {"type": "string"}, "current_status": {"type": "string", "enum": list(status.enum)},
                    "target_status": {"type": "string", "enum": list(status.enum)},
                    "allowed": {"type": "boolean"},
                    "allowed_next": {"type": "array", "items": {"type": "string", "enum": list(status.enum)}}}),
                errors=[nf],
                effect=Effect(kind="read", table=plural, key=key, returns={
                    key: f"row.{key}", "current_status": "row.status", "target_status": "target_status",
                    "allowed": f"target_status in ({allowed})", "allowed_next": allowed}),
                source=self.source(f"check_{e.name}_transition")), 2)

        # delete
        in_use = [ErrorSpec(code=f"{e.name}_in_use", title=f"{_title(e.name)} in use", status=409,
                            guidance=f"Other records reference this {noun}; delete or reassign them first.")]
        referenced = any(a.ref == e.name for x in self.entities for a in x.refs)
        self.add(Tool(
            name=f"delete_{e.name}", title=f"Delete {_title(e.name)}", description=f"Delete a {noun} by id.",
            usage=f"Pass {key}.", input_schema=_obj({key: key_prop}),
            output_schema=_obj({key: {"type": "string"}, "deleted": {"type": "boolean"}}),
            errors=[nf, *(in_use if referenced else [])],
            effect=Effect(kind="delete", table=plural, key=key, returns={key: key, "deleted": "True"}),
            source=self.source(f"delete_{e.name}")), 3)

        # list with filters
        fprops: dict[str, Any] = {}
        filters: list[Filter] = []
        lcons: list[Constraint] = []
        lerrs: list[ErrorSpec] = []
        for a in e.attributes:
            if a.kind in ("ref", "enum", "status", "bool"):
                fprops[a.name] = _prop(a, e, self.spec, describe=f"Only {nouns} with this {_words(a.name)}.")
                filters.append(Filter(arg=a.name, column=a.name, op="eq"))
        if money is not None:
            lo, hi = f"min_{money.name}", f"max_{money.name}"
            fprops[lo] = {"type": "number", "minimum": 0, "description": f"Smallest {_words(money.name)}."}
            fprops[hi] = {"type": "number", "minimum": 0, "description": f"Largest {_words(money.name)}."}
            filters += [Filter(arg=lo, column=money.name, op="ge"), Filter(arg=hi, column=money.name, op="le")]
            lerrs.append(ErrorSpec(code="invalid_amount_range", title="Invalid amount range", status=400,
                                   guidance=f"{lo} must not exceed {hi}."))
            lcons.append(Constraint(rule=f"le({lo}, {hi})", error="invalid_amount_range",
                                    description=f"{lo} <= {hi}"))
        if first_date is not None:
            lo, hi = f"{first_date.name}_from", f"{first_date.name}_to"
            dname = _words(first_date.name)
            fprops[lo] = {"type": "string", "format": "date-time", "description": f"Earliest {dname}."}
            fprops[hi] = {"type": "string", "format": "date-time", "description": f"Latest {dname}."}
            filters += [Filter(arg=lo, column=first_date.name, op="ge"),
                        Filter(arg=hi, column=first_date.name, op="le")]
            lerrs.append(ErrorSpec(code="invalid_date_range", title="Invalid date range", status=400,
                                   guidance=f"{lo} must not be after {hi}."))
            lcons.append(Constraint(rule=f"le({lo}, {hi})", error="invalid_date_range", description=f"{lo} <= {hi}"))
        self.add(Tool(
            name=f"list_{plural}", title=f"List {_title(plural)}",
            description=f"List {nouns}, optionally filtered; at most 50 rows, ordered by id.",
            usage="All filters are optional and combine with AND.",
            input_schema=_obj(fprops, []), output_schema=_list_output(t, nouns), errors=lerrs, constraints=lcons,
            effect=Effect(kind="list", table=plural, filters=filters, page_size=50,
                          returns={"items": "rows", "count": "count"}),
            source=self.source(f"list_{plural}")), 0)

        # text search
        label = e.label
        if label is not None:
            sprops: dict[str, Any] = {"query": {"type": "string", "minLength": 1, "maxLength": 100,
                                                "description": f"Text to find in the {_words(label.name)} "
                                                "(case-insensitive substring)."}}
            sfilters = [Filter(arg="query", column=label.name, op="match")]
            if status is not None:
                sprops["status"] = _prop(status, e, self.spec, describe="Only rows in this status.")
                sfilters.append(Filter(arg="status", column="status", op="eq"))
            self.add(Tool(
                name=f"search_{plural}", title=f"Search {_title(plural)}",
                description=f"Find {nouns} whose {_words(label.name)} contains the query text.",
                usage="Pass query; at most 20 rows, best matches first.",
                input_schema=_obj(sprops, ["query"]), output_schema=_list_output(t, nouns),
                effect=Effect(kind="search", table=plural, filters=sfilters, page_size=20,
                              returns={"items": "rows", "count": "count"}),
                source=self.source(f"search_{plural}")), 0 if not focus else 1)

        # children of a parent
        for a in e.refs:
            if a.ref not in self.selected:
                continue
            target = self.spec.entity(a.ref or "")
            role = a.name[:-3]
            name = f"list_{role}_{plural}"
            cprops: dict[str, Any] = {a.name: _prop(a, e, self.spec)}
            cfilters = [Filter(arg=a.name, column=a.name, op="eq")]
            if status is not None:
                cprops["status"] = _prop(status, e, self.spec, describe="Only rows in this status.")
                cfilters.append(Filter(arg="status", column="status", op="eq"))
            self.add(Tool(
                name=name, title=f"List {_title(role)} {_title(plural)}",
                description=f"List the {nouns} of one {_words(target.name)}"
                            f"{' (as ' + _words(role) + ')' if role != target.name else ''}.",
                usage=f"Pass {a.name}; optionally a status.", input_schema=_obj(cprops, [a.name]),
                output_schema=_list_output(t, nouns),
                errors=[],
                effect=Effect(kind="list", table=plural, filters=cfilters, page_size=100,
                              returns={"items": "rows", "count": "count"}),
                source=self.source(name)), 1)

        # aggregate
        if measure is not None:
            m = measure.name
            aprops: dict[str, Any] = {}
            afilters: list[Filter] = []
            for a in e.attributes:
                if a.kind in ("ref", "status", "enum"):
                    aprops[a.name] = _prop(a, e, self.spec, describe=f"Only {nouns} with this {_words(a.name)}.")
                    afilters.append(Filter(arg=a.name, column=a.name, op="eq"))
            num = {"type": "number"}
            self.add(Tool(
                name=f"summarize_{plural}", title=f"Summarize {_title(plural)}",
                description=f"Count {nouns} and total, average, smallest and largest {_words(m)} over the rows "
                            "passing the filters (all rows when none).",
                usage="All filters are optional and combine with AND.",
                input_schema=_obj(aprops, []),
                output_schema=_obj({"count": {"type": "integer", "minimum": 0}, f"total_{m}": num,
                                    f"average_{m}": num, f"min_{m}": num, f"max_{m}": num}),
                effect=Effect(kind="list", table=plural, filters=afilters, page_size=1000, returns={
                    "count": "count", f"total_{m}": f"sum(rows.{m})",
                    f"average_{m}": f"round(sum(rows.{m}) / count, 2) if count > 0 else 0",
                    f"min_{m}": f"min(rows.{m}) if count > 0 else 0",
                    f"max_{m}": f"max(rows.{m}) if count > 0 else 0"}),
                source=self.source(f"summarize_{plural}")), 1)

        if money is not None:
            m = money.name
            rate = {"type": "number", "minimum": 0, "maximum": 0.5, "default": self.tax_rate,
                    "description": f"Tax rate as a fraction (default {self.tax_rate})."}
            disc = {"type": "number", "minimum": 0, "maximum": 100, "default": 0,
                    "description": "Discount in percent (default 0)."}
            money_out = {"type": "number"}
            base = f"row.{m}"
            d_expr = f"round({base} * discount_pct / 100, 2)"
            t_expr = f"round(({base} - {d_expr}) * tax_rate, 2)"
            self.add(Tool(
                name=f"estimate_{e.name}_total", title=f"Estimate {_title(e.name)} Total",
                description=f"Apply a discount and tax to a {noun}'s stored {_words(m)}; amounts round half up "
                            "to cents.",
                usage=f"Pass {key}; tax_rate and discount_pct are optional.",
                input_schema=_obj({key: key_prop, "tax_rate": rate, "discount_pct": disc}, [key]),
                output_schema=_obj({key: {"type": "string"}, "base_amount": money_out, "discount": money_out,
                                    "tax": money_out, "total": money_out}),
                errors=[nf],
                effect=Effect(kind="read", table=plural, key=key, returns={
                    key: f"row.{key}", "base_amount": base, "discount": d_expr, "tax": t_expr,
                    "total": f"{base} - {d_expr} + {t_expr}"}),
                source=self.source(f"estimate_{e.name}_total")), 1)
            hi = float(money.hi or 1000) * 10
            self.add(Tool(
                name=f"quote_{e.name}", title=f"Quote {_title(e.name)}",
                description=f"Price a prospective {noun}: unit {_words(m)} x quantity, less a percentage discount, "
                            "plus tax; every amount rounds half up to cents.",
                usage="Pass unit_amount; quantity, discount_pct and tax_rate are optional.",
                input_schema=_obj({
                    "unit_amount": {"type": "number", "minimum": 0, "maximum": hi,
                                    "description": f"{_words(m).capitalize()} per unit (currency amount)."},
                    "quantity": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 1,
                                 "description": "Number of units (default 1)."},
                    "discount_pct": disc, "tax_rate": rate}, ["unit_amount"]),
                output_schema=_obj({"subtotal": money_out, "discount": money_out, "tax": money_out,
                                    "total": money_out}),
                effect=Effect(kind="compute", formula={
                    "subtotal": "round(unit_amount * quantity, 2)",
                    "discount": "round(subtotal * discount_pct / 100, 2)",
                    "tax": "round((subtotal - discount) * tax_rate, 2)",
                    "total": "subtotal - discount + tax"}),
                source=self.source(f"quote_{e.name}")), 2)


# -------------------------------------------------------------------------------------------- workflows


class _Plans:
    """Builds executable workflows over the tools that exist, tracking the argument flow."""

    def __init__(self, spec: FieldSpec, entities: list[Entity], tables: dict[str, Table], tools: set[str],
                 values: _Values, rng: random.Random):
        self.spec, self.entities, self.tables, self.tools = spec, entities, tables, tools
        self.values, self.rng = values, rng
        self.by = {e.name: e for e in entities}

    def has(self, *names: str) -> bool:
        return all(n in self.tools for n in names)

    def new_row(self, e: Entity, parent_refs: Mapping[str, Any]) -> dict[str, Any]:
        """Stated arguments of a create: fresh values, refs to seed row 0 unless flowing from a step."""
        refs = {a.name: [self.tables[a.ref or ""].seed_rows[0][spec_key(a)]] for a in e.refs}
        row = self.values.row(e, refs, -1, optional=False)
        row.pop("status", None)
        row.update(parent_refs)
        return row

    @staticmethod
    def status_path(e: Entity) -> list[str]:
        """A path of two moves from the initial state when there is one (else one move)."""
        st = next(a for a in e.attributes if a.kind == "status")
        trans = st.transitions or {}
        first = trans[st.enum[0]]
        for s in first:
            if trans.get(s):
                return [s, trans[s][0]]
        return [first[0]]

    def edit(self, e: Entity, current: Mapping[str, Any]) -> tuple[str, Any] | None:
        """An (attribute, new value) an update can set, differing from the row's `current` value."""
        for a in e.attributes:
            if a.kind in ("money", "int", "num", "text", "enum", "title") and not a.unique:
                for _ in range(20):
                    v = self.values.value(e, a, {}, _BASE_DAY)
                    if v != current.get(a.name):
                        return a.name, v
        return None

    def build(self) -> list[Workflow]:
        focus = next(e for e in reversed(self.entities) if any(a.ref in self.by for a in e.refs))
        ref = next(a for a in focus.refs if a.ref in self.by)
        parent = self.by[ref.ref or ""]
        plans: list[tuple[str, str, list[tuple[str, dict[str, Any]]]]] = []
        for tier, label, fn in (
                ("simple", "find {ap} and add {af}", self.simple_find_and_create),
                ("simple", "advance {af}", self.simple_advance),
                ("simple", "price {af}", self.simple_price),
                ("medium", "register {ap} with a new {f}", self.medium_register),
                ("medium", "review and adjust {af}", self.medium_review),
                ("complex", "take a new {f} for an existing {p} through its lifecycle", self.complex_lifecycle),
                ("complex", "set up {ap} with two {fs} and tidy up", self.complex_setup)):
            steps = fn(focus, parent, ref)
            if steps is not None:
                text = label.format(p=_words(parent.name), f=_words(focus.name), fs=_words(focus.plural),
                                    ap=_a(_words(parent.name)), af=_a(_words(focus.name)))
                plans.append((tier, text, steps))
        out: list[Workflow] = []
        count: dict[str, int] = {}
        for tier, text, steps in plans:
            count[tier] = count.get(tier, 0) + 1
            encoded = [format_step(t, {k: v.encode() if isinstance(v, _From) else v for k, v in a.items()})
                       for t, a in steps]
            out.append(Workflow(tier=tier, label=f"{tier}-{count[tier]}: {text}", steps=encoded,  # type: ignore[arg-type]
                                tools=[t for t, _ in steps], resolved=True))
        return out

    # -- templates: each returns [(tool, arguments)] or None when a tool it needs is absent

    def simple_find_and_create(self, f: Entity, p: Entity, ref: Attribute) -> list[tuple[str, dict[str, Any]]] | None:
        tp = self.tables[p.name]
        if p.label is None or not self.has(f"search_{tp.name}", f"get_{p.name}", f"create_{f.name}"):
            return None
        label_value = str(tp.seed_rows[0][p.label.name])
        query = label_value.split()[0] if " " in label_value else label_value
        return [(f"search_{tp.name}", {"query": query}),
                (f"get_{p.name}", {p.key: _From(0, f"items.0.{p.key}")}),
                (f"create_{f.name}", self.new_row(f, {ref.name: _From(1, p.key)}))]

    def _status(self, e: Entity) -> bool:
        return any(a.kind == "status" for a in e.attributes)

    def simple_advance(self, f: Entity, p: Entity, ref: Attribute) -> list[tuple[str, dict[str, Any]]] | None:
        if not self._status(f) or not self.has(f"check_{f.name}_transition", f"update_{f.name}_status",
                                               f"get_{f.name}"):
            return None
        key = self.tables[f.name].seed_rows[0][f.key]
        target = self.status_path(f)[0]
        return [(f"check_{f.name}_transition", {f.key: key, "target_status": target}),
                (f"update_{f.name}_status", {f.key: _From(0, f.key), "status": _From(0, "target_status")}),
                (f"get_{f.name}", {f.key: _From(1, f.key)})]

    def simple_price(self, f: Entity, p: Entity, ref: Attribute) -> list[tuple[str, dict[str, Any]]] | None:
        money = next((a for a in f.attributes if a.kind == "money"), None)
        if money is None or not self.has(f"get_{f.name}", f"estimate_{f.name}_total", f"quote_{f.name}"):
            return None
        key = self.tables[f.name].seed_rows[-1][f.key]
        return [(f"get_{f.name}", {f.key: key}),
                (f"estimate_{f.name}_total", {f.key: _From(0, f.key), "discount_pct": 10}),
                (f"quote_{f.name}", {"unit_amount": _From(0, money.name), "quantity": 3})]

    def medium_register(self, f: Entity, p: Entity, ref: Attribute) -> list[tuple[str, dict[str, Any]]] | None:
        tf = self.tables[f.name]
        need = [f"create_{p.name}", f"create_{f.name}", f"list_{ref.name[:-3]}_{tf.name}", f"get_{f.name}"]
        if not self.has(*need):
            return None
        steps: list[tuple[str, dict[str, Any]]] = [
            (f"create_{p.name}", self.new_row(p, {})),
            (f"create_{f.name}", self.new_row(f, {ref.name: _From(0, p.key)}))]
        if self._status(f) and self.has(f"update_{f.name}_status"):
            steps.append((f"update_{f.name}_status", {f.key: _From(1, f.key), "status": self.status_path(f)[0]}))
        elif self.has(f"get_{p.name}"):
            steps.append((f"get_{p.name}", {p.key: _From(0, p.key)}))
        else:
            return None
        steps += [(f"list_{ref.name[:-3]}_{tf.name}", {ref.name: _From(0, p.key)}),
                  (f"get_{f.name}", {f.key: _From(1, f.key)})]
        return steps

    def medium_review(self, f: Entity, p: Entity, ref: Attribute) -> list[tuple[str, dict[str, Any]]] | None:
        tf = self.tables[f.name]
        edit = self.edit(f, tf.seed_rows[0])
        need = [f"list_{tf.name}", f"get_{f.name}", f"update_{f.name}", f"summarize_{tf.name}"]
        if edit is None or not self.has(*need):
            return None
        filt: dict[str, Any] = {}
        if self._status(f):
            filt = {"status": tf.seed_rows[0]["status"]}
        steps: list[tuple[str, dict[str, Any]]] = [
            (f"list_{tf.name}", filt),
            (f"get_{f.name}", {f.key: _From(0, f"items.0.{f.key}")}),
            (f"update_{f.name}", {f.key: _From(1, f.key), edit[0]: edit[1]})]
        if self.has(f"estimate_{f.name}_total"):
            steps.append((f"estimate_{f.name}_total", {f.key: _From(2, f.key)}))
        else:
            steps.append((f"get_{f.name}", {f.key: _From(2, f.key)}))
        steps.append((f"summarize_{tf.name}", dict(filt)))
        return steps

    def complex_lifecycle(self, f: Entity, p: Entity, ref: Attribute) -> list[tuple[str, dict[str, Any]]] | None:
        tp, tf = self.tables[p.name], self.tables[f.name]
        children = f"list_{ref.name[:-3]}_{tf.name}"
        if p.label is None or not self._status(f) or not self.has(
                f"search_{tp.name}", f"get_{p.name}", f"create_{f.name}", f"check_{f.name}_transition",
                f"update_{f.name}_status", children):
            return None
        label_value = str(tp.seed_rows[0][p.label.name])
        path = self.status_path(f)
        steps: list[tuple[str, dict[str, Any]]] = [
            (f"search_{tp.name}", {"query": label_value}),
            (f"get_{p.name}", {p.key: _From(0, f"items.0.{p.key}")}),
            (f"create_{f.name}", self.new_row(f, {ref.name: _From(1, p.key)})),
            (f"check_{f.name}_transition", {f.key: _From(2, f.key), "target_status": path[0]}),
            (f"update_{f.name}_status", {f.key: _From(2, f.key), "status": _From(3, "target_status")})]
        if len(path) > 1:
            steps.append((f"update_{f.name}_status", {f.key: _From(2, f.key), "status": path[1]}))
        else:
            steps.append((f"get_{f.name}", {f.key: _From(2, f.key)}))
        steps.append((children, {ref.name: _From(1, p.key)}))
        if self.has(f"summarize_{tf.name}"):
            steps.append((f"summarize_{tf.name}", {ref.name: _From(1, p.key)}))
        else:
            steps.append((f"get_{p.name}", {p.key: _From(1, p.key)}))
        return steps

    def complex_setup(self, f: Entity, p: Entity, ref: Attribute) -> list[tuple[str, dict[str, Any]]] | None:
        tf = self.tables[f.name]
        children = f"list_{ref.name[:-3]}_{tf.name}"
        created = self.new_row(p, {})
        edit = self.edit(p, created)
        need = [f"create_{p.name}", f"update_{p.name}", f"create_{f.name}", children, f"delete_{f.name}",
                f"get_{p.name}"]
        if edit is None or not self.has(*need):
            return None
        steps: list[tuple[str, dict[str, Any]]] = [
            (f"create_{p.name}", created),
            (f"update_{p.name}", {p.key: _From(0, p.key), edit[0]: edit[1]}),
            (f"create_{f.name}", self.new_row(f, {ref.name: _From(0, p.key)})),
            (f"create_{f.name}", self.new_row(f, {ref.name: _From(0, p.key)}))]
        if self._status(f) and self.has(f"update_{f.name}_status"):
            steps.append((f"update_{f.name}_status", {f.key: _From(3, f.key), "status": self.status_path(f)[0]}))
        else:
            steps.append((f"get_{f.name}", {f.key: _From(3, f.key)}))
        steps.append((children, {ref.name: _From(0, p.key)}))
        if self.has(f"summarize_{tf.name}"):
            steps.append((f"summarize_{tf.name}", {ref.name: _From(0, p.key)}))
        else:
            steps.append((f"get_{f.name}", {f.key: _From(2, f.key)}))
        steps.append((f"delete_{f.name}", {f.key: _From(2, f.key)}))
        return steps


# ---------------------------------------------------------------------------------------------- public


def list_fields() -> list[str]:
    """Names of the ontology's fields, in ontology order."""
    return list(ontology.fields())


def _dependencies(tools: Sequence[Tool]) -> list[Dependency]:
    deps = []
    for t in tools:
        req = list(t.input_schema.get("required", []))
        opt = [p for p in t.input_schema.get("properties", {}) if p not in req]
        deps.append(Dependency(title=t.title, tool=t.name, consumes=req + [f"{p} (optional)" for p in opt],
                               produces=list(t.output_schema.get("properties", {}))))
    return deps


def _build(spec: FieldSpec, seed: int, entities: list[Entity], rng: random.Random,
           n_tools: int | None) -> tuple[list[Tool], dict[str, Table], list[Workflow], str, str]:
    values = _Values(spec, rng)
    plural = {e.name: e.plural for e in spec.entities}
    rows = _seed_rows(entities, values, rng)
    tables = {}
    for e in entities:
        t = _table(e, spec, plural)
        tables[e.name] = t.model_copy(update={"seed_rows": rows[e.name]})
    focus = next(e for e in reversed(entities) if any(a.ref in {x.name for x in entities} for a in e.refs))
    b = _Builder(spec, entities, tables, rng.choice(_TAX_RATES))
    for e in entities:
        b.entity_tools(e, e.name == focus.name)
    tools = b.tools
    if n_tools is not None and n_tools < len(tools):
        ranked = sorted(range(len(tools)), key=lambda i: (b.priority[tools[i].name], i))[:max(n_tools, 1)]
        tools = [tools[i] for i in sorted(ranked)]
    plans = _Plans(spec, entities, tables, {t.name for t in tools}, values, rng).build()
    return tools, tables, plans, focus.name, next(a.ref for a in focus.refs if a.ref in tables) or ""


def generate_toolset(field: str | None = None, seed: int = 0, *, n_tools: int | None = None) -> Toolset:
    """A generated toolset for `field` (None: a field drawn from `seed`), deterministic per inputs.

    `n_tools` caps the tool count (keeping the most central tools); when it exceeds what the drawn entities
    give, more entities of the field are added until it is met or the field is exhausted."""
    if n_tools is not None and n_tools < 1:
        raise ValueError("n_tools must be at least 1")
    names = list_fields()
    field_name = field
    if field_name is None:
        field_name = names[_rng("field", seed).randrange(len(names))]
    spec = ontology.field(field_name)
    rng = _rng(field_name, seed)
    sub = rng.choice(spec.sub_fields)
    task = rng.choice(sub.tasks)
    want = rng.randint(2, min(4, len(spec.entities)))
    state = rng.getstate()
    entities = _select(spec, rng, want)
    tools, tables, plans, focus, parent = _build(spec, seed, entities, rng, n_tools)
    while n_tools is not None and len(tools) < n_tools and want < len(spec.entities):
        want += 1
        rng.setstate(state)
        entities = _select(spec, rng, want)
        tools, tables, plans, focus, parent = _build(spec, seed, entities, rng, n_tools)
    ordered = [tables[e.name] for e in entities]
    n = len(tools)
    difficulty = "easy" if n <= 10 else "medium" if n <= 20 else "hard"
    return Toolset(
        id=f"generated.{field_name}.{seed}" + (f".n{n_tools}" if n_tools is not None else ""),
        title=f"{spec.title}: {task}",
        field=field_name, sub_field=sub.name, task=task,
        description=f"{spec.title} / {sub.name}: tools to {task}, over "
                    f"{', '.join(t.name for t in ordered)} (focus: {focus}, parent: {parent}).",
        seed=seed,
        provenance=Provenance(origin="generated", generator=GENERATOR, source_ids=[f"ontology:{field_name}"],
                              notes=[f"entities: {', '.join(e.name for e in entities)}"]),
        difficulty=difficulty, tool_budget=n,
        workflows=plans, dependencies=_dependencies(tools),
        state_schema=StateSchema(tables=ordered, clock_start=CLOCK_START), tools=tools)


def valid_arguments(toolset: Toolset, tool_name: str) -> dict[str, Any]:
    """Arguments a call of `tool_name` accepts on a fresh session of a generated toolset.

    Reads, updates and checks use the first seed row (which is in its initial status, so a status move is
    legal); deletes use the last seed row (nothing references it); list/search/summarize filter on the first
    row's own values, so it matches; creates get fresh values (unique columns untaken, refs to existing rows);
    a quote gets a unit amount and quantity."""
    tool = toolset.tool(tool_name)
    eff = tool.effect
    props = tool.input_schema.get("properties", {})
    if eff.kind == "compute":
        if "unit_amount" not in props:
            return {}
        return {"unit_amount": min(19.99, float(props["unit_amount"].get("maximum", 19.99))), "quantity": 3}
    assert toolset.state_schema is not None and eff.table is not None
    spec = ontology.field(toolset.field)
    table = toolset.state_schema.table(eff.table)
    entity = next(e for e in spec.entities if e.plural == table.name)
    rows = table.seed_rows
    first = rows[0]
    if eff.kind == "create":
        values = _Values(spec, _rng("arguments", toolset.id, tool_name))
        for a in entity.attributes:
            if a.unique:
                values.used[(entity.name, a.name)] = {r[a.name] for r in rows}
        tables = {t.name: t for t in toolset.state_schema.tables}
        refs = {a.name: [tables[spec.entity(a.ref or "").plural].seed_rows[0][spec_key(a)]] for a in entity.refs}
        fresh = values.row(entity, refs, -1, optional=False)
        return {k: v for k, v in fresh.items() if k in props}
    if eff.kind == "delete":
        return {eff.key or "": rows[-1][table.key]}
    args: dict[str, Any] = {}
    if eff.kind in ("list", "search"):
        for name in props:
            if name in table.columns and first.get(name) is not None:
                args[name] = first[name]
        if "query" in props and entity.label is not None:
            args["query"] = str(first[entity.label.name]).split()[0]
        return args
    args[eff.key or ""] = first[table.key]
    status = table.columns.get("status")
    nexts = (status.transitions or {}).get(str(first.get("status")), []) if status is not None else []
    if "status" in props and eff.set.get("status") == "status":
        args["status"] = nexts[0]
    if "target_status" in props:
        args["target_status"] = nexts[0] if nexts else first.get("status")
    if eff.kind == "update" and "status" not in args:
        values = _Values(spec, _rng("arguments", toolset.id, tool_name))
        for a in entity.attributes:
            if a.name in props and a.name != eff.key:
                for _ in range(20):
                    v = values.value(entity, a, {}, _BASE_DAY)
                    if v != first.get(a.name):
                        args[a.name] = v
                        break
                break
    return args


def generate_corpus(n: int, seed: int) -> list[Toolset]:
    """`n` toolsets: fields in ontology order (cycling), toolset i drawn with seed `seed + i`."""
    names = list_fields()
    return [generate_toolset(names[i % len(names)], seed + i) for i in range(n)]
