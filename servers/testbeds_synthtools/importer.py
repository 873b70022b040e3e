"""Import the SynthTools corpus (`tool_json`, `tool_meta`, `tool_yaml`, `task_meta`) into `Toolset`s.

One toolset per (field, N), id `<field>.<N>`. Per tool: parameters become `input_schema` (required list,
`additionalProperties: false`), `output_details` an `output_schema` (all keys required), error messages
`ErrorSpec`s (code = slug of the title, status by the title's class). Enums and ranges stated only in
prose are added to the schema and recorded as `Inferred` (with source and confidence); an inference that
rejects the tool's own default or one of its examples is dropped. Optional parameters' null-ish defaults
(`null`, `"None"`, `"null"`) mean "no default"; other string defaults on non-string parameters are parsed as
JSON and kept only if they then validate. `tool_meta` example calls attach to their tools after stripping a
stray undeclared key holding the title. The toolset YAML gives difficulty, budget, dependencies and plans;
`task_meta` environment data (toolset 43) becomes a state schema with seed rows (nested lists of objects
become child tables). Effects stay `compute` for every imported tool: the corpus has no state binding, and
we do not pretend to have one.

Everything is deterministic: files are read in sorted order and the output is byte-identical across runs.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from pydantic import BaseModel, ConfigDict, Field

from .names import slug, unique_names
from .spec import (
    Column,
    Dependency,
    ErrorSpec,
    Example,
    Inferred,
    Provenance,
    Source,
    StateSchema,
    Table,
    Tool,
    Toolset,
    Workflow,
    format_checker,
)

CORPUS = "namkoong-lab/SynthTools@64d4488"
_STEM = re.compile(r"^(?P<field>.+?)_tool_spec_(?P<n>\d+)__(?P<name>.+)$")
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml is ~30x faster on 573 files
_NULLISH = (None, "None", "null")


class ImportReport(BaseModel):
    """What the importer did, with counts (and a bounded sample of what could not be inferred)."""

    model_config = ConfigDict(extra="forbid")

    files: int = Field(0, description="tool_json files read.")
    toolsets: int = 0
    tools: int = 0
    fields: int = 0
    parameters: int = 0
    outputs: int = 0
    errors: int = 0
    errors_by_status: dict[str, int] = Field(default_factory=dict)
    inferred_enums: dict[str, int] = Field(default_factory=dict, description="Kept enum inferences by confidence.")
    inferred_ranges: dict[str, int] = Field(default_factory=dict, description="Kept range keywords by confidence.")
    dropped_inferences: int = Field(0, description="Inferences removed because a default or example rejected them.")
    dropped_by_reason: dict[str, int] = Field(default_factory=dict)
    not_inferable: dict[str, int] = Field(default_factory=dict, description="Prose hints we could not turn into "
                                          "a keyword, by reason.")
    not_inferable_sample: list[str] = Field(default_factory=list, description="Up to 50 examples of the above.")
    defaults_kept: int = 0
    defaults_nullish: int = Field(0, description="null / 'None' / 'null' defaults read as 'no default'.")
    defaults_parsed: int = Field(0, description="String defaults on non-string parameters parsed as JSON.")
    defaults_dropped: int = Field(0, description="Defaults that did not validate (after parsing) and were dropped.")
    examples_files: int = 0
    examples_attached: int = 0
    examples_rejected: int = 0
    examples_stray_keys_stripped: int = 0
    examples_rejected_detail: list[str] = Field(default_factory=list)
    examples_unmatched: int = Field(0, description="tool_meta files naming no tool of the corpus.")
    yaml_files: int = 0
    yaml_unparsed: int = 0
    workflows: dict[str, int] = Field(default_factory=dict, description="Plans by tier.")
    workflows_resolved: int = 0
    dependencies: int = 0
    budget_equals_tools: int = 0
    state_schemas: int = 0
    environments_unparsed: list[str] = Field(default_factory=list, description="task_meta files that do not parse.")
    environments_without_toolset: list[str] = Field(default_factory=list,
                                                    description="task_meta files naming no toolset of tool_json.")
    seconds: float = 0.0

    def note(self, reason: str, detail: str) -> None:
        """Count one prose hint that could not be inferred."""
        self.not_inferable[reason] = self.not_inferable.get(reason, 0) + 1
        if len(self.not_inferable_sample) < 50:
            self.not_inferable_sample.append(f"{reason}: {detail}")


@dataclass(frozen=True)
class CorpusEntry:
    """One toolset of the corpus: its id, field, number and tool file stems (sorted)."""

    toolset_id: str
    field: str
    n: int
    stems: tuple[str, ...]


def _bump(d: dict[str, int], key: str, by: int = 1) -> None:
    d[key] = d.get(key, 0) + by


def _read_tool_list(root: Path) -> dict[str, dict[str, Any]]:
    path = root / "tool_list.json"
    out: dict[str, dict[str, Any]] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                out[row["id"]] = row
    return out


def list_corpus(root: Path) -> list[CorpusEntry]:
    """The toolsets of the corpus at `root`, sorted by id (from the `tool_json` file names)."""
    groups: dict[tuple[str, int], list[str]] = {}
    for p in (Path(root) / "tool_json").glob("*.json"):
        m = _STEM.match(p.stem)
        if not m:
            raise ValueError(f"unexpected tool_json file name {p.name}")
        groups.setdefault((m["field"], int(m["n"])), []).append(p.stem)
    entries = [CorpusEntry(f"{f}.{n}", f, n, tuple(sorted(stems))) for (f, n), stems in groups.items()]
    return sorted(entries, key=lambda e: (e.field, e.n))


# ------------------------------------------------------------------------------------------- errors


_STATUS_RULES: list[tuple[int, re.Pattern[str]]] = [
    (429, re.compile(r"rate limit|quota|too many requests|throttl")),
    (401, re.compile(r"authenticat|credential|unauthori[sz]ed|\btoken\b|api key|login|session expired")),
    (403, re.compile(r"access|permission|forbidden|privilege")),
    (404, re.compile(r"not found|not exist|no such|doesn't exist|unknown \w+ id")),
    (409, re.compile(r"already|duplicate|conflict|\bexists\b|in use|locked")),
    (500, re.compile(r"system|server|internal|unavailable|time ?out|timed out|connection|service error|"
                     r"database error|outage")),
]


def error_status(title: str) -> int:
    """HTTP-like status of an error by its title's class: 429 rate, 401 auth, 403 access, 404 not found,
    409 conflict, 500 system; anything else is a 400 validation error."""
    low = title.lower()
    for status, pat in _STATUS_RULES:
        if pat.search(low):
            return status
    return 400


def _split_error(message: str) -> tuple[str, str]:
    title, sep, guidance = message.partition(":")
    if not sep:
        return message.strip(), ""
    return title.strip(), guidance.strip()


# --------------------------------------------------------------------------------------- inference

_ONE_OF = re.compile(r"one of\s*\[([^\]]*)\]", re.I)
_TOKEN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-./+#]*$")
_NUM = r"-?\d+(?:\.\d+)?"
_EXAMPLE_CUE = re.compile(r"(e\.g\.?|such as|for example|for instance|like|including|etc)\s*[:,]?\s*$", re.I)
_RANGE_PATTERNS = [
    re.compile(rf"between\s+({_NUM})\s*%?\s+and\s+({_NUM})", re.I),
    re.compile(rf"\(\s*({_NUM})\s*%?\s*(?:-|–|to)\s*({_NUM})\s*%?\s*\)", re.I),
    re.compile(rf"\brange\s*:?\s*(?:of\s+|from\s+)?({_NUM})\s*(?:-|–|to)\s*({_NUM})\b(?![-/])", re.I),
    re.compile(rf"\bfrom\s+({_NUM})\s+to\s+({_NUM})\b", re.I),
]
_BOUNDED_CUE = re.compile(r"\b(percent|percentage|probability|ratio|confidence|score|range\s+\S*\d)", re.I)
_MIN_PATTERN = re.compile(rf"\b(?:minimum|min\.?|at least)\s*(?:of|value|:)?\s*({_NUM})\b(?![-/])", re.I)
_MAX_PATTERN = re.compile(
    rf"\b(?:maximum|max\.?|at most|cannot exceed|must not exceed|not exceed)\s*(?:of|value|:)?\s*({_NUM})\b(?![-/])",
    re.I)


def _clean_value(v: str) -> str:
    return v.strip().strip("`'\"“”‘’").strip().rstrip(".").strip()


def _split_list(text: str) -> list[str] | None:
    """Split a prose value list `a, b, or c` / `a/b/c`; None unless every item looks like a token."""
    text = text.strip().rstrip(".").strip()
    parts = re.split(r"\s*,\s*(?:or\s+|and\s+)?|\s+or\s+|\s*/\s*|\s*\|\s*", text)
    items = [_clean_value(p) for p in parts if _clean_value(p)]
    if len(items) < 2 or not all(_TOKEN.match(i) and len(i) <= 40 for i in items):
        return None
    if all(re.fullmatch(_NUM, i) for i in items):
        return None  # numeric lists are ranges or examples, not string enums
    return list(dict.fromkeys(items))


def _description_list(desc: str) -> list[str] | None:
    """A value list in a description: after a colon at the end, or in parentheses."""
    m = re.search(r":\s*([^:()]+?)\s*\.?\s*$", desc)
    if m and not _EXAMPLE_CUE.search(desc[: m.start()]):
        found = _split_list(m.group(1))
        if found:
            return found
    for m in re.finditer(r"\(([^()]+)\)", desc):
        inner = m.group(1)
        if _EXAMPLE_CUE.search(desc[: m.start()]) or re.match(r"\s*(e\.g\.|i\.e\.|such as|for example)", inner, re.I):
            continue
        found = _split_list(inner)
        if found:
            return found
    return None


def _num(text: str) -> int | float:
    f = float(text)
    return int(f) if f.is_integer() and "." not in text else f


def _prose_range(text: str) -> tuple[int | float | None, int | float | None]:
    for pat in _RANGE_PATTERNS:
        m = pat.search(text)
        if m:
            lo, hi = _num(m.group(1)), _num(m.group(2))
            if lo < hi:
                return lo, hi
    lo_m, hi_m = _MIN_PATTERN.search(text), _MAX_PATTERN.search(text)
    return (_num(lo_m.group(1)) if lo_m else None), (_num(hi_m.group(1)) if hi_m else None)


def _name_forms(pname: str) -> tuple[str, str]:
    return pname.lower(), pname.lower().replace("_", " ")


def _tokens(text: str) -> set[str]:
    return {t.rstrip("s") for t in re.findall(r"[a-z0-9]+", text.lower()) if len(t) > 2}


def _match_param(text: str, values: list[str], candidates: dict[str, dict[str, Any]]) -> str | None:
    """The parameter an error's value list is about: name mentioned, shared words, values in its description."""
    low = text.lower()
    title_tokens = _tokens(_split_error(text)[0])
    best: tuple[float, str] | None = None
    for pname, p in candidates.items():
        score = 0.0
        if any(f in low for f in _name_forms(pname)):
            score += 4
        score += len(_tokens(pname.replace("_", " ")) & title_tokens)
        desc = p.get("description", "").lower()
        if values:
            score += 3 * sum(1 for v in values if v.lower() in desc) / len(values)
        if score > 0 and (best is None or score > best[0]):
            best = (score, pname)
    return best[1] if best else None


