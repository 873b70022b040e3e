"""The deterministic gateway: checks one call in a fixed order and returns the first failure.

Order (design §4), parameters in spec order within each stage:

1. `tool` - unknown tool name (checked before anything about the arguments, so a wrong name is always
   reported as such); then `arguments` - the arguments are not a JSON object at all;
2. `unknown_parameter` - an argument the schema does not declare;
3. `missing_required` - a required parameter absent (or passed as `null`);
4. `type` - JSON type of each argument (booleans are not numbers; `integer` accepts `3.0`);
5. `items` - array item types, `minItems` / `maxItems`, and the hard cap of `MAX_ARRAY_ITEMS` per array;
6. `enum_range` - per parameter, in spec order: `enum`, `minimum` / `maximum`, then the remaining JSON Schema
   keywords (`pattern`, `minLength` / `maxLength`, formats other than date-time, ...);
7. `date_time` - `format: date-time` (imported toolsets also accept `YYYY-MM-DD`);
8. `constraint` - the tool's cross-field `constraints`;
9. `when` - the spec errors' `when` predicates.

Effect preconditions (missing row 404, duplicate or bad transition 409) come next and belong to the engine,
which owns the database. An optional parameter passed as `null` counts as absent (clients often send
explicit nulls); defaults are applied only after every check passed. A broken enum or range returns the
spec's own error when one is about that parameter (its inference source, or an `Invalid ...` error naming
it), so callers see the tool's documented message.
"""

from __future__ import annotations

import copy
import difflib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import rules
from .spec import ErrorSpec, Tool, Toolset, is_datetime, schema_validator

MAX_ARRAY_ITEMS = 10_000
"""Items one array argument may hold, whatever its schema says: bounds the work a single call can cause."""

STAGES: tuple[str, ...] = ("tool", "arguments", "unknown_parameter", "missing_required", "type", "items",
                           "enum_range", "date_time", "constraint", "when")
"""Gateway stages in check order (`arguments`: the arguments are not a JSON object at all)."""


@dataclass(frozen=True)
class Failure:
    """A failed check: HTTP-like status, stable code, message shown to the caller, stage, spec error if any."""

    status: int
    code: str
    message: str
    stage: str
    error: ErrorSpec | None = None


@dataclass
class Checked:
    """A call that passed the gateway: the tool, arguments with defaults applied, names the caller gave."""

    tool: Tool
    arguments: dict[str, Any]
    given: frozenset[str] = field(default_factory=frozenset)


def spec_failure(err: ErrorSpec, stage: str) -> Failure:
    """The failure for the spec's own error, in SynthTools' `Title: guidance` form."""
    msg = f"{err.title}: {err.guidance}" if err.guidance else err.title
    return Failure(status=err.status, code=err.code, message=msg, stage=stage, error=err)


