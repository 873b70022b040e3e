"""Static lint of toolset specs: what a loaded spec can still get wrong, and what a raw spec gets wrong.

`lint(toolset)` takes a `Toolset` or its raw JSON document (a dict, e.g. a hand-written or externally made
spec that may not even load) and returns `LintFinding(severity, tool, path, code, message)`s, errors first.
A raw document that fails `Toolset` validation gets one `spec_invalid` finding per validation error, and
the checks below still run on the document as far as its shape allows.

| code | severity | what |
|---|---|---|
| spec_invalid | error | the document does not validate as a `Toolset` |
| schema_invalid | error | an input/output schema fails the Draft 2020-12 metaschema |
| schema_not_object | error | a schema is not `type: object` |
| required_unknown | error | `required` names a parameter the schema does not declare |
| default_invalid / enum_default_outside | error | a default fails its own schema / lies outside its enum |
| bounds_inverted | error | minimum > maximum or minItems > maxItems |
| name_invalid / name_duplicate | error | a tool name is not MCP-safe / appears twice |
| error_code_duplicate | error | two errors of a tool share a code |
| error_status_invalid | error | an error status outside 400-599 |
| error_without_guidance | warning | an error has no remedy text |
| rule_syntax | error | a rule (constraint, `when`, assign, returns, formula) does not parse |
| rule_unknown_name | error | a rule uses a name that is neither an argument, an output key nor `row/rows/now/count` |
| rule_unknown_column | error | a rule reads `row.x` / `rows.x` where x is no column of the effect's table |
| constraint_unknown_error | error | a constraint names an error code the tool lacks |
| effect_unknown_{table,column,argument,output} | error | an effect binding names what does not exist |
| effect_incomplete | error | a state effect without a table or key |
| annotation_contradiction | error | a read-only hint on a write effect |
| annotation_contradiction | warning | an idempotent create; a non-destructive update or delete |
| example_invalid_{arguments,result} | error | an example that fails its own schemas |
| example_unknown_error | warning | an example expecting an error code nobody returns |
| workflow_unknown_tool / dependency_unknown_tool | error | a workflow or dependency names a tool the toolset lacks |
| ref_unresolved / seed_row_invalid | error | a state column reference or seed row that does not fit the state schema |
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import jsonschema
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from . import rules
from .names import NAME_RE
from .spec import ENV_NAMES, WRITE_KINDS, Toolset, canonical_json, format_checker

Severity = Literal["error", "warning", "info"]
_SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}
ENGINE_CODES = frozenset({
    "unknown_tool", "invalid_arguments", "unknown_parameter", "missing_required", "invalid_type", "invalid_item_type",
    "too_few_items", "too_many_items", "invalid_enum", "out_of_range", "invalid_date_time", "invalid_value",
    "constraint_violated", "not_found", "conflict", "invalid_transition", "missing_value", "missing_key",
    "calculation_error"})
"""Error codes the gateway and engine return themselves (an example may expect one of these too)."""


_META = jsonschema.Draft202012Validator(jsonschema.Draft202012Validator.META_SCHEMA)


class LintFinding(BaseModel):
    """One lint finding."""

    model_config = ConfigDict(extra="forbid")

    severity: Severity
    tool: str | None = Field(None, description="Tool name, None for toolset-level findings.")
    path: str = Field("", description="JSON Pointer-like location inside the tool or toolset.")
    code: str
    message: str


class _Linter:
    def __init__(self, doc: Mapping[str, Any]):
        self.doc = doc
        self.out: list[LintFinding] = []
        self.lenient = bool(doc.get("lenient_dates", False))
        self.fc = format_checker(self.lenient)
        state = doc.get("state_schema") if isinstance(doc.get("state_schema"), Mapping) else None
        self.tables: dict[str, Mapping[str, Any]] = {}
        for t in (state or {}).get("tables", []) or []:
            if isinstance(t, Mapping) and isinstance(t.get("name"), str):
                self.tables[t["name"]] = t

    def add(self, severity: Severity, tool: str | None, path: str, code: str, message: str) -> None:
        self.out.append(LintFinding(severity=severity, tool=tool, path=path, code=code, message=message))

    # -------------------------------------------------------------------------------------- toolset

    def run(self) -> list[LintFinding]:
        self.state()
        tools = [t for t in self.doc.get("tools", []) or [] if isinstance(t, Mapping)]
        names = [t.get("name") for t in tools]
        for i, t in enumerate(tools):
            name = t.get("name")
            label = name if isinstance(name, str) else f"#{i}"
            if not isinstance(name, str) or not NAME_RE.match(name) or "__" in name or name.endswith("_"):
                self.add("error", label, "/name", "name_invalid",
                         f"tool name {name!r} is not MCP-safe (^[a-z][a-z0-9_]{{0,47}}$, no '__', no trailing '_')")
            elif names.count(name) > 1 and names.index(name) == i:
                self.add("error", label, "/name", "name_duplicate", f"tool name {name!r} appears {names.count(name)}"
                         " times")
            self.tool(label, t)
        known = {n for n in names if isinstance(n, str)}
        for i, w in enumerate(self.doc.get("workflows", []) or []):
            for j, n in enumerate((w or {}).get("tools", []) or []):
                if n not in known:
                    self.add("error", None, f"/workflows/{i}/tools/{j}", "workflow_unknown_tool",
                             f"workflow names unknown tool {n!r}")
        for i, d in enumerate(self.doc.get("dependencies", []) or []):
            n = (d or {}).get("tool")
            if n is not None and n not in known:
                self.add("error", None, f"/dependencies/{i}/tool", "dependency_unknown_tool",
                         f"dependency names unknown tool {n!r}")
        return sorted(self.out, key=lambda f: (_SEVERITY_ORDER[f.severity], f.tool or "", f.path, f.code))

    def state(self) -> None:
        for tname, t in self.tables.items():
            cols = t.get("columns") if isinstance(t.get("columns"), Mapping) else {}
            for cname, col in cols.items():
                ref = (col or {}).get("ref")
                if isinstance(ref, str):
                    rt, _, rc = ref.partition(".")
                    target = self.tables.get(rt)
                    if target is None or rc not in (target.get("columns") or {}):
                        self.add("error", None, f"/state_schema/{tname}/columns/{cname}/ref", "ref_unresolved",
                                 f"{tname}.{cname} references {ref!r}, which does not exist")
            for i, row in enumerate(t.get("seed_rows", []) or []):
                extra = sorted(set(row or {}) - set(cols))
                if extra:
                    self.add("error", None, f"/state_schema/{tname}/seed_rows/{i}", "seed_row_invalid",
                             f"seed row {i} of {tname} has unknown columns {extra}")
                for cname, col in cols.items():
                    enum = (col or {}).get("enum")
                    v = (row or {}).get(cname)
                    if isinstance(enum, list) and v is not None and v not in enum:
                        self.add("error", None, f"/state_schema/{tname}/seed_rows/{i}/{cname}", "seed_row_invalid",
                                 f"seed row {i} of {tname}: {cname}={v!r} is not one of {enum}")

    # ----------------------------------------------------------------------------------------- tools

    def tool(self, name: str, t: Mapping[str, Any]) -> None:
        ins = t.get("input_schema")
        outs = t.get("output_schema")
        in_ok = self.schema(name, "/input_schema", ins)
        out_ok = self.schema(name, "/output_schema", outs)
        props = dict(ins.get("properties", {})) if in_ok and isinstance(ins, Mapping) else {}
        out_props = dict(outs.get("properties", {})) if out_ok and isinstance(outs, Mapping) else {}
        if in_ok:
            self.parameters(name, ins)
        errors = [e for e in t.get("errors", []) or [] if isinstance(e, Mapping)]
        codes = [e.get("code") for e in errors]
        for i, e in enumerate(errors):
            if codes.count(e.get("code")) > 1 and codes.index(e.get("code")) == i:
                self.add("error", name, f"/errors/{i}/code", "error_code_duplicate",
                         f"error code {e.get('code')!r} appears {codes.count(e.get('code'))} times")
            status = e.get("status")
            if not isinstance(status, int) or not 400 <= status <= 599:
                self.add("error", name, f"/errors/{i}/status", "error_status_invalid",
                         f"error status must be 400-599, got {status!r}")
            if not str(e.get("guidance", "") or "").strip():
                self.add("warning", name, f"/errors/{i}/guidance", "error_without_guidance",
                         f"error {e.get('code')!r} gives the caller no remedy")
        effect = t.get("effect") if isinstance(t.get("effect"), Mapping) else {}
        table = self.tables.get(effect.get("table")) if isinstance(effect.get("table"), str) else None
        columns = set((table or {}).get("columns", {}) or {})
        allowed = set(props) | ENV_NAMES
        for i, c in enumerate(t.get("constraints", []) or []):
            self.rule(name, f"/constraints/{i}/rule", (c or {}).get("rule"), allowed, columns)
            err = (c or {}).get("error")
            if err is not None and err not in codes:
                self.add("error", name, f"/constraints/{i}/error", "constraint_unknown_error",
                         f"constraint names unknown error {err!r}")
        for i, e in enumerate(errors):
            if e.get("when") is not None:
                self.rule(name, f"/errors/{i}/when", e.get("when"), allowed, columns)
        self.effect(name, t, effect, props, out_props, allowed, columns)
        self.annotations(name, t, effect)
        if in_ok and out_ok:
            self.examples(name, t, ins, outs, codes)

    def schema(self, name: str, path: str, schema: Any) -> bool:
        if not isinstance(schema, Mapping):
            self.add("error", name, path, "schema_not_object", "schema is missing or not an object")
            return False
        ok = True
        if schema.get("type") != "object":
            self.add("error", name, path, "schema_not_object", f"schema type must be 'object', got "
                     f"{schema.get('type')!r}")
            ok = False
        for e in sorted(_META.iter_errors(schema), key=lambda e: [str(p) for p in e.absolute_path]):
            where = "".join(f"/{p}" for p in e.absolute_path)
            self.add("error", name, path + where, "schema_invalid", f"not a valid Draft 2020-12 schema: {e.message}")
            ok = False
        return ok

    def parameters(self, name: str, schema: Mapping[str, Any]) -> None:
        props = schema.get("properties", {}) or {}
        for r in schema.get("required", []) or []:
            if r not in props:
                self.add("error", name, "/input_schema/required", "required_unknown",
                         f"required parameter {r!r} is not declared")
        for pname, s in props.items():
            if not isinstance(s, Mapping):
                continue
            path = f"/input_schema/properties/{pname}"
            for lo, hi in (("minimum", "maximum"), ("minItems", "maxItems"), ("minLength", "maxLength")):
                a, b = s.get(lo), s.get(hi)
                if isinstance(a, int | float) and isinstance(b, int | float) and a > b:
                    self.add("error", name, path, "bounds_inverted", f"{pname}: {lo} {a} > {hi} {b}")
            if "default" in s and s["default"] is not None:
                d = s["default"]
                enum = s.get("enum")
                if isinstance(enum, list) and d not in enum:
                    self.add("error", name, f"{path}/default", "enum_default_outside",
                             f"{pname}: default {d!r} is not one of {enum}")
                else:
                    errs = list(jsonschema.Draft202012Validator(s, format_checker=self.fc).iter_errors(d))
                    if errs:
                        self.add("error", name, f"{path}/default", "default_invalid",
                                 f"{pname}: default {d!r} fails its own schema: {errs[0].message}")

    def rule(self, name: str, path: str, source: Any, allowed: set[str], columns: set[str]) -> None:
        if not isinstance(source, str):
            self.add("error", name, path, "rule_syntax", f"rule must be a string, got {source!r}")
            return
        try:
            parsed = rules.parse(source)
        except rules.RuleError as exc:
            self.add("error", name, path, "rule_syntax", f"rule {source!r} does not parse: {exc}")
            return
        unknown = sorted(parsed.names - allowed)
        if unknown:
            self.add("error", name, path, "rule_unknown_name", f"rule {source!r} uses unknown names {unknown}")
        if columns:
            bad = sorted(f for f in parsed.fields if f not in columns)
            if bad:
                self.add("error", name, path, "rule_unknown_column",
                         f"rule {source!r} reads row fields {bad} that the effect's table lacks")

    def effect(self, name: str, t: Mapping[str, Any], eff: Mapping[str, Any], props: Mapping[str, Any],
               out_props: Mapping[str, Any], allowed: set[str], columns: set[str]) -> None:
        kind = eff.get("kind", "compute")
        table = eff.get("table")
        if kind != "compute":
            if table is None:
                self.add("error", name, "/effect/table", "effect_incomplete", f"a {kind} effect needs a table")
            elif table not in self.tables:
                self.add("error", name, "/effect/table", "effect_unknown_table",
                         f"effect table {table!r} is not in the state schema")
            if kind in ("read", "update", "delete") and eff.get("key") is None:
                self.add("error", name, "/effect/key", "effect_incomplete", f"a {kind} effect needs a key argument")
        args = [("key", eff.get("key"))] + [("set", a) for a in (eff.get("set") or {})] + \
            [("filters", (f or {}).get("arg")) for f in eff.get("filters", []) or []]
        for where, a in args:
            if a is not None and a not in props:
                self.add("error", name, f"/effect/{where}", "effect_unknown_argument",
                         f"effect names unknown argument {a!r}")
        if table in self.tables:
            cols = [("set", c) for c in (eff.get("set") or {}).values()] + [("assign", c) for c in
                                                                             (eff.get("assign") or {})]
            cols += [("filters", (f or {}).get("column")) for f in eff.get("filters", []) or []]
            for where, c in cols:
                if c not in columns:
                    self.add("error", name, f"/effect/{where}", "effect_unknown_column",
                             f"effect names unknown column {c!r} of {table}")
        for part in ("returns", "formula"):
            for k, expr in (eff.get(part) or {}).items():
                if k not in out_props:
                    self.add("error", name, f"/effect/{part}/{k}", "effect_unknown_output",
                             f"effect {part} names unknown output key {k!r}")
                self.rule(name, f"/effect/{part}/{k}", expr, allowed | set(out_props), columns)
        for c, expr in (eff.get("assign") or {}).items():
            self.rule(name, f"/effect/assign/{c}", expr, allowed, columns)

    def annotations(self, name: str, t: Mapping[str, Any], eff: Mapping[str, Any]) -> None:
        ann = t.get("annotations")
        if not isinstance(ann, Mapping):
            return
        kind = eff.get("kind", "compute")
        if ann.get("read_only") and kind in WRITE_KINDS:
            self.add("error", name, "/annotations/read_only", "annotation_contradiction",
                     f"read_only hint on a {kind} effect, which writes")
        if kind == "create" and ann.get("idempotent"):
            self.add("warning", name, "/annotations/idempotent", "annotation_contradiction",
                     "idempotent hint on a create: repeating it inserts another row")
        if kind in ("update", "delete") and ann.get("destructive") is False:
            self.add("warning", name, "/annotations/destructive", "annotation_contradiction",
                     f"destructive hint false on a {kind}, which overwrites or removes data")
        if kind not in WRITE_KINDS and ann.get("read_only") is False:
            self.add("info", name, "/annotations/read_only", "annotation_contradiction",
                     f"read_only hint false on a {kind} effect, which never writes")

    def examples(self, name: str, t: Mapping[str, Any], ins: Mapping[str, Any], outs: Mapping[str, Any],
                 codes: list[Any]) -> None:
        fc = self.fc
        vin = jsonschema.Draft202012Validator(ins, format_checker=fc)
        vout = jsonschema.Draft202012Validator(outs, format_checker=fc)
        for i, ex in enumerate(t.get("examples", []) or []):
            if not isinstance(ex, Mapping):
                continue
            args = ex.get("arguments")
            if isinstance(args, Mapping):
                args = {k: v for k, v in args.items() if v is not None}  # explicit nulls count as absent
            errs = list(vin.iter_errors(args))
            if errs and ex.get("error") is None:
                self.add("error", name, f"/examples/{i}/arguments", "example_invalid_arguments",
                         f"example {i} arguments fail the input schema: {errs[0].message}")
            if ex.get("result") is not None:
                errs = list(vout.iter_errors(ex["result"]))
                if errs:
                    self.add("error", name, f"/examples/{i}/result", "example_invalid_result",
                             f"example {i} result fails the output schema: {errs[0].message}")
            if ex.get("error") is not None and ex["error"] not in codes and ex["error"] not in ENGINE_CODES:
                self.add("warning", name, f"/examples/{i}/error", "example_unknown_error",
                         f"example {i} expects unknown error {ex['error']!r}")


def lint(toolset: Toolset | Mapping[str, Any]) -> list[LintFinding]:
    """Lint a toolset (a loaded `Toolset` or its raw JSON document); findings sorted errors first."""
    findings: list[LintFinding] = []
    if isinstance(toolset, Toolset):
        doc: Mapping[str, Any] = toolset.model_dump(mode="json")
    else:
        doc = toolset
        try:
            Toolset.model_validate(doc)
        except ValidationError as exc:
            for e in exc.errors():
                loc = "/" + "/".join(str(p) for p in e["loc"])
                findings.append(LintFinding(severity="error", tool=None, path=loc, code="spec_invalid",
                                            message=f"{loc}: {e['msg']}"))
    if not isinstance(doc, Mapping):
        return findings or [LintFinding(severity="error", path="", code="spec_invalid",
                                        message=f"a toolset is a JSON object, got {canonical_json(doc)[:40]}")]
    return findings + _Linter(doc).run()


def errors_only(findings: list[LintFinding]) -> list[LintFinding]:
    """The findings of severity `error`."""
    return [f for f in findings if f.severity == "error"]