def _element_type(p: dict[str, Any]) -> str | None:
    return p.get("items", {}).get("type") if p.get("type") == "array" else p.get("type")


def _is_string_like(p: dict[str, Any]) -> bool:
    return _element_type(p) == "string"


def _is_numeric_like(p: dict[str, Any]) -> bool:
    return _element_type(p) in ("number", "integer")


# ------------------------------------------------------------------------------------------ tools


class _ToolBuilder:
    """Turns one tool_json document into a Tool, recording inferences and counts in the report."""

    def __init__(self, stem: str, doc: dict[str, Any], name: str, report: ImportReport):
        self.stem, self.doc, self.name, self.report = stem, doc, name, report
        self.inferred: list[Inferred] = []

    def build(self, raw_examples: list[tuple[str, dict[str, Any]]]) -> Tool:
        doc, report = self.doc, self.report
        title = doc["tool_name"]
        props: dict[str, dict[str, Any]] = {}
        required: list[str] = []
        for pname, p in doc["parameters"].items():
            props[pname] = self._param(pname, p)
            if p.get("required"):
                required.append(pname)
        report.parameters += len(props)
        input_schema: dict[str, Any] = {"type": "object", "properties": props, "required": required,
                                        "additionalProperties": False}
        outs = {k: self._output(o) for k, o in doc["output_details"].items()}
        report.outputs += len(outs)
        output_schema = {"type": "object", "properties": outs, "required": list(outs), "additionalProperties": False}

        messages = list(doc["error_messages"])
        codes = unique_names([(f"{i:04d}", _split_error(m)[0]) for i, m in enumerate(messages)])
        errors = []
        for i, m in enumerate(messages):
            t, g = _split_error(m)
            status = error_status(t)
            errors.append(ErrorSpec(code=codes[f"{i:04d}"], title=t, guidance=g, status=status))
            _bump(report.errors_by_status, str(status))
        report.errors += len(errors)

        self._infer_enums(props, messages)
        self._infer_ranges(props, messages)
        examples = self._examples(title, input_schema, output_schema, raw_examples)
        self._count_kept()
        return Tool(
            name=self.name, title=title, description=doc.get("tool_description", ""), usage=doc.get("usage", ""),
            input_schema=input_schema, output_schema=output_schema, errors=errors, examples=examples,
            inferred=self.inferred,
            source=Source(corpus="synthtools", id=self.stem, path=f"tool_json/{self.stem}.json", title=title),
        )

    # -- schemas

    def _param(self, pname: str, p: dict[str, Any]) -> dict[str, Any]:
        report = self.report
        s: dict[str, Any] = {"type": p["type"]}
        if p.get("description"):
            s["description"] = p["description"]
        for kw in ("items", "minItems", "maxItems", "format", "minimum", "maximum"):
            if kw in p:
                s[kw] = copy.deepcopy(p[kw])
        if "default" in p:
            d = p["default"]
            if d in _NULLISH:
                report.defaults_nullish += 1
            else:
                parsed = d
                if isinstance(d, str) and p["type"] != "string":
                    try:
                        parsed = json.loads(d)
                        report.defaults_parsed += 1
                    except ValueError:
                        parsed = _INVALID
                if parsed is not _INVALID and _valid(parsed, s):
                    s["default"] = parsed
                    report.defaults_kept += 1
                else:
                    report.defaults_dropped += 1
        return s

    @staticmethod
    def _output(o: dict[str, Any]) -> dict[str, Any]:
        s: dict[str, Any] = {"type": o["type"]}
        if o.get("description"):
            s["description"] = o["description"]
        for kw in ("items", "format"):
            if kw in o:
                s[kw] = copy.deepcopy(o[kw])
        return s

    # -- inference

    def _add(self, props: dict[str, Any], pname: str, keyword: str, value: Any, source: str, conf: str) -> None:
        target = props[pname]
        path = f"/properties/{pname}"
        if keyword == "enum" and target.get("type") == "array":
            target = target["items"]
            path += "/items"
        if keyword in target:
            return
        if "default" in props[pname] and not _valid(props[pname]["default"], {**target, keyword: value}
                                                    if target is props[pname] else
                                                    {**props[pname], "items": {**target, keyword: value}}):
            self._drop("default", f"{self.stem} {path} {keyword}")
            return
        target[keyword] = value
        self.inferred.append(Inferred(path=path, keyword=keyword, value=value, source=source, confidence=conf))

    def _drop(self, reason: str, detail: str) -> None:
        self.report.dropped_inferences += 1
        _bump(self.report.dropped_by_reason, reason)

    def _infer_enums(self, props: dict[str, dict[str, Any]], messages: list[str]) -> None:
        candidates = {k: v for k, v in props.items() if _is_string_like(v)}
        numeric = {k: v for k, v in props.items() if _is_numeric_like(v)}
        for i, m in enumerate(messages):
            for hit in _ONE_OF.finditer(m):
                values: list[Any] = list(dict.fromkeys(
                    v for v in (_clean_value(x) for x in hit.group(1).split(",")) if v))
                if len(values) < 1:
                    continue
                if all(re.fullmatch(_NUM, v) for v in values):
                    pname = _match_param(m, [], numeric)
                    values = [_num(v) for v in values]
                    if pname is not None and _element_type(props[pname]) == "integer" and not all(
                            float(v).is_integer() for v in values):
                        pname = None
                else:
                    pname = _match_param(m, values, candidates)
                if pname is None:
                    self.report.note("enum_error_unmatched", f"{self.stem} error:{i} {m[:80]}")
                    continue
                self._add(props, pname, "enum", values, f"error:{i}", "high")
        for pname, p in candidates.items():
            found = _description_list(p.get("description", ""))
            if found:
                self._add(props, pname, "enum", found, "description", "medium")

    def _infer_ranges(self, props: dict[str, dict[str, Any]], messages: list[str]) -> None:
        for pname, p in props.items():
            if p["type"] not in ("number", "integer") or "minimum" in p or "maximum" in p:
                continue
            lo, hi = _prose_range(p.get("description", ""))
            src, conf = "description", "medium"
            if lo is None and hi is None:
                forms = _name_forms(pname)
                for i, m in enumerate(messages):
                    if any(f in m.lower() for f in forms):
                        lo, hi = _prose_range(m)
                        if lo is not None or hi is not None:
                            src, conf = f"error:{i}", "high"
                            break
            if lo is not None and hi is not None and lo > hi:
                self.report.note("range_inconsistent", f"{self.stem} {pname} {lo}>{hi}")
                continue
            if lo is not None:
                self._add(props, pname, "minimum", lo, src, conf)
            if hi is not None:
                self._add(props, pname, "maximum", hi, src, conf)
            if lo is None and hi is None and _BOUNDED_CUE.search(p.get("description", "")):
                self.report.note("range_not_inferable", f"{self.stem} {pname}: {p.get('description', '')[:80]}")

    def _count_kept(self) -> None:
        for inf in self.inferred:
            if inf.keyword == "enum":
                _bump(self.report.inferred_enums, inf.confidence)
            else:
                _bump(self.report.inferred_ranges, inf.confidence)

    # -- examples

    def _examples(self, title: str, input_schema: dict[str, Any], output_schema: dict[str, Any],
                  raw: list[tuple[str, dict[str, Any]]]) -> list[Example]:
        report = self.report
        out: list[Example] = []
        props = input_schema["properties"]
        for fname, doc in raw:
            args = dict(doc.get("Tool Call") or {})
            for k in [k for k, v in args.items() if k not in props and v == title]:
                del args[k]
                report.examples_stray_keys_stripped += 1
            result = doc.get("Return Data")
            # an example is evidence: inferred keywords it contradicts were wrong
            for pname, value in args.items():
                if pname in props:
                    self._drop_contradicted(props, pname, value, fname)
            errs = _errors(input_schema, args) + (_errors(output_schema, result) if isinstance(result, dict)
                                                  else ["Return Data is not an object"])
            if errs:
                report.examples_rejected += 1
                report.examples_rejected_detail.append(f"tool_meta/{fname}: {errs[0]}")
                continue
            out.append(Example(arguments=args, result=result, source=f"tool_meta/{fname}"))
            report.examples_attached += 1
        return out

    def _drop_contradicted(self, props: dict[str, Any], pname: str, value: Any, fname: str) -> None:
        for inf in list(self.inferred):
            if inf.path not in (f"/properties/{pname}", f"/properties/{pname}/items"):
                continue
            target = props[pname]["items"] if inf.path.endswith("/items") else props[pname]
            values = value if inf.path.endswith("/items") and isinstance(value, list) else [value]
            if all(_valid(v, {inf.keyword: inf.value}) for v in values):
                continue
            del target[inf.keyword]
            self.inferred.remove(inf)
            self._drop("example", f"{fname} {inf.path} {inf.keyword}")


