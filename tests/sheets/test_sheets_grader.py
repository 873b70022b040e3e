"""The grader on the generator's reference workbooks and on deliberately damaged copies of them: references grade
100, and each damage loses exactly the checks it breaks."""

from __future__ import annotations

import re

import pytest
from openpyxl import Workbook
from openpyxl.styles import Font
from testbeds_sheets.engine.evaluator import evaluate_workbook
from testbeds_sheets.engine.values import split_key
from testbeds_sheets.grader import grade
from testbeds_sheets.tasks import FAMILIES, generate_task, reference_outputs, reference_workbook


def _task(family: str = "revenue_buildup", seed: int = 0, difficulty: int = 5):
    return generate_task(family, seed, difficulty)


def _driving_inputs(task):
    """Inputs the task perturbs (so the reference's outputs move with them), selectors last out."""
    perturbed = {p.input_id for p in task.perturbations}
    return [i for i in task.inputs if i.id in perturbed and i.unit != "selector"]


DAMAGE_CASES = [(family, 4, 0) for family in FAMILIES] + [("revenue_buildup", 7, 1), ("dcf", 9, 1)]


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("difficulty", [1, 5])
@pytest.mark.parametrize("seed", [0, 1])
def test_every_reference_workbook_grades_exactly_100_at_full_coverage(family, difficulty, seed):
    task = _task(family, seed, difficulty)
    report = grade(task, reference_workbook(task), reference_workbook(task))
    assert report.failing() == set(), [c.explanation for c in report.checks if c.score < 1]
    assert report.final == 100.0
    assert report.coverage == 1.0
    assert all(v == 100.0 for v in report.dimensions.values())


# every difficulty 1..12 is graded for two or more families: the full family x difficulty sweep is too slow here
REFERENCE_GRID = [(family, (2 * i + k) % 12 + 1) for i, family in enumerate(FAMILIES) for k in range(2)]


@pytest.mark.parametrize("family, difficulty", REFERENCE_GRID)
def test_references_of_every_difficulty_up_to_12_grade_exactly_100(family, difficulty):
    task = _task(family, 3, difficulty)
    report = grade(task, reference_workbook(task), reference_workbook(task))
    assert report.failing() == set(), [c.explanation for c in report.checks if c.score < 1]
    assert report.final == 100.0


def test_the_reference_grid_covers_every_difficulty_from_1_to_12():
    assert {d for _, d in REFERENCE_GRID} == set(range(1, 13))


def test_a_reference_saved_to_disk_grades_100_from_its_path(tmp_path):
    task = _task()
    path = tmp_path / "ref.xlsx"
    reference_workbook(task).save(path)
    report = grade(task, path, path)
    assert report.final == 100.0
    assert report.engine == "embedded"


def _cell(wb: Workbook, key: str):
    sheet, coord = split_key(key)
    return wb[sheet][coord]


def _output_cells(task) -> list[str]:
    return [o.cell for o in task.outputs]


@pytest.mark.parametrize("family, difficulty, seed", DAMAGE_CASES)
def test_values_pasted_over_the_outputs_lose_only_formulas_and_linkage(family, difficulty, seed):
    task = _task(family, seed, difficulty)
    wb = reference_workbook(task)
    values = reference_outputs(task)
    for o in task.outputs:
        _cell(wb, o.cell).value = values[o.id]
    report = grade(task, wb, reference_workbook(task))
    assert report.failing() == {"outputs_are_formulas", "inputs_linked"}
    assert set(report.check("outputs_are_formulas").offending) == set(_output_cells(task))


def _bury_a_perturbed_input(task, wb: Workbook) -> str:
    """Replace every reference to a perturbed input by its number. A selector
    is skipped: a literal CHOOSE index is idiom, so only the perturbation can tell it was typed."""
    for inp in _driving_inputs(task):
        sheet, coord = split_key(inp.cell)
        col, row = re.match(r"([A-Z]+)(\d+)", coord).groups()
        pattern = re.compile(rf"{sheet}!\$?{col}\$?{row}(?![0-9])")
        users = [c for ws in wb.worksheets for r in ws.iter_rows() for c in r
                 if isinstance(c.value, str) and c.value.startswith("=") and pattern.search(c.value)]
        if users:
            for c in users:
                c.value = pattern.sub(repr(inp.value), c.value)
            return inp.id
    raise AssertionError("no perturbed input is read by a calculation")


