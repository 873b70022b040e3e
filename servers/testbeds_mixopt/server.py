"""MCP wiring of mixopt: studies behind handles, persisted in SQLite; the advisor, the simulator, the ledger.

Thin by design: rules live in study.py, advisor.py, baselines.py and backends/.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field, ValidationError
from testbeds_serving import InvalidArgument, Registry, ServeOptions, SuiteServer

from . import __version__
from .advisor import make_method
from .backends import BACKENDS, make_backend
from .domains import (
    MAX_STEPS,
    METRICS,
    MIN_STEPS,
    SIZES_M,
    STEP_GRID,
    TRAIN_DOMAINS,
    Direction,
)
from .models import Recommendation, RunRecord, RunRequest, StudySpec
from .persistence import StudyStore
from .study import Study

INSTRUCTIONS = (
    "mixopt: choose a pre-training data mixture over five SlimPajama domains (wikipedia, stackexchange, github, "
    "arxiv, book) by multi-fidelity, multi-scale Bayesian optimisation. create_study sets the objective and the "
    "budget (in units of one full target run); suggest proposes the next runs; run_simulation trains one on the "
    "simulator and charges its cost; observe records results of your own real runs; recommend gives the best "
    "mixture at the target scale."
)
METHODS = ("mfms", "gp_ei", "hyperband", "random")
DEFAULT_STORE = Path(os.environ.get("TESTBEDS_MIXOPT_DB", "~/.local/state/testbeds/mixopt.db")).expanduser()

Handle = Annotated[str, Field(description="The handle create_study returned.")]
MixtureArg = Annotated[list[float], Field(description="Proportions of " + ", ".join(TRAIN_DOMAINS)
                                          + " (>= 0, summing to 1).", min_length=5, max_length=5)]


class StudyCreated(BaseModel):
    handle: str = Field(description="Pass this to every other tool; it stays valid across server restarts.")
    spec: StudySpec
    backend: str
    method: str
    budget_unit: str = "one full run at the target size and steps"


class Suggestions(BaseModel):
    runs: list[RunRequest]
    spent: float
    remaining: float


class RunResult(BaseModel):
    run: RunRecord
    checkpoints: list[dict[str, Any]] = Field(description="Every metric at each step this call reported.")
    charged: float
    spent: float
    remaining: float


class StudyHistory(BaseModel):
    spec: StudySpec
    method: str
    runs: list[RunRecord]
    spent: float
    remaining: float
    best_so_far: list[dict[str, Any]]


class ProblemInfo(BaseModel):
    domains: list[str]
    sizes_m: list[int]
    steps: dict[str, int]
    metrics: list[str]
    backends: list[str]
    methods: list[str]


def build(options: ServeOptions | None = None, store_path: str | Path | None = None) -> SuiteServer:
    server = SuiteServer("mixopt", instructions=INSTRUCTIONS, version=__version__, options=options)
    store = StudyStore(store_path or DEFAULT_STORE)

    def load(handle: str) -> tuple[Study, dict[str, Any]] | None:
        loaded = store.load(handle)
        if loaded is None:
            return None
        study, backend, path = loaded
        return study, {"backend": backend, "backend_path": path, "seed": study.spec.seed}

    studies: Registry[Study] = server.attach(Registry(kind="study", start_tool="create_study", loader=load))

    def save(handle: str, study: Study, info: dict[str, Any]) -> None:
        store.save(handle, study, info["backend"], info.get("backend_path"))

    def method_of(study: Study):
        return make_method(study.method, seed=study.spec.seed, cost=study.backend.cost)

    @server.tool(annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True))
    async def describe_problem() -> ProblemInfo:
        """The search space: domains of a mixture, model sizes, training steps, metrics, backends and methods."""
        return ProblemInfo(domains=list(TRAIN_DOMAINS), sizes_m=list(SIZES_M),
                           steps={"min": MIN_STEPS, "max": MAX_STEPS, "grid": STEP_GRID}, metrics=list(METRICS),
                           backends=list(BACKENDS), methods=list(METHODS))

    @server.tool(annotations=ToolAnnotations(destructive_hint=False, idempotent_hint=False))
    async def create_study(
        metric: Annotated[str, Field(description="Objective: one of " + ", ".join(METRICS))] = "loss_commoncrawl",
        direction: Annotated[Direction | None, Field(description="minimize or maximize (default by metric).")] = None,
        budget: Annotated[float, Field(gt=0, le=10_000, description="Budget in full target runs.")] = 20.0,
        seed: Annotated[int, Field(ge=0, le=2**31 - 1, description="Seeds the advisor and simulator noise.")] = 0,
        method: Annotated[str, Field(description="Advisor: mfms (ours, multi-fidelity multi-scale), gp_ei "
                                     "(single-fidelity at target), hyperband (steps only), random.")] = "mfms",
        backend: Annotated[str, Field(description="parametric (default), network (the paper's simulator, "
                                      "needs backend_path) or table (your CSV of runs).")] = "parametric",
        backend_path: Annotated[str | None, Field(description="Folder or file the backend reads.")] = None,
        batch: Annotated[int, Field(ge=1, le=16, description="Runs per suggest call.")] = 1,
    ) -> StudyCreated:
        """Create a study: the objective at the target scale (1B parameters, 19,500 steps), its budget, and the
        advisor. Returns the handle every other tool takes."""
        if method not in METHODS:
            raise InvalidArgument(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
        try:
            spec = StudySpec(metric=metric, direction=direction, budget=budget, seed=seed, batch=batch)
        except ValidationError as exc:
            raise InvalidArgument("; ".join(e["msg"] for e in exc.errors())) from None
        sim = make_backend(backend, backend_path)
        if spec.metric not in sim.metrics:
            raise InvalidArgument(f"the {backend} backend has no metric {metric!r}; it has {', '.join(sim.metrics)}")
        # The advisor proposes only sizes the backend answers (a table holds the sizes it logged).
        sizes = [s for s in spec.sizes_m if s in sim.sizes_m]
        if spec.target_size_m not in sizes:
            raise InvalidArgument(f"the {backend} backend cannot train the target size {spec.target_size_m}M; it "
                                  f"answers sizes {', '.join(f'{s}M' for s in sim.sizes_m)}")
        try:
            sim.validate(spec.target_size_m, spec.target_steps)
        except InvalidArgument as exc:
            raise InvalidArgument(f"the {backend} backend cannot run the target: {exc}") from None
        spec = spec.model_copy(update={"sizes_m": sizes})
        study = Study(spec=spec, backend=sim, method=method)
        info = {"backend": backend, "backend_path": backend_path, "seed": seed, "method": method}
        handle = studies.create(study, evaluator_info=info)
        save(handle, study, info)
        return StudyCreated(handle=handle, spec=spec, backend=backend, method=method)

    @server.tool(annotations=ToolAnnotations(read_only_hint=True))
    async def suggest(handle: Handle,
                      q: Annotated[int | None, Field(ge=1, le=16, description="How many runs (default: the "
                                                     "study's batch).")] = None) -> Suggestions:
        """Propose the next runs (mixture, size, steps, or a resume of an earlier run) that buy the most
        information per unit cost. Nothing is charged until you run_simulation or observe."""
        async with studies.use(handle) as entry:
            study = entry.state
            runs = method_of(study).suggest(study.spec, list(study.points), list(study.runs), q or study.spec.batch)
            return Suggestions(runs=runs, spent=study.spent, remaining=study.remaining)

    @server.tool(annotations=ToolAnnotations(destructive_hint=False, idempotent_hint=False))
    async def run_simulation(
        handle: Handle,
        mixture: MixtureArg,
        size_m: Annotated[int, Field(description="Model size in millions of parameters, e.g. 20, 150, 1000.")],
        steps: Annotated[int, Field(ge=MIN_STEPS, le=MAX_STEPS, description="Train up to this step.")],
        resume_run: Annotated[int | None, Field(description="Continue this run (pays only new steps).")] = None,
    ) -> RunResult:
        """Train a model on the simulator and charge its cost to the budget. Reports every metric at the run's
        end and at free intermediate checkpoints (1k, 2k, 4k, 8k, 12k steps)."""
        # atomic: if saving fails after the run was applied, the in-memory study rolls back with it.
        async with studies.use(handle, atomic=True) as entry:
            study = entry.state
            try:
                request = RunRequest(mixture=mixture, size_m=size_m, steps=steps, resume_run=resume_run)
            except ValidationError as exc:
                raise InvalidArgument("; ".join(e["msg"] for e in exc.errors())) from None
            before = len(study.checkpoints)
            record = study.execute(request)
            save(handle, study, entry.evaluator_info)
            fresh = [{"steps": c.steps, **c.metrics} for c in study.checkpoints[before:]]
            return RunResult(run=record, checkpoints=fresh, charged=study.ledger[-1].cost, spent=study.spent,
                             remaining=study.remaining)

    @server.tool(annotations=ToolAnnotations(destructive_hint=False, idempotent_hint=False))
    async def observe(
        handle: Handle,
        mixture: MixtureArg,
        size_m: Annotated[int, Field(description="Model size in millions of parameters.")],
        steps: Annotated[int, Field(ge=MIN_STEPS, le=MAX_STEPS)],
        metrics: Annotated[dict[str, float], Field(description="Measured metrics; must include the objective.")],
        cost: Annotated[float | None, Field(ge=0, description="Cost to charge (default: the cost model).")] = None,
    ) -> RunResult:
        """Record the result of a run you trained yourself, so the advisor learns from it. The cost is charged
        to the budget (default: the cost model's price of such a run; pass 0 for a run that was free to you)."""
        async with studies.use(handle, atomic=True) as entry:
            study = entry.state
            record = study.add_user_run(mixture, size_m, steps, metrics, cost)
            save(handle, study, entry.evaluator_info)
            return RunResult(run=record, checkpoints=[{"steps": steps, **record.metrics}],
                             charged=study.ledger[-1].cost, spent=study.spent, remaining=study.remaining)

    @server.tool(annotations=ToolAnnotations(read_only_hint=True))
    async def recommend(handle: Handle) -> Recommendation:
        """The best mixture at the target size and steps among those tried, with its predicted value and
        uncertainty; if it was never trained at the target, a confirmation run is advised."""
        async with studies.use(handle, allow_ended=True) as entry:
            study = entry.state
            if not study.points:
                raise InvalidArgument("no observations yet: call suggest and run_simulation first")
            return method_of(study).recommend(study.spec, list(study.points), list(study.runs))

    @server.tool(annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True))
    async def study_history(handle: Handle) -> StudyHistory:
        """The study's runs, spending and best-so-far curve."""
        async with studies.use(handle, allow_ended=True) as entry:
            s = entry.state
            return StudyHistory(spec=s.spec, method=s.method, runs=s.runs, spent=s.spent, remaining=s.remaining,
                                best_so_far=s.best_so_far())

    @server.resource("mixopt://study/{handle}/best_so_far", mime_type="application/json")
    async def best_so_far(handle: str) -> str:
        """Best objective observed at the target after each run, against cumulative cost."""
        return json.dumps(studies.get(handle).state.best_so_far())

    @server.resource("mixopt://study/{handle}/ledger", mime_type="application/json")
    async def ledger(handle: str) -> str:
        """Every charge to the budget: run, kind (new, resume, user), steps, cost, spent after."""
        from dataclasses import asdict

        return json.dumps([asdict(e) for e in studies.get(handle).state.ledger])

    @server.evaluator_resource("mixopt://study/{handle}/ground_truth", mime_type="application/json")
    async def ground_truth(handle: str) -> str:
        """Evaluator only: the true optimum at the target and the noise-free value of the recommendation."""
        study = studies.get(handle).state
        return json.dumps(ground_truth_of(study))

    return server


def ground_truth_of(study: Study) -> dict[str, Any]:
    spec = study.spec
    mixture, value = study.backend.optimum(spec.metric, spec.target_size_m, spec.target_steps)
    out: dict[str, Any] = {"optimum": [float(v) for v in mixture], "value": float(value)}
    if study.points:
        rec = make_method(study.method, seed=spec.seed, cost=study.backend.cost).recommend(
            spec, list(study.points), list(study.runs))
        true = float(study.backend.true_values(np.asarray([rec.mixture]), spec.target_size_m, spec.target_steps,
                                               spec.metric)[0])
        out.update(recommended=rec.mixture, recommended_true_value=true,
                   relative_gap=abs(true - float(value)) / abs(float(value)))
    return out
