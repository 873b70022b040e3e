"""Tasks loaded from a folder holding a prompt and a solution workbook (the MBABench / Modeloff layout)."""

from __future__ import annotations

import json

import pytest
from openpyxl import load_workbook
from testbeds_sheets.engine.evaluator import evaluate_workbook
from testbeds_sheets.grader import grade
from testbeds_sheets.tasks import FAMILIES, generate_task, load_task_folder, reference_workbook
from testbeds_sheets.tasks.loader import label_unit


def _folder(tmp_path, family="dcf", difficulty=6):
    task = generate_task(family, 3, difficulty)
    folder = tmp_path / task.id
    folder.mkdir()
    (folder / "prompt.md").write_text(task.prompt, encoding="utf-8")
    reference_workbook(task).save(folder / "solution.xlsx")
    return task, folder


def test_a_folder_without_outputs_json_takes_the_solutions_defined_names_as_outputs(tmp_path):
    generated, folder = _folder(tmp_path)
    task, solution = load_task_folder(folder)
    assert solution == folder / "solution.xlsx"
    assert task.source == "folder" and task.id == generated.id and task.prompt == generated.prompt
    assert {(o.name, o.cell, o.unit) for o in task.outputs} == {(o.name, o.cell, o.unit) for o in generated.outputs}
    assert all(o.value is None for o in task.outputs)
    labels = {o.name: o.label for o in task.outputs}
    assert all(labels[o.name].startswith(o.label) for o in generated.outputs)
    # inputs: the numeric constants of the Inputs sheet, where the generator put them
    assert {(i.cell, i.value) for i in task.inputs} == {(i.cell, i.value) for i in generated.inputs}
    evaluation = evaluate_workbook(solution)
    for output in generated.outputs:
        assert evaluation.values[output.cell] == pytest.approx(output.value, rel=1e-9)


def test_outputs_json_chooses_the_outputs_their_labels_units_and_the_difficulty(tmp_path):
    generated, folder = _folder(tmp_path, "loan_amortisation", 4)
    chosen = generated.outputs[-1]
    (folder / "outputs.json").write_text(json.dumps({"difficulty": 4, "outputs": [
        {"name": "Answer", "cell": chosen.cell, "label": "The answer", "unit": "currency"}]}), encoding="utf-8")
    task, _ = load_task_folder(folder)
    assert task.difficulty == 4
    assert [(o.name, o.id, o.cell, o.label, o.unit) for o in task.outputs] == [
        ("Answer", "answer", chosen.cell, "The answer", "currency")]


def test_a_prompt_txt_and_a_plain_list_in_outputs_json_are_accepted(tmp_path):
    generated, folder = _folder(tmp_path, "break_even", 2)
    (folder / "prompt.md").rename(folder / "prompt.txt")
    (folder / "outputs.json").write_text(json.dumps([{"name": "X", "cell": generated.outputs[0].cell}]))
    task, _ = load_task_folder(folder)
    assert task.difficulty == 1 and [o.cell for o in task.outputs] == [generated.outputs[0].cell]
    assert task.outputs[0].unit == generated.outputs[0].unit


def test_a_folder_missing_its_solution_or_pointing_at_a_missing_sheet_is_refused(tmp_path):
    generated, folder = _folder(tmp_path, "depreciation", 1)
    (folder / "outputs.json").write_text(json.dumps([{"name": "X", "cell": "Nowhere!B4"}]))
    with pytest.raises(ValueError, match="missing sheet"):
        load_task_folder(folder)
    (folder / "solution.xlsx").unlink()
    with pytest.raises(FileNotFoundError):
        load_task_folder(folder)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("difficulty", [2, 7])
def test_a_folder_made_from_a_reference_grades_that_reference_exactly_100(tmp_path, family, difficulty):
    generated, folder = _folder(tmp_path, family, difficulty)
    task, solution = load_task_folder(folder)
    # units come from the labels ("Life (years)", "Volume (units)"), not guessed from '#,##0' as currency
    units = {i.cell: i.unit for i in generated.inputs}
    assert {i.cell: i.unit for i in task.inputs if i.cell in units} == units
    report = grade(task, solution, solution)
    assert report.final == 100.0, [c.explanation for c in report.checks if c.score < 1]


@pytest.mark.parametrize("label, unit", [
    ("Units sold (count)", "count"), ("Product A volume, Y1 (units)", "count"), ("Life (years)", "years"),
    ("WACC (%)", "percent"), ("Growth (% p.a.)", "percent"), ("Revenue ($m)", "currency"), ("DSO (days)", "days"),
    ("Interest cover (x)", "ratio"), ("Scenario selector (1/2/3)", "selector"), ("Start (date)", "date"),
    ("Price, $ per unit", "currency"), ("Tax rate", None)])
def test_a_label_states_its_unit_in_its_last_parentheses(label, unit):
    assert label_unit(label) == unit


def test_outputs_json_declares_input_units_and_labels_and_adds_inputs_elsewhere(tmp_path):
    generated, folder = _folder(tmp_path, "npv_irr", 4)
    first = generated.inputs[0]
    wb = load_workbook(folder / "solution.xlsx")
    wb["Calculations"]["Z40"] = 7.5
    wb.save(folder / "solution.xlsx")
    (folder / "outputs.json").write_text(json.dumps({"inputs": [
        {"cell": first.cell, "label": "Declared", "unit": "ratio"},
        {"cell": "Calculations!$Z$40", "unit": "days", "id": "lag"}]}), encoding="utf-8")
    task, _ = load_task_folder(folder)
    by_cell = {i.cell: i for i in task.inputs}
    assert (by_cell[first.cell].label, by_cell[first.cell].unit) == ("Declared", "ratio")
    assert (by_cell["Calculations!Z40"].id, by_cell["Calculations!Z40"].unit) == ("lag", "days")
    # no "outputs" in outputs.json: the defined names still give them
    assert {o.cell for o in task.outputs} == {o.cell for o in generated.outputs}
    (folder / "outputs.json").write_text(json.dumps({"inputs": [{"cell": first.cell, "unit": "furlongs"}]}))
    with pytest.raises(ValueError, match="unknown unit"):
        load_task_folder(folder)
    (folder / "outputs.json").write_text(json.dumps({"inputs": [{"cell": "Calculations!A1"}]}))
    with pytest.raises(ValueError, match="not a numeric constant"):
        load_task_folder(folder)
