"""The grader's shortcuts give what the plain computations give: reference counts worked out on demand, inputs found
through a value index, row labels and operand stacks cached per row and per formula shape, formulas parsed on
first use, and the garbage collector left as grading found it."""

from __future__ import annotations

import gc

from openpyxl import Workbook
from openpyxl.formula.tokenizer import Token, Tokenizer
from testbeds_sheets.engine.evaluator import evaluate_workbook
from testbeds_sheets.grader import grade
from testbeds_sheets.grader.book import Book, tokenize_with_plan
from testbeds_sheets.grader.format_checks import FORMAT_CHECKS, format_checks
from testbeds_sheets.grader.formula_checks import FORMULA_CHECKS, computed_cells, formula_checks, input_keys, reads_any
from testbeds_sheets.grader.grade import ReferenceCounts
from testbeds_sheets.grader.locate import close, locate_input, reference_locations
from testbeds_sheets.grader.report import against_reference, make_check
from testbeds_sheets.tasks import FAMILIES, generate_task, reference_workbook
from testbeds_sheets.tasks.model import TaskInput


def _reference(family: str, seed: int = 0, difficulty: int = 6):
    task = generate_task(family, seed, difficulty)
    wb = reference_workbook(task)
    book = Book(wb)
    inputs, outputs = reference_locations(book, task)
    return task, wb, book, inputs, outputs


def test_reference_counts_on_demand_equal_every_check_run_on_the_reference():
    for family in FAMILIES[:4]:
        task, wb, book, inputs, outputs = _reference(family)
        ev = evaluate_workbook(wb)
        eager = {c.name: c.eligible for c in formula_checks(book, ev, outputs, inputs)}
        eager |= {c.name: c.eligible for c in format_checks(book, ev, task, inputs, outputs)}
        counts = ReferenceCounts(task, book, ev, inputs, outputs)
        names = [n for n, _ in FORMULA_CHECKS] + list(FORMAT_CHECKS)
        assert {n: counts.get(n) for n in reversed(names)} == eager, family
        assert counts.get("inputs_linked", 0) == 0  # not a Formula or Format check: the default


def test_reference_counts_of_a_workbook_that_computes_nothing_are_the_shells():
    wb = Workbook()
    ws = wb.active
    ws.title = "Inputs"
    ws.append(["Rate", 0.05])
    ws.append(["Answer", "=123.45"])
    task, *_ = _reference("revenue_buildup")
    book = Book(wb)
    inputs = {"r": _located("r", "Inputs!B1")}
    counts = ReferenceCounts(task, book, evaluate_workbook(wb), inputs, {})
    assert all(counts.get(n) == 1 for n, _ in FORMULA_CHECKS)


def _located(id_: str, key: str):
    from testbeds_sheets.grader.locate import Located

    return Located(id_, key, "reference")


class _Asked(dict):
    def __init__(self) -> None:
        super().__init__()
        self.asked: list[str] = []

    def get(self, name, default=0, /):
        self.asked.append(name)
        return 5


def test_the_reference_is_asked_only_about_checks_the_attempt_has_nothing_eligible_for():
    busy = make_check("formula_length", "formula_readability", 3, [], "3/3 fine")
    vacuous = make_check("row_consistency", "formula_readability", 0, [], "nothing to check: copied rows")
    failed = make_check("no_errors", "edge_cases", 0, ["(workbook)"], "nothing computed", score=0.0)
    fine_empty = make_check("inputs_read_no_workings", "structure", 0, [], "")
    counts = _Asked()
    out = against_reference([busy, vacuous, failed, fine_empty], counts)
    assert counts.asked == ["row_consistency"]
    assert [c.score for c in out] == [1.0, 0.0, 0.0, 1.0]


def test_an_honest_attempt_leaves_the_references_formulas_unparsed():
    task, wb, book, inputs, outputs = _reference("dcf")
    attempt = Book(reference_workbook(task))
    ev = evaluate_workbook(wb)
    counts = ReferenceCounts(task, book, ev, inputs, outputs)
    att_inputs, att_outputs = reference_locations(attempt, task)
    checks = formula_checks(attempt, evaluate_workbook(attempt.wb), att_outputs, att_inputs)
    against_reference([c for c in checks if c.eligible], counts)
    assert all(c._pending is not None for c in book.formula_cells)
    assert book.formula_cells[0].tokens  # parsed on first use
    assert book.formula_cells[0]._pending is None


