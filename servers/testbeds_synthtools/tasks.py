"""Tasks from executed plans: instruction, reference solution, expected content diff, answer, infeasible twins.

`generate_tasks(toolset, seed)` samples the toolset's workflows per tier (simple, medium, complex), varies
their stated arguments with the seed (other seed rows of the same table, other amounts), executes each plan on
a fresh `Session` and keeps it only when:

- every step succeeds and every write step changes the state (the content diff, volatile columns aside);
- no proper prefix ending before the last write reaches the final state;
- no stated argument names a surrogate id that only exists once the plan has run (those are derived);
- some one-argument perturbation of the reference fails grading (else nothing the agent says matters).

Workflow steps use the generator's argument-flow format (`generator.workflow_steps`): a value is stated, or
`{"$step": j, "$path": "items.0.x"}` taken from step j's result; the instruction states the first and says how
to derive the second. The reference solution stores the concrete arguments after execution. A task may ask
for values (`expected_answer`) read from the last read-only step's result.

Infeasible twins keep the instruction but drop a tool the plan needs from `tools_allowed` (no other allowed
tool makes that change), or break a rule in a stated argument of a step up to the first write (a row that does
not exist, a status move the lifecycle forbids), so the failure shows before anything is written. They expect
no change and an explicit report (`Submission(infeasible=True)`).

Everything is drawn from `random.Random` seeded by sha256 of (toolset id, version, seed, tier, attempt).
"""

from __future__ import annotations

import copy
import datetime as dt
import random
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .engine import CallResult, Session
from .generator import PlanStep, lookup, workflow_steps
from .grading import (
    Submission,
    TableDiff,
    TableView,
    grade,
    normalize_diff,
    raw_diff,
    views_for,
)
from .spec import Tool, Toolset, canonical_json, schema_validator, sha256_hex

Tier = Literal["simple", "medium", "complex"]
TIERS: tuple[Tier, ...] = ("simple", "medium", "complex")
InfeasibleKind = Literal["tool_absent", "missing_row", "forbidden_transition"]
_MONEY_WORDS = re.compile(r"(total|amount|fee|price|cost|tax|discount|subtotal|balance|salary|budget|premium|rent)")
_ATTEMPTS = 12


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Call(_Model):
    """One tool call of a solution."""

    tool: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class AnswerSource(_Model):
    """Where an expected answer value comes from: a key of one step's result."""

    step: int = Field(description="0-based step index in the reference solution.")
    key: str = Field(description="Result key.")


class Task(_Model):
    """One task: what to do, with what, and what the world must look like afterwards."""

    id: str
    toolset_id: str
    toolset_seed: int = Field(description="The toolset's own seed (`Toolset.seed`).")
    toolset_version: str = "1.0.0"
    seed: int = Field(description="Task seed; also the session seed the task runs with.")
    tier: Tier
    workflow: str = Field("", description="Label of the workflow the plan came from.")
    instruction: str
    tools_allowed: list[str]
    reference_solution: list[Call] = Field(description="Concrete calls (later arguments resolved).")
    expected_diff: dict[str, TableDiff] = Field(description="Content diff per table (see grading.TableDiff).")
    allowed_tables: list[str] = Field(description="Tables the task may change.")
    expected_answer: dict[str, Any] | None = Field(None, description="Values the agent must report, if any.")
    answer_money: dict[str, int] = Field(default_factory=dict, description="Answer keys compared exactly in cents.")
    answer_sources: dict[str, AnswerSource] = Field(default_factory=dict)
    feasible: bool = True
    infeasible_kind: InfeasibleKind | None = None
    twin_of: str | None = Field(None, description="For an infeasible twin: the id of the feasible task.")
    tables: dict[str, TableView] = Field(description="Grading views of every state table, parents first.")


# ------------------------------------------------------------------------------------------- helpers


def _rng(*parts: Any) -> random.Random:
    return random.Random(int(sha256_hex(["tasks", *parts])[:16], 16))


def _fmt(v: Any) -> str:
    if isinstance(v, str):
        return f"'{v}'"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    return canonical_json(v)


def _words(name: str) -> str:
    return name.replace("_", " ")


