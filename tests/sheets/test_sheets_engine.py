"""The embedded engine on the design note's §8 "Engine" cases: references, names, lookups, graph order, cycles,
unevaluable constructs, short errors and what-if recomputation."""

from __future__ import annotations

import sys
from pathlib import Path

import openpyxl
import pytest
from openpyxl.utils import get_column_letter
from openpyxl.workbook.defined_name import DefinedName
from openpyxl.worksheet.formula import ArrayFormula
from testbeds_sheets.engine.evaluator import evaluate_workbook, load_model


def book(*sheets: str) -> openpyxl.Workbook:
    wb = openpyxl.Workbook()
    wb.active.title = sheets[0]
    for name in sheets[1:]:
        wb.create_sheet(name)
    return wb


def test_absolute_single_cell_references_across_sheets_are_read() -> None:
    wb = book("Assumptions", "Calc")
    wb["Assumptions"]["B3"] = 0.25
    wb["Assumptions"]["B4"] = 100_000
    wb["Calc"]["B2"] = "=Assumptions!$B$4*Assumptions!$B$3"
    wb["Calc"]["B3"] = "='Assumptions'!B$4-Assumptions!$B3"
    result = evaluate_workbook(wb)
    assert result.values["Calc!B2"] == pytest.approx(25_000)
    assert result.values["Calc!B3"] == pytest.approx(99_999.75)
    assert result.engine == "embedded"
    assert result.coverage == 1.0


def test_mixed_references_stay_fixed_on_their_dollar_axis() -> None:
    wb = book("Calc")
    ws = wb["Calc"]
    ws["B4"] = 100_000
    ws["C5"] = "=B$4+$B4"
    ws["D6"] = "=C$5+$C6"  # a copy of nothing: just another mixed pair, C5 + C6 (blank)
    result = evaluate_workbook(wb)
    assert result.values["Calc!C5"] == 200_000
    assert result.values["Calc!D6"] == 200_000


def test_copied_formulas_share_one_parse_but_read_their_own_cells() -> None:
    wb = book("Calc")
    ws = wb["Calc"]
    for col in range(2, 8):
        ws.cell(1, col, col * 10)
        letter = get_column_letter(col)
        ws.cell(2, col, f"={letter}1*$A$2")
    ws["A2"] = 3
    model = load_model(wb)
    result = model.evaluate()
    assert [result.values[f"Calc!{get_column_letter(c)}2"] for c in range(2, 8)] == [60, 90, 120, 150, 180, 210]
    assert len(model._cache) == 1


def test_quoted_sheet_names_with_spaces_and_sheet_ranges() -> None:
    wb = book("Cash Flows", "Out")
    for i, v in enumerate([-1000, 300, 400, 500, 200, 100], start=2):
        wb["Cash Flows"].cell(1, i, v)
    wb["Out"]["A1"] = "=SUM('Cash Flows'!$B$1:$G$1)"
    wb["Out"]["A2"] = "='Cash Flows'!B1+NPV(10%,'Cash Flows'!C1:G1)"
    wb["Out"]["A3"] = "=NPV(10%,'Cash Flows'!B1:G1)"
    result = evaluate_workbook(wb)
    assert result.values["Out!A1"] == 500
    assert result.values["Out!A2"] == pytest.approx(177.66, abs=0.005)
    assert result.values["Out!A3"] == pytest.approx(161.51, abs=0.005)


