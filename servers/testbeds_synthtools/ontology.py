"""The bundled domain ontology of the procedural toolset generator: fields, their entities and relations.

Written compactly as a small line DSL (`data/ontology.txt`) and parsed once into pydantic models. Each field
has sub-fields (with the tasks they serve), a vocabulary used for realistic seed values, and entities, one per
line:

    <entity>[/<plural>] <ID_PREFIX> | <attr>, <attr>, ...

An attribute is `name:kind` with kinds reused across fields:

    person company title text email phone code city country url   strings with their own value pools
    money | money(lo-hi)          a decimal amount, stored in integer cents (money_scale 2)
    int(lo-hi) | num(lo-hi) | pct  integers, decimals, a percentage 0-100
    date | datetime                RFC 3339 date-times (dates at midnight UTC)
    bool                           a boolean
    {a,b,c}                        a closed enum of strings
    @lifecycle                     the `status` column with a state machine from `LIFECYCLES` (name ignored)

`>entity` (or `role>entity`) is a foreign key column `<entity>_id` (or `<role>_id`) to the entity's key.
A trailing `!` marks a unique column, a trailing `?` an optional (nullable) one. The first person, company
or title attribute (else text, code, email or city) is the entity's label (what text search matches).
Entities must be listed after the entities they reference, so any prefix of a field's entity list is closed
under references. The fields live in `data/ontology.txt` (shipped in the wheel with the package).
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources

from pydantic import BaseModel, ConfigDict, Field

LIFECYCLES: dict[str, str] = {
    # first state is the initial one; `a>b|c` lists the states reachable from a
    "order": "pending>confirmed|cancelled; confirmed>shipped|cancelled; shipped>delivered; delivered>returned",
    "booking": "scheduled>confirmed|cancelled; confirmed>completed|cancelled|no_show",
    "invoice": "draft>issued|void; issued>paid|overdue|void; overdue>paid|void",
    "ticket": "open>in_progress|closed; in_progress>resolved|open; resolved>closed|open",
    "project": "planned>active|cancelled; active>on_hold|completed; on_hold>active|cancelled",
    "application": "submitted>under_review|withdrawn; under_review>approved|rejected",
    "shipment": "created>in_transit|cancelled; in_transit>delivered|delayed; delayed>in_transit|delivered",
    "account": "active>suspended|closed; suspended>active|closed",
    "listing": "draft>published|archived; published>sold|archived; sold>archived",
    "task": "todo>in_progress|blocked; in_progress>done|blocked; blocked>todo|in_progress",
    "claim": "filed>investigating|denied; investigating>approved|denied; approved>paid",
    "maintenance": "requested>scheduled|rejected; scheduled>in_progress|rejected; in_progress>completed",
    "enrollment": "enrolled>active|withdrawn; active>completed|withdrawn|failed",
    "payment": "pending>settled|failed; settled>refunded",
    "reservation": "held>confirmed|released; confirmed>checked_in|cancelled; checked_in>checked_out",
    "campaign": "draft>scheduled|cancelled; scheduled>running|cancelled; running>paused|finished; "
                "paused>running|finished",
    "case": "open>pending|closed; pending>open|closed",
    "inspection": "scheduled>passed|failed|cancelled; failed>scheduled",
    "production": "queued>running|cancelled; running>completed|failed",
    "lease": "pending>active|cancelled; active>terminated|expired",
    "content": "draft>in_review|archived; in_review>published|draft; published>archived",
}



class Attribute(BaseModel):
    """One attribute (column) of an entity."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="Column name.")
    kind: str = Field(description="Attribute kind: person, company, title, text, email, phone, code, city, country, "
                      "money, int, num, pct, date, datetime, bool, enum, ref, status.")
    lo: float | None = Field(None, description="Lower bound of numeric kinds.")
    hi: float | None = Field(None, description="Upper bound of numeric kinds.")
    enum: tuple[str, ...] = Field((), description="Values of enum and status kinds.")
    ref: str | None = Field(None, description="Referenced entity of a ref attribute.")
    unique: bool = Field(False, description="Values are unique across rows.")
    optional: bool = Field(False, description="May be null; not required on create.")
    transitions: dict[str, tuple[str, ...]] | None = Field(None, description="Status state machine.")


class Entity(BaseModel):
    """An entity of a field: one state table."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="Singular snake_case name, also the table's row noun.")
    plural: str = Field(description="Plural snake_case name, the table name.")
    prefix: str = Field(description="Id prefix letters, e.g. 'PAT' -> 'PAT-000001'.")
    attributes: tuple[Attribute, ...] = Field(description="Attributes in order (the key is implicit).")

    @property
    def key(self) -> str:
        """Key column: `<name>_id`."""
        return f"{self.name}_id"

    @property
    def refs(self) -> list[Attribute]:
        """The foreign-key attributes."""
        return [a for a in self.attributes if a.kind == "ref"]

    @property
    def label(self) -> Attribute | None:
        """The attribute text search matches: the first person, company or title attribute, else the first
        text, code, email or city one (None when the entity has no text at all)."""
        for kinds in (("person", "company", "title"), ("text", "code", "email", "city")):
            hit = next((a for a in self.attributes if a.kind in kinds), None)
            if hit is not None:
                return hit
        return None


class SubField(BaseModel):
    """A sub-field and the tasks it serves."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    tasks: tuple[str, ...]