def execute(toolset: Toolset, calls: Sequence[Call | Mapping[str, Any]], seed: int = 0,
            stop_on_error: bool = False) -> tuple[Session, list[CallResult]]:
    """Run `calls` on a fresh session (seed `seed`); returns the session (caller closes it) and the results."""
    session = Session(toolset, seed=seed)
    results = []
    for c in calls:
        tool, args = (c.tool, c.arguments) if isinstance(c, Call) else (c["tool"], c.get("arguments", {}))
        r = session.call(tool, copy.deepcopy(args))
        results.append(r)
        if stop_on_error and not r.ok:
            break
    return session, results


def answer_from_results(task: Task, results: Sequence[CallResult | None]) -> dict[str, Any] | None:
    """The answer a faithful agent reports after running `results` in the reference's order."""
    if task.expected_answer is None:
        return None
    out: dict[str, Any] = {}
    for k, src in task.answer_sources.items():
        r = results[src.step] if src.step < len(results) else None
        if r is not None and r.ok and r.result is not None and src.key in r.result:
            out[k] = r.result[src.key]
    return out


def reference_submission(task: Task) -> Submission:
    """The submission the reference solution makes."""
    if not task.feasible:
        return Submission(infeasible=True, reason=f"infeasible: {task.infeasible_kind}")
    return Submission(answer=copy.deepcopy(task.expected_answer))


def replay_reference(task: Task, toolset: Toolset) -> tuple[Session, Submission]:
    """Run the reference solution on a fresh session; returns the session (caller closes it) and submission."""
    session, _ = execute(toolset, task.reference_solution, seed=task.seed)
    return session, reference_submission(task)


# ------------------------------------------------------------------------------------------- plans


def _plans(toolset: Toolset, tier: str) -> list[tuple[str, list[PlanStep]]]:
    names = {t.name for t in toolset.tools}
    out = []
    for w in toolset.workflows:
        if w.tier != tier or not w.steps:
            continue
        try:
            steps = workflow_steps(w)
        except ValueError:
            continue  # plain-title plans (imported corpus) carry no arguments
        if steps and all(s.tool in names for s in steps):
            out.append((w.label, steps))
    return out


def _seed_keys(toolset: Toolset) -> dict[str, str]:
    """Canonical seed key -> its table."""
    out: dict[str, str] = {}
    for t in toolset.state_schema.tables if toolset.state_schema else []:
        for r in t.seed_rows:
            out[canonical_json(r[t.key])] = t.name
    return out


def _vary(toolset: Toolset, steps: list[PlanStep], rnd: random.Random, strength: float) -> list[PlanStep]:
    """Stated arguments varied: seed keys swapped for other seed rows of the same table (consistently across
    the plan), numbers moved within their schema bounds."""
    if strength <= 0:
        return copy.deepcopy(steps)
    keys = _seed_keys(toolset)
    by_table: dict[str, list[Any]] = {}
    for t in toolset.state_schema.tables if toolset.state_schema else []:
        by_table[t.name] = [r[t.key] for r in t.seed_rows]
    swap: dict[str, Any] = {}
    out = copy.deepcopy(steps)
    for step in out:
        props = toolset.tool(step.tool).input_schema.get("properties", {})
        for name, arg in step.arguments.items():
            if arg.from_step is not None:
                continue
            v = arg.value
            ck = canonical_json(v)
            if ck in keys:
                if ck not in swap:
                    swap[ck] = rnd.choice(by_table[keys[ck]]) if rnd.random() < strength else v
                arg.value = swap[ck]
            elif isinstance(v, int | float) and not isinstance(v, bool) and rnd.random() < strength:
                arg.value = _moved_number(v, props.get(name, {}), rnd)
    return out


def _moved_number(v: float, schema: Mapping[str, Any], rnd: random.Random) -> float | int:
    lo, hi = schema.get("minimum"), schema.get("maximum")
    for _ in range(10):
        x: float | int = v * rnd.uniform(0.5, 1.5) + rnd.choice((-2, -1, 1, 2))
        x = int(round(x)) if schema.get("type") == "integer" or isinstance(v, int) else round(x, 2)
        if (lo is None or x >= lo) and (hi is None or x <= hi) and x != v:
            return x
    return v


