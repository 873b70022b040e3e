"""SynthTools' curated tasks (`task_curated/*.yml`) as our `Task`s, checked on our engine.

A curated file holds `meta_data` (the toolset's field and plans), `task_data` (`task_type` such as
`simple_valid_2`, the instruction `task`, `task_diffuculty` [sic], `tools_required`, `task_validity`),
`tools_data` and `solution`: calls written as Python-like text, `tool_call1: 'RefundCalculator(
return_request_id = "RET001", item_values = [149.99], ...)'` (the tool's title without spaces).

Each solution call is parsed with `ast` and its argument values read with `ast.literal_eval` (after mapping
the JSON words `true`/`false`/`null`); nothing is evaluated. Titles map to the toolset's tool names. The
solution then runs on a fresh `Session`: its content diff is the expected diff, and the bottom line of each
formula-backed step (the formula's last output, e.g. the refund calculator's `net_refund`) is the answer the
agent must report. Corpus validity labels are not trusted: a task needing a tool the toolset has no spec for
is infeasible (kind `tool_absent`, expecting no change and a report), whatever its label says; a task whose
solution fails on the engine, or whose reference fails its own grading, or where no one-argument
perturbation changes the grade, is dropped. `load_curated_tasks` reports all of it.

This module must not import `mcp`.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field

from .engine import Session
from .grading import normalize_diff, raw_diff, views_for
from .spec import Toolset, canonical_json
from .tasks import TIERS, AnswerSource, Call, Task, Tier, grade_calls, perturbations

MAX_CALL_TEXT = 20_000  # the corpus' longest call is a few hundred characters
_CALL_KEY = re.compile(r"^tool_call(\d+)$")
_JSON_WORDS = {"true": True, "false": False, "null": None, "True": True, "False": False, "None": None}
_MONEY = re.compile(r"(refund|total|amount|fee|price|cost|tax|deduction|discount|balance|charge)")


class CuratedTaskError(ValueError):
    """A curated file or solution call that cannot be read."""


class CuratedReport(BaseModel):
    """What became of one curated file."""

    file: str
    task_type: str = ""
    task_id: str | None = Field(None, description="The task's id when it was kept.")
    status: str = Field(description="kept, infeasible (kept as an infeasible task) or dropped.")
    reasons: list[str] = Field(default_factory=list, description="Why infeasible or dropped.")
    warnings: list[str] = Field(default_factory=list, description="Inconsistencies in the corpus solution.")


class CuratedTasks(BaseModel):
    """The curated tasks of one toolset and the report on every file read."""

    toolset_id: str
    tasks: list[Task]
    report: list[CuratedReport]


# ------------------------------------------------------------------------------------------- parsing


def _squash(title: str) -> str:
    return re.sub(r"[^a-z0-9]", "", title.lower())


class _JsonWords(ast.NodeTransformer):
    def visit_Name(self, node: ast.Name) -> ast.AST:
        if node.id in _JSON_WORDS:
            return ast.copy_location(ast.Constant(_JSON_WORDS[node.id]), node)
        raise CuratedTaskError(f"unexpected name {node.id!r} in an argument value")


def parse_call(text: str) -> tuple[str, dict[str, Any]]:
    """`'Name(a = 1, b = "x", c = [true])'` -> `("Name", {"a": 1, "b": "x", "c": [True]})`, without evaluating
    anything: the text is parsed and each value read as a literal. Raises `CuratedTaskError`."""
    if not isinstance(text, str) or len(text) > MAX_CALL_TEXT:
        raise CuratedTaskError("a solution call must be a string of at most "
                               f"{MAX_CALL_TEXT} characters")
    try:
        node = ast.parse(text.strip(), mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        raise CuratedTaskError(f"cannot parse solution call {text[:80]!r}: {type(exc).__name__}") from None
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name) or node.args:
        raise CuratedTaskError(f"solution call {text[:80]!r} is not of the form Name(arg = value, ...)")
    arguments: dict[str, Any] = {}
    for kw in node.keywords:
        if kw.arg is None:
            raise CuratedTaskError(f"solution call {text[:80]!r} unpacks arguments (**)")
        try:
            arguments[kw.arg] = ast.literal_eval(_JsonWords().visit(kw.value))
        except (ValueError, TypeError, SyntaxError, RecursionError) as exc:
            raise CuratedTaskError(f"argument {kw.arg!r} of {node.func.id} is not a literal: {exc}") from None
    return node.func.id, arguments


def _solution_calls(solution: Any) -> list[tuple[int, str]]:
    """(N, call text) of `tool_callN` entries, in N order (a list of one-key maps, or one map)."""
    items: list[tuple[Any, Any]] = []
    if isinstance(solution, dict):
        items = list(solution.items())
    elif isinstance(solution, list):
        for entry in solution:
            if not isinstance(entry, dict):
                raise CuratedTaskError("a solution entry is not a map of tool_callN -> call")
            items += list(entry.items())
    else:
        raise CuratedTaskError("the solution is neither a list nor a map")
    out = []
    for key, text in items:
        m = _CALL_KEY.match(str(key))
        if m is None:
            raise CuratedTaskError(f"unexpected solution key {key!r} (want tool_callN)")
        out.append((int(m[1]), text))
    return sorted(out, key=lambda p: p[0])


# ------------------------------------------------------------------------------------------- building


def _tier(task_data: dict[str, Any]) -> Tier:
    for raw in (task_data.get("task_diffuculty"), task_data.get("task_difficulty"),
                str(task_data.get("task_type", "")).split("_")[0]):
        if isinstance(raw, str) and raw.lower() in TIERS:
            return raw.lower()  # type: ignore[return-value]
    raise CuratedTaskError(f"no tier in task_data (task_type {task_data.get('task_type')!r})")


def _bottom_lines(toolset: Toolset, calls: Sequence[Call], results: Sequence[Any]
                  ) -> tuple[dict[str, AnswerSource], dict[str, Any], dict[str, int]]:
    """The last formula output of each formula-backed step: what the task computes, for the agent to report."""
    sources: dict[str, AnswerSource] = {}
    answer: dict[str, Any] = {}
    money: dict[str, int] = {}
    for i, (call, r) in enumerate(zip(calls, results, strict=True)):
        formula = toolset.tool(call.tool).effect.formula or {}
        if not formula or not r.ok or not r.result:
            continue
        out = list(formula)[-1]
        if out not in r.result:
            continue
        name = out if out not in answer else f"{out}_{i + 1}"
        sources[name] = AnswerSource(step=i, key=out)
        answer[name] = r.result[out]
        value = r.result[out]
        if isinstance(value, int | float) and not isinstance(value, bool) and _MONEY.search(out):
            money[name] = 2
    return sources, answer, money


def _flow_warnings(toolset: Toolset, calls: Sequence[Call], results: Sequence[Any],
                   sources: dict[str, AnswerSource]) -> list[str]:
    """Later money arguments that match no earlier result although an answer was computed before them
    (the corpus writes such values by hand; task 5's refund_amount leaves out the shipping refund)."""
    warnings = []
    for name, src in sources.items():
        value = results[src.step].result[src.key]
        for j in range(src.step + 1, len(calls)):
            for arg, given in calls[j].arguments.items():
                if not _MONEY.search(arg) or isinstance(given, bool) or not isinstance(given, int | float):
                    continue
                earlier = {canonical_json(v) for r in results[:j] if r.ok and r.result
                           for v in r.result.values() if isinstance(v, int | float)}
                if canonical_json(given) not in earlier:
                    warnings.append(f"step {j + 1} ({calls[j].tool}) passes {arg}={given}, which no earlier "
                                    f"result holds; step {src.step + 1} computed {src.key}={value}")
    return warnings


def _instruction(text: str, toolset: Toolset, calls: Sequence[Call], sources: dict[str, AnswerSource]) -> str:
    lines = [text.strip()]
    if sources:
        items = ", ".join(f"`{k}` (the {src.key.replace('_', ' ')} the {toolset.tool(calls[src.step].tool).title} "
                          "computes)" for k, src in sources.items())
        lines.append(f"Then report in your answer: {items}.")
    lines.append("If the task cannot be done with the tools you have, or a step breaks a rule, change nothing and "
                 "report it as infeasible.")
    return "\n".join(lines)


def build_task(doc: dict[str, Any], toolset: Toolset, number: int, file: str = "") -> tuple[Task | None,
                                                                                             CuratedReport]:
    """One curated document as a `Task` on `toolset` (None when dropped) and the report on it."""
    task_data = doc.get("task_data")
    if not isinstance(task_data, dict) or not isinstance(task_data.get("task"), str):
        raise CuratedTaskError("task_data with a `task` text is missing")
    task_type = str(task_data.get("task_type", f"task{number}"))
    report = CuratedReport(file=file, task_type=task_type, status="dropped")
    tier = _tier(task_data)
    by_title = {_squash(t.title): t.name for t in toolset.tools}
    needed = [str(t) for t in task_data.get("tools_required", []) if isinstance(t, str)]
    parsed = [(n, *parse_call(text)) for n, text in _solution_calls(doc.get("solution", []))]
    missing = sorted({t for t in needed if _squash(t) not in by_title} |
                     {title for _, title, _ in parsed if _squash(title) not in by_title})
    label = str(task_data.get("task_validity", ""))
    task_id = f"{toolset.id}/curated/{number}"
    views = views_for(toolset)
    common = dict(toolset_id=toolset.id, toolset_seed=toolset.seed, toolset_version=toolset.version, seed=0,
                  tier=tier, workflow=task_type, tools_allowed=[t.name for t in toolset.tools], tables=views)
    if missing:
        report.status, report.task_id = "infeasible", f"{task_id}/infeasible"
        report.reasons.append(f"needs tools the toolset has no spec for: {', '.join(missing)} (corpus label: "
                              f"{label or 'none'})")
        return Task(id=report.task_id, instruction=_instruction(task_data["task"], toolset, [], {}),
                    reference_solution=[], expected_diff={}, allowed_tables=[], feasible=False,
                    infeasible_kind="tool_absent", **common), report
    if label and label != "valid":
        report.warnings.append(f"corpus label {label!r}, but every tool it needs has a spec: recomputed feasible")
    calls = [Call(tool=by_title[_squash(title)], arguments=args) for _, title, args in parsed]
    session = Session(toolset, seed=0)
    try:
        initial = session.snapshot()
        results = [session.call(c.tool, c.model_copy(deep=True).arguments) for c in calls]
        final = session.snapshot()
    finally:
        session.close()
    failed = [(i, r) for i, r in enumerate(results) if not r.ok]
    if failed:
        i, r = failed[0]
        report.reasons.append(f"solution step {i + 1} ({calls[i].tool}) fails on the engine: {r.code}: {r.message}")
        return None, report
    diff = normalize_diff(raw_diff(views, initial, final), views)
    sources, answer, money = _bottom_lines(toolset, calls, results)
    report.warnings += _flow_warnings(toolset, calls, results, sources)
    task = Task(id=task_id, instruction=_instruction(task_data["task"], toolset, calls, sources),
                reference_solution=calls, expected_diff=diff, allowed_tables=sorted(diff),
                expected_answer=answer or None, answer_money=money, answer_sources=sources, **common)
    if not diff and not answer:
        report.reasons.append("the solution changes nothing and computes nothing to report: nothing to grade")
        return None, report
    if not grade_calls(task, toolset, task.reference_solution):
        report.reasons.append("the reference solution fails its own grading")
        return None, report
    if all(grade_calls(task, toolset, perturbed) for _, _, perturbed in perturbations(task, toolset)):
        report.reasons.append("no one-argument change of the reference changes the grade")
        return None, report
    report.status, report.task_id = "kept", task_id
    return task, report


def curated_files(corpus: Path, toolset_id: str) -> list[Path]:
    """The corpus' curated task files of a toolset `<field>.<N>`, by task number."""
    field, _, n = toolset_id.rpartition(".")
    folder = Path(corpus) / "task_curated"
    if not field or not n.isdigit() or not folder.is_dir():
        return []
    pattern = re.compile(rf"^{re.escape(field)}_tool_spec_{int(n)}\.task(\d+)\.ya?ml$", re.IGNORECASE)
    found = [(int(m[1]), p) for p in folder.iterdir() if (m := pattern.match(p.name))]
    return [p for _, p in sorted(found)]


def load_curated_tasks(corpus: Path, toolset: Toolset) -> CuratedTasks:
    """The curated tasks of `toolset` (its curated overlay applied) from `corpus/task_curated/`, with a report
    on each file; an unreadable file is reported as dropped, never raised."""
    tasks: list[Task] = []
    report: list[CuratedReport] = []
    for path in curated_files(corpus, toolset.id):
        number = int(re.search(r"task(\d+)", path.name)[1])  # type: ignore[index]
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
            if not isinstance(doc, dict):
                raise CuratedTaskError("the file is not a YAML map")
            task, entry = build_task(doc, toolset, number, path.name)
        except (CuratedTaskError, yaml.YAMLError, OSError, UnicodeDecodeError) as exc:
            report.append(CuratedReport(file=path.name, status="dropped", reasons=[f"{type(exc).__name__}: {exc}"]))
            continue
        report.append(entry)
        if task is not None:
            tasks.append(task)
    return CuratedTasks(toolset_id=toolset.id, tasks=tasks, report=report)


__all__ = ["CuratedReport", "CuratedTaskError", "CuratedTasks", "build_task", "curated_files",
           "load_curated_tasks", "parse_call"]
