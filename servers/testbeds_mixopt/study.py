"""A study: one objective, a budget in target-run units, and the ledger of runs that spent it.

The study is the only mutable state of mixopt. Every change goes through `execute` (a simulated run, or the
resumption of one) or `add_user_run` (a result the user obtained from a real run); both validate everything
before changing anything, so a failing call leaves the study as it was.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from testbeds_serving.errors import InvalidArgument, NotFound

from .backends.base import Backend
from .domains import METRICS, checkpoints_of, default_direction
from .models import Point, RecordedRun, RunRecord, RunRequest, StudySpec, check_mixture

COST_SLACK = 1e-9


@dataclass
class LedgerEntry:
    run_id: int
    kind: str  # "new", "resume" or "user"
    size_m: float
    steps_from: int
    steps_to: int
    cost: float
    spent_after: float


@dataclass
class Study:
    spec: StudySpec
    backend: Backend
    method: str = "mfms"
    runs: list[RunRecord] = field(default_factory=list)
    points: list[Point] = field(default_factory=list)
    ledger: list[LedgerEntry] = field(default_factory=list)
    checkpoints: list[RecordedRun] = field(default_factory=list)  # every metric at every reported step

    @property
    def direction(self) -> str:
        return self.spec.direction or default_direction(self.spec.metric)

    @property
    def spent(self) -> float:
        return self.ledger[-1].spent_after if self.ledger else 0.0

    @property
    def remaining(self) -> float:
        return max(0.0, self.spec.budget - self.spent)

    def run(self, run_id: int) -> RunRecord:
        for r in self.runs:
            if r.run_id == run_id:
                return r
        raise NotFound(f"run {run_id} does not exist in this study; its runs are "
                       f"{[r.run_id for r in self.runs] or 'none yet'}")

    def _charge(self, cost: float) -> None:
        if cost > self.remaining + COST_SLACK:
            raise InvalidArgument(f"this run costs {cost:.4f} target-run units but only {self.remaining:.4f} of "
                                  f"the budget {self.spec.budget:g} remain; choose a smaller size, fewer steps, "
                                  "or call recommend")

    def execute(self, request: RunRequest) -> RunRecord:
        """Train (or resume) a run on the simulator and record every metric at its reported checkpoints."""
        size, steps = request.size_m, request.steps
        self.backend.validate(size, steps)
        if request.resume_run is not None:
            base = self.run(request.resume_run)
            if base.source != "simulator":
                raise InvalidArgument(f"run {base.run_id} was reported by the user and cannot be resumed here")
            if base.size_m != size or not np.allclose(base.mixture, request.mixture, atol=1e-9):
                raise InvalidArgument(f"resuming run {base.run_id} keeps its mixture and size ({base.size_m}M); "
                                      "pass the same mixture and size_m, or start a new run")
            if steps <= base.steps:
                raise InvalidArgument(f"run {base.run_id} is already trained to {base.steps} steps; resume it to "
                                      "more steps")
            start, run_id, mixture = base.steps, base.run_id, base.mixture
        else:
            start, run_id, mixture = 0, len(self.runs), list(request.mixture)
        cost = self.backend.cost(size, steps) - (self.backend.cost(size, start) if start else 0.0)
        self._charge(cost)
        reports = [(s, self.backend.observe(np.asarray(mixture), size, s, seed=self.spec.seed, run_id=run_id))
                   for s in checkpoints_of(steps, already=start)]
        # Everything validated and computed: now record.
        for s, metrics in reports:
            self._record_checkpoint(run_id, mixture, size, s, metrics, final=s == steps)
        record = RunRecord(run_id=run_id, mixture=mixture, size_m=int(size), steps=steps,
                           cost=cost + (self.run(run_id).cost if start else 0.0), metrics=reports[-1][1])
        if start:
            self.runs[[r.run_id for r in self.runs].index(run_id)] = record
        else:
            self.runs.append(record)
        self.ledger.append(LedgerEntry(run_id, "resume" if start else "new", size, start, steps, cost,
                                       self.spent + cost))
        return record

    def add_user_run(self, mixture: list[float], size_m: float, steps: int, metrics: dict[str, float],
                     cost: float | None = None) -> RunRecord:
        """Record the result of a run the user trained outside the simulator (charged at `cost`, default the
        backend's cost model)."""
        try:
            mixture = check_mixture(list(mixture))
        except ValueError as exc:
            raise InvalidArgument(str(exc)) from None
        self.backend.validate(size_m, steps)
        unknown = sorted(set(metrics) - set(METRICS))
        if unknown:
            raise InvalidArgument(f"unknown metric(s) {', '.join(unknown)}; known: {', '.join(METRICS)}")
        bad = {k: v for k, v in metrics.items()
               if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v)}
        if bad:
            raise InvalidArgument(f"metrics must be finite numbers (not NaN or infinity); got {bad}")
        if self.spec.metric not in metrics:
            raise InvalidArgument(f"the result must include the study's objective {self.spec.metric!r}")
        charged = self.backend.cost(size_m, steps) if cost is None else float(cost)
        if not math.isfinite(charged) or charged < 0:
            raise InvalidArgument("cost must be a finite number >= 0 (target-run units)")
        self._charge(charged)
        run_id = len(self.runs)
        clean = {k: float(v) for k, v in metrics.items()}
        self._record_checkpoint(run_id, mixture, size_m, steps, clean, final=True)
        record = RunRecord(run_id=run_id, mixture=mixture, size_m=int(size_m), steps=steps, cost=charged,
                           metrics=clean, source="user")
        self.runs.append(record)
        self.ledger.append(LedgerEntry(run_id, "user", size_m, 0, steps, charged, self.spent + charged))
        return record

    def _record_checkpoint(self, run_id: int, mixture: list[float], size: float, steps: int,
                           metrics: dict[str, float], *, final: bool) -> None:
        self.checkpoints.append(RecordedRun(run_id=run_id, mixture=mixture, size_m=size, steps=steps,
                                            metrics=metrics))
        if self.spec.metric in metrics:
            self.points.append(Point(run_id=run_id, mixture=mixture, size_m=size, steps=steps,
                                     value=metrics[self.spec.metric], checkpoint=not final))

    def best_so_far(self) -> list[dict[str, Any]]:
        """After each ledger entry: cumulative cost and the best objective observed at the target size and
        steps so far (None until a target run exists). Agent-visible: observed values only."""
        better = min if self.direction == "minimize" else max
        curve, best = [], None
        for entry in self.ledger:
            at_target = [p.value for p in self.points if p.run_id == entry.run_id and
                         p.size_m == self.spec.target_size_m and p.steps == self.spec.target_steps]
            for v in at_target:
                best = v if best is None else better(best, v)
            curve.append({"run_id": entry.run_id, "spent": entry.spent_after, "best_at_target": best})
        return curve
