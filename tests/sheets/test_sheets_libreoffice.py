"""LibreOffice as the reference engine: fresh values despite stale caches, Excel error codes, loops, skipped cells.

One soffice is shared by the module (each start costs about 1.5 s); the crash test restarts it.
"""

from __future__ import annotations

import os
import re
import signal
import zipfile
from collections.abc import Iterator
from pathlib import Path

import openpyxl
import pytest
from conftest import require_soffice
from testbeds_sheets.engine.libreoffice import (
    LibreOfficeEngine,
    LibreOfficeError,
    to_evaluation,
)


@pytest.fixture(scope="module")
def engine() -> Iterator[LibreOfficeEngine]:
    require_soffice()
    with LibreOfficeEngine() as running:
        yield running


def write_model(path: Path) -> Path:
    """Two sheets, absolute and mixed references, finance functions; openpyxl stores no cached values."""
    wb = openpyxl.Workbook()
    inputs = wb.active
    inputs.title = "Assumptions"
    inputs["A3"], inputs["B3"] = "Tax rate", 0.25
    inputs["A4"], inputs["B4"] = "Revenue", 100000
    inputs["A5"], inputs["B5"] = "Rate", 0.1
    for col, flow in zip("CDEFGH", (-1000, 300, 400, 500, 200, 100)):
        inputs[f"{col}7"] = flow
    calc = wb.create_sheet("Calc")
    calc["B1"] = "=Assumptions!$B$4*Assumptions!$B$3"
    calc["B2"] = "=Assumptions!B$4+Assumptions!$B4"
    calc["B3"] = "=Assumptions!C7+NPV(Assumptions!$B$5,Assumptions!D7:H7)"
    calc["B4"] = "=PMT(0.06/12,60,100000)"
    calc["B5"] = "=SUM(B1:B2)"
    calc["B6"] = "=B1>20000"
    calc["B7"] = '=IF(B5>0,"positive","negative")'
    wb.save(path)
    return path


def test_formulas_written_by_openpyxl_recalculate_to_the_right_numbers(engine: LibreOfficeEngine,
                                                                       tmp_path: Path) -> None:
    evaluation = engine.recalculate(write_model(tmp_path / "model.xlsx"))

    values = evaluation.values
    assert evaluation.engine == "libreoffice"
    assert values["Calc!B1"] == pytest.approx(25000.0)
    assert values["Calc!B2"] == pytest.approx(200000.0)
    flows = (-1000, 300, 400, 500, 200, 100)
    assert values["Calc!B3"] == pytest.approx(sum(f / 1.1**t for t, f in enumerate(flows)), rel=1e-12)
    assert values["Calc!B4"] == pytest.approx(-1933.28, abs=5e-3)
    assert values["Calc!B5"] == pytest.approx(225000.0)
    assert values["Calc!B6"] is True
    assert values["Calc!B7"] == "positive"
    # Constants are reported too, and only formula cells are listed as formulas.
    assert values["Assumptions!B3"] == 0.25
    assert values["Assumptions!A4"] == "Revenue"
    assert sorted(evaluation.formula_cells) == [f"Calc!B{row}" for row in range(1, 8)]
    assert evaluation.problems == {}
    assert evaluation.coverage == 1.0


def set_cached_input(xml: str, coordinate: str, old: str, new: str) -> str:
    """Rewrite one constant's <v> in sheet XML, leaving every formula's cached <v> as it was."""
    pattern = re.compile(rf'(<c r="{coordinate}"[^>]*>)<v>{re.escape(old)}</v>')
    edited, count = pattern.subn(rf"\g<1><v>{new}</v>", xml)
    assert count == 1, f"{coordinate} holding {old} not found in the sheet XML"
    return edited


