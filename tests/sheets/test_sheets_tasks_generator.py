"""The task generator: depth as difficulty, determinism, prompts, perturbations, and the reference workbook's
agreement with the Python values through the embedded evaluator."""

from __future__ import annotations

import math

import numpy_financial as npf
import pytest
from openpyxl import load_workbook
from testbeds_sheets.engine.evaluator import evaluate_workbook, load_model
from testbeds_sheets.tasks import (
    FAMILIES,
    MAX_DIFFICULTY,
    generate_task,
    reference_outputs,
    reference_plan,
    reference_workbook,
)
from testbeds_sheets.tasks.generator import FORBIDDEN_VALUES, full_graph, selected_graph
from testbeds_sheets.tasks.graph import irr, mirr, npv_excel, pmt
from testbeds_sheets.tasks.layout import BLUE, GREEN, is_pure_link
from testbeds_sheets.tasks.prompt import format_value

GRID = [(f, d, s) for f in FAMILIES for d in (1, 3, 6, 10) for s in (0, 1)]


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= max(1e-9, 1e-9 * abs(b))


def test_there_are_eight_families_covering_every_difficulty_up_to_twelve():
    assert len(FAMILIES) >= 8
    assert {"revenue_buildup", "loan_amortisation", "dcf", "npv_irr", "break_even", "depreciation",
            "working_capital", "three_scenarios"} <= set(FAMILIES)
    for family in FAMILIES:
        assert full_graph(family, 0).max_depth() >= MAX_DIFFICULTY


@pytest.mark.parametrize("family", FAMILIES)
def test_the_selected_sub_graph_is_exactly_as_deep_as_the_difficulty(family):
    for difficulty in range(1, MAX_DIFFICULTY + 1):
        graph = selected_graph(family, 2, difficulty)
        assert graph.closure_depth([o.node for o in graph.outputs]) == difficulty
        # the selection is closed: every precedent of a kept node is kept
        assert graph.closure([o.node for o in graph.outputs]) == set(graph.nodes)
        task = generate_task(family, 2, difficulty)
        assert task.difficulty == difficulty and task.id == f"{family}-d{difficulty}-s2"


def test_an_unknown_family_or_an_out_of_range_difficulty_is_refused():
    with pytest.raises(ValueError, match="unknown family"):
        generate_task("astrology", 0, 3)
    with pytest.raises(ValueError, match="difficulty"):
        generate_task("dcf", 0, 0)
    with pytest.raises(ValueError, match="difficulty"):
        generate_task("dcf", 0, MAX_DIFFICULTY + 1)


@pytest.mark.parametrize("family,difficulty,seed", GRID)
def test_the_reference_workbook_recomputes_to_the_python_values(family, difficulty, seed):
    task = generate_task(family, seed, difficulty)
    evaluation = evaluate_workbook(reference_workbook(task))
    assert evaluation.problems == {}
    assert evaluation.coverage == 1.0
    errors = {k: v for k, v in evaluation.values.items() if isinstance(v, str) and v.startswith("#")}
    assert errors == {}
    for output in task.outputs:
        value = evaluation.values[output.cell]
        assert isinstance(value, (int, float)) and output.value is not None
        assert _close(value, output.value), (output.name, value, output.value)


@pytest.mark.parametrize("family", FAMILIES)
def test_perturbed_references_move_like_the_python_model(family):
    task = generate_task(family, 0, 10)
    model = load_model(reference_workbook(task))
    base = reference_outputs(task)
    assert 2 <= len(task.perturbations) <= 3
    assert len({p.input_id for p in task.perturbations}) == len(task.perturbations)
    for perturbation in task.perturbations:
        source = next(i for i in task.inputs if i.id == perturbation.input_id)
        expected = reference_outputs(task, {perturbation.input_id: perturbation.value})
        assert any(not _close(expected[k], base[k]) for k in base), perturbation
        model.set_value(source.cell, perturbation.value)
        evaluation = model.evaluate()
        for output in task.outputs:
            assert _close(evaluation.values[output.cell], expected[output.id]), (perturbation, output.name)
        model.set_value(source.cell, source.value)


@pytest.mark.parametrize("family,difficulty,seed", [(f, d, s) for f in FAMILIES for d in (1, 3, 6, 10, 12)
                                                    for s in (0, 1, 2)])
def test_every_perturbation_changes_an_output_and_keeps_a_valid_rounded_input(family, difficulty, seed):
    task = generate_task(family, seed, difficulty)
    base = reference_outputs(task)
    assert 2 <= len(task.perturbations) <= 3
    values = {i.id: i for i in task.inputs}
    for perturbation in task.perturbations:
        source = values[perturbation.input_id]
        assert source.series is None and perturbation.value != source.value
        if source.unit == "selector":
            assert perturbation.value in (1.0, 2.0, 3.0)
        else:
            assert math.isclose(abs(perturbation.value / source.value - 1), 0.1, rel_tol=1e-3, abs_tol=0.01)
        moved = reference_outputs(task, {perturbation.input_id: perturbation.value})
        assert any(not _close(moved[k], base[k]) for k in base)


