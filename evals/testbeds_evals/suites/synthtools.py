"""synthtools glue: the harness's start_task call, the scripted tool users, and the episode scorer.

The reference agent replays the task's reference solution through the server's `call` tool (the same engine
path as calling each simulated tool by its MCP name), then submits the reference answer or the infeasibility
report; the random agent makes schema-valid random calls to the allowed tools and submits nothing; the
infeasible agent makes no call and always reports the task infeasible (the floor a grader must not reward:
it passes exactly the infeasible twins, which `passed_feasible` / `passed_infeasible` separate). All derive
the task in-process from its (field, toolset seed, tier, index, task seed), as the harness knows them; the server's
answer key is never read.

Scoring: the recording holds the submit verdict the server computed on the task's final state; the scorer
also replays the recorded successful calls on a fresh engine session with the task's seed and grades that
state again, so a recorded verdict that the engine cannot reproduce is flagged rather than trusted.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from testbeds_agents import tool_call
from testbeds_synthtools.catalog import Catalog
from testbeds_synthtools.engine import Session
from testbeds_synthtools.generator import generate_toolset, list_fields
from testbeds_synthtools.grading import Submission, grade
from testbeds_synthtools.spec import Toolset
from testbeds_synthtools.tasks import Task, random_valid_agent, reference_submission

from . import replay_policy

SUITE = "synthtools"
SCORER = "synthtools"
SERVER_MODULE = "testbeds_synthtools"
AGENT_POLICIES = ("reference", "random", "infeasible")
HIDDEN_TOOLS = ("list_toolsets", "load_toolset")  # a task episode needs neither; a sandbox would only distract
MAX_CONSECUTIVE_ERRORS = 8  # the random baseline's calls fail often; it must still reach its submit
REPORT_METRICS = ("passed", "passed_feasible", "passed_infeasible", "calls", "errors", "feasible")
"""`passed_feasible` is `passed` on feasible tasks and None (left out of the mean) on infeasible ones, and
`passed_infeasible` the reverse, so a policy that always reports infeasible shows 0 on feasible tasks."""
DEMO_FIELDS = ("healthcare", "logistics", "banking")
BRIEF = ("Carry out the task with the tools you were given: call them with the arguments the instruction states "
         "or implies, then call submit_task with the values the instruction asks you to report (answer, by name). "
         "If the task cannot be done with these tools, do not change anything: submit_task with infeasible=true "
         "and the reason.")

Tier = Literal["simple", "medium", "complex"]


class TaskSettings(BaseModel):
    """One task as the harness starts it: a generated toolset, a tier and which task of the tier."""

    model_config = ConfigDict(extra="forbid")

    field: str = "healthcare"
    toolset_seed: int = Field(0, ge=0)
    tier: Tier = "simple"
    index: int = Field(0, ge=0)

    def model_post_init(self, _context: Any) -> None:
        if self.field not in list_fields():
            raise ValueError(f"unknown field {self.field!r}; see testbeds_synthtools.generator.list_fields()")

    @property
    def label(self) -> str:
        return f"{self.field}/{self.tier}/{self.index}"


@lru_cache(maxsize=16)
def toolset_of(field: str, seed: int) -> Toolset:
    return generate_toolset(field, seed)


def task_of(settings: TaskSettings, task_seed: int) -> Task:
    return Catalog.pick_task(toolset_of(settings.field, settings.toolset_seed), settings.tier, settings.index,
                             task_seed)


def server_env(db: Path) -> dict[str, str]:
    return {}


def build_kwargs(db: Path) -> dict[str, Any]:
    return {}


def start_call(settings: TaskSettings, seed: int) -> tuple[str, dict[str, Any]]:
    return "start_task", {"field": settings.field, "seed": settings.toolset_seed, "tier": settings.tier,
                          "index": settings.index, "task_seed": seed}


def default_max_steps(settings: TaskSettings) -> int:
    return 40


def task_boundary(message: ToolMessage) -> str | None:
    return None


def scripted_policy(settings: TaskSettings, policy_name: str, seed: int
                    ) -> Callable[[Sequence[BaseMessage]], AIMessage]:
    """One call per turn through the generic `call` tool (spec names), then submit_task."""
    if policy_name not in AGENT_POLICIES:
        raise ValueError(f"the scripted synthtools agent plays {', '.join(AGENT_POLICIES)}, not {policy_name!r}")
    task = task_of(settings, seed)
    toolset = toolset_of(settings.field, settings.toolset_seed)
    if policy_name == "reference":
        calls, submission = task.reference_solution, reference_submission(task)
    elif policy_name == "infeasible":
        calls, submission = [], Submission(infeasible=True, reason="these tools cannot complete the task")
    else:
        calls, submission = random_valid_agent(task, toolset, seed), Submission()
    queue = [tool_call("call", {"tool": c.tool, "arguments": c.arguments}) for c in calls]
    queue.append(tool_call("submit_task", submission.model_dump(exclude_none=True)))
    return replay_policy(queue, lambda result: f"Submitted: {'passed' if result.get('passed') else 'not passed'}.")


def settings_from_args(args: Any) -> list[TaskSettings]:
    """`testbeds run --suite synthtools --family healthcare --tier simple medium`."""
    return [TaskSettings(field=f, tier=t) for f in (args.family or DEMO_FIELDS)
            for t in (args.tier or ("simple", "medium", "complex"))]


def score_episode(episode: dict[str, Any], events: Sequence[Any]) -> dict[str, Any]:
    """passed (the server's verdict, checked by replaying the recorded calls), calls, errors, feasibility."""
    settings = episode.get("settings") or {}
    calls = [e for e in events if e.type == "tool_call" and e.name not in ("start_task", "submit_task")]
    results = [e for e in events if e.type == "tool_result" and e.name not in ("start_task", "submit_task")]
    submitted = [e for e in events if e.type == "tool_result" and e.name == "submit_task" and not e.is_error]
    submit_calls = [e for e in events if e.type == "tool_call" and e.name == "submit_task"]
    recorded = bool(submitted and isinstance(submitted[-1].structured, dict) and submitted[-1].structured["passed"])
    metrics: dict[str, Any] = {"submitted": bool(submitted), "calls": len(calls),
                               "errors": sum(1 for r in results if r.is_error),
                               "feasible": settings.get("feasible"), "tier": settings.get("tier"),
                               "task": settings.get("task_id")}
    metrics["replayed"] = replay_verdict(settings, calls, results, submit_calls[-1] if submit_calls else None)
    metrics["passed"] = recorded and metrics["replayed"] is not False
    feasible = settings.get("feasible")
    metrics["passed_feasible"] = metrics["passed"] if feasible is True else None
    metrics["passed_infeasible"] = metrics["passed"] if feasible is False else None
    metrics["agrees_with_replay"] = metrics["replayed"] is None or metrics["replayed"] == recorded
    return metrics


def replay_verdict(settings: dict[str, Any], calls: Sequence[Any], results: Sequence[Any],
                   submit: Any) -> bool | None:
    """Grade a fresh session that replays the episode's successful calls; None when the episode's toolset is not
    a generated one (the scorer cannot rebuild it) or it was never submitted."""
    ref = str(settings.get("toolset_ref", ""))
    if submit is None or not ref.startswith("gen:"):
        return None
    parts = ref.split(":")
    toolset = generate_toolset(parts[1], int(parts[2]), n_tools=int(parts[3]) if len(parts) > 3 else None)
    task = Catalog.pick_task(toolset, settings["tier"], int(settings["index"]), int(settings["task_seed"]))
    ok_ids = {r.call_id for r in results if not r.is_error}
    session = Session(toolset, seed=task.seed)
    try:
        for c in calls:
            if c.call_id not in ok_ids:
                continue
            outer = _as_object(c.arguments)
            if outer is None:
                continue
            name, args = (outer.get("tool"), _as_object(outer.get("arguments") or {})) if c.name == "call" \
                else (c.name, {k: v for k, v in outer.items() if k != "handle"})
            if args is None:
                continue  # the server refused such a call too: it cannot have changed the state
            session.call(str(name), dict(args))
        a = _as_object(submit.arguments) or {}
        answer = _as_object(a.get("answer")) if a.get("answer") is not None else None
        reason = a.get("reason")
        verdict = grade(task, session, Submission(answer=answer, infeasible=_flag(a.get("infeasible")),
                                                  reason=reason if isinstance(reason, str) else None))
        return verdict.passed
    finally:
        session.close()


def _flag(value: Any) -> bool:
    """A recorded boolean as the server's (lax) argument validation read it: `"true"` counts, junk does not."""
    try:
        return bool(TypeAdapter(bool).validate_python(value)) if value is not None else False
    except ValidationError:
        return False


def _as_object(value: Any) -> dict[str, Any] | None:
    """A recorded argument object: models sometimes send objects as JSON text; anything else is None."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    return dict(value) if isinstance(value, Mapping) else None