class FieldSpec(BaseModel):
    """A domain field: title, sub-fields with tasks, vocabulary and entities (referenced ones first)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    title: str
    sub_fields: tuple[SubField, ...]
    vocabulary: tuple[str, ...]
    entities: tuple[Entity, ...]

    def entity(self, name: str) -> Entity:
        """The entity called `name` (KeyError if absent)."""
        for e in self.entities:
            if e.name == name:
                return e
        raise KeyError(name)


_ATTR = re.compile(r"^(?:(?P<role>[a-z][a-z0-9_]*)?>(?P<target>[a-z][a-z0-9_]*)|(?P<name>[a-z][a-z0-9_]*):"
                   r"(?P<kind>[^!?]+))(?P<flags>[!?]*)$")
_RANGE = re.compile(r"^(?P<kind>money|int|num)\((?P<lo>-?[\d.]+)-(?P<hi>[\d.]+)\)$")


def parse_lifecycle(text: str) -> tuple[tuple[str, ...], dict[str, tuple[str, ...]]]:
    """States (initial first) and transitions of a lifecycle written `a>b|c; b>d`."""
    states: list[str] = []
    trans: dict[str, tuple[str, ...]] = {}
    for part in text.split(";"):
        src, dsts = part.strip().split(">")
        nexts = tuple(d.strip() for d in dsts.split("|"))
        trans[src.strip()] = nexts
        for s in (src.strip(), *nexts):
            if s not in states:
                states.append(s)
    for s in states:
        trans.setdefault(s, ())
    return tuple(states), trans


def _parse_attr(text: str, where: str) -> Attribute:
    m = _ATTR.match(text.strip())
    if not m:
        raise ValueError(f"{where}: cannot parse attribute {text!r}")
    flags = m["flags"]
    common = {"unique": "!" in flags, "optional": "?" in flags}
    if m["target"]:
        role = m["role"] or m["target"]
        return Attribute(name=f"{role}_id", kind="ref", ref=m["target"], **common)
    name, kind = m["name"], m["kind"].strip()
    if kind.startswith("{"):
        return Attribute(name=name, kind="enum", enum=tuple(v.strip() for v in kind[1:-1].split(",")), **common)
    if kind.startswith("@"):
        states, trans = parse_lifecycle(LIFECYCLES[kind[1:]])
        return Attribute(name="status", kind="status", enum=states, transitions=trans, **common)
    r = _RANGE.match(kind)
    if r:
        return Attribute(name=name, kind=r["kind"], lo=float(r["lo"]), hi=float(r["hi"]), **common)
    defaults = {"money": (1.0, 1000.0), "int": (0.0, 100.0), "num": (0.0, 100.0), "pct": (0.0, 100.0)}
    if kind in defaults:
        lo, hi = defaults[kind]
        return Attribute(name=name, kind=kind, lo=lo, hi=hi, **common)
    if kind not in ("person", "company", "title", "text", "email", "phone", "code", "city", "country", "url",
                    "date", "datetime", "bool"):
        raise ValueError(f"{where}: unknown attribute kind {kind!r}")
    return Attribute(name=name, kind=kind, **common)


def _plural(name: str) -> str:
    if name.endswith("y") and name[-2:-1] not in "aeiou":
        return name[:-1] + "ies"
    if name.endswith(("s", "x", "ch", "sh")):
        return name + "es"
    return name + "s"


def _parse_field(lines: list[str]) -> FieldSpec:
    head = lines[0][len("field "):]
    name, title, subs_text = (p.strip() for p in head.split("|"))
    subs = []
    for chunk in subs_text.split(" / "):
        sname, tasks = chunk.split(":", 1)
        subs.append(SubField(name=sname.strip(), tasks=tuple(t.strip() for t in tasks.split(";"))))
    vocab: tuple[str, ...] = ()
    entities: list[Entity] = []
    for line in lines[1:]:
        if line.startswith("~"):
            vocab = tuple(line[1:].split())
            continue
        left, right = line.split("|", 1)
        ename, prefix = left.split()
        ename, _, plural = ename.partition("/")
        attrs = tuple(_parse_attr(a, f"{name}.{ename}") for a in re.split(r",(?![^{]*\})", right) if a.strip())
        entities.append(Entity(name=ename, plural=plural or _plural(ename), prefix=prefix, attributes=attrs))
    known: set[str] = set()
    for e in entities:
        for a in e.refs:
            if a.ref not in known:
                raise ValueError(f"{name}.{e.name}: reference to {a.ref!r} which is not listed before it")
        names = [a.name for a in e.attributes]
        if len(set(names)) != len(names):
            raise ValueError(f"{name}.{e.name}: duplicate attribute names")
        known.add(e.name)
    return FieldSpec(name=name, title=title, sub_fields=tuple(subs), vocabulary=vocab, entities=tuple(entities))


@lru_cache(maxsize=1)
def fields() -> dict[str, FieldSpec]:
    """All fields of the bundled ontology, by name, in ontology order."""
    out: dict[str, FieldSpec] = {}
    block: list[str] = []
    text = resources.files(__package__).joinpath("data", "ontology.txt").read_text(encoding="utf-8")
    for raw in [*text.splitlines(), "field"]:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("field"):
            if block:
                spec = _parse_field(block)
                if spec.name in out:
                    raise ValueError(f"duplicate field {spec.name!r}")
                out[spec.name] = spec
            block = [line]
        else:
            block.append(line)
    return out


def field(name: str) -> FieldSpec:
    """The field called `name`; a clear error naming the known fields otherwise."""
    all_fields = fields()
    if name not in all_fields:
        raise KeyError(f"unknown field {name!r}; known: {', '.join(all_fields)}")
    return all_fields[name]