class _Run:
    """An executed plan: concrete calls, results, state hashes and content diff."""

    def __init__(self, toolset: Toolset, steps: Sequence[PlanStep], seed: int, views: Mapping[str, TableView]):
        self.calls: list[Call] = []
        self.results: list[CallResult] = []
        self.ok = True
        self.failed_at: int | None = None
        session = Session(toolset, seed=seed)
        try:
            self.initial = session.snapshot()
            self.hashes = [session.state_hash()]
            outputs: list[dict[str, Any]] = []
            for i, step in enumerate(steps):
                try:
                    args = _resolve(step, outputs)
                except (KeyError, IndexError, ValueError):
                    self.ok, self.failed_at = False, i
                    break
                r = session.call(step.tool, copy.deepcopy(args))
                self.calls.append(Call(tool=step.tool, arguments=args))
                self.results.append(r)
                self.hashes.append(session.state_hash())
                if not r.ok:
                    self.ok, self.failed_at = False, i
                    break
                outputs.append(r.result or {})
            self.final = session.snapshot()
        finally:
            session.close()
        self.raw = raw_diff(views, self.initial, self.final)
        self.diff = normalize_diff(self.raw, views)


def _resolve(step: PlanStep, outputs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, arg in step.arguments.items():
        if arg.from_step is None:
            out[name] = copy.deepcopy(arg.value)
        else:
            if not 0 <= arg.from_step < len(outputs):
                raise ValueError(f"{step.tool}.{name}: step {arg.from_step} has not run")
            out[name] = copy.deepcopy(lookup(outputs[arg.from_step], arg.path or ""))
    return out


# ------------------------------------------------------------------------------------------- instruction


def _entity(toolset: Toolset, table: str | None) -> str:
    if table is None:
        return "record"
    name = table
    if name.endswith("ies"):
        return _words(name[:-3] + "y")
    if name.endswith(("sses", "ches", "shes", "xes")):
        return _words(name[:-2])
    return _words(name[:-1] if name.endswith("s") else name)


def _derived(steps: Sequence[PlanStep], toolset: Toolset, j: int, path: str) -> str:
    src = toolset.tool(steps[j].tool)
    what = _words(path.split(".")[-1])
    if src.effect.kind == "create":
        return f"the {what} of the {_entity(toolset, src.effect.table)} created in step {j + 1}"
    if re.match(r"items\.0\.", path):
        return f"the {what} of the first result of step {j + 1}"
    return f"the {what} from the result of step {j + 1}"


def render_instruction(toolset: Toolset, steps: Sequence[PlanStep], answer: Mapping[str, AnswerSource] | None
                       ) -> str:
    """The instruction: one numbered sentence per step, stating values and saying how to derive the rest."""
    lines = ["Carry out these steps in order."]
    for i, step in enumerate(steps):
        tool = toolset.tool(step.tool)
        parts = []
        for name, arg in step.arguments.items():
            if arg.from_step is None:
                parts.append(f"{_words(name)} {_fmt(arg.value)}")
            else:
                parts.append(f"{_words(name)} = {_derived(steps, toolset, arg.from_step, arg.path or '')}")
        what = f"{tool.title}" + (f" with {', '.join(parts[:-1])} and {parts[-1]}" if len(parts) > 1 else
                                  f" with {parts[0]}" if parts else "")
        lines.append(f"{i + 1}. {what}.")
    if answer:
        items = ", ".join(f"`{k}` (the {_words(src.key)} from step {src.step + 1})" for k, src in answer.items())
        lines.append(f"Then report in your answer: {items}.")
    lines.append("If the task cannot be done with the tools you have, or a step breaks a rule, change nothing and "
                 "report it as infeasible.")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------- answers


def _answer(toolset: Toolset, steps: Sequence[PlanStep], run: _Run, views: Mapping[str, TableView],
            rnd: random.Random) -> tuple[dict[str, AnswerSource], dict[str, Any], dict[str, int]]:
    """Answer values from the last read-only step with scalar, state- or formula-backed outputs."""
    for i in range(len(steps) - 1, -1, -1):
        tool = toolset.tool(steps[i].tool)
        if tool.annotations is not None and not tool.annotations.read_only:
            continue
        r = run.results[i]
        synthetic = set(r.meta.get("synthetic_keys", []))
        keys = []
        money: dict[str, int] = {}
        view = views.get(tool.effect.table or "")
        for k, v in (r.result or {}).items():
            if k in synthetic or k.endswith("_id") or k == "id" or v is None or isinstance(v, list | dict):
                continue
            if isinstance(v, str) and (not tool.output_schema["properties"].get(k, {}).get("enum")):
                continue  # free text and dates: only closed values (status) are asked for
            if view is not None and k in view.ignored:
                continue
            keys.append(k)
            if isinstance(v, int | float) and not isinstance(v, bool):
                if (view is not None and k in view.money) or _MONEY_WORDS.search(k):
                    money[k] = 2
        if keys:
            picked = sorted(rnd.sample(keys, min(2, len(keys))), key=keys.index)
            sources = {k: AnswerSource(step=i, key=k) for k in picked}
            return sources, {k: r.result[k] for k in picked}, {k: money[k] for k in picked if k in money}  # type: ignore[index]
        return {}, {}, {}
    return {}, {}, {}


# ------------------------------------------------------------------------------------------- perturbation


def _other_key(value: Any, toolset: Toolset, snapshot: Mapping[str, list[dict[str, Any]]]) -> Any:
    ck = canonical_json(value)
    for t in toolset.state_schema.tables if toolset.state_schema else []:
        keys = [r[t.key] for r in snapshot.get(t.name, [])]
        if any(canonical_json(k) == ck for k in keys):
            others = [k for k in keys if canonical_json(k) != ck]
            return others[0] if others else None
    return None


def perturb_value(value: Any, schema: Mapping[str, Any], toolset: Toolset,
                  snapshot: Mapping[str, list[dict[str, Any]]]) -> Any:
    """A different valid-looking value for one argument (None when there is none): another existing key,
    another enum value, a number moved beyond grading tolerance, a shifted date, edited text, a flipped bool."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        lo, hi = schema.get("minimum"), schema.get("maximum")
        step = 1 if isinstance(value, int) or schema.get("type") == "integer" else max(1.0, abs(value) * 0.1)
        for cand in (value + step, value - step):
            cand = round(cand, 2) if isinstance(cand, float) else cand
            if (lo is None or cand >= lo) and (hi is None or cand <= hi):
                return cand
        return None
    if isinstance(value, str):
        enum = schema.get("enum")
        if enum:
            others = [e for e in enum if isinstance(e, str) and e.lower() != value.lower()]
            return others[0] if others else None
        key = _other_key(value, toolset, snapshot)
        if key is not None:
            return key
        if schema.get("format") == "date-time":
            try:
                d = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                return None
            return (d + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        if "@" in value:
            return "x" + value
        return value + " revised"
    if isinstance(value, list) and value:
        items = schema.get("items") if isinstance(schema.get("items"), dict) else {}
        if len(value) > 1 and len(value) - 1 >= schema.get("minItems", 0):
            return value[:-1]
        p = perturb_value(value[0], items, toolset, snapshot)
        return None if p is None else [p, *value[1:]]
    return None


def perturbations(task: Task, toolset: Toolset) -> Iterator[tuple[int, str, list[Call]]]:
    """One-argument perturbations of the reference: (step, argument, perturbed calls)."""
    session = Session(toolset, seed=task.seed)
    try:
        snap = session.snapshot()
    finally:
        session.close()
    for i, call in enumerate(task.reference_solution):
        props = toolset.tool(call.tool).input_schema.get("properties", {})
        for name, value in call.arguments.items():
            new = perturb_value(value, props.get(name, {}), toolset, snap)
            if new is None or canonical_json(new) == canonical_json(value):
                continue
            calls = copy.deepcopy(task.reference_solution)
            calls[i].arguments[name] = new
            yield i, name, calls


def grade_calls(task: Task, toolset: Toolset, calls: Sequence[Call]) -> bool:
    """Whether a faithful agent making `calls` (and reporting the answer from their results) passes."""
    session, results = execute(toolset, calls, seed=task.seed)
    try:
        answer = answer_from_results(task, results)
        sub = Submission(answer=answer) if task.feasible else Submission()
        return grade(task, session, sub).passed
    finally:
        session.close()


# ------------------------------------------------------------------------------------------- generation


def _is_write(tool: Tool) -> bool:
    return tool.annotations is not None and not tool.annotations.read_only


def _write_steps(toolset: Toolset, steps: Sequence[PlanStep]) -> list[int]:
    return [i for i, s in enumerate(steps) if _is_write(toolset.tool(s.tool))]


def _stated_new_keys(run: _Run, steps: Sequence[PlanStep], views: Mapping[str, TableView]) -> bool:
    """True when a stated argument names a key only the plan's own inserts create."""
    new = {canonical_json(r[views[t].key]) for t, d in run.raw.items() for r in d["inserted"]}
    return any(arg.from_step is None and canonical_json(arg.value) in new for s in steps
               for arg in s.arguments.values())


def _build_task(toolset: Toolset, seed: int, tier: Tier, idx: int, label: str, steps: list[PlanStep],
                views: dict[str, TableView], rnd: random.Random) -> Task | None:
    run = _Run(toolset, steps, seed, views)
    if not run.ok:
        return None
    writes = _write_steps(toolset, steps)
    for i in writes:
        if not run.results[i].changes:
            return None
    if writes:
        if not run.diff:
            return None
        last = writes[-1]
        if any(h == run.hashes[-1] for h in run.hashes[:last + 1]):
            return None
    if _stated_new_keys(run, steps, views):
        return None
    sources, answer, money = _answer(toolset, steps, run, views, rnd)
    if not writes and not answer:
        return None
    task = Task(
        id=f"{toolset.id}/s{seed}/{tier}/{idx}", toolset_id=toolset.id, toolset_seed=toolset.seed,
        toolset_version=toolset.version, seed=seed, tier=tier, workflow=label,
        instruction=render_instruction(toolset, steps, sources), tools_allowed=[t.name for t in toolset.tools],
        reference_solution=run.calls, expected_diff=run.diff, allowed_tables=sorted(run.diff),
        expected_answer=answer or None, answer_money=money, answer_sources=sources, tables=views)
    if not grade_calls(task, toolset, task.reference_solution):
        return None
    if all(grade_calls(task, toolset, calls) for _, _, calls in perturbations(task, toolset)):
        return None
    return task


def _tool_absent_twin(task: Task, toolset: Toolset, steps: Sequence[PlanStep], rnd: random.Random) -> Task | None:
    writes = [s.tool for i, s in enumerate(steps) if i in _write_steps(toolset, steps)]
    for name in rnd.sample(sorted(set(writes)), len(set(writes))):
        tool = toolset.tool(name)
        changed = _changed_columns(task, tool.effect.table)
        if any(_can_replace(other, tool, changed) for other in toolset.tools if other.name != name):
            continue
        return task.model_copy(update={
            "id": f"{task.id}/infeasible", "tools_allowed": [t for t in task.tools_allowed if t != name],
            "reference_solution": [], "expected_diff": {}, "allowed_tables": [], "expected_answer": None,
            "answer_money": {}, "answer_sources": {}, "feasible": False, "infeasible_kind": "tool_absent",
            "twin_of": task.id}, deep=True)
    return None


def _changed_columns(task: Task, table: str | None) -> set[str]:
    d = task.expected_diff.get(table or "")
    if d is None:
        return set()
    cols = {c for u in d.updated for c in u.after}
    for r in d.inserted:
        cols |= set(r)
    return cols


def _can_replace(other: Tool, tool: Tool, changed: set[str]) -> bool:
    """Whether `other` could make the change `tool` makes in the plan (same table, kind and columns)."""
    a, b = other.effect, tool.effect
    if a.table != b.table or a.table is None:
        return False
    if b.kind in ("create", "delete"):
        return a.kind == b.kind or (b.kind == "delete" and bool(b.assign) and a.kind == "update"
                                    and set(b.assign) <= set(a.set.values()) | set(a.assign))
    if a.kind not in ("update", "delete"):
        return False
    written = set(a.set.values()) | set(a.assign)
    mine = (set(b.set.values()) | set(b.assign)) & changed
    return bool(mine) and bool(mine & written)


def _rule_twin(task: Task, toolset: Toolset, steps: list[PlanStep], views: dict[str, TableView],
               rnd: random.Random) -> Task | None:
    writes = _write_steps(toolset, steps)
    if not writes:
        return None
    first = writes[0]
    session = Session(toolset, seed=task.seed)
    try:
        snap = session.snapshot()
    finally:
        session.close()
    keys = _seed_keys(toolset)
    candidates: list[tuple[InfeasibleKind, int, str, Any]] = []
    for i in range(first + 1):
        tool = toolset.tool(steps[i].tool)
        for name, arg in steps[i].arguments.items():
            if arg.from_step is not None:
                continue
            ck = canonical_json(arg.value)
            if ck in keys:
                candidates.append(("missing_row", i, name, _missing_key(arg.value, keys[ck], toolset, snap)))
            enum = tool.input_schema.get("properties", {}).get(name, {}).get("enum")
            if enum and _is_status_arg(toolset, steps, i, name):
                for e in enum:
                    if e != arg.value:
                        candidates.append(("forbidden_transition", i, name, e))
    rnd.shuffle(candidates)
    for kind, i, name, new in candidates:
        if new is None:
            continue
        twin_steps = copy.deepcopy(steps)
        old = twin_steps[i].arguments[name].value
        if kind == "missing_row":
            for s in twin_steps:
                for a in s.arguments.values():
                    if a.from_step is None and canonical_json(a.value) == canonical_json(old):
                        a.value = new
        else:
            twin_steps[i].arguments[name].value = new
        run = _Run(toolset, twin_steps, task.seed, views)
        if run.ok or run.failed_at is None or run.failed_at > first or run.raw:
            continue
        r = run.results[-1] if run.results else None
        if r is None or r.status not in ((404,) if kind == "missing_row" else (409,)):
            continue
        return task.model_copy(update={
            "id": f"{task.id}/infeasible", "instruction": render_instruction(toolset, twin_steps, None),
            "reference_solution": run.calls, "expected_diff": {}, "allowed_tables": [], "expected_answer": None,
            "answer_money": {}, "answer_sources": {}, "feasible": False, "infeasible_kind": kind,
            "twin_of": task.id}, deep=True)
    return None


def _is_status_arg(toolset: Toolset, steps: Sequence[PlanStep], i: int, name: str) -> bool:
    """The argument sets (or feeds, through a later step) a column with a state machine."""
    def sets_transition(tool: Tool, arg: str) -> bool:
        eff = tool.effect
        if eff.table is None or toolset.state_schema is None or arg not in eff.set:
            return False
        return toolset.state_schema.table(eff.table).columns[eff.set[arg]].transitions is not None

    if sets_transition(toolset.tool(steps[i].tool), name):
        return True
    for s in steps[i + 1:]:
        for a, arg in s.arguments.items():
            if arg.from_step == i and arg.path == name and sets_transition(toolset.tool(s.tool), a):
                return True
    return False


def _missing_key(value: Any, table: str, toolset: Toolset, snap: Mapping[str, list[dict[str, Any]]]) -> Any:
    assert toolset.state_schema is not None
    t = toolset.state_schema.table(table)
    existing = {canonical_json(r[t.key]) for r in snap.get(table, [])}
    if isinstance(value, str):
        m = re.fullmatch(r"(.*?)(\d+)", value)
        if m:
            for n in range(10 ** len(m[2]) - 1, 0, -1):
                cand = f"{m[1]}{n:0{len(m[2])}d}"
                if canonical_json(cand) not in existing:
                    return cand
        return value + "-X"
    if isinstance(value, int):
        return max(int(x) for x in existing if x.lstrip("-").isdigit()) + 1000
    return None


def _twins_per_tier(per_tier: int, share: float) -> int:
    if share <= 0:
        return 0
    return min(per_tier, max(1, int(per_tier * share / (1 - share) + 0.5)))


def generate_tasks(toolset: Toolset, seed: int, per_tier: int = 2, infeasible_share: float = 0.25) -> list[Task]:
    """Up to `per_tier` feasible tasks per tier, plus infeasible twins making up about `infeasible_share` of
    all tasks (at least one per tier with a task when the share is positive). Deterministic per inputs; a
    toolset without executable workflows for a tier yields no task for it."""
    if not 0 <= infeasible_share < 1:
        raise ValueError("infeasible_share must be in [0, 1)")
    if per_tier < 0:
        raise ValueError("per_tier must be >= 0")
    views = views_for(toolset)
    out: list[Task] = []
    for tier in TIERS:
        plans = _plans(toolset, tier)
        if not plans or per_tier == 0:
            continue
        made: list[tuple[Task, list[PlanStep]]] = []
        seen: set[str] = set()
        for attempt in range(per_tier * _ATTEMPTS):
            if len(made) >= per_tier:
                break
            rnd = _rng(toolset.id, toolset.version, seed, tier, attempt)
            label, base = plans[attempt % len(plans)]
            strength = 0.0 if attempt >= per_tier * (_ATTEMPTS - 1) else 0.7
            steps = _vary(toolset, base, rnd, strength)
            task = _build_task(toolset, seed, tier, len(made), label, steps, views, rnd)
            if task is None:
                continue
            sig = sha256_hex([task.instruction, {k: v.model_dump(mode="json") for k, v in task.expected_diff.items()},
                              task.expected_answer])
            if sig in seen:
                continue
            seen.add(sig)
            made.append((task, steps))
        out += [t for t, _ in made]
        wanted = _twins_per_tier(len(made), infeasible_share)
        twins = 0
        for task, steps in made:
            if twins >= wanted:
                break
            rnd = _rng(toolset.id, toolset.version, seed, tier, task.id, "twin")
            makers = [lambda: _tool_absent_twin(task, toolset, steps, rnd),
                      lambda: _rule_twin(task, toolset, steps, views, rnd)]
            if rnd.random() < 0.5:
                makers.reverse()
            for make in makers:
                twin = make()
                if twin is not None:
                    out.append(twin)
                    twins += 1
                    break
    return out


# ------------------------------------------------------------------------------------------- baseline


def sample_value(schema: Mapping[str, Any], rnd: random.Random, name: str = "") -> Any:
    """A random value valid for a simple JSON-Schema property (enum, type, bounds, date-time, arrays)."""
    if schema.get("enum"):
        return rnd.choice(list(schema["enum"]))
    t = schema.get("type")
    if isinstance(t, list):
        t = next((x for x in t if x != "null"), "string")
    lo, hi = schema.get("minimum"), schema.get("maximum")
    if t == "boolean":
        return rnd.random() < 0.5
    if t == "integer":
        a = int(lo) if lo is not None else 0
        return rnd.randint(a, int(hi) if hi is not None else a + 50)
    if t == "number":
        a = float(lo) if lo is not None else 0.0
        return round(rnd.uniform(a, float(hi) if hi is not None else a + 500.0), 2)
    if t == "array":
        items = schema.get("items") if isinstance(schema.get("items"), dict) else {"type": "string"}
        n = rnd.randint(schema.get("minItems", 1), max(schema.get("minItems", 1), min(schema.get("maxItems", 3), 3)))
        return [sample_value(items, rnd, name) for _ in range(n)]
    if t == "object":
        return {}
    if schema.get("format") == "date-time":
        d = dt.datetime(2025, 1, 1, tzinfo=dt.UTC) + dt.timedelta(days=rnd.randint(0, 364))
        return d.strftime("%Y-%m-%dT%H:%M:%SZ")
    pattern = schema.get("pattern")
    if isinstance(pattern, str):
        m = re.fullmatch(r"\^([A-Z]+-)\[0-9\]\{(\d+)\}\$", pattern)
        if m:
            return f"{m[1]}{rnd.randint(1, 20):0{int(m[2])}d}"
    if "email" in name:
        return f"user{rnd.randint(1, 999)}@example.com"
    return rnd.choice(("alpha", "bravo", "cedar", "delta", "ember", "falcon")) + f" {rnd.randint(1, 99)}"


def random_valid_agent(task: Task, toolset: Toolset, seed: int, n_calls: int | None = None) -> list[Call]:
    """A baseline: schema-valid random calls to allowed tools (required arguments plus some optional ones),
    as many as the reference makes (at least 3). It should almost never pass."""
    rnd = _rng("random_agent", task.id, seed)
    allowed = [toolset.tool(n) for n in task.tools_allowed]
    n = n_calls if n_calls is not None else max(3, len(task.reference_solution))
    calls = []
    for _ in range(n):
        tool = rnd.choice(allowed)
        props = tool.input_schema.get("properties", {})
        required = set(tool.input_schema.get("required", []))
        args = {}
        for p, s in props.items():
            if p in required or rnd.random() < 0.3:
                args[p] = sample_value(s, rnd, p)
        validator = schema_validator(tool.input_schema, toolset.lenient_dates)
        if not validator.is_valid(args):
            args = {p: v for p, v in args.items() if p in required}
        calls.append(Call(tool=tool.name, arguments=args))
    return calls