_INVALID = object()
_FORMATS = format_checker(lenient_dates=True)


_FAST_KEYWORDS = frozenset({"type", "description", "default", "enum", "minimum", "maximum", "items", "minItems",
                            "maxItems", "format", "properties", "required", "additionalProperties"})
_TYPES: dict[str, Any] = {
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer()),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
    "null": lambda v: v is None,
}


def _valid(value: Any, schema: dict[str, Any]) -> bool:
    """JSON Schema validity for the small keyword set the corpus uses, without building a validator per call
    (the import checks ~20,000 defaults and values); anything else goes to jsonschema. Tests cross-check."""
    if not _FAST_KEYWORDS.issuperset(schema):
        return jsonschema.Draft202012Validator(schema, format_checker=_FORMATS).is_valid(value)
    t = schema.get("type")
    if t is not None and not _TYPES[t](value):
        return False
    if "enum" in schema and not any(value == e and type(value) is type(e) or (
            _TYPES["number"](value) and _TYPES["number"](e) and value == e) for e in schema["enum"]):
        return False
    if _TYPES["number"](value):
        if "minimum" in schema and value < schema["minimum"]:
            return False
        if "maximum" in schema and value > schema["maximum"]:
            return False
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            return False
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            return False
        if "items" in schema and not all(_valid(v, schema["items"]) for v in value):
            return False
    if isinstance(value, str) and schema.get("format") == "date-time" and not _FORMATS.conforms(value, "date-time"):
        return False
    if isinstance(value, dict):
        props = schema.get("properties", {})
        if any(k not in value for k in schema.get("required", [])):
            return False
        if schema.get("additionalProperties") is False and any(k not in props for k in value):
            return False
        if not all(_valid(v, props[k]) for k, v in value.items() if k in props):
            return False
    return True


