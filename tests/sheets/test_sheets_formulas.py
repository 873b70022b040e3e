"""Formula-writing rules: `_xlfn.` prefixes, validation before writing, formula-like text and referenced cells."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pytest
from testbeds_serving.errors import InvalidArgument
from testbeds_sheets.engine.evaluator import evaluate_workbook
from testbeds_sheets.formulas import (
    from_stored,
    looks_like_formula_text,
    referenced_cells,
    to_stored,
    validate_formula,
)

SHEETS = {"Inputs", "Calc", "Cash Flows"}
NAMES = {"CashFlows", "WACC"}


def test_newer_functions_get_their_prefix_and_older_ones_do_not() -> None:
    assert to_stored("=XLOOKUP(A1,B:B,C:C)") == "=_xlfn.XLOOKUP(A1,B:B,C:C)"
    assert to_stored("=IFNA(MAXIFS(A:A,B:B,1),0)+STDEV.S(A1:A4)") == (
        "=_xlfn.IFNA(_xlfn.MAXIFS(A:A,B:B,1),0)+_xlfn.STDEV.S(A1:A4)"
    )
    assert to_stored("=SORT(FILTER(A1:A9,B1:B9>0))") == "=_xlfn._xlws.SORT(_xlfn._xlws.FILTER(A1:A9,B1:B9>0))"
    unchanged = "=IFERROR(SUMIFS(A:A,B:B,1),0)+XNPV(0.1,A1:A3,B1:B3)+EOMONTH(C1,1)+IPMT(r,1,2,3)+RATE(1,2,3)"
    assert to_stored(unchanged) == unchanged
    assert to_stored('="XLOOKUP(" & IFS(A1,1)') == '="XLOOKUP(" & _xlfn.IFS(A1,1)'


def test_prefixing_is_idempotent_and_reading_back_strips_it() -> None:
    stored = to_stored("=XLOOKUP(A1,B1:B3,C1:C3)")
    assert to_stored(stored) == stored
    assert from_stored(stored) == "=XLOOKUP(A1,B1:B3,C1:C3)"
    assert from_stored("=_xlfn._xlws.SORT(A1:A3)") == "=SORT(A1:A3)"
    assert from_stored('="_xlfn.kept"') == '="_xlfn.kept"'


def test_xlookup_round_trips_through_a_saved_workbook_and_evaluates(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Calc"
    ws["A1"], ws["A2"], ws["B1"], ws["B2"] = "x", "y", 1, 2
    ws["C1"] = to_stored('=XLOOKUP("y",A1:A2,B1:B2)')
    path = tmp_path / "x.xlsx"
    wb.save(path)
    loaded = openpyxl.load_workbook(path)
    stored = loaded["Calc"]["C1"].value
    assert stored == '=_xlfn.XLOOKUP("y",A1:A2,B1:B2)'
    assert from_stored(stored) == '=XLOOKUP("y",A1:A2,B1:B2)'
    assert evaluate_workbook(path).values["Calc!C1"] == 2


@pytest.mark.parametrize(
    ("formula", "cell", "fragment"),
    [
        ("=SUM(B1:B5)", "B5", "B1:B4"),
        ("=SUM(B:B)", "B7", "contains B7"),
        ("=C3*2", "C3", "itself"),
        ("=SUM(A1:A3", "B1", "unclosed"),
        ("=SUM(A1:A3))", "B1", "never opened"),
        ("=IF(A1>0;1;2)", "B1", "';'"),
        ("=Missing!A1", "B1", "does not exist"),
        ("=[1]Inputs!A1", "B1", "external"),
        ("='C:\\data\\[book.xlsx]Inputs'!A1", "B1", "external"),
        ("=WEBSERVICE(\"http://x\")", "B1", "WEBSERVICE"),
        ("=FILTERXML(A1,\"//a\")", "B1", "FILTERXML"),
        ("=CALL(\"x\")", "B1", "CALL"),
        ("=REGISTER.ID(\"x\",\"y\")", "B1", "REGISTER.ID"),
        ("=Excel|Sheet1!A1", "B1", "DDE"),
        ("=" + "1+" * 4100 + "1", "B1", "8192"),
        ("=" + "(" * 65 + "1" + ")" * 65, "B1", "64"),
        ("=Unknown*2", "B1", "defined name"),
        ("SUM(A1:A3)", "B1", "starts with '='"),
    ],
)
def test_validation_rejects_what_excel_would_repair_with_a_helpful_message(formula: str, cell: str,
                                                                           fragment: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        validate_formula(formula, cell, "Calc", SHEETS, NAMES)
    assert fragment in str(raised.value)


@pytest.mark.parametrize(
    "formula",
    [
        "=SUM(B1:B4)",
        "=SUM(Inputs!B1:B5)",  # the same address on another sheet is not the formula's own cell
        "='Cash Flows'!$B$4*Inputs!$B$3",
        "=NPV(WACC,CashFlows)",
        "=IF(A1>0,\"a;b (c\",\"x|y\")",
        "={1,2;3,4}",
        "=_xlfn.XLOOKUP(A1,A:A,C:C)",
        "=TRUE",
        "=HYPERLINK(\"http://example.com\",\"site\")",
        "=" + "(" * 64 + "1" + ")" * 64,
    ],
)
def test_validation_accepts_ordinary_finance_formulas(formula: str) -> None:
    validate_formula(formula, "B5", "Calc", SHEETS, NAMES)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("=A1+B1 ", True),
        (" =SUM(A1)", True),
        ("\u00a0=B2*2", True),
        ("=-B2", True),
        ("+A1+B1", True),
        ("@SUM(A1:A3)", True),
        ("=", False),
        ("== Totals ==", False),
        ("+5%", False),
        ("-3", False),
        ("Revenue ($m)", False),
        ("", False),
        ("a=b", False),
    ],
)
def test_formula_like_text_is_recognised(text: str, expected: bool) -> None:
    assert looks_like_formula_text(text) is expected


def test_referenced_cells_expands_small_ranges_only() -> None:
    refs = referenced_cells("=SUM(B1:B3)+'Cash Flows'!$C$2*Inputs!A1:Z100+F:F+Rate", "Calc")
    assert refs == ["Calc!B1", "Calc!B2", "Calc!B3", "Cash Flows!C2", "Inputs!A1:Z100", "Calc!F:F"]
