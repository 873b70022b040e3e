"""Individual grader checks on small hand-built workbooks: each flags what it should and nothing else."""

from __future__ import annotations

from openpyxl import Workbook
from testbeds_sheets.engine.evaluator import evaluate_workbook
from testbeds_sheets.grader import format_checks as fmt
from testbeds_sheets.grader import formula_checks as fc
from testbeds_sheets.grader.book import Book, sheet_role
from testbeds_sheets.grader.locate import Located
from testbeds_sheets.grader.report import against_reference, make_check


def _book(rows: dict[str, list[list]]) -> tuple[Workbook, Book]:
    wb = Workbook()
    wb.remove(wb.active)
    for sheet, data in rows.items():
        ws = wb.create_sheet(sheet)
        for row in data:
            ws.append(row)
    return wb, Book(wb)


def _single(formula: str, **extra: list[list]) -> Book:
    return _book({"Calc": [[10, 20, 0.05], [formula]], **extra})[1]


def test_numbers_buried_in_formulas_are_flagged_but_idioms_are_not():
    flagged = ["=A1*1.05", "=A1*5%", "=1000*1.05", "=(A1+B1)*0.4", "=POWER(1.07,A1)"]
    allowed = ["=A1/12", "=A1*100", "=-1*A1", "=ROUND(A1*B1,2)", "=CHOOSE(3,A1,B1,C1)", "=PMT(C1/12,A1,-B1,0,1)",
               "=A1*365/1000", "=DATE(2025,6,30)", "=VLOOKUP(A1,A1:C1,3,FALSE)", "=A1^2", "=ROUND(A1,-3)", "=A1*100%"]
    for f in flagged:
        assert fc.buried_constants(_single(f).cells["Calc!A2"]), f
    for f in allowed:
        assert fc.buried_constants(_single(f).cells["Calc!A2"]) == [], f


def test_divisions_by_calculated_cells_and_lookups_need_a_trap():
    def check(formula: str):
        _, book = _book({"Calc": [[10, 0, "=A1-B1", formula]]})
        return fc.error_traps(book)

    assert check("=A1/C1").offending == ["Calc!D1"]
    assert check("=IFERROR(A1/C1,0)").offending == []
    assert check("=IF(C1=0,0,A1/C1)").offending == []
    assert check("=A1/B1").eligible == 0  # an input divisor is the case's, not a calculation's
    assert check("=A1/(C1-B1)").offending == ["Calc!D1"]
    assert check("=VLOOKUP(A1,A1:C1,2,FALSE)").offending == ["Calc!D1"]
    assert check("=IFNA(MATCH(A1,A1:C1,0),0)").offending == []
    assert check('=XLOOKUP(A1,A1:B1,B1:C1,"none")').eligible == 0


def test_circular_references_and_self_loops_are_reported_as_cycles():
    _, book = _book({"Calc": [["=B1+1", "=A1+1", "=C1+1", "=A1*2"]]})
    check = fc.no_cycles(book)
    assert set(check.offending) == {"Calc!A1", "Calc!B1", "Calc!C1"}
    assert check.eligible == 4


def test_a_5000_step_chain_is_acyclic_without_deep_recursion():
    rows = [[1]] + [[f"=A{r - 1}+1"] for r in range(2, 5002)]
    _, book = _book({"Calc": rows})
    assert fc.no_cycles(book).offending == []


def test_whole_columns_and_ranges_containing_their_own_cell_are_flagged():
    _, book = _book({"Calc": [[1], [2], [3], ["=SUM(A1:A4)"], ["=SUM(A:A)"], ["=SUM(A1:A3)"]]})
    assert fc.no_whole_columns(book).offending == ["Calc!A5"]
    assert set(fc.no_self_ranges(book).offending) == {"Calc!A4", "Calc!A5"}


def test_only_root_errors_count_not_the_cells_downstream():
    wb, book = _book({"Calc": [[10, 0, "=A1/B1", "=C1+1", "=D1*2", "=A1+1"]]})
    ev = evaluate_workbook(wb)
    check = fc.no_errors(book, ev)
    assert check.offending == ["Calc!C1"]
    assert check.eligible == 4


def test_a_row_with_one_formula_unlike_the_rest_is_inconsistent_but_the_first_period_and_totals_are_not():
    row = ["Revenue ($)", 100, "=B1*1", "=C1*(1+$A$3)", "=D1*(1+$A$3)", "=E1*(1+$A$3)", "=F1*(1+$A$3)+0",
           "=G1*(1+$A$3)", "=SUM(C1:H1)"]
    _, book = _book({"Calc": [row, [], [0.05]]})
    check = fc.row_consistency(fc.FormulaIndex(book))
    assert check.offending == ["Calc!G1"]


