"""Workspaces: real .xlsx files under a root, validated transactions, recomputed values, bounded sizes."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook
from testbeds_serving import InvalidArgument, NotFound, UserError
from testbeds_sheets import workspace as workspace_module
from testbeds_sheets.engine.values import Evaluation
from testbeds_sheets.ops import AddSheet, DefineName, DeleteSheet, FreezePanes, SetStyle, WriteRange
from testbeds_sheets.workspace import EmbeddedEngine, Workspace, Workspaces, check_file_name, workspace_root


class CountingEngine(EmbeddedEngine):
    """The embedded engine, counting recalculations (to test the cache)."""

    def __init__(self) -> None:
        self.calls = 0

    def evaluate(self, wb, path) -> Evaluation:  # type: ignore[no-untyped-def]
        self.calls += 1
        return super().evaluate(wb, path)


def opened(tmp_path: Path, name: str = "model.xlsx") -> Workspace:
    ws, created = Workspaces(tmp_path).open(name)
    assert created
    ws.change(AddSheet(name="Inputs"))
    ws.change(WriteRange(sheet="Inputs", start="A1", rows=[["Price ($)", 12.5], ["Units", 40],
                                                            ["Revenue ($)", "=B1*B2"]]))
    return ws


def test_a_change_is_saved_as_a_real_xlsx_with_its_formulas(tmp_path: Path) -> None:
    ws = opened(tmp_path)
    book = load_workbook(tmp_path / "model.xlsx")
    assert book.sheetnames == ["Inputs"]
    assert book["Inputs"]["B3"].value == "=B1*B2" and book["Inputs"]["B1"].value == 12.5
    assert ws.file_bytes == (tmp_path / "model.xlsx").read_bytes()
    assert not list(tmp_path.glob(".*.tmp"))


def test_read_returns_recomputed_values_and_formulas_as_written(tmp_path: Path) -> None:
    ws = opened(tmp_path)
    view = ws.read("Inputs", "A3:B3")
    label, revenue = view.rows[0]
    assert label.value == "Revenue ($)" and label.formula is None
    assert revenue.value == pytest.approx(500.0) and revenue.formula == "=B1*B2"
    assert view.range == "A3:B3" and revenue.number_format is None


def test_a_newer_function_is_stored_with_its_xlfn_prefix_and_read_back_plain(tmp_path: Path) -> None:
    ws = opened(tmp_path)
    ws.change(WriteRange(sheet="Inputs", start="D1", rows=[["a", 1], ["b", 2], [None, '=XLOOKUP("b",D1:D2,E1:E2)']]))
    stored = load_workbook(tmp_path / "model.xlsx")["Inputs"]["E3"].value
    assert stored == '=_xlfn.XLOOKUP("b",D1:D2,E1:E2)'
    cell = ws.read("Inputs", "E3").rows[0][0]
    assert cell.formula == '=XLOOKUP("b",D1:D2,E1:E2)' and cell.value == 2


@pytest.mark.parametrize(("rows", "start", "sheet", "message"), [
    ([["=B1"]], "Z0", "Inputs", "cell 'Z0'"),
    ([["=SUM(C1:C5)"]], "C5", "Inputs", "own cell"),
    ([[" =B1*2"]], "C1", "Inputs", "formula stored as text"),
    ([["=[Other.xlsx]Sheet1!A1"]], "C1", "Inputs", "external links are not allowed"),
    ([['=WEBSERVICE("http://example.com")']], "C1", "Inputs", "WEBSERVICE"),
    ([[1]], "C1", "Nope", "no sheet 'Nope'"),
])
def test_a_refused_write_leaves_memory_and_file_unchanged(tmp_path: Path, rows: list, start: str, sheet: str,
                                                          message: str) -> None:
    ws = opened(tmp_path)
    before = (tmp_path / "model.xlsx").read_bytes()
    with pytest.raises(UserError) as error:
        ws.change(WriteRange(sheet=sheet, start=start, rows=[*rows, [5, 6]]))
    assert message.lower() in str(error.value).lower()
    assert (tmp_path / "model.xlsx").read_bytes() == before
    assert [[c.value for c in r] for r in ws.read("Inputs", "A1:C5").rows] == [
        ["Price ($)", 12.5, None], ["Units", 40, None], ["Revenue ($)", 500.0, None], [None] * 3, [None] * 3]


def test_a_change_that_fails_after_applying_is_rolled_back_in_memory_and_on_disk(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = opened(tmp_path)
    before = (tmp_path / "model.xlsx").read_bytes()
    monkeypatch.setattr(workspace_module, "MAX_FILE_BYTES", len(before) + 10)
    with pytest.raises(InvalidArgument, match="MB"):
        ws.change(WriteRange(sheet="Inputs", start="A10", rows=[[f"text {i}" * 20 for i in range(50)]] * 20))
    assert (tmp_path / "model.xlsx").read_bytes() == before
    assert ws.read("Inputs", "A10").rows[0][0].value is None
    assert ws.read("Inputs", "B3").rows[0][0].value == pytest.approx(500.0)


def test_the_evaluation_is_cached_across_reads_and_style_changes_and_dropped_by_writes(tmp_path: Path) -> None:
    engine = CountingEngine()
    places = Workspaces(tmp_path)
    places.engine = engine
    ws, _ = places.open("cached.xlsx")
    ws.change(AddSheet(name="Calc"))
    ws.change(WriteRange(sheet="Calc", start="A1", rows=[[2, "=A1*3"]]))
    ws.read("Calc", "A1:B1")
    ws.read("Calc", "B1")
    ws.change(SetStyle(sheet="Calc", range="A1", font_color="0000FF"))
    ws.change(FreezePanes(sheet="Calc", cell="B2"))
    assert ws.read("Calc", "B1").rows[0][0].value == 6 and engine.calls == 1
    ws.change(WriteRange(sheet="Calc", start="A1", rows=[[5]]))
    assert ws.read("Calc", "B1").rows[0][0].value == 15 and engine.calls == 2


def test_styles_are_read_back_with_colours_as_hex(tmp_path: Path) -> None:
    ws = opened(tmp_path)
    ws.change(SetStyle(sheet="Inputs", range="B1:B2", font_color="#0000ff", bold=True, fill="FFFF00",
                       number_format="#,##0.00", border="bottom", align="right"))
    cell = ws.read("Inputs", "B1", include_styles=True).rows[0][0]
    assert (cell.font_color, cell.bold, cell.fill, cell.number_format) == ("0000FF", True, "FFFF00", "#,##0.00")
    assert cell.align == "right" and cell.border == "bottom:thin"
    plain = ws.read("Inputs", "A1", include_styles=True).rows[0][0]
    assert plain.fill is None and plain.bold is False


def test_describe_separates_inputs_from_formulas_and_lists_names(tmp_path: Path) -> None:
    ws = opened(tmp_path)
    ws.change(DefineName(name="Revenue", ref="Inputs!B3"))
    description = ws.describe()
    sheet = description.sheets[0]
    assert sheet.used_range == "A1:B3" and sheet.inputs.runs == ["B1:B2"] and sheet.formulas.runs == ["B3"]
    assert sheet.labels == 3 and description.defined_names == {"Revenue": "Inputs!$B$3"}
    assert description.saved and description.file_name == "model.xlsx"


def test_recalculate_lists_error_values_and_circular_references_by_cell(tmp_path: Path) -> None:
    ws = opened(tmp_path)
    ws.change(WriteRange(sheet="Inputs", start="D1", rows=[["=B1/0", "=E2+1"], [None, "=E1+1"]]))
    report = ws.recalc_report()
    kinds = {issue.ref: issue.kind for issue in report.errors}
    assert kinds["Inputs!D1"] == "#DIV/0!"
    assert kinds["Inputs!E1"] == "circular" and kinds["Inputs!E2"] == "circular"
    assert report.counts["#DIV/0!"] == 1 and report.coverage < 1
    assert report.formula_cells == 4


def test_the_only_sheet_cannot_be_deleted_and_oversized_style_ranges_are_refused(tmp_path: Path) -> None:
    ws = opened(tmp_path)
    with pytest.raises(InvalidArgument, match="only sheet"):
        ws.change(DeleteSheet(sheet="Inputs"))
    with pytest.raises(InvalidArgument, match="20,000|20000"):
        ws.change(SetStyle(sheet="Inputs", range="A1:ZZ10000", bold=True))
    assert ws.wb.sheetnames == ["Inputs"] and ws.read("Inputs", "A1").rows[0][0].value == "Price ($)"


def test_a_task_workbook_has_no_sheets_and_no_file_until_the_first_sheet(tmp_path: Path) -> None:
    ws, _ = Workspaces(tmp_path).open("empty.xlsx")
    assert not ws.saved and ws.describe().sheets == [] and ws.recalc_report().formula_cells == 0
    with pytest.raises(NotFound):
        ws.change(WriteRange(sheet="Sheet1", rows=[[1]]))
    assert not (tmp_path / "empty.xlsx").exists()
    ws.change(AddSheet(name="Inputs"))
    assert (tmp_path / "empty.xlsx").is_file()


def test_an_existing_file_reopens_with_its_content_but_never_under_two_handles(tmp_path: Path) -> None:
    places = Workspaces(tmp_path)
    first, _ = places.open("shared.xlsx")
    first.change(AddSheet(name="Inputs"))
    first.change(WriteRange(sheet="Inputs", rows=[[3, "=A1*2"]]))
    with pytest.raises(InvalidArgument, match="already open"):
        places.open("shared.xlsx")
    places.release(first)
    again, created = places.open("shared.xlsx")
    assert not created and again.read("Inputs", "B1").rows[0][0].value == 6


def test_a_file_that_is_not_a_workbook_gets_a_clear_error_and_stays_openable_later(tmp_path: Path) -> None:
    (tmp_path / "broken.xlsx").write_text("not a zip")
    places = Workspaces(tmp_path)
    for _ in range(2):
        with pytest.raises(InvalidArgument, match="not a readable .xlsx"):
            places.open("broken.xlsx")


@pytest.mark.parametrize("name", ["../escape.xlsx", "a/b.xlsx", "/etc/passwd.xlsx", ".hidden.xlsx", "model.xls",
                                  "model.xlsx/..", "", " lead.xlsx", "con\x00.xlsx", "a" * 90 + ".xlsx"])
def test_file_names_with_folders_traversal_or_odd_characters_are_refused(name: str) -> None:
    with pytest.raises(InvalidArgument, match="folders are not allowed"):
        check_file_name(name)


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=30))
def test_every_accepted_file_name_stays_inside_the_root(stem: str) -> None:
    root = Path("/srv/root")
    name = stem + ".xlsx"
    try:
        check_file_name(name)
    except InvalidArgument:
        return
    assert (root / name).resolve().parent == root and "/" not in name and not name.startswith(".")


def test_the_root_comes_from_the_argument_then_the_environment(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TESTBEDS_SHEETS_ROOT", str(tmp_path / "from-env"))
    assert workspace_root() == (tmp_path / "from-env").resolve() and (tmp_path / "from-env").is_dir()
    assert workspace_root(tmp_path / "given") == (tmp_path / "given").resolve()


def test_define_name_and_freeze_panes_survive_a_reopen(tmp_path: Path) -> None:
    ws = opened(tmp_path)
    ws.change(DefineName(name="Revenue", ref="Inputs!B3"))
    ws.change(FreezePanes(sheet="Inputs", cell="B2"))
    book = load_workbook(tmp_path / "model.xlsx")
    assert book.defined_names["Revenue"].attr_text == "Inputs!$B$3" and book["Inputs"].freeze_panes == "B2"


def test_the_libreoffice_engine_recalculates_the_saved_file_or_is_refused_clearly(tmp_path: Path) -> None:
    from testbeds_sheets.engine.libreoffice import soffice_available

    if not soffice_available():
        with pytest.raises(InvalidArgument, match="soffice"):
            Workspaces(tmp_path, engine="libreoffice")
        return
    places = Workspaces(tmp_path, engine="libreoffice")
    try:
        ws, _ = places.open("lo.xlsx")
        ws.change(AddSheet(name="Inputs"))
        ws.change(WriteRange(sheet="Inputs", rows=[[100000, 0.25, "=A1*$B$1", "=A1/(B1-0.25)"]]))
        values = [c.value for c in ws.read("Inputs", "A1:D1").rows[0]]
        report = ws.recalc_report()
    finally:
        places.close()
    assert values == [100000, 0.25, 25000, "#DIV/0!"]
    assert report.engine == "libreoffice" and [(i.ref, i.kind) for i in report.errors] == [("Inputs!D1", "#DIV/0!")]


def test_a_box_border_outlines_the_range_and_leaves_inner_edges_alone(tmp_path: Path) -> None:
    ws = opened(tmp_path)
    ws.change(SetStyle(sheet="Inputs", range="B2:C3", border="box"))
    cells = ws.read("Inputs", "B2:C3", include_styles=True).rows
    assert set(cells[0][0].border.split()) == {"left:thin", "top:thin"}
    assert set(cells[1][1].border.split()) == {"right:thin", "bottom:thin"}
