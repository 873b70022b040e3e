"""sheets glue: the harness's start_task call, the scripted builders, and the episode scorer.

The scripted agents build their workbook through the MCP tools, one operation per turn, from a plan: the
reference agent replays the task's reference plan (the same plan the reference workbook is built from, so a
correct workspace and a correct grader give 100), the values-only agent types the right numbers with no formulas
and no formatting. Both regenerate the task from its (family, seed, difficulty), as any client could from the
prompt's numbers; neither reads the server's answer key.

Scoring re-grades the saved workbook (its path is in the episode's settings, which the server recorded), so a
score can be recomputed at any time with a newer grader. The server records the graded file's sha256 at submit:
a file that is gone, or changed since (it can be reopened after submit), is not re-graded; the grade the server
returned at submit stands. A task started from a task folder (start_task folder=...) is scored from that grade too.

The optional LLM judge of the subjective criteria: TESTBEDS_SHEETS_JUDGE=<provider:model> (e.g.
anthropic:claude-x) re-grades with that model judging (testbeds_agents.make_model); unset, 'off' or 'sampling'
(a server-side setting) re-grade without it. Never needed offline.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from pydantic import BaseModel, ConfigDict, Field
from testbeds_agents import tool_call
from testbeds_sheets.baselines import values_only_plan
from testbeds_sheets.calls import plan_to_calls
from testbeds_sheets.judging import JUDGE_ENV, Chat, parse_judge_setting, provider_judge
from testbeds_sheets.ops import WorkbookPlan
from testbeds_sheets.tasks import FAMILIES, MAX_DIFFICULTY, generate_task, reference_plan, reference_workbook

from . import replay_policy

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
    calls = [tool_call(name, args) for name, args in plan_to_calls(plan_for(settings, policy_name, seed))]
    return replay_policy([*calls, tool_call("submit")],
                         lambda result: f"Submitted; the server graded it {result.get('final', 'n/a')}.")


@functools.lru_cache(maxsize=4)
def _provider_judge(spec: str) -> Chat:
    return provider_judge(spec)


def judge_from_env() -> Chat | None:
    """The judge TESTBEDS_SHEETS_JUDGE names ('provider:model'), else None; a bad spec raises before any call."""
    setting = parse_judge_setting(os.environ.get(JUDGE_ENV))
    return _provider_judge(setting.spec) if setting.mode == "provider" and setting.spec else None


def _recorded_grade(metrics: dict[str, Any], submitted: Sequence[Any]) -> bool:
    if submitted and isinstance(submitted[-1].structured, dict):
        s = submitted[-1].structured
        metrics.update(final=s["final"], coverage=s["coverage"], regraded=False, **s["dimensions"])
        return True
    return False


def score_episode(episode: dict[str, Any], events: Sequence[Any], *, judge: Chat | None = None) -> dict[str, Any]:
    """Final score, the three dimensions, coverage and every check's score, from the saved workbook.

    judge: the LLM judge of the subjective criteria for the re-grade; default from TESTBEDS_SHEETS_JUDGE."""
    from testbeds_sheets.grader import grade

    settings = episode.get("settings") or {}
    submitted = [e for e in events if e.type == "tool_result" and e.name == "submit" and not e.is_error]
    if settings.get("folder"):
        # A task folder lives on the server's side; the grade the server returned at submit stands.
        recorded: dict[str, Any] = {"submitted": bool(submitted), "folder": settings["folder"]}
        if not _recorded_grade(recorded, submitted):
            raise ValueError(f"the task folder episode {settings['folder']!r} was never submitted")
        recorded["passed"] = recorded["final"] >= 99.999
        return recorded
    if not {"family", "seed", "difficulty"} <= settings.keys():
        raise ValueError("the episode has no task settings (a free-form workspace): nothing to grade")
    task = generate_task(settings["family"], int(settings["seed"]), int(settings["difficulty"]))
    path = Path(settings.get("file", ""))
    metrics: dict[str, Any] = {"submitted": bool(submitted), "family": task.family, "difficulty": task.difficulty}
    expected = settings.get("graded_sha256")
    changed = path.is_file() and expected is not None and hashlib.sha256(path.read_bytes()).hexdigest() != expected
    metrics["file_changed_after_submit"] = changed
    if path.is_file() and not changed:
        report = grade(task, path, reference_workbook(task), judge=judge if judge is not None else judge_from_env())
        metrics.update(final=report.final, coverage=report.coverage, regraded=True,
                       **{d: s for d, s in report.dimensions.items()},
                       checks={c.name: c.score for c in report.checks})
        if report.judge is not None:
            metrics["judged"] = "verdicts" in report.judge
            if "error" in report.judge:
                metrics["judge_error"] = report.judge["error"]
    elif not _recorded_grade(metrics, submitted):
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
