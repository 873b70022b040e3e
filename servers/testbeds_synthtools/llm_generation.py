"""SynthTools-style toolset generation with an LLM: field -> sub-fields -> tasks -> toolset spec JSON.

The caller supplies the model as `async (system, prompt) -> str` (MCP client sampling or a provider; this
module imports no MCP). Each answer is parsed (the first JSON value in the text, fenced or not), then

1. **repaired** where the fix is mechanical and cannot change meaning: tool names slugged and made unique
   (plans and dependencies follow the renames), `type: object` and `additionalProperties: false` added,
   output `required` set to every output key, input `required` pruned to declared parameters, null-ish or
   invalid defaults dropped, error codes slugged from titles and statuses read from the title's class,
   missing titles and effects filled, metadata (id, field, provenance) set from the request;
2. **validated**: the `Toolset` model (names, rule-language parse, effect/table consistency), then
   `toolset_problems` (Draft 2020-12 metaschema for every schema, output objects closed with all keys
   required, defaults valid, seed rows typed and references resolving, plans naming existing tools);
3. **rejected** with its reasons when anything is still wrong after `max_tries` model attempts (the model
   is re-asked with the reasons). An invalid toolset is never returned.

Accepted toolsets are deduplicated: tools within a toolset (same normalised name, or near-identical
description with the same parameters) and toolsets against each other (Jaccard of normalised tool-name
sets, cosine of description tokens; either over the threshold is a duplicate).
"""

from __future__ import annotations

import copy
import json
import math
import re
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from functools import lru_cache
from typing import Any

import jsonschema
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from . import rules
from .generator import parse_step
from .names import slug, unique_names
from .spec import EFFECT_KINDS, SPEC_FORMAT, Toolset, canonical_json, is_datetime, schema_validator

LLMCallable = Callable[[str, str], Awaitable[str]]
"""`async (system, prompt) -> text`: one model completion."""

GENERATOR = "testbeds.synthtools.llm_generation/1"
_NULLISH = (None, "None", "null", "")
_VERBS = {"fetch": "get", "retrieve": "get", "read": "get", "lookup": "get", "find": "search", "query": "search",
          "add": "create", "new": "create", "register": "create", "make": "create", "remove": "delete",
          "cancel": "delete", "modify": "update", "edit": "update", "change": "update", "set": "update",
          "calculate": "compute", "calc": "compute", "estimate": "compute", "show": "list", "view": "get"}
_STOP = frozenset("a an the of to for and or in on by with from this that it is are be as at its their".split())

SYSTEM_PROMPT = ("You design realistic tool APIs for simulated software environments. Answer with JSON only: "
                 "no prose, no comments, no trailing commas.")


class Rejection(BaseModel):
    """An LLM answer that was not served, and why."""

    model_config = ConfigDict(extra="forbid")

    field: str
    sub_field: str = ""
    task: str = ""
    stage: str = Field(description="parse | validate | duplicate.")
    reasons: list[str] = Field(description="What was wrong, first problems first.")
    excerpt: str = Field("", description="The start of the rejected answer.")


class Duplicate(BaseModel):
    """A toolset or tool dropped as a near-copy of one already kept."""

    model_config = ConfigDict(extra="forbid")

    dropped: str
    kept: str
    similarity: float
    kind: str = Field(description="toolset | tool.")


class GenerationResult(BaseModel):
    """Valid, deduplicated toolsets plus what was repaired, rejected or dropped."""

    model_config = ConfigDict(extra="forbid")

    toolsets: list[Toolset] = Field(default_factory=list)
    rejected: list[Rejection] = Field(default_factory=list)
    duplicates: list[Duplicate] = Field(default_factory=list)
    repairs: dict[str, list[str]] = Field(default_factory=dict, description="Toolset id -> repairs applied.")


# ------------------------------------------------------------------------------------------------ prompts