def _errors(schema: dict[str, Any], value: Any) -> list[str]:
    if _valid(value, schema):
        return []
    v = jsonschema.Draft202012Validator(schema, format_checker=_FORMATS)
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in v.iter_errors(value)]


# ------------------------------------------------------------------------------------------- yaml

_DEP_LINE = re.compile(r"^\s*(?:\d+\.|[-*])\s*\*{0,2}([^*\n]+?)\*{0,2}\s*(?:[-–—:→]|->)\s*(.*)$")
_TIER = re.compile(r"\b(simple|medium|complex)\b", re.I)


def _norm_title(s: str) -> str:
    return re.sub(r"[^a-z0-9]", "", s.lower())


def _section(text: str, step: int) -> str:
    m = re.search(rf"STEP {step}\b(.*?)(?=STEP {step + 1}\b|\Z)", text, re.S)
    return m.group(1) if m else ""


def _parse_yaml_plan(text: str, by_title: dict[str, str], report: ImportReport) -> tuple[
        str | None, int | None, list[Dependency], list[Workflow]]:
    step1, step2, step3, step4 = (_section(text, i) for i in (1, 2, 3, 4))
    dm = re.search(r"\b(easy|medium|hard)\b", step1, re.I)
    difficulty = dm.group(1).lower() if dm else None
    bm = re.search(r"(?<![-–\d])\b(\d{1,2})\s+tools\b", step2)
    budget = int(bm.group(1)) if bm else None

    deps: list[Dependency] = []
    for line in step3.splitlines():
        m = _DEP_LINE.match(line)
        if not m or "**" not in line and "consume" not in line.lower():
            continue
        title = m.group(1).strip().strip("*").strip()
        rest = m.group(2)
        cm = re.search(r"consumes?:?\s*(.*?)(?:→|->|,\s*produces|;|$)", rest, re.I)
        pm = re.search(r"produces?:?\s*(.*)$", rest, re.I)
        consumes = _items(cm.group(1)) if cm else []
        produces = _items(pm.group(1)) if pm else []
        deps.append(Dependency(title=title, tool=by_title.get(_norm_title(title)), consumes=consumes,
                               produces=produces))

    flows: list[Workflow] = []
    tier: str | None = None
    for line in step4.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        is_item = re.match(r"^(?:\d+\.|[-*])\s+", stripped) and not re.match(r"^\*\*[^*]+\*\*:?$", stripped)
        if not is_item:
            tm = _TIER.search(stripped)
            if tm and len(stripped) < 60:
                tier = tm.group(1).lower()
            continue
        if tier is None:
            continue
        body = re.sub(r"^(?:\d+\.|[-*])\s+", "", stripped).replace("**", "")
        arrow = "→" if "→" in body else "->" if "->" in body else None
        if arrow is None:
            continue
        label, chain = "", body
        paren = re.search(r"\(([^()]*" + re.escape(arrow) + r"[^()]*)\)", body)
        if paren:
            label, chain = body[: paren.start()].strip(" :"), paren.group(1)
        elif ":" in body.split(arrow)[0]:
            label, _, chain = body.partition(":")
        steps = [s.strip() for s in chain.split(arrow)]
        steps = [re.sub(r"\s*\([^)]*\)\s*$", "", s).strip(" .:") for s in steps]
        steps = [re.sub(r"^.*\bthrough\s+", "", s) for s in steps if s]
        tools = [by_title[_norm_title(s)] for s in steps if _norm_title(s) in by_title]
        flows.append(Workflow(tier=tier, label=label.strip(), steps=steps, tools=tools,  # type: ignore[arg-type]
                              resolved=bool(steps) and len(tools) == len(steps)))
    return difficulty, budget, deps, flows