def test_a_fixed_cell_read_along_a_row_without_dollar_on_its_column_is_flagged():
    _, book = _book({"Calc": [["Growth", 0.05], ["Units", 100, "=B2*(1+B1)", "=C2*(1+B1)", "=D2*(1+B1)"],
                              ["Units", 100, "=B3*(1+$B$1)", "=C3*(1+$B1)", "=D3*(1+$B$1)"]]})
    check = fc.absolute_refs(fc.FormulaIndex(book))
    assert set(check.offending) == {"Calc!D2", "Calc!E2"}


def test_long_deeply_nested_or_call_heavy_formulas_are_flagged():
    long = "=" + "+".join(["A1"] * 45)
    nested = "=ROUND(MAX(MIN(ABS(A1),1),0),2)"
    calls = "=SUM(A1)+SUM(A1)+SUM(A1)+SUM(A1)+SUM(A1)+SUM(A1)"
    _, book = _book({"Calc": [[1, long, nested, calls, "=ROUND(MAX(A1,0),2)"]]})
    assert set(fc.formula_length(book).offending) == {"Calc!B1", "Calc!C1", "Calc!D1"}


def test_a_total_that_stops_short_of_the_last_period_is_flagged():
    _, book = _book({"Calc": [["Cash ($)", 1, 2, 3, 4, 5], ["Total", "=SUM(B1:D1)", "=SUM(B1:F1)"]]})
    check = fc.sums_cover_timeline(book)
    assert check.offending == ["Calc!B2"]
    assert check.eligible == 2


def test_a_formula_stored_as_text_is_not_a_formula():
    wb, book = _book({"Calc": [[1, 2]]})
    cell = wb["Calc"]["C1"]
    cell.value = "=A1+B1"
    cell.data_type = "s"
    book = Book(wb)
    assert book.cells["Calc!C1"].text_formula and not book.cells["Calc!C1"].is_formula
    assert fc.outputs_are_formulas(book, {}).offending == ["Calc!C1"]


def _pasting_book() -> Book:
    return _book({"Inputs": [["Price ($)", 40]],
                  "Calc": [["Revenue ($)", "=Inputs!B1*3"], ["Typed ($)", 777], ["Chain ($)", "=B2"]],
                  "Outputs": [["Computed", "=Calc!B1"], ["Literal", "=123.45"], ["Linked", "=Calc!B3"]]})[1]


def test_an_output_counts_as_a_formula_only_when_its_precedents_reach_a_case_input():
    book = _pasting_book()
    inputs = {"price": Located("price", "Inputs!B1", "value")}
    outputs = {k: Located(k, f"Outputs!B{r}", "name") for k, r in (("computed", 1), ("literal", 2), ("linked", 3))}
    check = fc.outputs_are_formulas(book, outputs, inputs)
    assert set(check.offending) == {"Outputs!B2", "Outputs!B3"}
    assert "=123.45 reads no cell" in check.explanation
    assert "Calc!B2" in check.explanation  # the typed number the chain of links ends in is named
    assert fc.computed_cells(book, {"Inputs!B1"}) == {"Calc!B1", "Outputs!B1"}


def test_a_workbook_whose_formulas_read_no_case_input_fails_every_formula_check():
    wb, book = _book({"Inputs": [["Price ($)", 40]], "Calc": [["Revenue ($)", 120]], "Outputs": [["Rev", "=Calc!B1"]]})
    checks = fc.formula_checks(book, evaluate_workbook(wb), {}, {"price": Located("price", "Inputs!B1", "value")})
    assert checks and all(c.score == 0.0 for c in checks)
    assert "nothing was computed" in checks[0].explanation


def test_a_check_with_nothing_eligible_fails_only_when_the_reference_had_items():
    vacuous = make_check("row_consistency", "formula_readability", 0, [], "nothing to check: copied rows")
    busy = make_check("formula_length", "formula_readability", 3, [], "3/3 fine")
    out = against_reference([vacuous, busy], {"row_consistency": 14, "formula_length": 9})
    assert [c.score for c in out] == [0.0, 1.0]
    assert out[0].explanation == "the reference has 14 formulas in copied rows; the attempt has none"
    assert against_reference([vacuous], {"row_consistency": 0})[0].score == 1.0
    assert against_reference([vacuous], {})[0].explanation.startswith("nothing to check")