def sub_fields_prompt(field: str, n: int) -> str:
    """Prompt for `n` sub-fields of a field."""
    return (f"List {n} distinct sub-fields of the domain '{field}' where software tools are used. "
            "Answer with a JSON array of short strings.")


def tasks_prompt(field: str, sub_field: str, n: int) -> str:
    """Prompt for `n` tasks of a sub-field."""
    return (f"List {n} distinct, concrete tasks a professional in '{sub_field}' ({field}) completes with "
            "software tools. Answer with a JSON array of short strings.")


def toolset_prompt(field: str, sub_field: str, task: str, budget: int) -> str:
    """Prompt for one toolset spec in our JSON format."""
    functions = ", ".join(sorted(rules.FUNCTIONS))
    return f"""Design a toolset of about {budget} tools for the task "{task}" in {sub_field} ({field}).
Answer with ONE JSON object:
{{"title": str, "description": str, "difficulty": "easy"|"medium"|"hard",
 "state_schema": {{"tables": [{{"name": snake_case, "key": column, "id_prefix": "ABC-",
   "columns": {{column: {{"type": "string"|"integer"|"number"|"boolean"|"date-time", "enum"?: [...],
     "ref"?: "table.column", "money_scale"?: 2, "nullable"?: bool, "transitions"?: {{state: [next states]}}}}}},
   "seed_rows": [{{column: value}}]}}]}},
 "tools": [{{"name": snake_case verb_noun, "title": str, "description": str, "usage": str,
   "input_schema": JSON Schema object (properties with type, description, enum, minimum, maximum,
     "format": "date-time"; arrays of one scalar type; "default" for optional parameters; "required": [...]),
   "output_schema": JSON Schema object of the result (every key listed in "required"),
   "errors": [{{"code": snake_case, "title": str, "guidance": str, "status": 400|404|409}}],
   "constraints": [{{"rule": expression, "error": code}}],
   "effect": {{"kind": one of {', '.join(EFFECT_KINDS)}, "table": name, "key": argument,
     "set": {{argument: column}}, "filters": [{{"arg": argument, "column": column, "op": "eq"|"match"|"ge"|"le"}}],
     "returns": {{output key: expression}}, "formula": {{output key: expression}} (compute only)}}}}],
 "workflows": [{{"tier": "simple"|"medium"|"complex", "label": str, "tools": [tool names in order]}}],
 "dependencies": [{{"title": tool title, "tool": tool name, "consumes": [...], "produces": [...]}}]}}
Expressions are Python-like: arguments, row.<column>, rows.<column>, count, now, arithmetic, comparisons,
and/or/not, `x if c else y`, and only these functions: {functions}.
Plans: simple ~3 tools, medium ~5, complex ~8, two per tier, using only tools you define."""


def repair_prompt(previous: str, reasons: Sequence[str]) -> str:
    """Prompt asking the model to fix its previous answer."""
    listed = "\n".join(f"- {r}" for r in reasons[:20])
    return (f"Your previous answer was invalid:\n{listed}\n\nReturn the corrected JSON object only. "
            f"Previous answer (start):\n{previous[:6000]}")


# --------------------------------------------------------------------------------------------- parsing


def extract_json(text: str) -> Any:
    """The first JSON value in `text`: inside a ```json fence if there is one, else the first `{` or `[`
    that decodes. ValueError when there is none."""
    if not isinstance(text, str):
        raise ValueError("the answer is not text")
    fence = re.search(r"```(?:json)?\s*\n(.*?)```", text, re.S)
    candidates = [fence.group(1)] if fence else []
    candidates.append(text)
    dec = json.JSONDecoder()
    for cand in candidates:
        for m in re.finditer(r"[\[{]", cand):
            try:
                value, _ = dec.raw_decode(cand, m.start())
            except json.JSONDecodeError:
                continue
            return value
    raise ValueError("no JSON value found in the answer")