def test_sum_and_irr_of_a_range_name_with_sheet_scope_first() -> None:
    wb = book("Inputs", "Other")
    for i, v in enumerate([-1000, 300, 400, 500, 200, 100], start=1):
        wb["Inputs"].cell(i, 2, v)
    wb["Other"]["B1"] = 7
    wb.defined_names["CashFlows"] = DefinedName("CashFlows", attr_text="Inputs!$B$1:$B$6")
    wb.defined_names["Rate"] = DefinedName("Rate", attr_text="0.1")
    wb["Other"].defined_names["CashFlows"] = DefinedName("CashFlows", attr_text="Other!$B$1")
    wb["Inputs"]["D1"] = "=SUM(CashFlows)"
    wb["Inputs"]["D2"] = "=IRR(CashFlows)"
    wb["Inputs"]["D3"] = "=NPV(Rate,Inputs!B2:B6)+B1"
    wb["Other"]["D1"] = "=CashFlows*2"
    result = evaluate_workbook(wb)
    assert result.values["Inputs!D1"] == 500
    assert result.values["Inputs!D2"] == pytest.approx(0.1764, abs=5e-5)
    assert result.values["Inputs!D3"] == pytest.approx(177.66, abs=0.005)
    assert result.values["Other!D1"] == 14


def test_vlookup_returns_the_requested_column_exact_and_approximate() -> None:
    wb = book("T")
    ws = wb["T"]
    for r, (band, rate, label) in enumerate([(0, 0.1, "low"), (10_000, 0.2, "mid"), (50_000, 0.4, "high")], start=1):
        ws.cell(r, 1, band), ws.cell(r, 2, rate), ws.cell(r, 3, label)
    ws["E1"] = "=VLOOKUP(10000,A1:C3,3,FALSE)"
    ws["E2"] = "=VLOOKUP(25000,$A$1:$C$3,3,TRUE)"
    ws["E3"] = "=VLOOKUP(25000,$A$1:$C$3,2)"
    ws["E4"] = "=VLOOKUP(25000,A1:C3,3,FALSE)"
    ws["E5"] = "=HLOOKUP(\"x\",G1:H2,2,FALSE)"
    ws["G1"], ws["H1"], ws["G2"], ws["H2"] = "w", "x", 1, 2
    ws["E6"] = "=INDEX(C1:C3,MATCH(50000,A1:A3,0))"
    ws["E7"] = "=_xlfn.XLOOKUP(\"mid\",C1:C3,B1:B3)"
    ws["E8"] = "=_xlfn.XLOOKUP(\"none\",C1:C3,B1:B3,-1)"
    ws["E9"] = "=_xlfn.XMATCH(30000,A1:A3,-1)"
    ws["E10"] = "=IFERROR(VLOOKUP(\"zzz\",C1:C3,1,FALSE),\"missing\")"
    result = evaluate_workbook(wb)
    v = result.values
    assert (v["T!E1"], v["T!E2"], v["T!E3"], v["T!E4"]) == ("mid", "mid", 0.2, "#N/A")
    assert (v["T!E5"], v["T!E6"], v["T!E7"], v["T!E8"], v["T!E9"]) == (2, "high", 0.2, -1, 2)
    assert v["T!E10"] == "missing"


def test_sumif_family_and_whole_column_sum_over_the_used_range_only() -> None:
    wb = book("D")
    ws = wb["D"]
    regions = ["North", "South", "North", "East", "North"]
    for r, (region, amount) in enumerate(zip(regions, [10, 20, 30, 40, 50]), start=1):
        ws.cell(r, 5, region), ws.cell(r, 6, amount)
    ws["H1"] = "=SUM(F:F)"
    ws["H2"] = '=SUMIF(E:E,"North",F:F)'
    ws["H3"] = '=SUMIFS(F1:F5,E1:E5,"N*",F1:F5,">15")'
    ws["H4"] = '=COUNTIF(E1:E5,"<>North")'
    ws["H5"] = '=AVERAGEIF(E1:E5,"North",F1:F5)'
    ws["H6"] = '=_xlfn.MAXIFS(F1:F5,E1:E5,"North")+_xlfn.MINIFS(F1:F5,E1:E5,"North")'
    ws["H7"] = "=SUM(3:3)"
    model = load_model(wb)
    result = model.evaluate()
    v = result.values
    assert (v["D!H1"], v["D!H2"], v["D!H3"], v["D!H4"], v["D!H5"], v["D!H6"]) == (150, 90, 80, 2, 30, 60)
    assert v["D!H7"] == 110  # row 3: F3 (30) and the SUMIFS result in H3 (80)
    # The whole column reads the 7 used rows, not 1,048,576.
    assert model._bounds("D", model._cell_compiled[("D", 1, 8)].refs[0][1], 1, 8) == (1, 6, 7, 6)


