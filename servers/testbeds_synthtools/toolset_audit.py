"""A small audit of one toolset for the evaluator: spec lint findings plus one probe run judged by the oracle.

The probe calls each tool once on a fresh session (generated toolsets: `generator.valid_arguments`; others:
the tool's first example, else no arguments), records the trajectory, judges every (call, response) pair with
`audit.audit_pairs` (the engine answering its own oracle: every verdict should be `correct`) and runs the
oracle-free trajectory checks. It is a smoke check of the simulator on this toolset, not the fault-injection
benchmark (that is `audit.py`'s job at scale).

This module must not import `mcp`.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from pydantic import BaseModel, Field

from .audit import AuditPair, audit_pairs, audit_trajectory, record_trajectory
from .generator import valid_arguments
from .lint import LintFinding, lint
from .spec import Toolset


class ProbeCall(BaseModel):
    tool: str
    ok: bool
    status: int
    code: str | None = None
    verdict: str


class AuditReport(BaseModel):
    """What `synthtools://toolset/{id}/audit` returns."""

    toolset_id: str
    n_tools: int
    lint: list[LintFinding] = Field(description="Static spec findings, errors first.")
    probe: list[ProbeCall] = Field(description="One call per tool, with the oracle's verdict on the response.")
    verdicts: dict[str, int] = Field(description="Verdict counts over the probe.")
    trajectory_findings: list[dict[str, Any]] = Field(description="Oracle-free consistency findings.")


def _probe_arguments(toolset: Toolset, name: str) -> dict[str, Any]:
    if toolset.provenance.origin == "generated":
        try:
            return valid_arguments(toolset, name)
        except (KeyError, StopIteration, AssertionError, IndexError):
            pass  # not one of the generator's own shapes (e.g. an edited spec): fall back to examples
    tool = toolset.tool(name)
    return dict(tool.examples[0].arguments) if tool.examples else {}


def audit_report(toolset: Toolset) -> AuditReport:
    """Lint `toolset` and run the probe (see the module docstring)."""
    calls = [(t.name, _probe_arguments(toolset, t.name)) for t in toolset.tools]
    steps = record_trajectory(toolset, calls, seed=toolset.seed)
    pairs = [AuditPair(tool=s.tool, arguments=s.arguments, pre_state=s.pre_state, response=s.response,
                       post_state=s.post_state, session_seed=toolset.seed) for s in steps]
    verdicts = audit_pairs(toolset, pairs)
    probe = [ProbeCall(tool=s.tool, ok=s.response.ok, status=s.response.status, code=s.response.code,
                       verdict=v.verdict) for s, v in zip(steps, verdicts, strict=True)]
    findings = audit_trajectory(toolset, steps)
    return AuditReport(toolset_id=toolset.id, n_tools=len(toolset.tools), lint=lint(toolset), probe=probe,
                       verdicts=dict(Counter(v.verdict for v in verdicts)),
                       trajectory_findings=[f.model_dump(mode="json") for f in findings])