def _string_list(value: Any, n: int) -> list[str]:
    if not isinstance(value, list):
        raise ValueError("expected a JSON array of strings")
    out: list[str] = []
    for v in value:
        if isinstance(v, str) and v.strip() and v.strip() not in out:
            out.append(v.strip()[:200])
    if not out:
        raise ValueError("the array holds no usable strings")
    return out[:n]


# ---------------------------------------------------------------------------------------------- repair


def _status_for(title: str) -> int:
    low = title.lower()
    if "not found" in low or "does not exist" in low or "unknown" in low and "id" in low:
        return 404
    if any(w in low for w in ("conflict", "already", "duplicate", "transition", "in use")):
        return 409
    if any(w in low for w in ("unauthor", "authentication")):
        return 401
    if any(w in low for w in ("forbidden", "permission", "access denied")):
        return 403
    if "rate limit" in low or "too many" in low:
        return 429
    return 400


def _close_object(schema: dict[str, Any], *, output: bool, notes: list[str], where: str) -> dict[str, Any]:
    s = dict(schema)
    if s.get("type") != "object":
        s["type"] = "object"
        notes.append(f"{where}: set type object")
    props = s.get("properties")
    if not isinstance(props, dict):
        props = {}
        s["properties"] = props
    if output:
        if s.get("required") != list(props):
            s["required"] = list(props)
            notes.append(f"{where}: required = every output key")
    else:
        req = s.get("required", [])
        kept = [r for r in req if isinstance(r, str) and r in props] if isinstance(req, list) else []
        if kept != req:
            notes.append(f"{where}: dropped required names that are not parameters")
        s["required"] = list(dict.fromkeys(kept))
        for pname, ps in list(props.items()):
            if isinstance(ps, dict) and "default" in ps:
                d = ps["default"]
                ok = d not in _NULLISH
                if ok:
                    try:
                        ok = schema_validator({k: v for k, v in ps.items() if k != "default"}).is_valid(d)
                    except (jsonschema.SchemaError, TypeError):
                        ok = False
                if not ok:
                    props[pname] = {k: v for k, v in ps.items() if k != "default"}
                    notes.append(f"{where}.{pname}: dropped an invalid default {d!r}")
    if s.get("additionalProperties") is not False:
        s["additionalProperties"] = False
        notes.append(f"{where}: additionalProperties false")
    return s


