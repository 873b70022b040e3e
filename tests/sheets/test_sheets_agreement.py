"""The embedded evaluator agrees with LibreOffice (forced `calculateAll()`) on every formula cell; LibreOffice's saved
copy of a generated workbook reopens cleanly; the values-only baseline scores where the rubric says it should.

One soffice serves the module and each workbook is recalculated once. The full grid (every family x difficulty
1-12 x seeds) is benchmarks/sheets_agreement.py; here: every family at four difficulties, the 5,051-formula
business-unit plan and the 60-month debt corkscrew.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import openpyxl
import pytest
from conftest import require_soffice
from testbeds_sheets.apply import build
from testbeds_sheets.baselines import values_only_plan
from testbeds_sheets.engine.evaluator import load_model
from testbeds_sheets.engine.libreoffice import LibreOfficeEngine
from testbeds_sheets.engine.values import Evaluation
from testbeds_sheets.grader import grade
from testbeds_sheets.ops import WorkbookPlan
from testbeds_sheets.stress import (
    Agreement,
    compare_evaluations,
    debt_schedule_plan,
    debt_schedule_task,
    debt_schedule_values,
    unit_model_plan,
    unit_model_task,
    unit_model_values,
    values_agree,
)
from testbeds_sheets.tasks import FAMILIES, generate_task, reference_plan, reference_workbook

DIFFICULTIES = (1, 4, 8, 12)
GENERATED = [f"{family}-d{d}" for family in FAMILIES for d in DIFFICULTIES]
STRESS = ["units-10x10x50", "debt-60"]


@pytest.fixture(scope="module")
def engine() -> Iterator[LibreOfficeEngine]:
    require_soffice()
    with LibreOfficeEngine() as running:
        yield running


def plan_of(case: str) -> WorkbookPlan:
    if case == "units-10x10x50":
        return unit_model_plan(10, 10, 50)
    if case == "debt-60":
        return debt_schedule_plan(60)
    family, _, difficulty = case.rpartition("-d")
    return reference_plan(generate_task(family, 0, int(difficulty)))


Compared = tuple[Evaluation, Evaluation, Agreement]


@pytest.fixture(scope="module")
def compared(engine: LibreOfficeEngine, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Compared]:
    """(ours, LibreOffice's, their agreement) per case, each workbook built and recalculated once per module."""
    folder = tmp_path_factory.mktemp("agreement")
    done: dict[str, Compared] = {}

    def get(case: str) -> Compared:
        if case not in done:
            done[case] = both_engines(case, engine, folder)
        return done[case]

    return get


def both_engines(case: str, engine: LibreOfficeEngine, folder: Path) -> Compared:
    path = folder / f"{case}.xlsx"
    build(plan_of(case)).save(path)
    model = load_model(path)
    ours = model.evaluate()
    theirs = engine.recalculate(path)
    return ours, theirs, compare_evaluations(ours, theirs, {k: model.formula(k) or "" for k in ours.formula_cells})


def explain(result: Agreement) -> str:
    return "\n".join(f"{d.cell} {d.formula!r}: ours {d.ours!r}, LibreOffice {d.theirs!r} ({d.note})"
                     for d in result.disagreements[:20])


@pytest.mark.parametrize("case", GENERATED + STRESS)
def test_every_formula_cell_agrees_with_libreoffice(case: str, compared: Callable[[str], Compared]) -> None:
    ours, theirs, result = compared(case)

    if result.skipped:  # functions this LibreOffice lacks: listed, not counted
        print(f"{case}: LibreOffice skipped {len(result.skipped)} cells: {', '.join(result.skipped)}")
    assert sorted(ours.formula_cells) == sorted(theirs.formula_cells)
    assert ours.problems == {}
    assert result.compared > 0 and result.compared == len(ours.formula_cells) - len(result.skipped)
    assert result.disagreements == [], f"{case}: {len(result.disagreements)} cells differ\n{explain(result)}"


def test_the_large_models_match_their_python_values_in_libreoffice(compared: Callable[[str], Compared]) -> None:
    _, units, _ = compared("units-10x10x50")
    _, debt, _ = compared("debt-60")

    assert len(units.formula_cells) == 10 * 10 * 50 + 50 + 1 + 2  # line items, roll-ups, NPV, two output links
    expected = unit_model_values(10, 10, 50)
    assert units.values["Outputs!B4"] == pytest.approx(expected["npv_plan"], rel=1e-9)
    assert units.values["Outputs!B5"] == pytest.approx(expected["cash_last"], rel=1e-9)
    loan = debt_schedule_values(60)
    assert debt.values["Outputs!B4"] == pytest.approx(loan["payment"], rel=1e-12)
    assert debt.values["Outputs!B5"] == pytest.approx(loan["interest_total"], rel=1e-9)
    assert abs(debt.values["Outputs!B6"]) < 1e-6  # the corkscrew closes at zero after the last payment


def test_libreoffices_saved_copy_reopens_in_openpyxl_and_in_libreoffice(engine: LibreOfficeEngine,
                                                                       tmp_path: Path) -> None:
    task = generate_task("three_scenarios", 0, 8)
    source, copy = tmp_path / "attempt.xlsx", tmp_path / "recalculated.xlsx"
    reference_workbook(task).save(source)
    first = engine.recalculate_to(source, copy)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        formulas = openpyxl.load_workbook(copy, data_only=False)
        cached = openpyxl.load_workbook(copy, data_only=True)
    assert [str(w.message) for w in caught] == []
    assert formulas.sheetnames == ["Inputs", "Calculations", "Outputs"]
    assert {o.name for o in task.outputs} <= set(formulas.defined_names.keys())
    for key in first.formula_cells:
        sheet, _, coordinate = key.rpartition("!")
        assert str(formulas[sheet][coordinate].value).startswith("="), key
        assert values_agree(cached[sheet][coordinate].value, first.values[key]), key

    again = engine.recalculate(copy)
    assert again.problems == {}
    assert compare_evaluations(load_model(copy).evaluate(), again).disagreements == []
    assert compare_evaluations(again, first).disagreements == []


@pytest.mark.parametrize("family", FAMILIES)
def test_a_values_only_attempt_scores_high_on_accuracy_and_low_on_formula_and_format(family: str) -> None:
    task = generate_task(family, 1, 6)
    attempt = build(values_only_plan(task))

    report = grade(task, attempt, reference_workbook(task))

    assert not any(isinstance(c.value, str) and c.value.startswith("=") for ws in attempt for row in ws.iter_rows()
                   for c in row)
    assert report.check("final_calculations").score == 1.0
    assert report.check("task_completed").score == 1.0
    assert report.check("outputs_are_formulas").score == 0.0
    assert report.dimensions["accuracy"] >= 70
    assert report.dimensions["formula"] <= 20
    assert report.dimensions["format"] < 70
    assert report.final < 60


def test_the_stress_tasks_grade_their_own_workbooks_100() -> None:
    small = unit_model_task(2, 4, 6)
    units = build(unit_model_plan(2, 4, 6))
    debt = build(debt_schedule_plan(60))

    assert grade(small, units, units).final == pytest.approx(100.0)
    assert grade(debt_schedule_task(60), debt, debt).final == pytest.approx(100.0)
    assert load_model(units).evaluate().values["Outputs!B4"] == pytest.approx(
        unit_model_values(2, 4, 6)["npv_plan"], rel=1e-12)