@pytest.mark.parametrize("family, difficulty, seed", DAMAGE_CASES)
def test_an_input_replaced_by_its_number_in_formulas_loses_buried_constants_and_linkage(family, difficulty, seed):
    task = _task(family, seed, difficulty)
    wb = reference_workbook(task)
    _bury_a_perturbed_input(task, wb)
    report = grade(task, wb, reference_workbook(task))
    assert report.failing() == {"no_buried_constants", "inputs_linked"}


@pytest.mark.parametrize("family, difficulty, seed", DAMAGE_CASES)
def test_a_broken_reference_loses_no_errors_and_the_outputs_that_depend_on_it(family, difficulty, seed):
    """`=Calc!#REF!` reads no case input, yet it is broken, not pasted: outputs_are_formulas leaves it to
    no_errors, so the expected set is unchanged by the computed-output rule."""
    task = _task(family, seed, difficulty)
    wb = reference_workbook(task)
    link = _cell(wb, task.outputs[-1].cell)
    sheet = link.value[1:].split("!")[0]
    link.value = f"={sheet}!#REF!"
    report = grade(task, wb, reference_workbook(task))
    assert report.failing() == {"no_errors", "final_calculations", "task_completed"}
    assert report.check("no_errors").offending == [task.outputs[-1].cell]


@pytest.mark.parametrize("family, difficulty, seed", DAMAGE_CASES)
def test_uncoloured_inputs_lose_only_the_colour_check(family, difficulty, seed):
    task = _task(family, seed, difficulty)
    wb = reference_workbook(task)
    for i in task.inputs:
        _cell(wb, i.cell).font = Font(name="Calibri", size=11)
    report = grade(task, wb, reference_workbook(task))
    assert report.failing() == {"font_colours"}
    assert set(report.check("font_colours").offending) == {i.cell for i in task.inputs}


@pytest.mark.parametrize("family, difficulty, seed", DAMAGE_CASES)
def test_a_percentage_set_to_general_loses_only_number_notation(family, difficulty, seed):
    task = _task(family, seed, difficulty)
    wb = reference_workbook(task)
    pct = next(i for i in task.inputs if i.unit == "percent")
    _cell(wb, pct.cell).number_format = "General"
    report = grade(task, wb, reference_workbook(task))
    assert report.failing() == {"number_notation"}
    assert report.check("number_notation").offending == [pct.cell]


@pytest.mark.parametrize("family, difficulty, seed", DAMAGE_CASES)
def test_a_wrong_input_value_loses_starting_values_and_final_calculations(family, difficulty, seed):
    task = _task(family, seed, difficulty)
    wb = reference_workbook(task)
    inp = _driving_inputs(task)[0]
    _cell(wb, inp.cell).value = inp.value * 1.03
    report = grade(task, wb, reference_workbook(task))
    assert report.failing() == {"starting_values", "final_calculations"}
    assert report.check("starting_values").offending == [inp.cell]


def _values_only(task) -> Workbook:
    wb = Workbook()
    ws = wb.active
    values = reference_outputs(task)
    for i in task.inputs:
        ws.append([i.label, i.value])
    ws.append([])
    for o in task.outputs:
        ws.append([o.label, values[o.id]])
    return wb


def test_a_values_only_attempt_scores_high_on_accuracy_and_low_on_formula_and_format():
    """Format below 50 (it was <= 60 when checks with nothing eligible passed for free): the reference has
    timelines and delineated cells the attempt lacks, and with nothing calculated there are no roles to order or
    formulas to colour."""
    task = _task()
    report = grade(task, _values_only(task), reference_workbook(task))
    assert report.check("final_calculations").score == 1.0
    assert report.check("task_completed").score == 1.0
    assert report.check("starting_values").score == 0.0  # typed inputs that drive nothing
    assert report.dimensions["accuracy"] >= 70
    assert report.dimensions["formula"] <= 10
    assert report.dimensions["format"] < 50
    assert report.check("period_columns").score == 0.0
    assert "the reference has" in report.check("period_columns").explanation
    assert report.final < 60


