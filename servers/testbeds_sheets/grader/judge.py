"""Optional LLM judge for the rubric's subjective criteria (off by default; never needed offline).

The judge is any chat callable `prompt -> text` (an MCP sampling bridge, a provider client, or a scripted
function in tests). It sees a compact description of the workbook, answers a JSON verdict per criterion, and its
scores join the deterministic checks of those criteria as one more check each.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from pydantic import BaseModel, Field, ValidationError

from ..engine.values import Evaluation
from ..tasks.model import Task
from .book import Book, sheet_role
from .report import CRITERIA, SUBJECTIVE_CRITERIA, CheckResult, make_check

Chat = Callable[[str], str]
MAX_CELLS_PER_SHEET = 60


class CriterionVerdict(BaseModel):
    criterion: str
    score: float = Field(ge=0, le=1)
    reason: str = Field(max_length=1000)


class JudgeVerdict(BaseModel):
    verdicts: list[CriterionVerdict]


def describe_workbook(book: Book, ev: Evaluation, limit: int = MAX_CELLS_PER_SHEET) -> str:
    """A compact text view: sheets with roles, then each sheet's first cells (formula, value, number format)."""
    lines = []
    for sheet in book.sheetnames:
        max_row, max_col = book.bounds.get(sheet, (0, 0))
        ws = book.wb[sheet]
        lines.append(f"## Sheet {sheet!r} (role {sheet_role(sheet)}, {max_row} rows x {max_col} columns, "
                     f"freeze panes {ws.freeze_panes or 'none'})")
        shown = 0
        for r in sorted(book.rows.get(sheet, {})):
            for c in book.row_cells(sheet, r):
                if shown >= limit:
                    break
                value = ev.values.get(c.key)
                content = c.formula if c.is_formula else repr(c.raw)
                extra = f" -> {value!r}" if c.is_formula else ""
                lines.append(f"{c.coordinate}: {content}{extra} [{c.cell.number_format}]")
                shown += 1
        if shown >= limit:
            lines.append("...")
    return "\n".join(lines)


def build_prompt(task: Task, book: Book, ev: Evaluation, criteria: tuple[str, ...] = SUBJECTIVE_CRITERIA) -> str:
    rubric = "\n".join(f"- {c}: {CRITERIA[c][2]}" for c in criteria)
    return (
        "You review a finance spreadsheet model as a senior analyst would.\n"
        f"Case: {task.title}\n\nCriteria (score each from 0 to 1):\n{rubric}\n\n"
        f"Workbook:\n{describe_workbook(book, ev)}\n\n"
        'Answer with JSON only: {"verdicts": [{"criterion": "<id>", "score": <0..1>, "reason": "<one sentence>"}]}'
    )


def parse_verdict(text: str, criteria: tuple[str, ...] = SUBJECTIVE_CRITERIA) -> JudgeVerdict:
    """The validated verdict in a reply (the first JSON object in it); ValueError when there is none or it is
    malformed or judges unknown criteria."""
    m = re.search(r"\{.*\}", text, re.S)
    if not m:
        raise ValueError("the judge's reply holds no JSON object")
    try:
        verdict = JudgeVerdict.model_validate(json.loads(m.group(0)))
    except (json.JSONDecodeError, ValidationError) as exc:
        raise ValueError(f"the judge's reply is not a valid verdict: {str(exc)[:300]}") from exc
    unknown = [v.criterion for v in verdict.verdicts if v.criterion not in criteria]
    if unknown:
        raise ValueError(f"the judge scored unknown criteria {unknown}; expected some of {list(criteria)}")
    return verdict


def run_judge(chat: Chat, task: Task, book: Book, ev: Evaluation,
              criteria: tuple[str, ...] = SUBJECTIVE_CRITERIA) -> tuple[list[CheckResult], dict]:
    """Ask the judge once; (one check per judged criterion, a record for the report). A failed or invalid reply
    adds no check and is recorded as an error, so grading never depends on the judge."""
    prompt = build_prompt(task, book, ev, criteria)
    try:
        reply = chat(prompt)
        verdict = parse_verdict(reply, criteria)
    except Exception as exc:  # the judge is optional: any failure of it leaves the deterministic grade intact
        return [], {"error": str(exc)[:500]}
    checks, seen = [], set()
    for v in verdict.verdicts:
        if v.criterion in seen:
            continue
        seen.add(v.criterion)
        checks.append(make_check(f"judge:{v.criterion}", v.criterion, 1, [] if v.score >= 1 else ["(judge)"],
                                 f"LLM judge: {v.reason}", score=v.score))
    return checks, {"verdicts": [v.model_dump() for v in verdict.verdicts]}