def repair_toolset_data(data: Any, *, toolset_id: str, field: str, sub_field: str, task: str,
                        seed: int = 0) -> tuple[dict[str, Any], list[str]]:
    """Mechanical repairs of a model's toolset JSON (see the module docstring); returns (data, notes).
    Raises ValueError when the answer is not a toolset-shaped object at all."""
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    tools_in = data.get("tools")
    if not isinstance(tools_in, list) or not tools_in:
        raise ValueError("the toolset has no tools list")
    notes: list[str] = []
    d = copy.deepcopy(data)
    for k in ("spec_format", "id", "field", "sub_field", "task", "seed", "provenance", "tool_budget", "version",
              "lenient_dates"):
        d.pop(k, None)
    allowed = set(Toolset.model_fields)
    extra = sorted(k for k in d if k not in allowed)
    for k in extra:
        d.pop(k)
    if extra:
        notes.append(f"dropped unknown toolset keys {extra}")
    tools: list[dict[str, Any]] = [t for t in tools_in if isinstance(t, dict)]
    if len(tools) != len(tools_in):
        notes.append("dropped tools that are not objects")
    old_names = [str(t.get("name") or t.get("title") or f"tool {i}") for i, t in enumerate(tools)]
    new_names = unique_names([(f"{i:04d}", n) for i, n in enumerate(old_names)])
    rename: dict[str, str] = {}
    for i, t in enumerate(tools):
        new = new_names[f"{i:04d}"]
        if t.get("name") != new:
            notes.append(f"tool name {t.get('name')!r} -> {new!r}")
        rename.setdefault(str(t.get("name")), new)
        rename.setdefault(str(t.get("title")), new)
        rename.setdefault(old_names[i], new)
        t["name"] = new
        if not isinstance(t.get("title"), str) or not t["title"].strip():
            t["title"] = " ".join(w.capitalize() for w in new.split("_"))
            notes.append(f"{new}: title from name")
        for k in ("annotations", "source", "inferred"):
            t.pop(k, None)
        t["source"] = {"corpus": "generated", "id": f"{toolset_id}/{new}", "title": t["title"]}
        for key, output in (("input_schema", False), ("output_schema", True)):
            sch = t.get(key)
            t[key] = _close_object(sch if isinstance(sch, dict) else {}, output=output, notes=notes,
                                   where=f"{new}.{key}")
        errs = t.get("errors")
        if isinstance(errs, list):
            fixed, seen = [], set()
            for e in errs:
                if isinstance(e, str):
                    title, _, guidance = e.partition(":")
                    e = {"title": title.strip(), "guidance": guidance.strip()}
                if not isinstance(e, dict) or not str(e.get("title") or e.get("code") or "").strip():
                    notes.append(f"{new}: dropped an error without a title")
                    continue
                e = dict(e)
                e.setdefault("title", str(e.get("code")).replace("_", " ").capitalize())
                code = slug(str(e.get("code") or e["title"]), fallback="error")
                base, k = code, 1
                while code in seen:
                    k += 1
                    code = f"{base}_{k}"
                if code != e.get("code"):
                    notes.append(f"{new}: error code {e.get('code')!r} -> {code!r}")
                seen.add(code)
                e["code"] = code
                if not isinstance(e.get("status"), int) or not 400 <= e["status"] <= 599:
                    e["status"] = _status_for(str(e["title"]))
                    notes.append(f"{new}: error {code} status {e['status']} from its title")
                fixed.append(e)
            t["errors"] = fixed
        if not isinstance(t.get("effect"), dict):
            t["effect"] = {"kind": "compute"}
            notes.append(f"{new}: effect compute (none given)")
    d["tools"] = tools
    names = {t["name"] for t in tools}
    if isinstance(d.get("workflows"), list):
        flows = []
        for w in d["workflows"]:
            if not isinstance(w, dict):
                continue
            steps = [str(s) for s in w.get("tools", w.get("steps", [])) if isinstance(s, str)]
            mapped = [rename.get(s, slug(s)) for s in steps]
            resolved = bool(mapped) and all(m in names for m in mapped)
            if not resolved:
                notes.append(f"workflow {w.get('label', '')!r}: steps naming no tool dropped")
            flows.append({"tier": w.get("tier") if w.get("tier") in ("simple", "medium", "complex") else "simple",
                          "label": str(w.get("label", "")), "steps": steps,
                          "tools": [m for m in mapped if m in names], "resolved": resolved})
        d["workflows"] = [f for f in flows if f["tools"]]
    if isinstance(d.get("dependencies"), list):
        deps = []
        for dep in d["dependencies"]:
            if not isinstance(dep, dict):
                continue
            title = str(dep.get("title") or dep.get("tool") or "")
            tool = rename.get(str(dep.get("tool")), rename.get(title))
            deps.append({"title": title, "tool": tool if tool in names else None,
                         "consumes": [str(x) for x in dep.get("consumes", []) if isinstance(x, str | int | float)],
                         "produces": [str(x) for x in dep.get("produces", []) if isinstance(x, str | int | float)]})
        d["dependencies"] = deps
    if d.get("difficulty") not in (None, "easy", "medium", "hard"):
        d["difficulty"] = None
    d.update({"spec_format": SPEC_FORMAT, "id": toolset_id, "field": field, "sub_field": sub_field, "task": task,
              "seed": seed, "tool_budget": len(tools),
              "provenance": {"origin": "generated", "generator": GENERATOR, "notes": notes[:50]}})
    return d, notes


# ------------------------------------------------------------------------------------------- validation