def json_type(v: Any) -> str:
    """JSON type name of a Python value as decoded from JSON (floats are `number`, ints `integer`)."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list | tuple):
        return "array"
    if isinstance(v, dict):
        return "object"
    return type(v).__name__


def type_ok(v: Any, t: str) -> bool:
    """Whether `v` has JSON Schema type `t` (integer accepts integral floats; booleans are not numbers)."""
    if t == "integer":
        return (isinstance(v, int) and not isinstance(v, bool)) or (
            isinstance(v, float) and math.isfinite(v) and v.is_integer())
    if t == "number":
        return (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and math.isfinite(v))
    if t == "string":
        return isinstance(v, str)
    if t == "boolean":
        return isinstance(v, bool)
    if t == "array":
        return isinstance(v, list)
    if t == "object":
        return isinstance(v, dict)
    if t == "null":
        return v is None
    return True


def _types(schema: Mapping[str, Any]) -> list[str]:
    t = schema.get("type")
    if t is None:
        return []
    return [t] if isinstance(t, str) else list(t)


def _fmt(v: Any) -> str:
    if isinstance(v, str):
        return repr(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    return "null" if v is None else str(v)


def _got(v: Any) -> str:
    if isinstance(v, float) and not math.isfinite(v):
        return "non-finite number"
    return json_type(v)


def _normalise(v: Any, schema: Mapping[str, Any]) -> Any:
    """Integral floats under `integer` become ints, so keys, seeds and storage see one spelling."""
    types = _types(schema)
    if "integer" in types and isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, list) and isinstance(schema.get("items"), dict):
        return [_normalise(x, schema["items"]) for x in v]
    return v


class _ToolPlan:
    """Per-tool lookups computed once: properties in order, required set, spec errors per parameter."""

    def __init__(self, tool: Tool, lenient_dates: bool):
        self.tool = tool
        self.props: dict[str, dict[str, Any]] = dict(tool.input_schema.get("properties", {}))
        self.required: list[str] = [p for p in self.props if p in set(tool.input_schema.get("required", []))]
        self.additional = tool.input_schema.get("additionalProperties", True) is not False
        self.lenient = lenient_dates
        self.validators = {p: schema_validator(s, lenient_dates) for p, s in self.props.items()}
        self.constraints = [(c, rules.parse(c.rule)) for c in tool.constraints]
        self.whens = [(e, rules.parse(e.when)) for e in tool.errors if e.when is not None]

    def spec_error(self, pname: str, keywords: tuple[str, ...]) -> ErrorSpec | None:
        """The spec's own error about `pname` breaking one of `keywords`, if the spec has one."""
        tool = self.tool
        for inf in tool.inferred:
            if inf.path in (f"/properties/{pname}", f"/properties/{pname}/items") and inf.keyword in keywords \
                    and inf.source.startswith("error:"):
                i = int(inf.source.split(":", 1)[1])
                if 0 <= i < len(tool.errors):
                    return tool.errors[i]
        forms = (pname.lower(), pname.lower().replace("_", " "))
        for e in tool.errors:
            text = f"{e.title} {e.guidance}".lower()
            if e.status == 400 and e.title.lower().startswith("invalid") and any(f in text for f in forms):
                return e
        return None