@pytest.mark.parametrize("family", FAMILIES)
def test_inputs_are_pairwise_distinct_and_unlike_the_allowed_formula_constants(family):
    for seed in (0, 1, 2):
        task = generate_task(family, seed, MAX_DIFFICULTY)
        keys: list[float] = []
        for item in task.inputs:
            for value in item.series or [item.value]:
                found = {round(value, 9)} | ({round(value * 100, 9)} if item.unit == "percent" else set())
                if item.unit != "selector":
                    assert not found & set(FORBIDDEN_VALUES), (item.id, value)
                assert not found & set(keys), (item.id, value)
                keys.extend(found)


@pytest.mark.parametrize("family", FAMILIES)
def test_the_same_seed_gives_the_same_task_and_plan(family):
    first = generate_task(family, 7, 5)
    again = generate_task(family, 7, 5)
    assert first.model_dump_json() == again.model_dump_json()
    assert reference_plan(first).model_dump_json() == reference_plan(again).model_dump_json()
    other = generate_task(family, 8, 5)
    assert other.model_dump_json() != first.model_dump_json()


@pytest.mark.parametrize("family", FAMILIES)
def test_the_prompt_names_every_input_value_and_every_output(family):
    task = generate_task(family, 1, 8)
    for item in task.inputs:
        for value in item.series or [item.value]:
            assert format_value(value, item.unit) in task.prompt, item.id
        assert item.label in task.prompt
    for output in task.outputs:
        assert f"`{output.name}`" in task.prompt and output.label in task.prompt


@pytest.mark.parametrize("family", FAMILIES)
def test_the_reference_saves_reloads_and_follows_the_layout_conventions(family, tmp_path):
    task = generate_task(family, 0, 6)
    path = tmp_path / "reference.xlsx"
    reference_workbook(task).save(path)
    wb = load_workbook(path)
    assert wb.sheetnames == ["Inputs", "Calculations", "Outputs"]
    for item in task.inputs:
        sheet, _, coordinate = item.cell.partition("!")
        cell = wb[sheet][coordinate]
        assert cell.data_type == "n" and cell.value == item.value
        assert cell.font.color.rgb == "FF" + BLUE
    for output in task.outputs:
        destinations = list(wb.defined_names[output.name].destinations)
        assert destinations == [("Outputs", _absolute(output.cell))]
        cell = wb["Outputs"][output.cell.partition("!")[2]]
        assert is_pure_link(cell.value) and cell.font.color.rgb == "FF" + GREEN
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                if isinstance(cell.value, str) and cell.value.startswith("=") and not is_pure_link(cell.value):
                    assert cell.font.color is None or cell.font.color.rgb == "FF000000", cell.coordinate
    assert evaluate_workbook(path).coverage == 1.0


def _absolute(cell: str) -> str:
    coordinate = cell.partition("!")[2]
    letters = "".join(ch for ch in coordinate if ch.isalpha())
    digits = coordinate[len(letters):]
    return f"${letters}${digits}"


def test_the_finance_helpers_match_excel_on_the_design_examples():
    assert round(pmt(0.06 / 12, 60, 100000), 2) == -1933.28
    assert round(pmt(0.06 / 12, 60, 100000, when=1), 2) == -1923.66
    flows = [-1000, 300, 400, 500, 200, 100]
    assert round(flows[0] + npv_excel(0.10, flows[1:]), 2) == 177.66
    assert round(npv_excel(0.10, flows), 2) == 161.51
    assert round(irr(flows), 4) == 0.1764
    assert math.isclose(mirr(flows, 0.08, 0.06), npf.mirr(flows, 0.08, 0.06), rel_tol=1e-12)


def test_the_npv_family_adds_the_year_zero_flow_outside_excels_npv():
    task = next(t for t in (generate_task("npv_irr", s, 9) for s in range(20))
                if {o.name for o in t.outputs} >= {"Project_NPV"})
    evaluation = evaluate_workbook(reference_workbook(task))
    formulas = [v for v in reference_plan(task).model_dump_json().split('"') if "NPV(" in v]
    assert len(formulas) == 1 and formulas[0].startswith("=$C$") and "+NPV(Inputs!$B$" in formulas[0]
    row = formulas[0].split("$")[2].split("+")[0]
    flows = [evaluation.values[f"Calculations!{chr(ord('C') + i)}{row}"] for i in range(task.periods or 0)]
    rate = next(i.value for i in task.inputs if i.id == "wacc")
    npv = next(o for o in task.outputs if o.name == "Project_NPV")
    assert flows[0] < 0 and _close(evaluation.values[npv.cell], flows[0] + npv_excel(rate, flows[1:]))
    assert not _close(evaluation.values[npv.cell], npv_excel(rate, flows))