def _type_ok(col_type: str, v: Any) -> bool:
    if col_type == "string":
        return isinstance(v, str)
    if col_type == "integer":
        return isinstance(v, int) and not isinstance(v, bool)
    if col_type == "number":
        return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    if col_type == "boolean":
        return isinstance(v, bool)
    if col_type == "date-time":
        return isinstance(v, str) and is_datetime(v)
    return True


_META = jsonschema.Draft202012Validator(jsonschema.Draft202012Validator.META_SCHEMA)


@lru_cache(maxsize=8192)
def _shell_error(schema_json: str) -> str | None:
    err = jsonschema.exceptions.best_match(_META.iter_errors(json.loads(schema_json)))
    return None if err is None else err.message


def metaschema_error(schema: Any) -> str | None:
    """The first Draft 2020-12 metaschema error of `schema`, else None.

    Checked piecewise: each object's shell (with `properties` and `items` emptied; property names are JSON
    strings already), then each sub-schema,
    with shells cached; equivalent to checking the whole (those keywords take schemas, which the metaschema
    checks the same way at any depth) and far faster on generated toolsets, which repeat small schemas."""
    if not isinstance(schema, dict):
        return _shell_error(canonical_json(schema))
    shell = dict(schema)
    for k in ("description", "title"):
        # free text is only type-checked by the metaschema; blanking it lets the cache hit across tools
        if isinstance(shell.get(k), str):
            shell[k] = ""
    subs: list[tuple[str, Any]] = []
    if isinstance(schema.get("properties"), dict):
        shell["properties"] = {}
        subs += [(f"properties.{k}", v) for k, v in schema["properties"].items()]
    if isinstance(schema.get("items"), dict):
        shell["items"] = {}
        subs.append(("items", schema["items"]))
    err = _shell_error(canonical_json(shell))
    if err is not None:
        return err
    for where, sub in subs:
        err = metaschema_error(sub)
        if err is not None:
            return f"{where}: {err}"
    return None


def toolset_problems(toolset: Toolset) -> list[str]:
    """Everything wrong with a (model-valid) toolset beyond what the pydantic model checks; empty when valid.

    Schemas pass the Draft 2020-12 metaschema; input schemas are closed objects whose `required` names are
    parameters and whose defaults validate; output schemas are closed objects with every key required; seed
    rows are typed, enum-valid, non-null where required, unique where declared, money within its scale, and
    their references resolve; workflows and dependencies name existing tools, and generated step strings
    only take values from earlier steps."""
    problems: list[str] = []
    for tool in toolset.tools:
        for key in ("input_schema", "output_schema"):
            sch = getattr(tool, key)
            meta_error = metaschema_error(sch)
            if meta_error is not None:
                problems.append(f"{tool.name}.{key}: not a valid JSON Schema: {meta_error}")
                continue
            props = sch.get("properties", {})
            if sch.get("additionalProperties") is not False:
                problems.append(f"{tool.name}.{key}: additionalProperties must be false")
            req = sch.get("required", [])
            if key == "output_schema" and sorted(req) != sorted(props):
                problems.append(f"{tool.name}.output_schema: every output key must be required")
            if key == "input_schema":
                unknown = [r for r in req if r not in props]
                if unknown:
                    problems.append(f"{tool.name}.input_schema: required names unknown parameters {unknown}")
                for pname, ps in props.items():
                    if isinstance(ps, dict) and "default" in ps and ps["default"] is not None:
                        if not schema_validator(ps).is_valid(ps["default"]):
                            problems.append(f"{tool.name}.{pname}: default {ps['default']!r} fails its schema")
    names = {t.name for t in toolset.tools}
    for w in toolset.workflows:
        missing = [t for t in w.tools if t not in names]
        if missing:
            problems.append(f"workflow {w.label!r}: unknown tools {missing}")
        if w.resolved and len(w.steps) == len(w.tools):
            for i, step in enumerate(w.steps):
                if " {" not in step:
                    break
                try:
                    parsed = parse_step(step)
                except ValueError as exc:
                    problems.append(f"workflow {w.label!r} step {i}: {exc}")
                    continue
                if parsed.tool != w.tools[i]:
                    problems.append(f"workflow {w.label!r} step {i}: names {parsed.tool}, tools say {w.tools[i]}")
                for a, src in parsed.arguments.items():
                    if src.from_step is not None and not 0 <= src.from_step < i:
                        problems.append(f"workflow {w.label!r} step {i}: {a} comes from step {src.from_step}")
    for dep in toolset.dependencies:
        if dep.tool is not None and dep.tool not in names:
            problems.append(f"dependency {dep.title!r}: unknown tool {dep.tool}")
    if toolset.state_schema is not None:
        problems += _seed_problems(toolset)
    return problems