@pytest.mark.parametrize("family", FAMILIES[:4])
def test_a_values_only_sheet_named_outputs_still_scores_below_50_on_format(family):
    task = _task(family)
    wb = _values_only(task)
    wb.active.title = "Outputs"
    report = grade(task, wb, reference_workbook(task))
    assert report.dimensions["format"] < 50
    assert report.dimensions["formula"] <= 10
    assert report.check("sheet_roles").score == 0.0


def _replace_formulas(task, sheets: set[str] | None, as_formula: bool) -> Workbook:
    """The reference with each formula on `sheets` (all when None) replaced by its computed value, typed or
    wrapped as `=<value>`."""
    wb = reference_workbook(task)
    values = evaluate_workbook(reference_workbook(task)).values
    for ws in wb.worksheets:
        if sheets is not None and ws.title not in sheets:
            continue
        for row in ws.iter_rows():
            for c in row:
                if isinstance(c.value, str) and c.value.startswith("="):
                    v = values[f"{ws.title}!{c.coordinate}"]
                    c.value = f"={v!r}" if as_formula and isinstance(v, (int, float)) else v
    return wb


@pytest.mark.parametrize("family, difficulty", [("loan_amortisation", 3), ("dcf", 6), ("three_scenarios", 4)])
@pytest.mark.parametrize("as_formula", [False, True])
def test_calculations_pasted_as_values_behind_linked_outputs_score_low_on_formula(family, difficulty, as_formula):
    task = _task(family, 0, difficulty)
    report = grade(task, _replace_formulas(task, {"Calculations"}, as_formula), reference_workbook(task))
    assert report.dimensions["accuracy"] == 100.0
    assert report.dimensions["formula"] <= 40
    assert report.final <= 80
    out = report.check("outputs_are_formulas")
    assert out.score == 0.0
    assert "pasted" in out.explanation or "nothing was computed" in out.explanation


@pytest.mark.parametrize("family", ["loan_amortisation", "dcf", "npv_irr"])
def test_every_formula_replaced_by_its_value_as_a_formula_is_not_an_output_formula(family):
    task = _task(family, 0, 5)
    report = grade(task, _replace_formulas(task, None, True), reference_workbook(task))
    assert report.check("outputs_are_formulas").score == 0.0
    assert report.dimensions["formula"] <= 10


def test_outputs_pasted_as_literal_formulas_are_named_as_pasted_while_the_rest_still_computes():
    task = _task("dcf", 0, 6)
    wb = reference_workbook(task)
    values = reference_outputs(task)
    for o in task.outputs:
        _cell(wb, o.cell).value = f"={values[o.id]!r}"
    report = grade(task, wb, reference_workbook(task))
    check = report.check("outputs_are_formulas")
    assert set(check.offending) == set(_output_cells(task))
    assert "reads no cell" in check.explanation
    assert report.check("row_consistency").score == 1.0  # the workings still compute: only the outputs lose


def test_strict_mode_scores_each_check_pass_or_fail():
    task = _task()
    wb = reference_workbook(task)
    pct = next(i for i in task.inputs if i.unit == "percent")
    _cell(wb, pct.cell).number_format = "General"
    lenient = grade(task, wb, reference_workbook(task))
    strict = grade(task, wb, reference_workbook(task), strict=True)
    assert 0 < lenient.check("number_notation").score < 1
    assert strict.check("number_notation").score == 0.0
    assert strict.strict and strict.final < lenient.final