def corkscrew(periods: int) -> openpyxl.Workbook:
    wb = book("Inputs", "Debt")
    inputs, debt = wb["Inputs"], wb["Debt"]
    inputs["B1"], inputs["B2"], inputs["B3"] = 100_000, 0.005, periods
    debt["A1"], debt["A2"], debt["A3"], debt["A4"], debt["A5"] = "Opening", "Interest", "Payment", "Principal", "Close"
    debt["B1"] = "=Inputs!$B$1"
    for p in range(periods):
        c = get_column_letter(2 + p)
        if p:
            debt[f"{c}1"] = f"={get_column_letter(1 + p)}5"
        debt[f"{c}2"] = f"={c}1*Inputs!$B$2"
        debt[f"{c}3"] = "=-PMT(Inputs!$B$2,Inputs!$B$3,Inputs!$B$1)"
        debt[f"{c}4"] = f"={c}3-{c}2"
        debt[f"{c}5"] = f"={c}1-{c}4"
    return wb


def test_a_60_period_debt_corkscrew_evaluates_each_cell_once_and_closes_at_zero() -> None:
    model = load_model(corkscrew(60))
    result = model.evaluate()
    assert model.evaluation_count == len(result.formula_cells) == 300
    assert result.values["Debt!BI5"] == pytest.approx(0, abs=1e-6)
    assert result.values["Debt!B2"] == pytest.approx(500.0)
    assert result.values["Debt!B4"] == pytest.approx(1433.28, abs=0.005)
    assert not result.problems


def test_a_5000_step_chain_evaluates_once_per_cell_within_the_default_recursion_limit() -> None:
    assert sys.getrecursionlimit() <= 10_000
    wb = book("Chain")
    ws = wb["Chain"]
    ws["A1"] = 1
    for r in range(2, 5001):
        ws.cell(r, 1, f"=A{r - 1}+1")
    model = load_model(wb)
    result = model.evaluate()
    assert model.evaluation_count == 4999
    assert result.values["Chain!A5000"] == 5000


def test_a_loop_and_a_self_reference_are_reported_circular_and_their_dependants_unevaluable() -> None:
    wb = book("S")
    ws = wb["S"]
    ws["A1"], ws["A2"] = "=A2+1", "=A1+1"
    ws["B1"] = "=B1+1"
    ws["B5"] = "=SUM(B2:B5)"
    ws["C1"] = "=A1*2"
    ws["D1"] = 4
    ws["D2"] = "=D1*2"
    result = evaluate_workbook(wb)
    for key in ("S!A1", "S!A2", "S!B1", "S!B5"):
        assert result.problems[key].kind == "circular"
        assert key not in result.values
    assert result.problems["S!C1"].kind == "unevaluable"
    assert result.values["S!D2"] == 8
    assert result.coverage == pytest.approx(1 / 6)


def test_an_unknown_function_is_name_error() -> None:
    wb = book("S")
    wb["S"]["A1"] = "=FOOBAR(1)"
    wb["S"]["A2"] = "=A1+1"
    result = evaluate_workbook(wb)
    assert result.values["S!A1"] == "#NAME?"
    assert result.values["S!A2"] == "#NAME?"
    assert not result.problems


