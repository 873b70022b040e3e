"""Hostile inputs: text an .xlsx cannot hold, numbers it cannot save, formulas Excel would repair, deep sign runs,
Excel functions the engine lacks, and the edge cases of names, renames, column spans and empty blocks."""

from __future__ import annotations

import io

import openpyxl
import pytest
from testbeds_serving.errors import InvalidArgument
from testbeds_sheets.apply import apply, build
from testbeds_sheets.engine.evaluator import evaluate_workbook
from testbeds_sheets.engine.parser import Prefix, parse
from testbeds_sheets.ops import AddSheet, DefineName, RenameSheet, SetColumnWidth, SetStyle, WriteRange


def _book() -> openpyxl.Workbook:
    return build([AddSheet(name="Inputs"), WriteRange(sheet="Inputs", start="A1", rows=[["Price", 12.5]])])


def _saved(wb: openpyxl.Workbook) -> bytes:
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


def _state(wb: openpyxl.Workbook) -> tuple[object, ...]:
    cells = {(ws.title, c.coordinate): (c.value, c.number_format, c.font.name) for ws in wb for row in ws.iter_rows()
             for c in row}
    widths = {(ws.title, k): d.width for ws in wb for k, d in ws.column_dimensions.items()}
    return wb.sheetnames, cells, widths, sorted(wb.defined_names.keys())


def _refused(wb: openpyxl.Workbook, op: object, fragment: str) -> None:
    before = _state(wb)
    with pytest.raises(InvalidArgument, match=fragment):
        apply(wb, op)  # type: ignore[arg-type]
    assert _state(wb) == before
    _saved(wb)  # still saves


@pytest.mark.parametrize("text", ["\x00bad", "a\x01b", "\ud800", '="a\x01b"', "x\uffff"])
def test_cell_text_an_xlsx_cannot_hold_is_refused_and_nothing_changes(text: str) -> None:
    _refused(_book(), WriteRange(sheet="Inputs", start="D1", rows=[[text]]), "cannot be stored")


def test_tabs_and_line_breaks_in_cell_text_are_kept() -> None:
    wb = _book()
    apply(wb, WriteRange(sheet="Inputs", start="D1", rows=[["a\tb\nc"]]))
    assert openpyxl.load_workbook(io.BytesIO(_saved(wb)))["Inputs"]["D1"].value == "a\tb\nc"


@pytest.mark.parametrize("name, fragment", [("\x00", "cannot be stored"), ("a\nb", "cannot be stored"),
                                            (" ", "blank"), ("\ud800x", "cannot be stored")])
def test_sheet_names_with_control_characters_or_only_spaces_are_refused(name: str, fragment: str) -> None:
    # model_construct: the MCP layer's pydantic already rejects some of these; the rule must hold without it
    _refused(_book(), AddSheet.model_construct(name=name), fragment)
    _refused(_book(), RenameSheet.model_construct(sheet="Inputs", new_name=name), fragment)


@pytest.mark.parametrize("field", ["number_format", "font_name"])
def test_style_text_with_nul_is_refused(field: str) -> None:
    _refused(_book(), SetStyle(sheet="Inputs", range="A1", **{field: "\x00"}), "cannot be stored")


@pytest.mark.parametrize("number", [10**400, -(10**309)])
def test_integers_beyond_float_range_are_refused(number: int) -> None:
    _refused(_book(), WriteRange(sheet="Inputs", start="D1", rows=[[number]]), "1e308")