def _seed_problems(toolset: Toolset) -> list[str]:
    assert toolset.state_schema is not None
    problems: list[str] = []
    keys = {t.name: {json.dumps(r.get(t.key)) for r in t.seed_rows} for t in toolset.state_schema.tables}
    for t in toolset.state_schema.tables:
        seen: dict[tuple[str, ...], set[str]] = {tuple(g): set() for g in t.unique}
        for i, row in enumerate(t.seed_rows):
            where = f"{t.name}[{i}]"
            for cname, col in t.columns.items():
                v = row.get(cname, col.default)
                if v is None:
                    if not col.nullable or cname == t.key:
                        problems.append(f"{where}.{cname}: null in a non-null column")
                    continue
                if not _type_ok(col.type, v):
                    problems.append(f"{where}.{cname}: {v!r} is not a {col.type}")
                    continue
                if col.enum is not None and v not in col.enum:
                    problems.append(f"{where}.{cname}: {v!r} not in {col.enum}")
                if col.money_scale is not None and round(float(v), col.money_scale) != float(v):
                    problems.append(f"{where}.{cname}: {v!r} has more than {col.money_scale} decimals")
                if col.ref is not None:
                    rt, rc = col.ref.split(".")
                    target = toolset.state_schema.table(rt)
                    pool = keys[rt] if rc == target.key else {json.dumps(r.get(rc)) for r in target.seed_rows}
                    if json.dumps(v) not in pool:
                        problems.append(f"{where}.{cname}: {v!r} does not resolve in {col.ref}")
                if col.transitions is not None and col.enum is not None:
                    bad = [s for s, nxt in col.transitions.items() for x in [s, *nxt] if x not in col.enum]
                    if bad and i == 0:
                        problems.append(f"{t.name}.{cname}: transitions name states outside the enum {bad}")
            for group, vals in seen.items():
                sig = json.dumps([row.get(c) for c in group])
                if all(row.get(c) is not None for c in group):
                    if sig in vals:
                        problems.append(f"{where}: duplicate {list(group)} {sig}")
                    vals.add(sig)
    return problems


def validate_toolset_data(data: Any, *, toolset_id: str, field: str, sub_field: str = "", task: str = "",
                          seed: int = 0) -> tuple[Toolset | None, list[str], list[str]]:
    """Repair then validate a model's toolset JSON: (toolset or None, problems, repair notes)."""
    try:
        fixed, notes = repair_toolset_data(data, toolset_id=toolset_id, field=field, sub_field=sub_field,
                                           task=task, seed=seed)
    except ValueError as exc:
        return None, [str(exc)], []
    try:
        toolset = Toolset.model_validate(fixed)
    except ValidationError as exc:
        reasons = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False)]
        return None, reasons[:30], notes
    problems = toolset_problems(toolset)
    return (None if problems else toolset), problems, notes


# --------------------------------------------------------------------------------------------- dedup


def normalised_tool_name(name: str) -> str:
    """A tool name with verb synonyms folded and plural nouns singular: `fetch_orders` -> `get_order`."""
    parts = slug(name).split("_")
    parts[0] = _VERBS.get(parts[0], parts[0])
    out = []
    for p in parts:
        if len(p) > 3 and p.endswith("ies"):
            p = p[:-3] + "y"
        elif len(p) > 3 and p.endswith("s") and not p.endswith("ss"):
            p = p[:-1]
        out.append(p)
    return "_".join(out)