def test_offset_indirect_and_array_formulas_are_unevaluable_with_their_dependants_never_zero() -> None:
    wb = book("S")
    ws = wb["S"]
    ws["A1"], ws["A2"] = 5, 6
    ws["B1"] = "=OFFSET(A1,1,0)"
    ws["B2"] = '=INDIRECT("A1")'
    ws["C1"] = "=B1+1"
    ws["C2"] = "=SUM(C1,A1)"
    ws["D1"] = ArrayFormula("D1:D2", "=A1:A2*2")
    ws["E1"] = "=D2+1"
    result = evaluate_workbook(wb)
    for key in ("S!B1", "S!B2", "S!C1", "S!C2", "S!D1", "S!D2", "S!E1"):
        assert result.problems[key].kind == "unevaluable", key
        assert key not in result.values
    assert "OFFSET" in result.problems["S!B1"].message


def test_an_error_thirty_levels_deep_stays_a_short_code() -> None:
    wb = book("S")
    ws = wb["S"]
    ws["A1"] = "=1/0"
    for r in range(2, 32):
        ws.cell(r, 1, f"=A{r - 1}*2+1")
    nested = "=" + "ABS(" * 30 + "1/0" + ")" * 30
    ws["B1"] = nested
    ws["C1"] = "=" + "IF(TRUE," * 30 + "SQRT(-1)" + ",0)" * 30
    result = evaluate_workbook(wb)
    assert result.values["S!A31"] == "#DIV/0!"
    assert result.values["S!B1"] == "#DIV/0!"
    assert result.values["S!C1"] == "#NUM!"
    assert not result.problems


def test_set_value_then_evaluate_equals_a_fresh_load(tmp_path: Path) -> None:
    wb = corkscrew(24)
    model = load_model(wb)
    before = model.evaluate()
    model.set_value("Inputs!B2", 0.007)
    after = model.evaluate()
    wb["Inputs"]["B2"] = 0.007
    path = tmp_path / "edited.xlsx"
    wb.save(path)
    fresh = evaluate_workbook(path)
    assert after.values == fresh.values
    assert after.values["Debt!B2"] != before.values["Debt!B2"]
    assert model.evaluation_count == 120


def test_set_value_over_a_formula_turns_it_into_an_input() -> None:
    wb = book("S")
    ws = wb["S"]
    ws["A1"], ws["A2"], ws["A3"] = 1, "=A1*10", "=A2+1"
    model = load_model(wb)
    model.set_value("S!A2", 5)
    result = model.evaluate()
    assert result.values["S!A3"] == 6
    assert "S!A2" not in result.formula_cells
    with pytest.raises(KeyError):
        model.set_value("Nope!A1", 1)


def test_values_are_python_scalars_blanks_none_and_dates_serials() -> None:
    import datetime as dt

    wb = book("S")
    ws = wb["S"]
    ws["A1"] = dt.date(2024, 1, 31)
    ws["A2"] = "=EOMONTH(A1,1)"
    ws["A3"] = "=A1:A1"
    ws["A4"] = "=Z99"
    ws["A5"] = '=TEXT(1234.5,"#,##0.00")'
    ws["A6"] = "=1>0"
    ws["A7"] = "=PMT(0.05,10,1000)"
    result = evaluate_workbook(wb)
    v = result.values
    assert v["S!A1"] == 45322 and v["S!A2"] == 45351 and v["S!A3"] == 45322
    assert v["S!A4"] == 0  # a formula reading a blank shows 0, as in Excel
    assert v["S!A5"] == "1,234.50" and v["S!A6"] is True
    assert type(v["S!A7"]) is float
    assert "S!Z99" not in v


def test_a_formula_that_cannot_be_parsed_is_a_parse_error_problem() -> None:
    wb = book("S")
    wb["S"]["A1"] = "=SUM(1,"
    result = evaluate_workbook(wb)
    assert result.problems["S!A1"].kind == "parse_error"


def test_a_long_flat_sum_of_cells_does_not_hit_the_recursion_limit() -> None:
    wb = book("S")
    ws = wb["S"]
    for r in range(1, 1201):
        ws.cell(r, 1, r)
    ws["B1"] = "=" + "+".join(f"A{r}" for r in range(1, 1201)) + "-A1*2"
    result = evaluate_workbook(wb)
    assert result.values["S!B1"] == 1200 * 1201 // 2 - 2
