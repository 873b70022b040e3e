"""mixopt glue: the harness's create_study call, the scripted advisor-loop agent, and the episode scorer.

The scorer needs no replay of the optimiser: the recording holds every `recommend` result and the spending
before it, and the backend gives the noise-free value of a recommended mixture. Cost to target (design note
mixopt.md §5): the spending up to the first recommendation within 1% of the best achievable value at the target
scale, plus one target run if that mixture was never trained there (the confirmation run).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from pydantic import BaseModel, ConfigDict, Field
from testbeds_agents import call_tools, tool_call
from testbeds_mixopt.backends import make_backend
from testbeds_mixopt.domains import TARGET_SIZE_M, TARGET_STEPS, default_direction
from testbeds_mixopt.targets import Checkpoint, cost_to_target, relative_gap

from . import fresh_results

SUITE = "mixopt"
SCORER = "mixopt"
SERVER_MODULE = "testbeds_mixopt"
AGENT_POLICIES = ("advisor",)
MAX_CONSECUTIVE_ERRORS = 3
TOLERANCE = 0.01
BRIEF = ("Find the best pre-training data mixture at the target scale within the study's budget. Use suggest to "
         "get the advisor's next runs, run_simulation to train them, and recommend for the current best; stop when "
         "the budget is spent and report the recommended mixture.")


class StudySettings(BaseModel):
    """One study as the harness creates it (the method is the advisor under test)."""

    model_config = ConfigDict(extra="forbid")

    metric: str = "loss_stackexchange"
    budget: float = Field(10.0, gt=0)
    method: str = "mfms"
    backend: str = "parametric"
    backend_path: str | None = None
    batch: int = 1

    @property
    def label(self) -> str:
        return f"{self.method}/{self.metric}"


def server_env(db: Path) -> dict[str, str]:
    """Studies of a run live next to its transcripts."""
    return {"TESTBEDS_MIXOPT_DB": str(studies_path(db))}


def build_kwargs(db: Path) -> dict[str, Any]:
    return {"store_path": studies_path(db)}


def studies_path(db: Path) -> Path:
    return db.with_name(db.stem + ".studies.db")


def start_call(settings: StudySettings, seed: int) -> tuple[str, dict[str, Any]]:
    return "create_study", {**settings.model_dump(exclude_none=True), "seed": seed}


def default_max_steps(settings: StudySettings) -> int:
    """Model turns: the advisor loop spends about two per run (run, recommend) plus one per suggest, and mfms
    buys on the order of 50-100 cheap runs per unit of budget."""
    return int(300 + 600 * settings.budget)


def task_boundary(message: ToolMessage) -> str | None:
    return None


def scripted_policy(settings: StudySettings, policy_name: str, seed: int
                    ) -> Callable[[Sequence[BaseMessage]], AIMessage]:
    """The advisor loop as a chat-model policy: suggest, run every suggestion, recommend; again until the
    advisor has nothing left that fits the budget; then a final recommendation and a one-line answer."""
    if policy_name not in AGENT_POLICIES:
        raise ValueError(f"the scripted mixopt agent plays {AGENT_POLICIES}, not {policy_name!r}")
    queue: list[dict[str, Any]] = []
    consumed: set[str] = set()
    state = {"done": False, "recommendation": None}

    def decide(messages: Sequence[BaseMessage]) -> AIMessage:
        for name, result in fresh_results(messages, consumed):
            if name == "suggest":
                runs = result["runs"]
                if not runs:
                    state["done"] = True
                queue.extend({k: r[k] for k in ("mixture", "size_m", "steps", "resume_run")} for r in runs)
            elif name == "recommend":
                state["recommendation"] = result
        last = messages[-1]
        if isinstance(last, ToolMessage) and last.name == "recommend" and state["done"]:
            rec = state["recommendation"] or {}
            shown = ", ".join(f"{v:.3f}" for v in rec.get("mixture", []))
            return AIMessage(content=f"Recommended mixture ({shown}), predicted {rec.get('predicted', 0):.4f}.")
        if queue:
            return call_tools(tool_call("run_simulation", queue.pop(0)))
        if isinstance(last, ToolMessage) and last.name == "run_simulation":
            return call_tools(tool_call("recommend"))
        if state["done"]:
            return call_tools(tool_call("recommend"))
        return call_tools(tool_call("suggest"))

    return decide


def score_episode(episode: dict[str, Any], events: Sequence[Any]) -> dict[str, Any]:
    """Cost to reach within 0.5/1/2% of the best value at the target, final gap, spending, from the recording."""
    stored = episode.get("settings") or {}
    metric = stored.get("metric", "loss_commoncrawl")
    backend = make_backend(stored.get("backend", "parametric"), stored.get("backend_path"))
    direction = stored.get("direction") or default_direction(metric)
    size, steps = TARGET_SIZE_M, TARGET_STEPS
    _, best = backend.optimum(metric, size, steps)
    spent, runs, trajectory = 0.0, 0, []
    for e in events:
        if e.type != "tool_result" or e.is_error or not isinstance(e.structured, dict):
            continue
        if e.name in ("run_simulation", "observe"):
            spent, runs = float(e.structured["spent"]), runs + 1
        elif e.name == "recommend":
            true = float(backend.true_values(np.asarray([e.structured["mixture"]]), size, steps, metric)[0])
            trajectory.append(Checkpoint(spent, true, bool(e.structured["trained_at_target"])))
    # No recommendation at all (e.g. a budget below one affordable run) is an outcome too: nothing reached.
    final = trajectory[-1].true_value if trajectory else None
    scores: dict[str, Any] = {"best_value": float(best), "spent": spent, "runs": runs,
                              "recommendations": len(trajectory), "final_true_value": final,
                              "final_gap": None if final is None else relative_gap(final, float(best), direction)}
    for tol in (0.005, TOLERANCE, 0.02):
        cost = cost_to_target(trajectory, float(best), direction, tol)
        scores[f"cost_to_{tol * 100:g}pct"] = cost
        scores[f"reached_{tol * 100:g}pct"] = cost is not None
    scores["passed"] = scores["reached_1pct"]
    return scores
