"""A sheets task: the case the agent reads, the outputs it must produce, and what the grader needs to know.

Reference values are computed in Python from the task's line-item graph, never by a spreadsheet engine, so the
graph, our evaluator and LibreOffice check each other.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Unit = Literal["currency", "percent", "count", "years", "ratio", "selector", "days", "date"]


class TaskInput(BaseModel):
    """A case input: the agent must type it as a constant in an input cell, and formulas must read it from there."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="Stable id, e.g. 'wacc'.")
    label: str = Field(description="How the case prompt names it, e.g. 'WACC'.")
    value: float
    unit: Unit
    cell: str = Field(description="Where the reference workbook holds it, e.g. 'Inputs!C5'.")
    series: list[float] | None = Field(None, description="For a per-period input row: every period's value "
                                                         "(`value` is then the first).")


class TaskOutput(BaseModel):
    """A required output: found in an attempt by its defined name, else by its label and the number right of it."""

    model_config = ConfigDict(extra="forbid")

    id: str
    label: str = Field(description="Label the prompt asks for, e.g. 'Enterprise value ($)'.")
    name: str = Field(description="Defined name the prompt asks the agent to give the output cell, e.g. 'EV'.")
    unit: Unit
    cell: str = Field(description="Where the reference workbook holds it, e.g. 'Outputs!C4'.")
    value: float | None = Field(description="The Python-computed value; None for a task loaded from a folder, "
                                            "graded against its solution's recomputed value.")


class Perturbation(BaseModel):
    """One what-if the grader runs on both the attempt and the reference: an input set to another value."""

    model_config = ConfigDict(extra="forbid")

    input_id: str
    value: float


class Task(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="e.g. 'dcf-d4-s0'.")
    family: str
    seed: int
    difficulty: int = Field(ge=1, description="Calculation nodes on the longest input-to-output path.")
    title: str
    prompt: str = Field(description="The case as the agent reads it, with every input and the required outputs.")
    inputs: list[TaskInput]
    outputs: list[TaskOutput]
    periods: int | None = Field(None, description="Timeline length where the model has one.")
    outflow_labels: list[str] = Field(default_factory=list,
                                      description="Labels of lines that are payments (costs, capex, tax): one sign "
                                                  "each, the same sign across them.")
    perturbations: list[Perturbation] = Field(default_factory=list)
    source: Literal["generated", "folder"] = "generated"