def _items(text: str) -> list[str]:
    text = text.strip().rstrip(".").strip()
    return [t.strip() for t in re.split(r",\s*|\s+\+\s+|\s+and\s+", text) if t.strip()]


# ----------------------------------------------------------------------------------- environments

_MONEY = re.compile(r"(^|_)(price|amount|cost|total|subtotal|balance|refund)($|_)")
_DATEISH = re.compile(r"^\d{4}-\d{2}-\d{2}([Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:\d{2})?)?$")


def _column_type(values: list[Any]) -> str:
    vals = [v for v in values if v is not None]
    if not vals:
        return "string"
    if all(isinstance(v, bool) for v in vals):
        return "boolean"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in vals):
        return "integer"
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in vals):
        return "number"
    if all(isinstance(v, str) for v in vals):
        return "date-time" if all(_DATEISH.match(v) for v in vals) else "string"
    return "json"


def _pick_key(rows: list[dict[str, Any]]) -> str:
    cols = list(dict.fromkeys(k for r in rows for k in r))
    def unique(c: str) -> bool:
        vals = [r.get(c) for r in rows]
        return all(isinstance(v, str | int) for v in vals) and len(set(vals)) == len(vals)
    for c in cols:
        if c.endswith("_id") and unique(c):
            return c
    for c in cols:
        if unique(c):
            return c
    return ""