class Gateway:
    """Checks calls against one toolset. Never raises on any JSON input; returns `Checked` or `Failure`."""

    def __init__(self, toolset: Toolset):
        self.toolset = toolset
        self._plans = {t.name: _ToolPlan(t, toolset.lenient_dates) for t in toolset.tools}

    def tool_names(self) -> list[str]:
        """Tool names in toolset order."""
        return [t.name for t in self.toolset.tools]

    def check(self, tool_name: Any, arguments: Any,
              bind: Callable[[Tool, dict[str, Any]], Mapping[str, Any]] | None = None) -> Checked | Failure:
        """Run every stage on one call. `bind(tool, arguments)` supplies the rule environment besides the
        arguments (`row`, `now`, ...) for the constraint and `when` stages; arguments seen there already carry
        their defaults. Returns the first failure, or the checked call with defaults applied."""
        plan = self._plans.get(tool_name) if isinstance(tool_name, str) else None
        if plan is None:
            return self._unknown_tool(tool_name)
        if not isinstance(arguments, dict):
            return Failure(400, "invalid_arguments",
                           f"Invalid arguments: expected a JSON object, got {_got(arguments)}. Pass the parameters "
                           "as an object of name -> value.", "arguments")
        failure = self.check_schema(plan, arguments)
        if failure is not None:
            return failure
        args = self._with_defaults(plan, arguments)
        needs_env = bind is not None and (plan.constraints or plan.whens)
        env: dict[str, Any] = dict(bind(plan.tool, args)) if needs_env else {}  # type: ignore[misc]
        env.update(args)
        failure = self.check_rules(plan, env)
        if failure is not None:
            return failure
        given = frozenset(k for k, v in arguments.items() if v is not None)
        return Checked(tool=plan.tool, arguments=args, given=given)

    # -- stages

    def _unknown_tool(self, name: Any) -> Failure:
        names = self.tool_names()
        hint = ""
        if isinstance(name, str):
            close = difflib.get_close_matches(name, names, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
        return Failure(404, "unknown_tool",
                       f"Unknown tool: {_fmt(name) if not isinstance(name, str) else name}.{hint} "
                       f"Available tools: {', '.join(names)}.", "tool")

    def check_schema(self, plan: _ToolPlan, arguments: dict[str, Any]) -> Failure | None:
        """Stages 2-7 (unknown parameter .. date-time) for one tool's arguments."""
        props = plan.props
        if not plan.additional:
            for name in sorted(k for k in arguments if k not in props):
                close = difflib.get_close_matches(name, list(props), n=1)
                hint = f" Did you mean '{close[0]}'?" if close else ""
                return Failure(400, "unknown_parameter",
                               f"Unknown parameter: {name}.{hint} Valid parameters: {', '.join(props) or 'none'}.",
                               "unknown_parameter")
        present = {k: v for k, v in arguments.items() if v is not None and k in props}
        for name in plan.required:
            if name not in present:
                s = props[name]
                desc = s.get("description", "").strip()
                t = "/".join(_types(s)) or "any"
                return Failure(400, "missing_required",
                               f"Missing required parameter: {name} ({t})" + (f": {desc}" if desc else ""),
                               "missing_required")
        for name, s in props.items():
            if name in present:
                types = _types(s)
                v = present[name]
                if types and not any(type_ok(v, t) for t in types):
                    return Failure(400, "invalid_type",
                                   f"Invalid type for {name}: expected {' or '.join(types)}, got {_got(v)}", "type")
        for name, s in props.items():
            if name in present and isinstance(present[name], list):
                f = self._items(name, s, present[name])
                if f is not None:
                    return f
        for name, s in props.items():
            if name in present:
                f = self._enum_range(plan, name, s, present[name]) or self._rest(plan, name, present[name])
                if f is not None:
                    return f
        for name, s in props.items():
            if name in present:
                f = self._date_time(plan, name, s, present[name])
                if f is not None:
                    return f
        return None

    def _items(self, name: str, s: Mapping[str, Any], v: list[Any]) -> Failure | None:
        if len(v) > MAX_ARRAY_ITEMS:
            return Failure(400, "too_many_items",
                           f"Too many items for {name}: at most {MAX_ARRAY_ITEMS} items are accepted per array, "
                           f"got {len(v)}. Split the work over several calls.", "items")
        lo, hi = s.get("minItems"), s.get("maxItems")
        items = s.get("items")
        if isinstance(items, dict):
            types = _types(items)
            for i, x in enumerate(v):
                if types and not any(type_ok(x, t) for t in types):
                    return Failure(400, "invalid_item_type",
                                   f"Invalid type for {name}[{i}]: expected {' or '.join(types)}, got {_got(x)}",
                                   "items")
                if isinstance(x, list) and "array" in types:
                    f = self._items(f"{name}[{i}]", items, x)
                    if f is not None:
                        return f
        if isinstance(lo, int) and len(v) < lo:
            return Failure(400, "too_few_items",
                           f"Too few items for {name}: expected at least {lo}, got {len(v)}", "items")
        if isinstance(hi, int) and len(v) > hi:
            return Failure(400, "too_many_items",
                           f"Too many items for {name}: expected at most {hi}, got {len(v)}", "items")
        return None

    def _enum_range(self, plan: _ToolPlan, name: str, s: Mapping[str, Any], v: Any) -> Failure | None:
        if isinstance(v, list) and isinstance(s.get("items"), dict):
            for i, x in enumerate(v):
                f = self._scalar_enum_range(plan, name, f"{name}[{i}]", s["items"], x)
                if f is not None:
                    return f
            return None
        return self._scalar_enum_range(plan, name, name, s, v)

    def _scalar_enum_range(self, plan: _ToolPlan, pname: str, label: str, s: Mapping[str, Any],
                           v: Any) -> Failure | None:
        enum = s.get("enum")
        if isinstance(enum, list) and not any(_same(v, e) for e in enum):
            err = plan.spec_error(pname, ("enum",))
            if err is not None:
                return spec_failure(err, "enum_range")
            return Failure(400, "invalid_enum",
                           f"Invalid value for {label}: {_fmt(v)}. Use one of [{', '.join(map(str, enum))}]",
                           "enum_range")
        if isinstance(v, int | float) and not isinstance(v, bool):
            bounds = [("minimum", lambda a, b: a < b, "below the minimum"),
                      ("exclusiveMinimum", lambda a, b: a <= b, "not above the exclusive minimum"),
                      ("maximum", lambda a, b: a > b, "above the maximum"),
                      ("exclusiveMaximum", lambda a, b: a >= b, "not below the exclusive maximum")]
            for kw, bad, words in bounds:
                b = s.get(kw)
                if isinstance(b, int | float) and not isinstance(b, bool) and bad(v, b):
                    err = plan.spec_error(pname, ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"))
                    if err is not None:
                        return spec_failure(err, "enum_range")
                    lo, hi = s.get("minimum"), s.get("maximum")
                    rng = f" Use a value between {lo} and {hi}." if lo is not None and hi is not None else ""
                    return Failure(400, "out_of_range",
                                   f"Value out of range for {label}: {_fmt(v)} is {words} {b}.{rng}", "enum_range")
        return None

    def _date_time(self, plan: _ToolPlan, name: str, s: Mapping[str, Any], v: Any) -> Failure | None:
        values = [(name, s, v)]
        if isinstance(v, list) and isinstance(s.get("items"), dict):
            values = [(f"{name}[{i}]", s["items"], x) for i, x in enumerate(v)]
        for label, sch, x in values:
            if sch.get("format") == "date-time" and isinstance(x, str) and not is_datetime(x, lenient=plan.lenient):
                alt = " or a date such as 2025-03-15" if plan.lenient else ""
                return Failure(400, "invalid_date_time",
                               f"Invalid date-time for {label}: {_fmt(x)}. Use an RFC 3339 date-time such as "
                               f"2025-03-15T10:00:00Z{alt}", "date_time")
        return None

    def _rest(self, plan: _ToolPlan, name: str, v: Any) -> Failure | None:
        """Keywords the stages above do not name (pattern, lengths, uniqueItems, ...): jsonschema decides.
        Date-time format errors are left to the later `date_time` stage, which owns their message."""
        try:
            errors = [e for e in plan.validators[name].iter_errors(v)
                      if not (e.validator == "format" and e.validator_value == "date-time")]
        except Exception as exc:  # noqa: BLE001 - a broken schema keyword must not crash the gateway
            return Failure(400, "invalid_value", f"Invalid value for {name}: {type(exc).__name__}", "enum_range")
        for e in errors:
            where = name + "".join(f"[{p}]" for p in e.absolute_path)
            return Failure(400, "invalid_value", f"Invalid value for {where}: {e.message}", "enum_range")
        return None

    @staticmethod
    def _with_defaults(plan: _ToolPlan, arguments: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, s in plan.props.items():
            v = arguments.get(name)
            if v is not None:
                out[name] = _normalise(v, s)
            elif "default" in s and s["default"] is not None:
                out[name] = copy.deepcopy(s["default"])
        return out

    def check_rules(self, plan: _ToolPlan, env: Mapping[str, Any]) -> Failure | None:
        """Stages 8-9: constraints, then the spec errors' `when` predicates, in spec order."""
        for c, rule in plan.constraints:
            try:
                ok = rules.holds(rule, env)
            except rules.RuleEvalError as exc:
                ok, why = False, str(exc)
            else:
                why = ""
            if not ok:
                if c.error is not None:
                    return spec_failure(plan.tool.error(c.error), "constraint")
                text = c.description or c.rule
                extra = f" ({why})" if why else ""
                return Failure(400, "constraint_violated", f"Constraint violated: {text}{extra}", "constraint")
        for err, rule in plan.whens:
            try:
                fires = rules.holds(rule, env)
            except rules.RuleEvalError:
                fires = True  # the arguments cannot even be compared: the spec's error is the honest answer
            if fires:
                return spec_failure(err, "when")
        return None

    def plan(self, tool_name: str) -> _ToolPlan:
        """The precomputed plan of a tool (KeyError if unknown)."""
        return self._plans[tool_name]


def _same(v: Any, e: Any) -> bool:
    if isinstance(v, bool) or isinstance(e, bool):
        return isinstance(v, bool) and isinstance(e, bool) and v == e
    if isinstance(v, int | float) and isinstance(e, int | float):
        return v == e
    return type(v) is type(e) and v == e