def _tokens(text: str) -> Counter[str]:
    return Counter(w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in _STOP and len(w) > 1)


def cosine(a: Counter[str], b: Counter[str]) -> float:
    """Cosine similarity of two token bags (0 when either is empty)."""
    dot = sum(a[k] * b[k] for k in a.keys() & b.keys())
    na, nb = math.sqrt(sum(v * v for v in a.values())), math.sqrt(sum(v * v for v in b.values()))
    return 0.0 if na == 0 or nb == 0 else dot / (na * nb)


def jaccard(a: set[str], b: set[str]) -> float:
    """Jaccard similarity of two sets (1 for two empty sets)."""
    return 1.0 if not a and not b else len(a & b) / len(a | b)


def toolset_similarity(a: Toolset, b: Toolset) -> float:
    """max(Jaccard of normalised tool-name sets, cosine of all tool descriptions' tokens)."""
    na = {normalised_tool_name(t.name) for t in a.tools}
    nb = {normalised_tool_name(t.name) for t in b.tools}
    ta = _tokens(" ".join(f"{t.title} {t.description}" for t in a.tools))
    tb = _tokens(" ".join(f"{t.title} {t.description}" for t in b.tools))
    return max(jaccard(na, nb), cosine(ta, tb))


def dedupe_tools(toolset: Toolset, threshold: float = 0.9) -> tuple[Toolset, list[Duplicate]]:
    """Drop later tools that repeat an earlier one: equal normalised names, or descriptions with cosine >=
    `threshold` over the same parameter names. Plans and dependencies drop the removed tools."""
    kept: list[Any] = []
    dups: list[Duplicate] = []
    for t in toolset.tools:
        twin = None
        for k in kept:
            if normalised_tool_name(k.name) == normalised_tool_name(t.name):
                twin, sim = k, 1.0
                break
            same_params = set(k.input_schema.get("properties", {})) == set(t.input_schema.get("properties", {}))
            sim = cosine(_tokens(f"{k.title} {k.description}"), _tokens(f"{t.title} {t.description}"))
            if same_params and sim >= threshold:
                twin = k
                break
        if twin is None:
            kept.append(t)
        else:
            dups.append(Duplicate(dropped=f"{toolset.id}/{t.name}", kept=f"{toolset.id}/{twin.name}",
                                  similarity=round(sim, 4), kind="tool"))
    if not dups:
        return toolset, []
    names = {t.name for t in kept}
    flows = [w.model_copy(update={"tools": [x for x in w.tools if x in names],
                                  "resolved": w.resolved and all(x in names for x in w.tools)})
             for w in toolset.workflows]
    data = toolset.model_dump(mode="json")
    data["tools"] = [t.model_dump(mode="json") for t in kept]
    data["workflows"] = [w.model_dump(mode="json") for w in flows if w.tools]
    data["dependencies"] = [d for d in data["dependencies"] if d.get("tool") is None or d["tool"] in names]
    data["tool_budget"] = len(kept)
    return Toolset.model_validate(data), dups


def dedupe_toolsets(toolsets: Sequence[Toolset], threshold: float = 0.85) -> tuple[list[Toolset], list[Duplicate]]:
    """Keep toolsets in order, dropping any whose similarity to a kept one is >= `threshold`."""
    kept: list[Toolset] = []
    dups: list[Duplicate] = []
    for ts in toolsets:
        best, sim = None, 0.0
        for k in kept:
            s = toolset_similarity(ts, k)
            if s > sim:
                best, sim = k, s
        if best is not None and sim >= threshold:
            dups.append(Duplicate(dropped=ts.id, kept=best.id, similarity=round(sim, 4), kind="toolset"))
        else:
            kept.append(ts)
    return kept, dups


# ------------------------------------------------------------------------------------------- generator