def environment_schema(data: dict[str, Any]) -> tuple[StateSchema, list[str]]:
    """A state schema with seed rows from SynthTools environment `data` (lists of objects -> tables; a map of
    objects -> a table keyed by the map key; nested lists of objects -> child tables). Returns notes on
    what could not be represented."""
    notes: list[str] = []
    tables: dict[str, list[dict[str, Any]]] = {}
    keys: dict[str, str] = {}
    parents: dict[str, str] = {}
    all_values: dict[str, set[str]] = {}
    for tname, v in data.items():
        if isinstance(v, list) and v and all(isinstance(r, dict) for r in v):
            for r in v:
                for c, x in r.items():
                    if isinstance(x, str):
                        all_values.setdefault(c, set()).add(x)
    for tname, v in data.items():
        name = slug(tname, prefix="t", fallback="table", max_len=63)
        if isinstance(v, dict) and v and all(isinstance(r, dict) for r in v.values()):
            keycol = next((c for c, vals in sorted(all_values.items()) if set(v) <= vals), "key")
            rows = [{keycol: k, **r} for k, r in v.items()]
            tables[name], keys[name] = rows, keycol
        elif isinstance(v, list) and v and all(isinstance(r, dict) for r in v):
            key = _pick_key(v)
            if not key:
                notes.append(f"{tname}: no unique key column; skipped")
                continue
            rows = []
            for r in v:
                row = {}
                for c, x in r.items():
                    if isinstance(x, list) and x and all(isinstance(i, dict) for i in x):
                        child = slug(f"{name}_{c}", max_len=63)
                        parents[child] = f"{name}.{c}"
                        ck = f"{child}_id"
                        keys[child] = ck
                        for j, item in enumerate(x, start=1):
                            tables.setdefault(child, []).append(
                                {ck: f"{r[key]}-{j}", key: r[key], "position": j, **item})
                    else:
                        row[c] = x
                rows.append(row)
            tables[name], keys[name] = rows, key
        else:
            notes.append(f"{tname}: not a list or map of objects; not represented")
    ordered = sorted(tables, key=lambda t: (t in parents, list(tables).index(t)))
    out: list[Table] = []
    for t in ordered:
        rows = tables[t]
        cols_order = list(dict.fromkeys(k for r in rows for k in r))
        columns: dict[str, Column] = {}
        for c in cols_order:
            vals = [r.get(c) for r in rows]
            ctype = _column_type(vals)
            money = 2 if ctype in ("number", "integer") and _MONEY.search(c) else None
            ref = None
            for other, okey in keys.items():
                if other != t and c == okey and okey.endswith("_id") and c != keys[t]:
                    ref = f"{other}.{okey}"
            columns[slug(c, max_len=63)] = Column(type=ctype, money_scale=money, ref=ref,  # type: ignore[arg-type]
                                                  nullable=c != keys[t])
        seed = [{slug(k, max_len=63): v for k, v in r.items()} for r in rows]
        out.append(Table(name=t, key=keys[t], columns=columns, seed_rows=seed, parent=parents.get(t)))
    return StateSchema(tables=out), notes


