"""The grade of one attempt: named checks with scores, offending cells and explanations, rolled up by weight.

Weights follow MBABench's rubric: dimensions Accuracy 0.50, Formula 0.35, Format 0.15; within a dimension each
criterion has a weight (design note §2) and the checks of one criterion split it equally.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field

Dimension = Literal["accuracy", "formula", "format"]

DEFAULT_WEIGHTS: dict[str, float] = {"accuracy": 0.50, "formula": 0.35, "format": 0.15}

# criterion id -> (dimension, weight, what a reviewer calls it)
CRITERIA: dict[str, tuple[Dimension, float, str]] = {
    "final_calculations": ("accuracy", 40, "Final calculations match the reference"),
    "starting_values": ("accuracy", 25, "Starting values match the case inputs"),
    "task_completed": ("accuracy", 25, "Every required output is present"),
    "sign_consistency": ("accuracy", 10, "Sign conventions are consistent"),
    "formula_readability": ("formula", 20, "Formulas are short and consistent"),
    "edge_cases": ("formula", 20, "Errors are trapped; no error values or cycles"),
    "hardcoding": ("formula", 20, "Outputs are computed from the inputs, no constants in formulas"),
    "range_hygiene": ("formula", 20, "Ranges are well formed"),
    "absolute_refs": ("formula", 20, "Copied formulas anchor fixed cells"),
    "structure": ("format", 20, "Inputs, workings and outputs are separated in that order"),
    "layout_readability": ("format", 10, "Rows are labelled with units; large tables freeze panes"),
    "colour_standards": ("format", 10, "Blue inputs, black formulas, green links"),
    "number_notation": ("format", 20, "Number formats fit the units"),
    "alignment": ("format", 10, "Numbers right-aligned; periods in one column"),
    "style_consistency": ("format", 10, "One font, few sizes"),
    "borders_shading": ("format", 10, "Fills used sparingly"),
    "presentation": ("format", 10, "A summary presents every output with units"),
}

# Criteria a finance reviewer judges partly by eye: an optional LLM judge may add one check to each.
SUBJECTIVE_CRITERIA = ("formula_readability", "structure", "layout_readability", "borders_shading", "presentation")


class CheckResult(BaseModel):
    """One deterministic (or judged) check: `score = 1 - offending/eligible`; with nothing eligible, 1 if the
    reference has nothing eligible either, else 0 (see `against_reference`)."""

    name: str
    dimension: Dimension
    criterion: str
    weight: float = Field(ge=0, description="This check's share of its criterion's weight.")
    score: float = Field(ge=0, le=1)
    eligible: int = Field(ge=0, description="How many items (cells, outputs, pairs, sheets) the check judged.")
    offending: list[str] = Field(default_factory=list, description="Cells or items that failed, e.g. 'Calc!C5'.")
    explanation: str


class GradeReport(BaseModel):
    """The grade of one attempt against its task and reference workbook."""

    task_id: str
    final: float = Field(ge=0, le=100)
    dimensions: dict[str, float] = Field(description="Score per dimension, 0..100.")
    checks: list[CheckResult]
    coverage: float = Field(ge=0, le=1, description="Share of required outputs that could be evaluated in both "
                                                    "books; the others left the denominators.")
    formula_coverage: float = Field(1.0, ge=0, le=1, description="Share of the attempt's formula cells evaluated.")
    engine: str
    unevaluable: list[str] = Field(default_factory=list, description="Attempt cells without a trustworthy value.")
    strict: bool = False
    judge: dict[str, Any] | None = None

    def check(self, name: str) -> CheckResult:
        """The check called `name`; KeyError if there is none."""
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(f"no check {name!r}; checks: {', '.join(c.name for c in self.checks)}")

    def failing(self) -> set[str]:
        """Names of the checks scoring below 1."""
        return {c.name for c in self.checks if c.score < 1}


def summary(what: str, eligible: int, offending: list[str], notes: list[str] | None = None, limit: int = 12) -> str:
    """A check's explanation: "n/m <what>: <the first offending cells or notes>", or "nothing to check"."""
    if eligible == 0:
        return f"nothing to check: {what}"
    text = f"{eligible - len(offending)}/{eligible} {what}"
    shown = notes if notes is not None else offending
    if shown:
        text += ": " + "; ".join(shown[:limit]) + (f" (+{len(shown) - limit} more)" if len(shown) > limit else "")
    return text