@pytest.mark.parametrize("number", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_numbers_are_refused(number: float) -> None:
    _refused(_book(), WriteRange(sheet="Inputs", start="D1", rows=[[number]]), "NaN and infinity")


def test_a_large_integer_within_float_range_is_saved() -> None:
    wb = _book()
    apply(wb, WriteRange(sheet="Inputs", start="D1", rows=[[2**70]]))
    assert openpyxl.load_workbook(io.BytesIO(_saved(wb)))["Inputs"]["D1"].value == pytest.approx(2**70, rel=1e-12)


@pytest.mark.parametrize("formula", ["=1+", "=1 2", "=SUM(=SUM(1))", "=(1,2)", "=*2"])
def test_unparsable_formulas_are_refused_before_writing(formula: str) -> None:
    _refused(_book(), WriteRange(sheet="Inputs", start="D1", rows=[[formula]]), "cannot parse formula")


def test_a_long_run_of_signs_is_refused_with_a_clear_message() -> None:
    _refused(_book(), WriteRange(sheet="Inputs", start="D1", rows=[["=" + "-" * 1000 + "1"]]), "signs in a row")


def test_a_short_run_of_signs_is_written_and_evaluated() -> None:
    wb = _book()
    apply(wb, WriteRange(sheet="Inputs", start="D1", rows=[["=" + "-" * 3 + "B1", "=--B1%"]]))
    values = evaluate_workbook(wb).values
    assert values["Inputs!D1"] == -12.5
    assert values["Inputs!E1"] == pytest.approx(0.125)


def test_the_parser_reads_thousands_of_signs_without_recursing() -> None:
    node = parse("=" + "-" * 5000 + "1")
    depth = 0
    while isinstance(node, Prefix):
        depth += 1
        node = node.operand
    assert depth == 5000


@pytest.mark.parametrize("count, expected", [(1000, 1), (1001, -1)])
def test_a_file_with_thousands_of_signs_evaluates_without_crashing(count: int, expected: int) -> None:
    wb = openpyxl.Workbook()
    wb.active["A1"] = "=" + "-" * count + "1"
    wb.active["A2"] = "=A1*2"
    evaluation = evaluate_workbook(wb)
    assert evaluation.values["Sheet!A1"] == expected
    assert evaluation.values["Sheet!A2"] == 2 * expected


def test_an_excel_function_the_engine_lacks_is_an_unsupported_problem_and_taints_dependants() -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws["A1"] = "=NETWORKDAYS(1,10)"
    ws["A2"] = "=A1+1"
    ws["A3"] = "=FOOBAR(1)"
    evaluation = evaluate_workbook(wb)
    assert evaluation.problems["Sheet!A1"].kind == "unsupported_function"
    assert evaluation.problems["Sheet!A2"].kind == "unevaluable"
    assert "Sheet!A1" not in evaluation.values
    assert evaluation.values["Sheet!A3"] == "#NAME?"


def test_quotient_and_averagea_follow_excel() -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws["A1"], ws["A2"], ws["A3"] = 4, "text", True
    ws["B1"] = "=QUOTIENT(-7,2)"
    ws["B2"] = "=AVERAGEA(A1:A3)"
    ws["B3"] = "=QUOTIENT(1,0)"
    values = evaluate_workbook(wb).values
    assert values["Sheet!B1"] == -3
    assert values["Sheet!B2"] == pytest.approx(5 / 3)
    assert values["Sheet!B3"] == "#DIV/0!"


def test_aggregates_skip_text_read_from_a_reference_but_coerce_typed_text() -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws["H1"] = "5"
    ws["A1"] = "=SUM(H1,1)"
    ws["A2"] = '=SUM("5",1)'
    ws["A3"] = "=COUNT(H1)"
    ws["A4"] = "=MAX(H1,2)"
    ws["A5"] = "=COUNTA(Z9)"
    ws["A6"] = "=H1+1"
    values = evaluate_workbook(wb).values
    assert values["Sheet!A1"] == 1
    assert values["Sheet!A2"] == 6
    assert values["Sheet!A3"] == 0
    assert values["Sheet!A4"] == 2
    assert values["Sheet!A5"] == 0
    assert values["Sheet!A6"] == 6


@pytest.mark.parametrize("formula, expected", [
    ("=NPER(0,-1000,10000)", 10), ("=NPER(0,-100,1000,-500)", 5), ("=PV(0,10,-100)", 1000),
    ("=PV(0,10,-100,50,1)", 950), ("=FV(0,10,-100,-1000)", 2000), ("=PMT(0,10,1000,100,1)", -110),
    ("=IPMT(0,2,10,1000)", 0), ("=PPMT(0,2,10,1000)", -100), ("=NPER(0,0,1000)", "#NUM!"),
])
def test_finance_functions_at_rate_zero_match_excel(formula: str, expected: object) -> None:
    wb = openpyxl.Workbook()
    wb.active["A1"] = formula
    value = evaluate_workbook(wb).values["Sheet!A1"]
    assert value == (pytest.approx(expected) if isinstance(expected, int) else expected)


@pytest.mark.parametrize("name", ["R1C1", "rc", "R5", "C3", "R", "c", "RC2", "_xlnm.Print_Area", "_XLNM.x"])
def test_names_shaped_like_r1c1_references_or_reserved_are_refused(name: str) -> None:
    _refused(_book(), DefineName(name=name, ref="Inputs!B1"), "not allowed|reserved")


def test_a_name_that_merely_starts_with_r_is_allowed() -> None:
    wb = _book()
    apply(wb, DefineName(name="Rate", ref="Inputs!B1"))
    assert "Rate" in wb.defined_names


@pytest.mark.parametrize("new_name", ["INPUTS", "inputs", "Inputs"])
def test_renaming_a_sheet_to_a_case_variant_of_its_name_gives_exactly_that_name(new_name: str) -> None:
    wb = _book()
    apply(wb, RenameSheet(sheet="Inputs", new_name=new_name))
    assert wb.sheetnames == [new_name]


def test_a_reversed_column_span_sets_every_column_in_it() -> None:
    wb = _book()
    apply(wb, SetColumnWidth(sheet="Inputs", columns="C:A", width=17))
    assert [wb["Inputs"].column_dimensions[c].width for c in "ABC"] == [17, 17, 17]


def test_an_empty_block_is_refused() -> None:
    _refused(_book(), WriteRange(sheet="Inputs", start="D1", rows=[[]]), "empty")