def test_inputs_found_through_the_value_index_match_a_scan_of_every_cell():
    wb = Workbook()
    ws = wb.active
    ws.title = "Inputs"
    target = 0.0725
    near = [target, target * (1 + 0.9e-6), target * (1 - 0.9e-6), target * (1 + 1.1e-6), 7.25, 7.2500071, 7.26,
            float("nan"), float("inf"), 1e-10, -target, 0.0]
    for k, v in enumerate(near):
        ws.append([f"Item {k}", v])
    ws.append(["Rate (%)", target])
    book = Book(wb)
    for value, unit in [(target, "percent"), (target, "ratio"), (7.25, "currency"), (0.0, "count"),
                        (1e-10, "count"), (3.0, "count")]:
        inp = TaskInput(id="x", label="Rate", value=value, unit=unit, cell="Inputs!B1")
        scales = (1.0, 100.0) if unit == "percent" else (1.0,)
        scanned = {(c.key, s) for c in book.cells.values() if c.is_number for s in scales
                   if close(float(c.raw), value * s)}
        found = locate_input(book, inp)
        if scanned:
            assert found.how == "value" and (found.key, found.scale) in scanned, (value, unit)
        else:
            assert found.how != "value"
    inp = TaskInput(id="x", label="Rate", value=target, unit="percent", cell="Inputs!B1")
    assert locate_input(book, inp).key == "Inputs!B13"  # the labelled one wins among the close values


def test_row_labels_are_the_nearest_text_to_the_left():
    wb = Workbook()
    ws = wb.active
    ws.append(["Revenue", "  ", 1, "=A1", "mid", 2, 3])
    ws.append([None, None, 5])
    book = Book(wb)
    assert [book.label_of(book.at("Sheet", 1, c)) for c in (3, 4, 6, 7)] == ["Revenue", "Revenue", "mid", "mid"]
    assert book.label_of(book.at("Sheet", 2, 3)) is None


def _plain_plan(tokens: list[Token]) -> list[tuple[int, tuple]]:
    plan, stack = [], []
    for i, t in enumerate(tokens):
        if t.type == Token.FUNC and t.subtype == Token.OPEN:
            stack.append([t.value[:-1].upper(), 0])
        elif t.type == Token.PAREN and t.subtype == Token.OPEN:
            stack.append(["(", 0])
        elif t.type in (Token.FUNC, Token.PAREN) and t.subtype == Token.CLOSE:
            if stack:
                stack.pop()
        elif t.type == Token.SEP and t.subtype == Token.ARG and stack:
            stack[-1][1] += 1
        elif t.type == Token.OPERAND:
            plan.append((i, tuple((f, a) for f, a in stack if f != "(")))
    return plan


def test_a_shapes_cached_operand_plan_fits_every_formula_of_that_shape():
    formulas = ["=ROUND(SUM(B2:C2)*D2,2)", "=ROUND(SUM(B3:C3)*D3,2)", "=IF(A1>0,VLOOKUP(A1,$F$1:$G$9,2,0),0)",
                "=IF(A2>0,VLOOKUP(A2,$F$1:$G$9,2,0),0)", '=IF(A1="x",NPV(B1,C1:H1),"-")', "=Rate*(1+Growth)"]
    for family in FAMILIES[:3]:
        wb = reference_workbook(generate_task(family, 1, 8))
        formulas += [c.value for ws in wb.worksheets for row in ws.iter_rows() for c in row
                     if isinstance(c.value, str) and c.value.startswith("=")]
    for f in formulas:
        tokens, plan = tokenize_with_plan(f)
        assert plan == _plain_plan(Tokenizer(f).items), f
        assert [t.value for t in tokens] == [t.value for t in Tokenizer(f).items], f


def test_a_formula_read_directly_by_none_means_an_empty_closure():
    for family in FAMILIES[:3]:
        _, _, book, inputs, _ = _reference(family)
        keys = input_keys(inputs)
        assert reads_any(book, keys) == bool(computed_cells(book, keys))
        assert not reads_any(book, {"Nowhere!Z999"})


def test_grading_leaves_the_garbage_collector_as_it_found_it():
    task = generate_task("npv_irr", 0, 2)
    assert gc.isenabled()
    grade(task, reference_workbook(task), reference_workbook(task))
    assert gc.isenabled()
    gc.disable()
    try:
        grade(task, reference_workbook(task), reference_workbook(task))
        assert not gc.isenabled()
    finally:
        gc.enable()