class LLMToolsetGenerator:
    """Drives the field -> sub-fields -> tasks -> toolset hierarchy through a caller-supplied model."""

    def __init__(self, llm: LLMCallable, *, n_sub_fields: int = 3, n_tasks: int = 2, budget: int = 12,
                 max_tries: int = 2, toolset_threshold: float = 0.85, tool_threshold: float = 0.9):
        if max_tries < 1:
            raise ValueError("max_tries must be at least 1")
        self.llm = llm
        self.n_sub_fields, self.n_tasks, self.budget = n_sub_fields, n_tasks, budget
        self.max_tries = max_tries
        self.toolset_threshold, self.tool_threshold = toolset_threshold, tool_threshold

    async def _list(self, prompt: str, n: int) -> list[str]:
        last = ""
        for _ in range(self.max_tries):
            last = await self.llm(SYSTEM_PROMPT, prompt)
            try:
                return _string_list(extract_json(last), n)
            except ValueError:
                continue
        raise ValueError(f"no usable JSON array after {self.max_tries} tries: {last[:200]!r}")

    async def sub_fields(self, field: str) -> list[str]:
        """Sub-fields of `field` (ValueError when the model never answers with a usable list)."""
        return await self._list(sub_fields_prompt(field, self.n_sub_fields), self.n_sub_fields)

    async def tasks(self, field: str, sub_field: str) -> list[str]:
        """Tasks of a sub-field (ValueError as for `sub_fields`)."""
        return await self._list(tasks_prompt(field, sub_field, self.n_tasks), self.n_tasks)

    async def toolset(self, field: str, sub_field: str, task: str, *, toolset_id: str,
                      seed: int = 0) -> tuple[Toolset | None, Rejection | None, list[str]]:
        """One toolset for a task: (toolset, None, repairs) or (None, rejection, repairs); never invalid."""
        prompt = toolset_prompt(field, sub_field, task, self.budget)
        reasons: list[str] = []
        answer = ""
        stage = "parse"
        notes: list[str] = []
        for _ in range(self.max_tries):
            answer = await self.llm(SYSTEM_PROMPT, prompt)
            try:
                data = extract_json(answer)
            except ValueError as exc:
                stage, reasons = "parse", [str(exc)]
            else:
                ts, reasons, notes = validate_toolset_data(data, toolset_id=toolset_id, field=field,
                                                           sub_field=sub_field, task=task, seed=seed)
                stage = "validate"
                if ts is not None:
                    return ts, None, notes
            prompt = repair_prompt(answer, reasons)
        return None, Rejection(field=field, sub_field=sub_field, task=task, stage=stage, reasons=reasons,
                               excerpt=answer[:300]), notes

    async def generate(self, fields: Sequence[str], seed: int = 0) -> GenerationResult:
        """Walk the hierarchy for each field; return valid, deduplicated toolsets and the record of the rest."""
        out = GenerationResult()
        candidates: list[Toolset] = []
        for field in fields:
            try:
                subs = await self.sub_fields(field)
            except ValueError as exc:
                out.rejected.append(Rejection(field=field, stage="parse", reasons=[str(exc)]))
                continue
            for i, sub in enumerate(subs):
                try:
                    tasks = await self.tasks(field, sub)
                except ValueError as exc:
                    out.rejected.append(Rejection(field=field, sub_field=sub, stage="parse", reasons=[str(exc)]))
                    continue
                for j, task in enumerate(tasks):
                    tid = f"llm.{slug(field)}.{seed}.{i}.{j}"
                    ts, rej, notes = await self.toolset(field, sub, task, toolset_id=tid, seed=seed)
                    if rej is not None:
                        out.rejected.append(rej)
                        continue
                    assert ts is not None
                    ts, tool_dups = dedupe_tools(ts, self.tool_threshold)
                    out.duplicates += tool_dups
                    if notes:
                        out.repairs[ts.id] = notes
                    candidates.append(ts)
        out.toolsets, dups = dedupe_toolsets(candidates, self.toolset_threshold)
        out.duplicates += dups
        return out

