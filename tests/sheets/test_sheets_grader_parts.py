"""Grader building blocks: font colour classes, number formats, locating inputs and outputs, the optional judge,
and grading through LibreOffice."""

from __future__ import annotations

import json

import pytest
from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.styles.colors import Color
from testbeds_sheets.engine.libreoffice import soffice_available
from testbeds_sheets.grader import (
    classify_font,
    classify_rgb,
    grade,
    locate_input,
    locate_output,
    parse_number_format,
    parse_verdict,
    theme_palette,
)
from testbeds_sheets.grader.book import Book
from testbeds_sheets.grader.colours import apply_tint
from testbeds_sheets.tasks import generate_task, reference_workbook
from testbeds_sheets.tasks.model import TaskInput, TaskOutput


def test_colours_are_classified_by_hue_whatever_their_encoding():
    assert classify_rgb("0000FF") == "blue"
    assert classify_rgb("1F497D") == "blue"
    assert classify_rgb("008000") == "green"
    assert classify_rgb("333333") == "black"
    assert classify_rgb("FF0000") == "other"
    assert classify_rgb("808080") == "other"
    assert classify_font(Font()) == "black"
    assert classify_font(Font(color=Color(indexed=12))) == "blue"  # the legacy palette's 0000FF
    assert classify_font(Font(color=Color(indexed=17))) == "green"
    assert classify_font(Font(color=Color(theme=1))) == "black"
    assert classify_font(Font(color=Color(theme=4))) == "blue"  # accent1 4472C4 in the Office theme
    assert classify_font(Font(color=Color(theme=9, tint=-0.25))) == "green"  # accent6 darker
    assert classify_font(Font(color=Color(theme=4, tint=0.8))) == "other"  # a pale wash, no longer a blue font


def test_tint_moves_lightness_toward_black_or_white():
    assert apply_tint("808080", -0.5) == "404040"
    assert apply_tint("000000", 1.0) == "FFFFFF"
    assert apply_tint("4472C4", 0.0) == "4472C4"


def test_a_loaded_theme_replaces_the_office_palette():
    xml = (b'<a:theme xmlns:a="x"><a:themeElements><a:clrScheme name="c">'
           b'<a:dk1><a:sysClr val="windowText" lastClr="101010"/></a:dk1><a:lt1><a:srgbClr val="FAFAFA"/></a:lt1>'
           b'<a:accent1><a:srgbClr val="00A000"/></a:accent1></a:clrScheme></a:themeElements></a:theme>')
    palette = theme_palette(xml)
    assert palette[0] == "FAFAFA" and palette[1] == "101010" and palette[4] == "00A000"
    assert classify_font(Font(color=Color(theme=4)), palette) == "green"
    assert theme_palette(None)[4] == "4472C4"


@pytest.mark.parametrize("text, percent, thousands, parens, currency, decimals", [
    ("General", False, False, False, False, -1),
    ("0.0%", True, False, False, False, 1),
    ("#,##0;(#,##0)", False, True, True, False, 0),
    ("#,##0.00_);[Red](#,##0.00)", False, True, True, False, 2),
    ('"$"#,##0', False, True, False, True, 0),
    ("[$$-409]#,##0.00", False, True, False, True, 2),
    ('0.0,,"m"', False, True, False, False, 1),
    ('0" %"', False, False, False, False, 0),  # a quoted % is text, not a percent format
    ("0", False, False, False, False, 0),
])
def test_number_formats_are_read_after_stripping_literals(text, percent, thousands, parens, currency, decimals):
    f = parse_number_format(text)
    assert (f.percent, f.thousands, f.negative_parentheses, f.currency, f.decimals) == (
        percent, thousands, parens, currency, decimals)


def test_dates_are_recognised_and_general_is_general():
    assert parse_number_format("yyyy-mm-dd").date
    assert not parse_number_format("#,##0").date
    assert parse_number_format(None).general


def _wb(rows: list[list]) -> Book:
    wb = Workbook()
    ws = wb.active
    ws.title = "Inputs"
    for r in rows:
        ws.append(r)
    return Book(wb)