def test_an_input_sheet_without_formulas_is_never_failed_for_it():
    empty = make_check("inputs_read_no_workings", "structure", 0, [], "")
    assert against_reference([empty], {"inputs_read_no_workings": 4})[0].score == 1.0


def test_delineation_counts_bordered_or_filled_cells():
    from openpyxl.styles import Border, PatternFill, Side

    wb, _ = _book({"Calc": [["Total", 5], ["Plain", 6], ["Shaded", 7]]})
    wb["Calc"]["A1"].border = Border(top=Side(style="thin"))
    wb["Calc"]["A3"].fill = PatternFill("solid", fgColor="FFDDEEFF")
    assert fmt.delineation(Book(wb)).eligible == 2
    assert fmt.delineation(_book({"Calc": [["x", 1]]})[1]).eligible == 0


def test_the_same_calculation_twice_is_a_duplicate_but_a_flat_row_is_not():
    _, book = _book({"Calc": [[5, 7, "=A1*B1", "=A1*B1"], ["x", "=-$A$1", "=-$A$1", "=-$A$1"]],
                     "Outputs": [["=Calc!A1*Calc!B1"]]})
    check = fc.duplicate_calc(book, fc.FormulaIndex(book))
    assert set(check.offending) == {"Calc!D1", "Outputs!A1"}


def test_a_workbook_without_formulas_fails_every_formula_check():
    wb, book = _book({"Sheet1": [["Revenue", 100]]})
    checks = fc.formula_checks(book, evaluate_workbook(wb), {})
    assert checks and all(c.score == 0.0 for c in checks)


def test_sheet_roles_follow_names_and_order():
    assert [sheet_role(s) for s in ("Inputs", "Assumptions", "Calculations", "Debt", "Outputs", "Summary",
                                    "Sheet1", "Checks")] == ["input", "input", "calc", "calc", "output", "output",
                                                             "default", "check"]
    _, book = _book({"Outputs": [[1]], "Inputs": [[1]], "Calc": [[1]]})
    assert fmt.sheet_roles(book).offending == ["Inputs", "Calc"]
    _, book = _book({"Sheet1": [[1]]})
    assert set(fmt.sheet_roles(book).offending) == {"Sheet1", "(input sheet)", "(output sheet)",
                                                    "(calculation sheet)"}


def test_large_sheets_must_freeze_panes():
    wb, book = _book({"Calc": [[r] for r in range(1, 80)], "Small": [[1]]})
    assert fmt.freeze_panes(book).offending == ["Calc"]
    wb["Calc"].freeze_panes = "B2"
    assert fmt.freeze_panes(Book(wb)).offending == []


def test_a_second_font_on_many_cells_or_many_sizes_costs_style_consistency():
    from openpyxl.styles import Font

    wb, _ = _book({"Calc": [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]]})
    assert fmt.font_consistency(Book(wb)).score == 1.0
    for c in wb["Calc"][1][:3]:
        c.font = Font(name="Times New Roman")
    check = fmt.font_consistency(Book(wb))
    assert set(check.offending) == {"Calc!A1", "Calc!B1", "Calc!C1"}


def test_heavy_shading_costs_the_fill_check():
    from openpyxl.styles import PatternFill

    wb, _ = _book({"Calc": [[1, 2, 3, 4, 5, 6, 7, 8]]})
    for c in wb["Calc"][1][:4]:
        c.fill = PatternFill(fill_type="solid", start_color="FFFFFF00", end_color="FFFFFF00")
    check = fmt.fills(Book(wb))
    assert 0 < check.score < 1


def test_shape_cached_tokenising_equals_openpyxls_tokenizer_on_every_reference_formula():
    from openpyxl.formula.tokenizer import Tokenizer
    from testbeds_sheets.grader.book import tokenize
    from testbeds_sheets.tasks import FAMILIES, generate_task, reference_workbook

    extra = ["=SUM('My S'!A1:B3)+LOG10(C5)", "=Sheet1!A1+1E3+A1", "=-1E+3+5%*Inputs!$B$4", "=A:A+Name1",
             '=IF(A1="B2",C3,D4)', "=Calc!#REF!+C3", "={1,2}+A1"]
    formulas = list(extra)
    for family in FAMILIES:
        wb = reference_workbook(generate_task(family, 0, 6))
        formulas += [c.value for ws in wb.worksheets for row in ws.iter_rows() for c in row
                     if isinstance(c.value, str) and c.value.startswith("=")]
    for f in formulas:
        assert [(t.value, t.type, t.subtype) for t in tokenize(f)] == [
            (t.value, t.type, t.subtype) for t in Tokenizer(f).items], f