def test_a_stale_cached_value_is_recomputed_after_an_input_is_edited_in_the_xml(engine: LibreOfficeEngine,
                                                                                tmp_path: Path) -> None:
    cached = tmp_path / "cached.xlsx"
    engine.recalculate_to(write_model(tmp_path / "model.xlsx"), cached)
    assert openpyxl.load_workbook(cached, data_only=True)["Calc"]["B1"].value == pytest.approx(25000.0)

    edited = tmp_path / "edited.xlsx"
    with zipfile.ZipFile(cached) as source, zipfile.ZipFile(edited, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                data = set_cached_input(data.decode("utf-8"), "B4", "100000", "300000").encode("utf-8")
            target.writestr(item, data)
    stale = openpyxl.load_workbook(edited, data_only=True)
    assert stale["Assumptions"]["B4"].value == 300000
    assert stale["Calc"]["B1"].value == pytest.approx(25000.0), "the edited copy should still carry the stale cache"

    fresh = engine.recalculate(edited).values
    assert fresh["Calc!B1"] == pytest.approx(75000.0)
    assert fresh["Calc!B2"] == pytest.approx(600000.0)
    assert fresh["Calc!B5"] == pytest.approx(675000.0)


def test_the_saved_copy_carries_fresh_cached_values_and_keeps_its_formulas(engine: LibreOfficeEngine,
                                                                          tmp_path: Path) -> None:
    out = tmp_path / "nested" / "recalculated.xlsx"
    evaluation = engine.recalculate_to(write_model(tmp_path / "model.xlsx"), out)

    cached = openpyxl.load_workbook(out, data_only=True)["Calc"]
    formulas = openpyxl.load_workbook(out)["Calc"]
    assert cached["B5"].value == pytest.approx(evaluation.values["Calc!B5"])
    assert formulas["B5"].value == "=SUM(B1:B2)"


def test_errors_come_back_as_excel_codes(engine: LibreOfficeEngine, tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws["A1"], ws["A2"] = 10, 0
    ws["B1"] = "=A1/A2"
    ws["B2"] = "=FOOBAR(1)"
    ws["B3"] = "=NA()"
    ws["B4"] = '="a"+1'
    ws["B5"] = "=B1+1"
    ws["B6"] = "=IFERROR(A1/A2,0)"
    path = tmp_path / "errors.xlsx"
    wb.save(path)

    evaluation = engine.recalculate(path)

    assert {k: evaluation.values[k] for k in ("Sheet!B1", "Sheet!B2", "Sheet!B3", "Sheet!B4", "Sheet!B5")} == {
        "Sheet!B1": "#DIV/0!", "Sheet!B2": "#NAME?", "Sheet!B3": "#N/A", "Sheet!B4": "#VALUE!", "Sheet!B5": "#DIV/0!"}
    assert evaluation.values["Sheet!B6"] == 0.0
    assert evaluation.problems == {}


def test_a_two_cell_loop_and_a_self_reference_are_problems_not_a_hang(engine: LibreOfficeEngine,
                                                                      tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws["A1"] = "=B1+1"
    ws["B1"] = "=A1+1"
    ws["C1"] = "=C1*2"
    ws["D1"] = 5
    ws["E1"] = "=D1*2"
    path = tmp_path / "loop.xlsx"
    wb.save(path)

    evaluation = engine.recalculate(path)

    assert {key: p.kind for key, p in evaluation.problems.items()} == {
        "Sheet!A1": "circular", "Sheet!B1": "circular", "Sheet!C1": "circular"}
    assert "Sheet!A1" not in evaluation.values
    assert evaluation.values["Sheet!E1"] == 10.0
    assert evaluation.coverage == pytest.approx(1 / 4)


def test_functions_this_libreoffice_lacks_are_skipped_with_the_cells_that_read_them(engine: LibreOfficeEngine,
                                                                                    tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Data"
    for row, (key, value) in enumerate((("a", 1), ("b", 2), ("c", 3)), start=1):
        ws[f"A{row}"], ws[f"B{row}"] = key, value
    ws["D1"] = '=_xlfn.XLOOKUP("b",A1:A3,B1:B3)'
    ws["D2"] = '=IFERROR(_xlfn.XMATCH("c",A1:A3),0)'
    ws["D3"] = "=_xlfn.LET(_xlpm.x,2,_xlpm.x*B1)"
    ws["D4"] = '=VLOOKUP("c",A1:B3,2,FALSE)'
    out = wb.create_sheet("Out")
    out["A1"] = "=Data!D1*10"
    out["A2"] = "=Data!D4*10"
    path = tmp_path / "late.xlsx"
    wb.save(path)

    evaluation = engine.recalculate(path)

    # XLOOKUP, XMATCH and LET arrived after 7.4; a newer LibreOffice evaluates them and skips nothing.
    if "Data!D1" in evaluation.problems:
        assert {key: p.kind for key, p in evaluation.problems.items()} == {
            "Data!D1": "skipped", "Data!D2": "skipped", "Data!D3": "skipped", "Out!A1": "skipped"}
        assert "XLOOKUP" in evaluation.problems["Data!D1"].message
        assert not set(evaluation.problems) & set(evaluation.values)
    else:
        assert evaluation.values["Data!D1"] == 2.0
    assert evaluation.values["Out!A2"] == 30.0
    assert len(evaluation.formula_cells) == 6


def test_a_file_libreoffice_cannot_open_raises_and_the_engine_keeps_working(engine: LibreOfficeEngine,
                                                                           tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        engine.recalculate(tmp_path / "absent.xlsx")
    garbage = tmp_path / "garbage.xlsx"
    garbage.write_bytes(b"PK\x03\x04 this is not a workbook")
    with pytest.raises(LibreOfficeError, match="garbage.xlsx"):
        engine.recalculate(garbage)
    assert engine.recalculate(write_model(tmp_path / "model.xlsx")).values["Calc!B1"] == pytest.approx(25000.0)


def live_members(group: int) -> list[int]:
    """Processes of a process group that still run (soffice leaves gpg zombies that only init may reap)."""
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group and fields[0] != "Z":
            alive.append(int(stat.parent.name))
    return alive


def test_a_crashed_soffice_is_replaced_and_closing_removes_its_profile(engine: LibreOfficeEngine,
                                                                       tmp_path: Path) -> None:
    model = write_model(tmp_path / "model.xlsx")
    engine.start()
    first_pid, first_profile = engine.soffice_pid, engine.profile_dir
    assert first_pid is not None and first_profile is not None and first_profile.is_dir()
    os.killpg(first_pid, signal.SIGKILL)  # the group this engine started: launcher and soffice.bin

    try:
        evaluation = engine.recalculate(model)
    except LibreOfficeError as exc:
        assert "soffice exited" in str(exc)
        evaluation = engine.recalculate(model)  # the crash may surface once; the next call starts afresh
    assert evaluation.values["Calc!B1"] == pytest.approx(25000.0)
    second_pid, second_profile = engine.soffice_pid, engine.profile_dir
    assert second_pid not in (None, first_pid)
    assert not first_profile.exists()

    engine.close()
    assert not engine.running and engine.profile_dir is None
    assert second_profile is not None and not second_profile.exists()
    assert live_members(second_pid) == []
    # A closed engine starts again on demand.
    assert engine.recalculate(model).values["Calc!B2"] == pytest.approx(200000.0)


def test_raw_worker_facts_map_to_codes_and_problems() -> None:
    evaluation = to_evaluation({
        "cells": [["S!A1", 1.0], ["S!A2", "x"]],
        "formulas": ["S!B1", "S!B2", "S!B3", "S!B4", "S!B5"],
        "errors": [["S!B1", 532], ["S!B2", 522], ["S!B3", 523], ["S!B4", 508], ["S!B5", 540]],
        "skipped": [["S!B6", "uses XLOOKUP, which this LibreOffice lacks"]],
    })
    assert evaluation.values == {"S!A1": 1.0, "S!A2": "x", "S!B1": "#DIV/0!", "S!B3": "#NUM!"}
    assert {k: p.kind for k, p in evaluation.problems.items()} == {
        "S!B2": "circular", "S!B4": "parse_error", "S!B5": "engine_error", "S!B6": "skipped"}