def test_dimension_weights_reweight_the_final_score():
    task = _task()
    report = grade(task, _values_only(task), reference_workbook(task), weights={"accuracy": 1.0})
    assert report.final == pytest.approx(report.dimensions["accuracy"])
    with pytest.raises(ValueError, match="unknown dimensions"):
        grade(task, _values_only(task), reference_workbook(task), weights={"style": 1.0})


def test_an_unknown_engine_is_refused_with_the_choices():
    task = _task()
    with pytest.raises(ValueError, match="embedded"):
        grade(task, reference_workbook(task), reference_workbook(task), engine="excel")


def test_a_missing_output_fails_task_completed_and_names_the_output():
    task = _task()
    wb = reference_workbook(task)
    gone = task.outputs[0]
    del wb.defined_names[gone.name]
    label_cell = _cell(wb, gone.cell).offset(column=-1)
    label_cell.value = "Something else ($)"
    _cell(wb, gone.cell).value = None
    report = grade(task, wb, reference_workbook(task))
    assert gone.id in report.check("task_completed").offending
    assert gone.id in report.check("final_calculations").offending


def test_an_output_found_by_label_without_its_defined_name_still_grades():
    task = _task()
    wb = reference_workbook(task)
    for o in task.outputs:
        del wb.defined_names[o.name]
    report = grade(task, wb, reference_workbook(task))
    assert report.final == 100.0


def _zeroed_shells(task, sheets: set[str] | None) -> Workbook:
    """The reference with each formula on `sheets` (all when None) rewritten as `=Inputs!$B$4*0+<its value>`: it
    reaches an input, so a static closure calls it computed, yet it never moves."""
    wb = reference_workbook(task)
    values = evaluate_workbook(reference_workbook(task)).values
    anchor = next(i.cell for i in task.inputs if i.series is None)
    sheet, coord = split_key(anchor)
    col, row = re.match(r"([A-Z]+)(\d+)", coord).groups()
    for ws in wb.worksheets:
        if sheets is not None and ws.title not in sheets:
            continue
        for r in ws.iter_rows():
            for c in r:
                if isinstance(c.value, str) and c.value.startswith("="):
                    c.value = f"={sheet}!${col}${row}*0+{values[f'{ws.title}!{c.coordinate}']!r}"
    return wb


@pytest.mark.parametrize("family, difficulty", [("npv_irr", 4), ("dcf", 6), ("three_scenarios", 7)])
def test_every_formula_rewritten_as_an_input_times_zero_plus_its_value_computes_nothing(family, difficulty):
    task = _task(family, 0, difficulty)
    report = grade(task, _zeroed_shells(task, None), reference_workbook(task))
    assert report.dimensions["accuracy"] == 100.0  # the values are right: only the perturbation tells
    assert report.check("outputs_are_formulas").score < 1
    assert report.final <= 90
    assert "nothing was computed" in report.check("outputs_are_formulas").explanation


def test_outputs_rewritten_as_an_input_times_zero_plus_their_value_are_named_as_typed():
    task = _task("dcf", 0, 6)
    report = grade(task, _zeroed_shells(task, {"Outputs"}), reference_workbook(task))
    check = report.check("outputs_are_formulas")
    assert set(check.offending) == set(_output_cells(task))
    assert f"{task.outputs[0].cell} does not move when any case input changes: typed, not computed" \
        in check.explanation
    assert set(_output_cells(task)) <= set(report.check("no_buried_constants").offending)
    assert report.check("row_consistency").score == 1.0  # the workings still compute: only the outputs lose


def test_a_zero_factor_is_a_buried_constant_even_without_a_buried_value():
    task = _task("dcf", 0, 6)
    wb = reference_workbook(task)
    out = _cell(wb, task.outputs[0].cell)
    out.value = f"{out.value}+{task.inputs[0].cell.replace('Inputs!', 'Inputs!$').replace('B', 'B$')}*0"
    report = grade(task, wb, reference_workbook(task))
    buried = report.check("no_buried_constants")
    assert buried.offending == [task.outputs[0].cell] and "*0" in buried.explanation
    # the output still moves with its inputs: it is computed, not typed
    assert report.check("outputs_are_formulas").score == 1.0