def _load_environment(root: Path, field: str, n: int, report: ImportReport) -> tuple[StateSchema | None, list[str]]:
    path = root / "task_meta" / f"{field}_tool_spec_{n}.environment.yml"
    if not path.exists():
        return None, []
    try:
        outer = yaml.load(path.read_text(encoding="utf-8"), Loader=_YAML_LOADER)
        inner = yaml.load(outer["tool_set_yml"], Loader=_YAML_LOADER)
        data = inner["data"]
        if not isinstance(data, dict):
            raise ValueError("no data mapping")
    except Exception as exc:  # noqa: BLE001 - any parse failure means "no environment", reported
        report.environments_unparsed.append(f"{path.name}: {type(exc).__name__}")
        return None, [f"task_meta/{path.name} does not parse ({type(exc).__name__}); no state schema"]
    schema, notes = environment_schema(data)
    report.state_schemas += 1
    return schema, [f"task_meta/{path.name}: {x}" for x in notes]


# ------------------------------------------------------------------------------------------ driver


class _Corpus:
    """Raw corpus files read once (per root) so several imports share the I/O."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.entries = list_corpus(self.root)
        self.tool_list = _read_tool_list(self.root)
        self.meta: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        meta_dir = self.root / "tool_meta"
        if meta_dir.exists():
            for p in sorted(meta_dir.glob("*__output.json")):
                stem = p.name[: -len("__output.json")]
                self.meta.setdefault(stem, []).append((p.name, json.loads(p.read_text(encoding="utf-8"))))
        self._docs: dict[str, dict[str, Any]] = {}
        self._yaml: dict[Path, Any] = {}

    def doc(self, stem: str) -> dict[str, Any]:
        """The parsed tool_json document of `stem` (read once; callers must not mutate it)."""
        if stem not in self._docs:
            self._docs[stem] = json.loads((self.root / "tool_json" / f"{stem}.json").read_text(encoding="utf-8"))
        return self._docs[stem]

    def yaml(self, path: Path) -> Any:
        """The parsed YAML at `path` (read once), or the YAMLError it raised."""
        if path not in self._yaml:
            try:
                self._yaml[path] = yaml.load(path.read_text(encoding="utf-8"), Loader=_YAML_LOADER) or {}
            except yaml.YAMLError as exc:
                self._yaml[path] = exc
        return self._yaml[path]


def _seed(toolset_id: str) -> int:
    return int.from_bytes(hashlib.sha256(toolset_id.encode()).digest()[:4], "big")


def _build(corpus: _Corpus, entry: CorpusEntry, report: ImportReport, reserved: frozenset[str]) -> Toolset:
    root = corpus.root
    docs: dict[str, dict[str, Any]] = {}
    for stem in entry.stems:
        docs[stem] = corpus.doc(stem)
    report.files += len(docs)
    names = unique_names([(stem, d["tool_name"]) for stem, d in docs.items()], reserved)
    tools = [_ToolBuilder(stem, docs[stem], names[stem], report).build(corpus.meta.get(stem, []))
             for stem in entry.stems]
    report.tools += len(tools)
    report.examples_files += sum(len(corpus.meta.get(s, [])) for s in entry.stems)

    meta = corpus.tool_list.get(entry.stems[0], {})
    notes: list[str] = []
    difficulty = budget = None
    deps: list[Dependency] = []
    flows: list[Workflow] = []
    yaml_path = root / "tool_yaml" / f"{entry.field}_tool_spec_{entry.n}.yml"
    ydoc: dict[str, Any] = {}
    if yaml_path.exists():
        report.yaml_files += 1
        loaded = corpus.yaml(yaml_path)
        if isinstance(loaded, dict):
            ydoc = loaded
            by_title = {_norm_title(t.title): t.name for t in tools}
            difficulty, budget, deps, flows = _parse_yaml_plan(str(ydoc.get("tool_description", "")), by_title,
                                                               report)
        else:
            report.yaml_unparsed += 1
            notes.append(f"tool_yaml does not parse: {type(loaded).__name__}")
    for w in flows:
        _bump(report.workflows, w.tier)
        report.workflows_resolved += w.resolved
    report.dependencies += len(deps)
    report.budget_equals_tools += budget == len(tools)
    state, env_notes = _load_environment(root, entry.field, entry.n, report)
    notes.extend(env_notes)
    task = str(meta.get("task") or ydoc.get("task") or "")
    return Toolset(
        id=entry.toolset_id, title=task, field=entry.field, sub_field=str(meta.get("subfield") or ""),
        task=task, description=task, seed=_seed(entry.toolset_id),
        provenance=Provenance(origin="synthtools", corpus=CORPUS, source_ids=list(entry.stems), notes=notes),
        difficulty=difficulty, tool_budget=budget, lenient_dates=True, workflows=flows, dependencies=deps,
        state_schema=state, tools=tools,
    )


_CACHE: dict[Path, _Corpus] = {}


def _corpus(root: Path) -> _Corpus:
    key = Path(root).resolve()
    if key not in _CACHE:
        _CACHE[key] = _Corpus(key)
    return _CACHE[key]


def import_corpus(root: Path, reserved: frozenset[str] | set[str] = frozenset()) -> tuple[list[Toolset], ImportReport]:
    """Import every toolset of the corpus at `root` (sorted by field, N); names avoid `reserved`."""
    t0 = time.perf_counter()
    corpus = _corpus(root)
    report = ImportReport()
    toolsets = [_build(corpus, e, report, frozenset(reserved)) for e in corpus.entries]
    report.toolsets = len(toolsets)
    report.fields = len({t.field for t in toolsets})
    report.examples_unmatched = sum(len(v) for k, v in corpus.meta.items() if not any(
        k in e.stems for e in corpus.entries))
    known = {e.toolset_id for e in corpus.entries}
    for p in sorted((corpus.root / "task_meta").glob("*.environment.yml")):
        m = re.match(r"^(.+?)_tool_spec_(\d+)\.environment\.yml$", p.name)
        if m and f"{m[1]}.{m[2]}" not in known:
            report.environments_without_toolset.append(p.name)
            _load_environment(corpus.root, m[1], int(m[2]), report)
    report.seconds = round(time.perf_counter() - t0, 3)
    return toolsets, report


def import_toolset(root: Path, toolset_id: str, reserved: frozenset[str] | set[str] = frozenset()) -> Toolset:
    """Import one toolset by id `<field>.<N>` (KeyError if the corpus has none)."""
    corpus = _corpus(root)
    for e in corpus.entries:
        if e.toolset_id == toolset_id:
            return _build(corpus, e, ImportReport(), frozenset(reserved))
    raise KeyError(toolset_id)


def summary_counts(toolsets: list[Toolset]) -> Counter[str]:
    """Counts to compare with the design's corpus table (toolsets, tools, fields, pairs, tasks)."""
    c: Counter[str] = Counter()
    c["toolsets"] = len(toolsets)
    c["tools"] = sum(len(t.tools) for t in toolsets)
    c["fields"] = len({t.field for t in toolsets})
    c["field_subfield_pairs"] = len({(t.field, t.sub_field) for t in toolsets})
    c["tasks"] = len({(t.field, t.sub_field, t.task) for t in toolsets})
    return c
