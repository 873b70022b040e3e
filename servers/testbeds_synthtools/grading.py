"""Grading a task on final state: the content diff, the reported answer, collateral damage, and pass^k.

`grade(task, final, submission)` compares the change between the initial state (the toolset's seed rows)
and the final state with the task's `expected_diff`:

- inserted rows match one-to-one by content (never by surrogate ids; volatile columns ignored), so counts
  must agree and a duplicate insert fails; a reference to a row inserted in the same episode matches when it
  points to the row matched to the expected one (tables are matched parents first);
- updated rows are keyed by the row key (rows that exist before the task), comparing the changed columns;
- deleted keys must agree;
- any other change (another table, another row, another column) is collateral damage and fails.

Values compare by type: money columns exact in cents, other numbers |a - b| <= max(1e-6, 1e-4 |b|),
strings (enums) case-insensitive, booleans exactly. An infeasible task passes only with no change at all and
an explicit infeasible report. `pass_hat_k` is the unbiased pass^k estimator C(c, k) / C(n, k).

A grade carries two texts: `reasons`, safe to show the agent (which tables differ and how many rows, which
answer keys are missing or wrong, that the task was not completed as asked: never an expected value and
never whether the task was feasible, so a retry cannot be steered by the grader), and `details`, the full
expected-versus-actual account for the evaluator.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from .engine import Session, diff, money_to_units
from .spec import Toolset, canonical_json

if TYPE_CHECKING:
    from .tasks import Task

Snapshot = Mapping[str, list[dict[str, Any]]]
INFEASIBLE_WORDS = ("infeasible", "not feasible", "cannot be completed", "impossible")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TableView(_Model):
    """What grading needs to know about one state table."""

    key: str = Field(description="Key column.")
    surrogate_key: bool = Field(description="Keys are made by the engine (id prefix): inserted rows match by content.")
    ignored: list[str] = Field(default_factory=list, description="Columns left out of diffs (volatile, clock-set).")
    money: dict[str, int] = Field(default_factory=dict, description="Money columns -> decimal places (exact compare).")
    refs: dict[str, str] = Field(default_factory=dict, description="Reference columns -> referenced table.")


class RowUpdate(_Model):
    """An updated row: its key and the changed (non-ignored) columns before and after."""

    key: Any
    before: dict[str, Any]
    after: dict[str, Any]


class TableDiff(_Model):
    """The change of one table. Inserted rows omit ignored columns and surrogate keys; a reference to a row
    inserted in the same episode reads `{"$new": table, "index": i}` (i-th inserted row of that table)."""

    inserted: list[dict[str, Any]] = Field(default_factory=list)
    updated: list[RowUpdate] = Field(default_factory=list)
    deleted: list[Any] = Field(default_factory=list)


class Submission(_Model):
    """What the agent hands in: an answer (the values the task asks for), or an infeasible report."""

    answer: dict[str, Any] | None = Field(None, description="Reported values by name, when the task asks for some.")
    infeasible: bool = Field(False, description="True when the agent reports that the task cannot be done.")
    reason: str | None = Field(None, description="Why it is infeasible (free text).")

    @classmethod
    def from_text(cls, text: str | None) -> Submission:
        """A final free-text answer: one that says "infeasible" (or "cannot be completed") is a report."""
        if text is None:
            return cls()
        low = text.strip().lower()
        if any(w in low for w in INFEASIBLE_WORDS):
            return cls(infeasible=True, reason=text.strip())
        return cls()


class TaskGrade(_Model):
    """The verdict on one task. `reasons` may be shown to the agent; `details` is for the evaluator only."""

    task_id: str
    passed: bool
    reasons: list[str] = Field(default_factory=list, description="Why it failed, agent-safe: no expected value, "
                                                                  "no word on feasibility (empty when passed).")
    details: list[str] = Field(default_factory=list, description="Why it failed in full (expected vs actual "
                                                                  "values, feasibility): evaluator only.")
    diff_match: bool = Field(description="The state change equals the expected one (no collateral).")
    answer_match: bool = Field(description="The reported values match (true when none are asked).")
    collateral: list[dict[str, Any]] = Field(default_factory=list, description="Changes nobody asked for.")


# ------------------------------------------------------------------------------------------- values


def _to_number(v: Any) -> Decimal | None:
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, int | float):
        return Decimal(str(v)) if math.isfinite(v) else None
    if isinstance(v, str):
        text = re.sub(r"[\s,$€£]", "", v)
        try:
            d = Decimal(text)
        except InvalidOperation:
            return None
        return d if d.is_finite() else None
    return None


def values_match(actual: Any, expected: Any, money_scale: int | None = None) -> bool:
    """Our value equality: money exact in units of 10^-scale, other numbers within
    max(1e-6, 1e-4 |expected|), strings case-insensitive (surrounding blanks ignored), booleans exact, lists
    element by element, objects key by key."""
    if expected is None or actual is None:
        return expected is None and actual is None
    if isinstance(expected, bool) or isinstance(actual, bool):
        return isinstance(expected, bool) and isinstance(actual, bool) and expected == actual
    if isinstance(expected, int | float):
        a = _to_number(actual)
        if a is None:
            return False
        if money_scale is not None:
            try:
                return money_to_units(a, money_scale) == money_to_units(expected, money_scale)
            except ValueError:
                return False
        b = Decimal(str(expected))
        return abs(a - b) <= max(Decimal("1e-6"), Decimal("1e-4") * abs(b))
    if isinstance(expected, str):
        return isinstance(actual, str) and actual.strip().casefold() == expected.strip().casefold()
    if isinstance(expected, list):
        return isinstance(actual, list) and len(actual) == len(expected) and all(
            values_match(a, e) for a, e in zip(actual, expected, strict=True))
    if isinstance(expected, dict):
        return isinstance(actual, dict) and set(actual) == set(expected) and all(
            values_match(actual[k], expected[k]) for k in expected)
    return bool(actual == expected)


def _row_match(actual: Mapping[str, Any], expected: Mapping[str, Any], view: TableView) -> bool:
    if set(actual) != set(expected):
        return False
    return all(values_match(actual[c], expected[c], view.money.get(c)) for c in expected)


# ------------------------------------------------------------------------------------------- diffs


def views_for(toolset: Toolset) -> dict[str, TableView]:
    """Grading views of a toolset's tables. Volatile columns and columns a tool assigns from the clock
    (`now`) are ignored: their values depend on when the writes happened, not on what was written."""
    if toolset.state_schema is None:
        return {}
    clocked: dict[str, set[str]] = {}
    for tool in toolset.tools:
        if tool.effect.table is None:
            continue
        for col, expr in tool.effect.assign.items():
            if re.search(r"\bnow\b", expr):
                clocked.setdefault(tool.effect.table, set()).add(col)
    out: dict[str, TableView] = {}
    for t in toolset.state_schema.tables:
        ignored = [c for c, col in t.columns.items() if (col.volatile or c in clocked.get(t.name, set()))
                   and c != t.key]
        out[t.name] = TableView(
            key=t.key, surrogate_key=t.id_prefix is not None, ignored=ignored,
            money={c: col.money_scale for c, col in t.columns.items() if col.money_scale is not None},
            refs={c: col.ref.split(".")[0] for c, col in t.columns.items() if col.ref is not None})
    return out


def normalize_diff(raw: Mapping[str, Mapping[str, Any]], views: Mapping[str, TableView],
                   new_index: Mapping[str, Mapping[str, int]] | None = None) -> dict[str, TableDiff]:
    """A raw engine diff as a content diff: ignored columns dropped, updates reduced to changed columns (and
    dropped when nothing else changed), surrogate keys of inserted rows dropped, references to inserted rows
    replaced by `{"$new": table, "index": i}` using `new_index[table][canonical key] -> i` (default: the
    position in this diff's own inserted list)."""
    if new_index is None:
        new_index = {t: {canonical_json(r[views[t].key]): i for i, r in enumerate(d.get("inserted", []))}
                     for t, d in raw.items() if t in views}
    out: dict[str, TableDiff] = {}
    for table, d in raw.items():
        view = views.get(table)
        if view is None:
            continue

        def clean(row: Mapping[str, Any], drop_key: bool, v: TableView = view) -> dict[str, Any]:
            r = {c: x for c, x in row.items() if c not in v.ignored and not (drop_key and c == v.key)}
            for c, target in v.refs.items():
                if c in r and r[c] is not None:
                    i = new_index.get(target, {}).get(canonical_json(r[c]))
                    if i is not None:
                        r[c] = {"$new": target, "index": i}
            return r

        inserted = [clean(r, view.surrogate_key) for r in d.get("inserted", [])]
        updated = []
        for u in d.get("updated", []):
            b, a = clean(u["before"], False), clean(u["after"], False)
            cols = [c for c in a if canonical_json(a.get(c)) != canonical_json(b.get(c))]
            if cols:
                updated.append(RowUpdate(key=u["key"], before={c: b.get(c) for c in cols},
                                         after={c: a.get(c) for c in cols}))
        deleted = list(d.get("deleted", []))
        if inserted or updated or deleted:
            out[table] = TableDiff(inserted=inserted, updated=updated, deleted=deleted)
    return out


def raw_diff(views: Mapping[str, TableView], initial: Snapshot, final: Snapshot) -> dict[str, dict[str, Any]]:
    """The engine's row diff between two snapshots."""
    return diff(initial, final, {t: v.key for t, v in views.items()})


def _bipartite(n_exp: int, n_act: int, ok: list[list[bool]]) -> dict[int, int]:
    """Maximum matching expected -> actual (augmenting paths; the sizes here are tiny)."""
    match_act: dict[int, int] = {}

    def augment(e: int, seen: set[int]) -> bool:
        for a in range(n_act):
            if ok[e][a] and a not in seen:
                seen.add(a)
                if a not in match_act or augment(match_act[a], seen):
                    match_act[a] = e
                    return True
        return False

    for e in range(n_exp):
        augment(e, set())
    return {e: a for a, e in match_act.items()}


def compare_diff(expected: Mapping[str, TableDiff], raw: Mapping[str, Mapping[str, Any]],
                 views: Mapping[str, TableView], allowed_tables: Sequence[str]
                 ) -> tuple[list[str], list[dict[str, Any]]]:
    """Differences between the expected content diff and an actual raw diff: (reasons, collateral)."""
    found, collateral = _compare_diff(expected, raw, views, allowed_tables)
    return [text for _, text in found], collateral


def _compare_diff(expected: Mapping[str, TableDiff], raw: Mapping[str, Mapping[str, Any]],
                  views: Mapping[str, TableView], allowed_tables: Sequence[str]
                  ) -> tuple[list[tuple[str, str]], list[dict[str, Any]]]:
    """`compare_diff` with each reason tagged by its table."""
    reasons: list[tuple[str, str]] = []
    collateral: list[dict[str, Any]] = []
    # actual inserted key -> matched expected index, per table; parents are matched before children
    new_index: dict[str, dict[str, int]] = {}
    order = [t for t in views if t in raw or t in expected]
    for table in order:
        view = views[table]
        exp = expected.get(table, TableDiff())
        act = raw.get(table, {"inserted": [], "updated": [], "deleted": []})
        if table not in allowed_tables and table in raw:
            n = len(act["inserted"]) + len(act["updated"]) + len(act["deleted"])
            collateral.append({"table": table, "op": "any", "detail": f"{n} change(s) in a table the task does "
                                                                      "not allow"})
        ins = act["inserted"]
        unmatched_marker = -1
        own = {canonical_json(r[view.key]): unmatched_marker for r in ins}

        def clean_actual(rows: list[dict[str, Any]], v: TableView = view) -> list[dict[str, Any]]:
            tmp = normalize_diff({table: {"inserted": rows, "updated": [], "deleted": []}}, {table: v},
                                 new_index={**new_index, table: own})
            return tmp[table].inserted if table in tmp else []

        cleaned = clean_actual(ins)
        ok = [[_row_match(a, e, view) for a in cleaned] for e in exp.inserted]
        matching = _bipartite(len(exp.inserted), len(cleaned), ok)
        new_index[table] = {canonical_json(ins[a][view.key]): e for e, a in matching.items()}
        for e, row in enumerate(exp.inserted):
            if e not in matching:
                reasons.append((table, f"{table}: expected inserted row not found: {canonical_json(row)}"))
        matched_actual = set(matching.values())
        for a, row in enumerate(cleaned):
            if a not in matched_actual:
                collateral.append({"table": table, "op": "insert", "key": ins[a][view.key], "row": row})
        # updates: keys of rows that existed before the task
        act_norm = normalize_diff({table: {"inserted": [], "updated": act["updated"], "deleted": []}}, {table: view},
                                  new_index=new_index)
        act_upd = {canonical_json(u.key): u for u in (act_norm[table].updated if table in act_norm else [])}
        exp_upd = {canonical_json(u.key): u for u in exp.updated}
        for k, u in exp_upd.items():
            got = act_upd.get(k)
            if got is None:
                reasons.append((table, f"{table}: expected update of {u.key!r} not made ({canonical_json(u.after)})"))
                continue
            wrong = [c for c, v in u.after.items()
                     if c not in got.after or not values_match(got.after[c], v, view.money.get(c))]
            if wrong:
                reasons.append((table, "; ".join(f"{table}: {u.key!r}.{c} is {got.after.get(c, got.before.get(c))!r}, "
                                                 f"expected {u.after[c]!r}" for c in wrong)))
            extra = [c for c in got.after if c not in u.after]
            if extra:
                collateral.append({"table": table, "op": "update", "key": u.key, "columns": extra})
        for k, got in act_upd.items():
            if k not in exp_upd:
                collateral.append({"table": table, "op": "update", "key": got.key, "columns": list(got.after)})
        exp_del = {canonical_json(k) for k in exp.deleted}
        act_del = {canonical_json(k): k for k in act["deleted"]}
        for k in exp.deleted:
            if canonical_json(k) not in act_del:
                reasons.append((table, f"{table}: expected deletion of {k!r} not made"))
        for ck, k in act_del.items():
            if ck not in exp_del:
                collateral.append({"table": table, "op": "delete", "key": k})
    return reasons, collateral


# ------------------------------------------------------------------------------------------- answers


def _norm_key(k: str) -> str:
    return re.sub(r"[\s\-]+", "_", k.strip().lower())


def compare_answer(expected: Mapping[str, Any] | None, answer: Mapping[str, Any] | None,
                   money: Mapping[str, int] | None = None) -> list[str]:
    """Why the reported values do not match (empty: they do). Keys match case-insensitively; extra keys
    are ignored."""
    return [text for _, text in _answer_problems(expected, answer, money) if text]


def _answer_problems(expected: Mapping[str, Any] | None, answer: Mapping[str, Any] | None,
                     money: Mapping[str, int] | None = None) -> list[tuple[str, str]]:
    """`compare_answer` with each reason tagged by the answer key it is about."""
    if not expected:
        return []
    if not answer:
        keys = list(expected)
        # one text for the whole miss; the other keys are tagged with no text of their own
        return [(keys[0], f"no answer given; expected values for {', '.join(keys)}"), *((k, "") for k in keys[1:])]
    got = {_norm_key(k): v for k, v in answer.items()}
    out = []
    for k, v in expected.items():
        nk = _norm_key(k)
        if nk not in got:
            out.append((k, f"answer lacks {k!r}"))
        elif not values_match(got[nk], v, (money or {}).get(k)):
            out.append((k, f"answer {k!r} is {got[nk]!r}, expected {v!r}"))
    return out


NOT_AS_ASKED = "the task was not completed as asked"


def _state_reason(table: str, n: int) -> str:
    return (f"the final state does not match the expected outcome in table {table} "
            f"({n} row{'s' if n != 1 else ''} differ{'s' if n == 1 else ''})")


def _agent_reasons(tools_reason: str | None, per_table: Mapping[str, int], answer_keys: Sequence[str],
                   not_as_asked: bool) -> list[str]:
    """The agent-safe account: built from counts and names the agent already knows, never from expected
    values, and worded the same whether the task was feasible or not."""
    out = [tools_reason] if tools_reason else []
    out += [_state_reason(t, n) for t, n in sorted(per_table.items())]
    if answer_keys:
        out.append(f"the reported answer is missing or wrong for: {', '.join(answer_keys)}")
    if not_as_asked:
        out.append(NOT_AS_ASKED)
    return out


# ------------------------------------------------------------------------------------------- grading


def _initial_snapshot(session: Session) -> dict[str, list[dict[str, Any]]]:
    fresh = Session(session.toolset, seed=session.seed)
    try:
        return fresh.snapshot()
    finally:
        fresh.close()


def _tool_calls(calls: Sequence[Any]) -> list[tuple[str, bool]]:
    out = []
    for c in calls:
        if isinstance(c, str):
            out.append((c, True))
        elif isinstance(c, Mapping):
            out.append((str(c.get("tool")), bool(c.get("ok", True))))
    return out


def grade(task: Task, final: Session | Snapshot, submission: Submission | None = None, *,
          initial: Snapshot | None = None, calls: Sequence[Any] | None = None) -> TaskGrade:
    """Grade one attempt at `task`.

    `final` is the agent's session (its initial state is rebuilt from the toolset's seed rows and its call
    history is checked against `tools_allowed`) or a final snapshot, then with `initial` (the snapshot
    before the attempt). `calls` (tool names, or dicts with `tool` and optional `ok`) adds calls to check
    against `tools_allowed`; a failed call to another tool is harmless. `submission` None means no answer and
    no infeasible report."""
    sub = submission or Submission()
    views = task.tables
    if isinstance(final, Session):
        before = initial if initial is not None else _initial_snapshot(final)
        after = final.snapshot()
        history = [{"tool": h["tool"], "ok": h["ok"]} for h in final.history(last=1 << 30)]
    else:
        if initial is None:
            raise ValueError("grading a snapshot needs the initial snapshot too (initial=...)")
        before, after, history = initial, final, []
    checked_calls = _tool_calls([*history, *(calls or [])])
    raw = raw_diff(views, before, after)
    details: list[str] = []
    allowed = set(task.tools_allowed)
    used = sorted({name for name, ok in checked_calls if ok and name not in allowed})
    tools_reason = f"called tools that are not allowed: {', '.join(used)}" if used else None
    if tools_reason:
        details.append(tools_reason)
    per_table: dict[str, int] = {}
    if not task.feasible:
        any_change = bool(raw)
        # worded like any unexpected change: the collateral may be shown where feasibility must not be
        collateral = [{"table": t, "op": "any", "detail": "changes the task does not expect"} for t in raw]
        for t, d in raw.items():
            per_table[t] = len(d.get("inserted", [])) + len(d.get("updated", [])) + len(d.get("deleted", []))
        if any_change:
            details.append(f"the task is infeasible but the state changed ({', '.join(sorted(raw))})")
        if not sub.infeasible:
            details.append("the task is infeasible and no infeasible report was made")
        reasons = _agent_reasons(tools_reason, per_table, [], not sub.infeasible)
        return TaskGrade(task_id=task.id, passed=not details, reasons=reasons, details=details,
                         diff_match=not any_change, answer_match=sub.infeasible, collateral=collateral)
    diff_found, collateral = _compare_diff(task.expected_diff, raw, views, task.allowed_tables)
    details += [text for _, text in diff_found]
    for table, _ in diff_found:
        per_table[table] = per_table.get(table, 0) + 1
    for c in collateral:
        details.append(f"collateral change: {canonical_json(c)}")
        per_table[c["table"]] = per_table.get(c["table"], 0) + 1
    answer_found = _answer_problems(task.expected_answer, sub.answer, task.answer_money)
    answer_details = [text for _, text in answer_found if text]
    if sub.infeasible:
        answer_details.insert(0, "reported infeasible, but the task is feasible")
    details += answer_details
    reasons = _agent_reasons(tools_reason, per_table, [k for k, _ in answer_found], sub.infeasible)
    diff_ok = not diff_found and not collateral
    return TaskGrade(task_id=task.id, passed=not details, reasons=reasons, details=details, diff_match=diff_ok,
                     answer_match=not answer_details, collateral=collateral)


def pass_hat_k(successes: Sequence[int], n: int, k: int) -> float:
    """Unbiased pass^k (probability that k independent trials all pass), averaged over tasks: per task with
    c successes out of n trials, C(c, k) / C(n, k). n=4, c=3, k=2 gives 0.5."""
    if not 1 <= k <= n:
        raise ValueError(f"need 1 <= k <= n, got k={k}, n={n}")
    if not successes:
        raise ValueError("no tasks")
    for c in successes:
        if not 0 <= c <= n:
            raise ValueError(f"successes must be between 0 and n={n}, got {c}")
    denom = math.comb(n, k)
    return sum(math.comb(c, k) for c in successes) / (denom * len(successes))