def make_check(name: str, criterion: str, eligible: int, offending: list[str], explanation: str,
               *, score: float | None = None) -> CheckResult:
    """A check scored `1 - len(offending)/eligible` (or `score` when given); weight is filled in by `roll_up`."""
    dimension = CRITERIA[criterion][0]
    if score is None:
        score = 1.0 if eligible == 0 else max(0.0, 1.0 - len(offending) / eligible)
    if eligible == 0 and not explanation:
        explanation = "nothing to check"
    return CheckResult(name=name, dimension=dimension, criterion=criterion, weight=0.0, score=min(1.0, max(0.0, score)),
                       eligible=eligible, offending=offending, explanation=explanation)


# What each check counts as eligible, for the explanation when the attempt has none of what the reference has.
ELIGIBLE_NOUNS: dict[str, str] = {
    "formula_length": "formulas", "row_consistency": "formulas in copied rows",
    "duplicate_calc": "multi-reference calculations", "error_traps": "risky divisions or lookups",
    "no_errors": "evaluated formulas", "no_cycles": "formulas", "outputs_are_formulas": "outputs and formula rows",
    "no_buried_constants": "formulas", "no_whole_columns": "formulas", "no_self_ranges": "formulas",
    "sums_cover_timeline": "sums over timeline rows", "absolute_refs": "formulas in copied rows",
    "sheet_roles": "sheets", "labels_and_units": "numeric rows", "font_colours": "cells with a colour class",
    "number_notation": "numbers with a unit or magnitude to format", "number_alignment": "numbers",
    "period_columns": "timelines", "font_consistency": "cells", "fills": "cells",
    "delineation": "cells set off by borders or fills",
    "outputs_summary": "outputs",
}
# Checks where having nothing eligible is the good state, not missing work: an input sheet without formulas.
ABSENCE_IS_FINE = frozenset({"inputs_read_no_workings"})


class EligibleCounts(Protocol):
    """How many items each check finds eligible on the reference (a dict, or a lazy lookup computing on demand)."""

    def get(self, name: str, default: int = 0, /) -> int: ...


def against_reference(checks: list[CheckResult], reference_eligible: EligibleCounts) -> list[CheckResult]:
    """Score 0 the checks with nothing eligible in the attempt whose counterpart on the reference had items:
    an attempt without formulas, copied rows or formats must not pass the checks on them for free. When the
    reference has nothing eligible either, the check stays 1 ("nothing to check"). The reference is asked only
    about checks the attempt has nothing eligible for, so a lazy `reference_eligible` costs an honest attempt
    nothing."""
    out: list[CheckResult] = []
    for c in checks:
        if c.eligible != 0 or c.score <= 0 or c.name in ABSENCE_IS_FINE:
            out.append(c)
            continue
        ref_n = reference_eligible.get(c.name, 0)
        if ref_n > 0:
            noun = ELIGIBLE_NOUNS.get(c.name, "eligible items")
            c = c.model_copy(update={"score": 0.0, "offending": ["(workbook)"],
                                     "explanation": f"the reference has {ref_n} {noun}; the attempt has none"})
        out.append(c)
    return out


def roll_up(checks: list[CheckResult], weights: dict[str, float] | None = None,
            strict: bool = False) -> tuple[float, dict[str, float], list[CheckResult]]:
    """(final 0..100, dimension scores 0..100, checks with weights set; strict mode thresholds each score at 1)."""
    w = dict(DEFAULT_WEIGHTS if weights is None else weights)
    unknown = set(w) - set(DEFAULT_WEIGHTS)
    if unknown:
        raise ValueError(f"unknown dimensions {sorted(unknown)}; use accuracy, formula, format")
    if any(v < 0 for v in w.values()) or sum(w.values()) <= 0:
        raise ValueError("dimension weights must be non-negative and not all zero")
    per_criterion: dict[str, int] = {}
    for c in checks:
        per_criterion[c.criterion] = per_criterion.get(c.criterion, 0) + 1
    out: list[CheckResult] = []
    for c in checks:
        score = (1.0 if c.score >= 1.0 else 0.0) if strict else c.score
        out.append(c.model_copy(update={"weight": CRITERIA[c.criterion][1] / per_criterion[c.criterion],
                                        "score": score}))
    dims: dict[str, float] = {}
    for d in DEFAULT_WEIGHTS:
        mine = [c for c in out if c.dimension == d]
        total = sum(c.weight for c in mine)
        dims[d] = 100.0 * (sum(c.weight * c.score for c in mine) / total if total else 1.0)
    wsum = sum(w.get(d, 0.0) for d in DEFAULT_WEIGHTS)
    final = sum(w.get(d, 0.0) * dims[d] for d in DEFAULT_WEIGHTS) / wsum
    return round(final, 6), {d: round(v, 6) for d, v in dims.items()}, out
