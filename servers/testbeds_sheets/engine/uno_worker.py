"""Recalculate workbooks in a running LibreOffice over UNO; speaks JSON lines on stdin/stdout.

Runs under the *system* python3 (the one with `python3-uno`), never the project's venv, so it imports only the
standard library and `uno`. It is started by `testbeds_sheets.engine.libreoffice` as

    /usr/bin/python3 uno_worker.py --pipe NAME [--connect-timeout 30] [--remove-on-orphan DIR]

while that module starts soffice with `--accept=pipe,name=NAME;urp;` at the same moment (both start-ups overlap).
If stdin closes without a quit request (the parent died), the worker terminates soffice and deletes DIR.
Protocol: one JSON object per line. First line out: {"ready": true} or {"ready": false, "error": ...}.
Requests: {"op": "recalc", "path": ..., "out": null | path}, {"op": "quit"}. Each request gets one response line:
{"ok": true, "cells": [[key, value], ...], "formulas": [key, ...], "errors": [[key, lo_error_number], ...],
"skipped": [[key, reason], ...], "timings": {...}} or {"ok": false, "error": message}. Keys are 'Sheet!A1'.
Values are raw facts; the caller maps LibreOffice error numbers to Excel codes.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import time
import traceback

import uno
from com.sun.star.beans import PropertyValue
from com.sun.star.connection import NoConnectException

CELL_FLAGS = "com.sun.star.sheet.CellFlags."
CONTENT_FLAGS = 0
FORMULA_FLAG = 0
ERROR_RESULT = 0
LOGICAL_TYPE = 0

# Excel stores functions newer than 2007 as `_xlfn.NAME` (also `_xlws.` and `_xlpm.` for LET/LAMBDA parameters);
# LibreOffice drops the prefix for every function it knows, so a prefix left in its formula text names a function
# this LibreOffice lacks (XLOOKUP, XMATCH, LET in 7.4). Unprefixed names of such functions are caught too.
MISSING_FUNCTION = re.compile(r"_xl(?:fn|ws|pm)\.([A-Za-z0-9_.]+)|(?<![A-Za-z0-9_.])(XLOOKUP|XMATCH|LET|LAMBDA)\s*\(",
                              re.IGNORECASE)
NAME_ERROR = 525
# A distinct number written over a skipped cell to find which other cells only failed because of it.
PROBE_VALUE = 1.0


def _column_letters(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _prop(name: str, value: object) -> PropertyValue:
    item = PropertyValue()
    item.Name = name
    item.Value = value
    return item


def _cells_of(ranges) -> list[tuple[int, int]]:
    """(column, row) of every cell in a SheetCellRanges object."""
    out = []
    for address in ranges.getRangeAddresses():
        for row in range(address.StartRow, address.EndRow + 1):
            for col in range(address.StartColumn, address.EndColumn + 1):
                out.append((col, row))
    return out


class Worker:
    def __init__(self, pipe: str, connect_timeout: float) -> None:
        local = uno.getComponentContext()
        resolver = local.ServiceManager.createInstanceWithContext("com.sun.star.bridge.UnoUrlResolver", local)
        deadline = time.monotonic() + connect_timeout
        while True:
            try:
                self.context = resolver.resolve(f"uno:pipe,name={pipe};urp;StarOffice.ComponentContext")
                break
            except NoConnectException:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"soffice did not accept a UNO connection on pipe {pipe!r} "
                                       f"within {connect_timeout:.0f} s") from None
                time.sleep(0.03)
        self.desktop = self.context.ServiceManager.createInstanceWithContext("com.sun.star.frame.Desktop",
                                                                             self.context)

    def recalc(self, path: str, out: str | None) -> dict:
        began = time.perf_counter()
        url = uno.systemPathToFileUrl(os.path.abspath(path))
        # ReadOnly avoids a lock file beside the input; macros and external links never run.
        props = (_prop("Hidden", True), _prop("ReadOnly", True), _prop("MacroExecutionMode", 0),
                 _prop("UpdateDocMode", 0))
        doc = self.desktop.loadComponentFromURL(url, "_blank", 0, props)
        if doc is None:
            raise ValueError(f"LibreOffice could not open {path}")
        try:
            if not hasattr(doc, "calculateAll"):
                raise ValueError(f"{path} is not a spreadsheet")
            # Excel files keep each cached <v> on load; a hard recalculation discards every one of them.
            loaded = time.perf_counter()
            doc.calculateAll()
            calculated = time.perf_counter()
            if out:
                doc.storeToURL(uno.systemPathToFileUrl(os.path.abspath(out)),
                               (_prop("FilterName", "Calc MS Excel 2007 XML"),))
            stored = time.perf_counter()
            result = self._read(doc)
            result["timings"] = {"load": loaded - began, "calculate": calculated - loaded, "store": stored - calculated,
                                 "read": time.perf_counter() - stored}
            return result
        finally:
            doc.close(True)

    def _read(self, doc) -> dict:
        formats = doc.NumberFormats
        logical_by_format: dict[int, bool] = {}
        cells: list[list] = []
        formulas: list[str] = []
        errors: list[list] = []
        skipped: list[list] = []
        name_errors: dict[str, tuple[object, int, int]] = {}
        direct_skips: list[tuple[object, int, int]] = []
        sheets = doc.Sheets
        for index in range(sheets.getCount()):
            sheet = sheets.getByIndex(index)
            name = sheet.Name
            logical: set[tuple[int, int]] = set()
            unique_formats = sheet.getUniqueCellFormatRanges()
            for i in range(unique_formats.getCount()):
                ranges = unique_formats.getByIndex(i)
                key = ranges.NumberFormat
                if key not in logical_by_format:
                    logical_by_format[key] = bool(formats.getByKey(key).Type & LOGICAL_TYPE)
                if logical_by_format[key]:
                    logical.update(_cells_of(ranges.queryContentCells(CONTENT_FLAGS)))
            formula_positions = set(_cells_of(sheet.queryContentCells(FORMULA_FLAG)))
            error_positions = set(_cells_of(sheet.queryFormulaCells(ERROR_RESULT)))
            missing_positions = self._missing_function_cells(sheet) if formula_positions else set()
            for address in sheet.queryContentCells(CONTENT_FLAGS).getRangeAddresses():
                col0, row0 = address.StartColumn, address.StartRow
                col1, row1 = address.EndColumn, address.EndRow
                data = sheet.getCellRangeByPosition(col0, row0, col1, row1).getDataArray()
                letters = [f"{name}!{_column_letters(c)}" for c in range(col0, col1 + 1)]
                for dr, row in enumerate(data):
                    r = row0 + dr
                    number = str(r + 1)
                    for dc, value in enumerate(row):
                        c = col0 + dc
                        key = letters[dc] + number
                        is_formula = (c, r) in formula_positions
                        if (c, r) in logical and isinstance(value, float):
                            value = value != 0.0
                            # Calc has no boolean cell: it imports a TRUE constant as the formula =TRUE().
                            if is_formula and sheet.getCellByPosition(c, r).getFormula().upper() in ("=TRUE()",
                                                                                                     "=FALSE()"):
                                is_formula = False
                        if is_formula:
                            formulas.append(key)
                            if (c, r) in missing_positions:
                                found = MISSING_FUNCTION.search(sheet.getCellByPosition(c, r).getFormula())
                                function = (found.group(1) or found.group(2)).upper() if found else "a function"
                                skipped.append([key, f"uses {function}, which this LibreOffice lacks"])
                                direct_skips.append((sheet, c, r))
                                continue
                        if (c, r) in error_positions:
                            code = sheet.getCellByPosition(c, r).getError()
                            errors.append([key, code])
                            if code == NAME_ERROR:
                                name_errors[key] = (sheet, c, r)
                            continue
                        cells.append([key, value])
        if direct_skips and name_errors:
            skipped.extend(self._downstream_of(doc, direct_skips, name_errors))
            downstream = {key for key, _ in skipped}
            errors = [e for e in errors if e[0] not in downstream]
        return {"ok": True, "cells": cells, "formulas": formulas, "errors": errors, "skipped": skipped}

    @staticmethod
    def _missing_function_cells(sheet) -> set[tuple[int, int]]:
        """Formula cells naming a function this LibreOffice lacks, found by one regex search over formula text."""
        descriptor = sheet.createSearchDescriptor()
        descriptor.SearchString = MISSING_FUNCTION.pattern
        descriptor.SearchRegularExpression = True
        descriptor.SearchCaseSensitive = False
        descriptor.setPropertyValue("SearchType", 0)  # 0: search formulas, not displayed values
        found = sheet.findAll(descriptor)
        return set(_cells_of(found)) if found is not None else set()

    def _downstream_of(self, doc, direct_skips, name_errors) -> list[list]:
        """#NAME? cells that only fail because they read a skipped cell: they lose it once those hold a number.

        Formula dependency queries in Calc stay on one sheet, so probe instead: write a number over every skipped
        cell (the document is discarded afterwards, and any copy was saved before), recalculate, and see which
        #NAME? errors disappear.
        """
        for sheet, c, r in direct_skips:
            sheet.getCellByPosition(c, r).setValue(PROBE_VALUE)
        doc.calculateAll()
        found = []
        for key, (sheet, c, r) in name_errors.items():
            if sheet.getCellByPosition(c, r).getError() != NAME_ERROR:
                found.append([key, "depends on a function this LibreOffice lacks"])
        return found

    def quit(self) -> None:
        try:
            self.desktop.terminate()
        except Exception:  # noqa: BLE001 - soffice closing the bridge while terminating is the normal outcome
            pass


def _init_constants() -> None:
    global CONTENT_FLAGS, FORMULA_FLAG, ERROR_RESULT, LOGICAL_TYPE
    get = uno.getConstantByName
    FORMULA_FLAG = get(CELL_FLAGS + "FORMULA")
    CONTENT_FLAGS = get(CELL_FLAGS + "VALUE") | get(CELL_FLAGS + "DATETIME") | get(CELL_FLAGS + "STRING") | FORMULA_FLAG
    ERROR_RESULT = get("com.sun.star.sheet.FormulaResult.ERROR")
    LOGICAL_TYPE = get("com.sun.star.util.NumberFormat.LOGICAL")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipe", required=True)
    parser.add_argument("--connect-timeout", type=float, default=30.0)
    parser.add_argument("--remove-on-orphan", default="", help="directory to delete if the parent disappears")
    args = parser.parse_args()
    # The protocol owns the real stdout; anything else printed (by UNO or by us) goes to stderr.
    channel = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)

    def send(message: dict) -> None:
        channel.write(json.dumps(message) + "\n")
        channel.flush()

    try:
        _init_constants()
        worker = Worker(args.pipe, args.connect_timeout)
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which raises a clear error
        send({"ready": False, "error": f"{type(exc).__name__}: {exc}"})
        return 1
    send({"ready": True})
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            request = json.loads(line)
            op = request.get("op")
            if op == "quit":
                worker.quit()
                send({"ok": True})
                return 0
            if op != "recalc":
                raise ValueError(f"unknown op {op!r}")
            send(worker.recalc(request["path"], request.get("out")))
        except Exception as exc:  # noqa: BLE001 - one bad workbook must not end the worker
            traceback.print_exc(file=sys.stderr)
            send({"ok": False, "error": f"{type(exc).__name__}: {str(exc)[:400]}"})
    # stdin closed: the parent is gone, so take soffice down with us, then its profile once soffice has let go.
    worker.quit()
    if args.remove_on_orphan:
        time.sleep(1.0)
        shutil.rmtree(args.remove_on_orphan, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
