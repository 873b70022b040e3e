"""Function results of the embedded engine against the design note's §6 numbers and Excel's documented behaviour."""

from __future__ import annotations

import openpyxl
import pytest
from testbeds_sheets.engine.evaluator import evaluate_workbook

FLOWS = [-1000, 300, 400, 500, 200, 100]


def evaluate(*formulas: str) -> list[object]:
    """Values of formulas placed in column C of a sheet whose A1:A6 hold the example cash flows, B1:B6 dates and
    D1:D5 the numbers 1..5 with a blank in D6 and text in D7."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "S"
    for r, v in enumerate(FLOWS, start=1):
        ws.cell(r, 1, v)
        ws.cell(r, 2, 45292 + 365 * (r - 1))
    for r in range(1, 6):
        ws.cell(r, 4, r)
    ws["D7"] = "text"
    for r, formula in enumerate(formulas, start=1):
        ws.cell(r, 3, formula)
    result = evaluate_workbook(wb)
    assert not result.problems, result.problems
    return [result.values[f"S!C{r}"] for r in range(1, len(formulas) + 1)]


def test_loan_functions_follow_excel_signs() -> None:
    pmt, pmt1, ipmt, ppmt, fv, pv, nper, rate = evaluate(
        "=PMT(0.005,60,100000)", "=PMT(0.005,60,100000,0,1)", "=IPMT(0.005,1,60,100000)", "=PPMT(0.005,1,60,100000)",
        "=FV(0.005,60,-1933.28)", "=PV(0.005,60,-1933.28)", "=NPER(0.005,-1933.28,100000)",
        "=RATE(60,-1933.28,100000)",
    )
    assert pmt == pytest.approx(-1933.28, abs=0.005)
    assert pmt1 == pytest.approx(-1923.66, abs=0.005)
    assert ipmt == pytest.approx(-500.0)
    assert ppmt == pytest.approx(-1433.28, abs=0.005)
    assert ipmt + ppmt == pytest.approx(pmt)
    assert fv == pytest.approx(100_000 * 1.005**60, abs=1)  # the balance a 60-month loan repays
    assert pv == pytest.approx(100_000, abs=1)
    assert nper == pytest.approx(60, abs=1e-3)
    assert rate == pytest.approx(0.005, abs=1e-7)


def test_npv_is_off_by_one_like_excel_and_irr_returns_num_not_nan() -> None:
    project, all_six, irr, no_root, mirr = evaluate(
        "=A1+NPV(10%,A2:A6)", "=NPV(10%,A1:A6)", "=IRR(A1:A6)", "=IRR(D1:D5)", "=MIRR(A1:A6,10%,12%)",
    )
    assert project == pytest.approx(177.66, abs=0.005)
    assert all_six == pytest.approx(161.51, abs=0.005)
    assert irr == pytest.approx(0.1764, abs=5e-5)
    assert no_root == "#NUM!"
    assert mirr == pytest.approx((1985.2251 / 1000) ** (1 / 5) - 1, abs=1e-6)


def test_xnpv_leaves_the_first_flow_undiscounted_and_xirr_is_its_root() -> None:
    xnpv, xirr, check = evaluate("=XNPV(10%,A1:A6,B1:B6)", "=XIRR(A1:A6,B1:B6)", "=XNPV(C2,A1:A6,B1:B6)")
    expected = sum(v / 1.1 ** ((365 * i) / 365) for i, v in enumerate(FLOWS))
    assert xnpv == pytest.approx(expected)
    assert check == pytest.approx(0, abs=1e-6)
    assert xirr == pytest.approx(0.1764, abs=5e-4)


def test_depreciation_functions() -> None:
    ddb1, ddb2, ddb5, sln, syd, db1, vdb = evaluate(
        "=DDB(10000,1000,5,1)", "=DDB(10000,1000,5,2)", "=DDB(10000,1000,5,5)", "=SLN(10000,1000,5)",
        "=SYD(10000,1000,5,1)", "=DB(1000000,100000,6,1,7)", "=VDB(2400,300,10,0,1)",
    )
    assert (ddb1, ddb2) == (pytest.approx(4000), pytest.approx(2400))
    assert ddb5 == pytest.approx(296.0)  # capped so book value never drops below salvage
    assert sln == 1800 and syd == pytest.approx(3000)
    assert db1 == pytest.approx(186_083.33, abs=0.01)
    assert vdb == pytest.approx(480)


def test_rate_conversions_and_cumulative_loan_sums() -> None:
    effect, nominal, cumipmt, cumprinc, rri = evaluate(
        "=EFFECT(0.0525,4)", "=NOMINAL(0.053543,4)", "=CUMIPMT(0.09/12,360,125000,13,24,0)",
        "=CUMPRINC(0.09/12,360,125000,13,24,0)", "=_xlfn.RRI(96,10000,11000)",
    )
    assert effect == pytest.approx(0.053543, abs=1e-6)
    assert nominal == pytest.approx(0.0525, abs=1e-5)
    assert cumipmt == pytest.approx(-11135.23, abs=0.01)
    assert cumprinc == pytest.approx(-934.1071, abs=1e-3)
    assert rri == pytest.approx(0.0009933, abs=1e-6)


def test_statistics_ignore_blanks_and_text_in_ranges() -> None:
    avg, med, large, small, sd, sdp, prod, cnt, cnta, mx = evaluate(
        "=AVERAGE(D1:D7)", "=MEDIAN(D1:D7)", "=LARGE(D1:D7,2)", "=SMALL(D1:D7,2)", "=STDEV.S(D1:D5)",
        "=_xlfn.STDEV.P(D1:D5)", "=PRODUCT(D1:D5)", "=COUNT(D1:D7)", "=COUNTA(D1:D7)", "=MAX(D1:D7,-1)",
    )
    assert (avg, med, large, small, prod, cnt, cnta, mx) == (3, 3, 4, 2, 120, 5, 6, 5)
    assert sd == pytest.approx(1.5811388) and sdp == pytest.approx(1.4142136)


def test_sumproduct_with_a_boolean_condition_and_rounding_half_away_from_zero() -> None:
    sp, cond, r1, r2, r3, r4 = evaluate(
        "=SUMPRODUCT(D1:D5,D1:D5)", "=SUMPRODUCT((D1:D5>2)*D1:D5)", "=ROUND(2.675,2)", "=ROUND(-2.5,0)",
        "=ROUNDUP(1.21,1)", "=ROUNDDOWN(-1.29,1)",
    )
    assert (sp, cond) == (55, 12)
    assert (r1, r2, r3, r4) == (2.68, -3, 1.3, -1.2)


def test_logical_functions_are_lazy_where_excel_is() -> None:
    values = evaluate(
        "=IF(D1>0,\"pos\",1/0)", "=IFERROR(1/0,0)", "=_xlfn.IFNA(NA(),\"na\")", "=_xlfn.IFNA(1/0,\"na\")",
        "=_xlfn.IFS(D1>5,\"a\",D1>0,\"b\")", "=_xlfn.SWITCH(D2,1,\"one\",2,\"two\",\"other\")",
        "=CHOOSE(2,1/0,\"second\")", "=AND(D1>0,D2>0)", "=OR(D1>5,NOT(D2>5))", "=IF(D6=\"\",\"blank\",\"x\")",
    )
    assert values == ["pos", 0, "na", "#DIV/0!", "b", "two", "second", True, True, "blank"]


def test_dates_and_text() -> None:
    values = evaluate(
        "=DATE(2024,14,1)", "=YEAR(DATE(2024,2,29))", "=EDATE(DATE(2024,1,31),1)", "=EOMONTH(DATE(2024,1,15),-1)",
        "=YEARFRAC(DATE(2024,1,1),DATE(2024,7,1))", "=_xlfn.DAYS(DATE(2024,3,1),DATE(2024,2,1))",
        "=TEXT(0.1234,\"0.0%\")", "=_xlfn.TEXTJOIN(\"-\",TRUE,D1:D3,D6)", "=\"Q\"&D1&\" \"&1.5", "=LEN(D7)",
    )
    assert values == [45689, 2024, 45351, 45291, 0.5, 29, "12.3%", "1-2-3", "Q1 1.5", 4]


def test_arithmetic_errors_and_coercions() -> None:
    values = evaluate("=1/0", "=\"a\"+1", "=\"3\"*2", "=TRUE+1", "=-2^2", "=2^-1", "=5%*200", "=D6+1", "=SQRT(-1)")
    assert values == ["#DIV/0!", "#VALUE!", 6.0, 2, 4, 0.5, 10.0, 1, "#NUM!"]


def test_functions_only_xlcalculator_has_are_still_available() -> None:
    atan2, lower = evaluate("=ATAN2(1,1)", "=LOWER(\"ABC\")")
    assert atan2 == pytest.approx(0.785398, abs=1e-6)
    assert lower == "abc"
