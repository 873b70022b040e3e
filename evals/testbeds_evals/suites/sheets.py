"""sheets glue: the harness's start_task call, the scripted builders, and the episode scorer.

The scripted agents build their workbook through the MCP tools, one operation per turn, from a plan: the
reference agent replays the task's reference plan (the same plan the reference workbook is built from, so a
correct workspace and a correct grader give 100), the values-only agent types the right numbers with no formulas
and no formatting. Both regenerate the task from its (family, seed, difficulty), as any client could from the
prompt's numbers; neither reads the server's answer key.

Scoring re-grades the saved workbook (its path is in the episode's settings, which the server recorded), so a
score can be recomputed at any time with a newer grader. The server records the graded file's sha256 at submit:
a file that is gone, or changed since (it can be reopened after submit), is not re-graded; the grade the server
returned at submit stands.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from pydantic import BaseModel, ConfigDict, Field
from testbeds_agents import call_tools, tool_call
from testbeds_sheets.baselines import values_only_plan
from testbeds_sheets.calls import plan_to_calls
from testbeds_sheets.ops import WorkbookPlan
from testbeds_sheets.tasks import FAMILIES, MAX_DIFFICULTY, generate_task, reference_plan, reference_workbook

SUITE = "sheets"
SCORER = "sheets"
SERVER_MODULE = "testbeds_sheets"
AGENT_POLICIES = ("reference", "values_only")
MAX_CONSECUTIVE_ERRORS = 5
REPORT_METRICS = ("final", "accuracy", "formula", "format", "coverage", "passed")
BRIEF = ("Build the financial model the case asks for in the workbook you were given, using the workbook tools: "
         "inputs on an input sheet as constants, calculations as formulas that read them, outputs given the "
         "defined names the task lists, professional formatting. Submit when the model is complete.")


class TaskSettings(BaseModel):
    """One task as the harness starts it."""

    model_config = ConfigDict(extra="forbid")

    family: str = "revenue_buildup"
    difficulty: int = Field(3, ge=1, le=MAX_DIFFICULTY)

    def model_post_init(self, _context: Any) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"unknown family {self.family!r}; choose one of {', '.join(FAMILIES)}")

    @property
    def label(self) -> str:
        return f"{self.family}/d{self.difficulty}"


def workspaces_path(db: Path) -> Path:
    """Workbooks of a run live next to its transcripts, so the scorer can re-grade them."""
    return db.with_name(db.stem + ".sheets")


def server_env(db: Path) -> dict[str, str]:
    return {"TESTBEDS_SHEETS_ROOT": str(workspaces_path(db).resolve())}


def build_kwargs(db: Path) -> dict[str, Any]:
    return {"root": workspaces_path(db).resolve()}


def start_call(settings: TaskSettings, seed: int) -> tuple[str, dict[str, Any]]:
    return "start_task", {"family": settings.family, "seed": seed, "difficulty": settings.difficulty}


def plan_for(settings: TaskSettings, policy_name: str, seed: int) -> WorkbookPlan:
    task = generate_task(settings.family, seed, settings.difficulty)
    if policy_name == "reference":
        return reference_plan(task)
    if policy_name == "values_only":
        return values_only_plan(task)
    raise ValueError(f"the scripted sheets agent plays {', '.join(AGENT_POLICIES)}, not {policy_name!r}")


def default_max_steps(settings: TaskSettings) -> int:
    """One turn per operation of the larger plan, the submit, the closing reply, and room for retries."""
    return len(plan_to_calls(plan_for(settings, "reference", 0))) + 20


def task_boundary(message: ToolMessage) -> str | None:
    return None


def scripted_policy(settings: TaskSettings, policy_name: str, seed: int
                    ) -> Callable[[Sequence[BaseMessage]], AIMessage]:
    """Replay the plan's tool calls one per turn (calls of one turn run concurrently, and order matters in a
    workbook), then submit, then answer with the score the server reported."""
    queue = [tool_call(name, args) for name, args in plan_to_calls(plan_for(settings, policy_name, seed))]
    queue.append(tool_call("submit"))
    state = {"next": 0}

    def decide(messages: Sequence[BaseMessage]) -> AIMessage:
        last = messages[-1]
        if isinstance(last, ToolMessage) and last.name == "submit":
            result = last.artifact if isinstance(last.artifact, dict) else {}
            return AIMessage(content=f"Submitted; the server graded it {result.get('final', 'n/a')}.")
        if state["next"] >= len(queue):
            return AIMessage(content="Done.")
        call = queue[state["next"]]
        state["next"] += 1
        return call_tools(call)

    return decide


def score_episode(episode: dict[str, Any], events: Sequence[Any]) -> dict[str, Any]:
    """Final score, the three dimensions, coverage and every check's score, from the saved workbook."""
    from testbeds_sheets.grader import grade

    settings = episode.get("settings") or {}
    submitted = [e for e in events if e.type == "tool_result" and e.name == "submit" and not e.is_error]
    if not {"family", "seed", "difficulty"} <= settings.keys():
        raise ValueError("the episode has no task settings (a free-form workspace): nothing to grade")
    task = generate_task(settings["family"], int(settings["seed"]), int(settings["difficulty"]))
    path = Path(settings.get("file", ""))
    metrics: dict[str, Any] = {"submitted": bool(submitted), "family": task.family, "difficulty": task.difficulty}
    expected = settings.get("graded_sha256")
    changed = path.is_file() and expected is not None and hashlib.sha256(path.read_bytes()).hexdigest() != expected
    metrics["file_changed_after_submit"] = changed
    if path.is_file() and not changed:
        report = grade(task, path, reference_workbook(task))
        metrics.update(final=report.final, coverage=report.coverage, regraded=True,
                       **{d: s for d, s in report.dimensions.items()},
                       checks={c.name: c.score for c in report.checks})
    elif submitted and isinstance(submitted[-1].structured, dict):
        s = submitted[-1].structured
        metrics.update(final=s["final"], coverage=s["coverage"], regraded=False, **s["dimensions"])
    else:
        raise ValueError(f"the workbook {path} is gone and the episode was never submitted")
    if not submitted:
        # An unsubmitted model is graded as it stands, but it did not finish the task.
        metrics["final_if_submitted"] = metrics.pop("final")
        metrics["final"] = 0.0
    metrics["passed"] = bool(submitted) and metrics["final"] >= 99.999
    return metrics


def settings_from_args(args: Any) -> list[TaskSettings]:
    """`testbeds run --suite sheets --family dcf loan_amortisation --difficulty 2 6`."""
    return [TaskSettings(family=f, difficulty=d) for f in (args.family or FAMILIES) for d in (args.difficulty or [3])]