def test_inputs_are_found_by_value_even_as_whole_percentages_and_by_label_when_mistyped():
    book = _wb([["WACC (%)", 9.5], ["Growth (%)", 0.031], ["Units", 1234], ["Tax rate (%)", 0.27]])
    wacc = TaskInput(id="wacc", label="WACC", value=0.095, unit="percent", cell="Inputs!B1")
    found = locate_input(book, wacc)
    assert (found.key, found.how, found.scale) == ("Inputs!B1", "value", 100.0)
    tax = TaskInput(id="tax", label="Tax rate", value=0.25, unit="percent", cell="Inputs!B4")
    found = locate_input(book, tax)
    assert (found.key, found.how) == ("Inputs!B4", "label")
    missing = TaskInput(id="capex", label="Capex", value=777.0, unit="currency", cell="Inputs!B9")
    assert not locate_input(book, missing).found


def test_outputs_are_found_by_defined_name_then_by_label():
    from openpyxl.workbook.defined_name import DefinedName

    wb = Workbook()
    ws = wb.active
    ws.title = "Outputs"
    ws.append(["Enterprise value ($)", 5000])
    ws.append(["Equity value ($)", 4000])
    wb.defined_names["EV"] = DefinedName("EV", attr_text="Outputs!$B$1")
    book = Book(wb)
    ev = TaskOutput(id="ev", label="Enterprise value", name="EV", unit="currency", cell="Outputs!B1", value=1.0)
    eq = TaskOutput(id="eq", label="Equity value", name="Equity", unit="currency", cell="Outputs!B2", value=1.0)
    assert (locate_output(book, ev).key, locate_output(book, ev).how) == ("Outputs!B1", "name")
    assert (locate_output(book, eq).key, locate_output(book, eq).how) == ("Outputs!B2", "label")


def _scripted(scores: dict[str, float]):
    prompts: list[str] = []

    def chat(prompt: str) -> str:
        prompts.append(prompt)
        verdicts = [{"criterion": c, "score": s, "reason": f"{c} judged"} for c, s in scores.items()]
        return "Here is my verdict:\n" + json.dumps({"verdicts": verdicts})

    chat.prompts = prompts  # type: ignore[attr-defined]
    return chat


def test_the_optional_judge_adds_one_check_per_judged_criterion():
    task = generate_task("revenue_buildup", 0, 3)
    chat = _scripted({"structure": 1.0, "presentation": 0.5})
    report = grade(task, reference_workbook(task), reference_workbook(task), judge=chat)
    assert len(chat.prompts) == 1 and "Inputs" in chat.prompts[0]
    assert report.check("judge:presentation").score == 0.5
    assert report.check("judge:structure").score == 1.0
    assert report.judge is not None and len(report.judge["verdicts"]) == 2
    assert report.final < 100.0
    plain = grade(task, reference_workbook(task), reference_workbook(task))
    assert plain.judge is None and plain.final == 100.0


def test_an_invalid_judge_reply_is_recorded_and_leaves_the_grade_alone():
    task = generate_task("revenue_buildup", 0, 3)
    report = grade(task, reference_workbook(task), reference_workbook(task), judge=lambda prompt: "no idea")
    assert report.final == 100.0
    assert "error" in report.judge
    with pytest.raises(ValueError, match="unknown criteria"):
        parse_verdict('{"verdicts": [{"criterion": "vibes", "score": 1, "reason": "x"}]}')
    with pytest.raises(ValueError, match="not a valid verdict"):
        parse_verdict('{"verdicts": [{"criterion": "structure", "score": 3, "reason": "x"}]}')


def test_perturbation_tells_a_computed_output_from_a_typed_one():
    task = generate_task("revenue_buildup", 0, 3)
    report = grade(task, reference_workbook(task), reference_workbook(task))
    linked = report.check("inputs_linked")
    assert linked.eligible > 0 and linked.score == 1.0


@pytest.mark.skipif(not soffice_available(), reason="LibreOffice is not installed")
def test_grading_through_libreoffice_agrees_with_the_embedded_engine(tmp_path):
    task = generate_task("revenue_buildup", 1, 4)
    path = tmp_path / "ref.xlsx"
    reference_workbook(task).save(path)
    report = grade(task, path, path, engine="libreoffice")
    assert report.engine == "libreoffice"
    assert report.final == 100.0
