"""The testbeds-sheets MCP server: workspace tools, clear errors without side effects, tasks end to end, the
evaluator face, and the stdio and HTTP transports."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, MCPError
from openpyxl import load_workbook
from testbeds_serving import ServeOptions
from testbeds_serving.testing import http_client, serve_http, stdio_client
from testbeds_sheets.calls import TOOL_OF_OP, plan_to_calls
from testbeds_sheets.ops import (
    AddSheet,
    DefineName,
    DeleteSheet,
    FreezePanes,
    RenameSheet,
    SetColumnWidth,
    SetStyle,
    WorkbookPlan,
    WriteRange,
)
from testbeds_sheets.server import build
from testbeds_sheets.tasks import FAMILIES, generate_task, reference_plan

pytestmark = pytest.mark.anyio
FAMILY = FAMILIES[0]


async def call(client: Client, tool: str, **args: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, args)
    assert not result.is_error, result.content
    return result.structured_content


async def error(client: Client, tool: str, **args: Any) -> str:
    result = await client.call_tool(tool, args)
    assert result.is_error, result.structured_content
    return result.content[0].text


async def model_book(client: Client, name: str = "model.xlsx") -> str:
    handle = (await call(client, "open_workspace", file_name=name))["handle"]
    await call(client, "add_sheet", handle=handle, name="Inputs")
    await call(client, "write_range", handle=handle, sheet="Inputs", start="A1",
               rows=[["Price ($)", 12.5], ["Units", 40], ["Revenue ($)", "=B1*B2"]])
    return handle


async def test_a_block_write_returns_the_recomputed_values_of_what_was_written(tmp_path: Path) -> None:
    async with Client(build(ServeOptions(), root=tmp_path)) as client:
        handle = await model_book(client)
        written = await call(client, "write_range", handle=handle, sheet="Inputs", start="C1",
                             rows=[["=B1*2", "=B3/B2"], ["=SUM(B1:B2)"]])
        read = await call(client, "read_range", handle=handle, sheet="Inputs", range="A3:B3", include_styles=True)
    assert written["range"] == "C1:D2" and written["cells_written"] == 3
    assert [[c["value"] for c in row] for row in written["rows"]] == [[25.0, 12.5], [52.5, None]]
    assert written["rows"][0][0]["formula"] == "=B1*2"
    revenue = read["rows"][0][1]
    assert revenue["value"] == 500.0 and revenue["formula"] == "=B1*B2" and revenue["font_color"] == "theme:1"


@pytest.mark.parametrize(("tool", "args", "message"), [
    ("write_range", {"sheet": "Inputs", "start": "Z0", "rows": [[1]]}, "cell 'Z0'"),
    ("write_range", {"sheet": "Inputs", "start": "B5", "rows": [["=SUM(B1:B5)"]]}, "own cell"),
    ("write_range", {"sheet": "Inputs", "start": "B5", "rows": [[" =B1*B2"]]}, "formula stored as text"),
    ("write_range", {"sheet": "Inputs", "start": "B5", "rows": [["='C:\\[x.xlsx]Data'!A1"]]}, "external links"),
    ("write_range", {"sheet": "Inputs", "start": "B5", "rows": [['=WEBSERVICE("http://x")']]}, "WEBSERVICE"),
    ("write_range", {"sheet": "Nope", "start": "B5", "rows": [[1]]}, "no sheet 'Nope'"),
    ("write_range", {"sheet": "Inputs", "start": "B5", "rows": []}, "rows"),
    ("read_range", {"sheet": "Nope", "range": "A1"}, "no sheet 'Nope'"),
    ("read_range", {"sheet": "Inputs", "range": "A1:ZZ9999"}, "at most"),
    ("set_style", {"sheet": "Inputs", "range": "B1", "font_color": "blue"}, "font_color"),
    ("set_column_width", {"sheet": "Inputs", "columns": "1:3", "width": 12}, "column letters"),
    ("define_name", {"name": "TAX2024", "ref": "Inputs!B1"}, "look like a cell"),
    ("rename_sheet", {"sheet": "Inputs", "new_name": "a/b"}, "not allowed"),
    ("delete_sheet", {"sheet": "Inputs"}, "only sheet"),
])
async def test_bad_calls_get_clear_errors_and_leave_the_workbook_unchanged(tmp_path: Path, tool: str, args: dict,
                                                                           message: str) -> None:
    async with Client(build(ServeOptions(), root=tmp_path)) as client:
        handle = await model_book(client)
        before = (tmp_path / "model.xlsx").read_bytes()
        text = await error(client, tool, handle=handle, **args)
        after = await call(client, "read_range", handle=handle, sheet="Inputs", range="A1:C5")
        description = await call(client, "describe_workbook", handle=handle)
    assert message.lower() in text.lower() and "internal error" not in text
    assert (tmp_path / "model.xlsx").read_bytes() == before
    assert [[c["value"] for c in row] for row in after["rows"]][:3] == [
        ["Price ($)", 12.5, None], ["Units", 40, None], ["Revenue ($)", 500.0, None]]
    assert [s["name"] for s in description["sheets"]] == ["Inputs"] and description["defined_names"] == {}


async def test_unknown_handles_and_path_traversal_get_clear_errors(tmp_path: Path) -> None:
    async with Client(build(ServeOptions(), root=tmp_path / "root")) as client:
        unknown = await error(client, "describe_workbook", handle="not-a-handle")
        traversal = await error(client, "open_workspace", file_name="../outside.xlsx")
        absolute = await error(client, "open_workspace", file_name=str(tmp_path / "x.xlsx"))
        family = await error(client, "start_task", family="astrology", seed=0, difficulty=2)
    assert "unknown workspace handle" in unknown and "start_task" in unknown
    assert "folders are not allowed" in traversal and "folders are not allowed" in absolute
    assert not (tmp_path / "outside.xlsx").exists() and list((tmp_path / "root").iterdir()) == []
    assert "unknown family 'astrology'" in family and FAMILY in family


async def test_xlookup_is_stored_with_its_xlfn_prefix_and_read_back_plain(tmp_path: Path) -> None:
    async with Client(build(ServeOptions(), root=tmp_path)) as client:
        handle = await model_book(client)
        written = await call(client, "write_range", handle=handle, sheet="Inputs", start="D1",
                             rows=[["=XLOOKUP(\"Units\",A1:A3,B1:B3)", "=IFS(B1>10,1,TRUE,2)"]])
    stored = load_workbook(tmp_path / "model.xlsx")["Inputs"]
    assert stored["D1"].value == '=_xlfn.XLOOKUP("Units",A1:A3,B1:B3)' and stored["E1"].value.startswith("=_xlfn.IFS(")
    assert [c["formula"] for c in written["rows"][0]] == ['=XLOOKUP("Units",A1:A3,B1:B3)', "=IFS(B1>10,1,TRUE,2)"]
    assert [c["value"] for c in written["rows"][0]] == [40, 1]


async def test_recalculate_reports_errors_and_cycles_by_cell(tmp_path: Path) -> None:
    async with Client(build(ServeOptions(), root=tmp_path)) as client:
        handle = await model_book(client)
        await call(client, "write_range", handle=handle, sheet="Inputs", start="D1",
                   rows=[["=B1/(B2-40)", "=E2*2"], ["=NOSUCHFN(1)", "=E1+1"]])
        report = await call(client, "recalculate", handle=handle)
    kinds = {e["ref"]: e["kind"] for e in report["errors"]}
    assert kinds["Inputs!D1"] == "#DIV/0!" and kinds["Inputs!E1"] == kinds["Inputs!E2"] == "circular"
    assert "Inputs!D2" in kinds and report["coverage"] < 1 and report["formula_cells"] == 5


async def test_styles_layout_and_names_reach_the_file(tmp_path: Path) -> None:
    async with Client(build(ServeOptions(), root=tmp_path)) as client:
        handle = await model_book(client)
        await call(client, "set_style", handle=handle, sheet="Inputs", range="B1:B2", font_color="0000FF",
                   number_format="#,##0.00", bold=True, fill="FFF2CC")
        await call(client, "set_column_width", handle=handle, sheet="Inputs", columns="A", width=30)
        await call(client, "freeze_panes", handle=handle, sheet="Inputs", cell="B2")
        await call(client, "define_name", handle=handle, name="Revenue", ref="Inputs!B3")
        await call(client, "add_sheet", handle=handle, name="Scratch")
        await call(client, "rename_sheet", handle=handle, sheet="Scratch", new_name="Outputs")
        styled = await call(client, "read_range", handle=handle, sheet="Inputs", range="B1", include_styles=True)
        description = await call(client, "describe_workbook", handle=handle)
        changed = await call(client, "delete_sheet", handle=handle, sheet="Outputs")
    cell = styled["rows"][0][0]
    assert (cell["font_color"], cell["number_format"], cell["bold"], cell["fill"]) == ("0000FF", "#,##0.00", True,
                                                                                      "FFF2CC")
    inputs = description["sheets"][0]
    assert inputs["freeze_panes"] == "B2" and inputs["column_widths"] == {"A": 30.0}
    assert inputs["inputs"]["runs"] == ["B1:B2"] and inputs["formulas"]["runs"] == ["B3"]
    assert description["defined_names"] == {"Revenue": "Inputs!$B$3"} and changed["sheets"] == ["Inputs"]
    book = load_workbook(tmp_path / "model.xlsx")
    assert book["Inputs"]["B1"].font.color.rgb == "FF0000FF" and book["Inputs"].column_dimensions["A"].width == 30


def test_plan_to_calls_maps_every_operation_to_its_tool_without_the_handle() -> None:
    plan = WorkbookPlan(ops=[
        AddSheet(name="Inputs"), RenameSheet(sheet="Inputs", new_name="In"), DeleteSheet(sheet="X"),
        WriteRange(sheet="In", rows=[[1, "=A1*2"]]), SetStyle(sheet="In", range="A1", bold=True),
        SetColumnWidth(sheet="In", columns="A:B", width=12), FreezePanes(sheet="In", cell=None),
        DefineName(name="Out", ref="In!B1")])
    calls = plan_to_calls(plan)
    assert [tool for tool, _ in calls] == ["add_sheet", "rename_sheet", "delete_sheet", "write_range", "set_style",
                                           "set_column_width", "freeze_panes", "define_name"]
    assert calls[3][1] == {"sheet": "In", "start": "A1", "rows": [[1, "=A1*2"]]}
    assert calls[4][1] == {"sheet": "In", "range": "A1", "bold": True}
    assert calls[6][1] == {"sheet": "In", "cell": None}
    assert all("handle" not in args and "op" not in args for _, args in calls)
    assert set(TOOL_OF_OP.values()) == {tool for tool, _ in calls}


async def test_every_tool_the_calls_name_exists_and_accepts_those_arguments(tmp_path: Path) -> None:
    async with Client(build(ServeOptions(), root=tmp_path)) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    for tool, fields in [("add_sheet", AddSheet), ("rename_sheet", RenameSheet), ("delete_sheet", DeleteSheet),
                         ("write_range", WriteRange), ("set_style", SetStyle), ("set_column_width", SetColumnWidth),
                         ("freeze_panes", FreezePanes), ("define_name", DefineName)]:
        params = set(tools[tool].input_schema["properties"])
        assert set(fields.model_fields) - {"op"} <= params and "handle" in params, tool


async def run_reference(client: Client, family: str, seed: int, difficulty: int) -> tuple[str, dict[str, Any]]:
    started = await call(client, "start_task", family=family, seed=seed, difficulty=difficulty)
    handle = started["handle"]
    task = generate_task(family, seed, difficulty)
    for tool, args in plan_to_calls(reference_plan(task)):
        await call(client, tool, handle=handle, **args)
    return handle, started


async def test_the_reference_plan_replayed_through_the_tools_grades_100(tmp_path: Path) -> None:
    async with Client(build(ServeOptions(), root=tmp_path)) as client:
        handle, started = await run_reference(client, FAMILY, 1, 3)
        recalc = await call(client, "recalculate", handle=handle)
        submitted = await call(client, "submit", handle=handle)
        report = json.loads((await client.read_resource(f"sheets://grade/{handle}")).contents[0].text)
        again = await error(client, "write_range", handle=handle, sheet="Inputs", rows=[[1]])
        still_readable = await call(client, "describe_workbook", handle=handle)
        reopened = await call(client, "open_workspace", file_name=submitted["file_name"])
        outputs = await call(client, "read_range", handle=reopened["handle"], sheet="Outputs", range="A1:C8")
    assert recalc["errors"] == [] and recalc["coverage"] == 1.0
    assert submitted["final"] == pytest.approx(100.0) and submitted["task_id"] == started["task_id"]
    assert set(submitted["dimensions"]) == {"accuracy", "formula", "format"}
    assert report["final"] == pytest.approx(100.0) and report["checks"]
    assert "ended" in again and still_readable["submitted"] is True
    assert (tmp_path / submitted["file_name"]).is_file() and reopened["sheets"] == ["Inputs", "Calculations", "Outputs"]
    assert any(isinstance(c["value"], float) for row in outputs["rows"] for c in row)


def leaks(text: str, values: list[float]) -> list[float]:
    shown = []
    for v in values:
        forms = {repr(v), f"{v:.2f}", f"{v:,.2f}", f"{v:.4f}", f"{round(v)}" if abs(v) >= 1e4 else "\x00"}
        if any(f in text for f in forms):
            shown.append(v)
    return shown


async def test_nothing_hidden_reaches_the_agent_before_submit_and_the_evaluator_sees_the_reference(
        tmp_path: Path) -> None:
    task = generate_task(FAMILY, 2, 4)
    hidden = [o.value for o in task.outputs if o.value is not None]
    async with Client(build(ServeOptions(), root=tmp_path)) as client:
        started = await call(client, "start_task", family=FAMILY, seed=2, difficulty=4)
        handle = started["handle"]
        await call(client, "add_sheet", handle=handle, name="Inputs")
        seen = [json.dumps(started), json.dumps(await call(client, "describe_workbook", handle=handle)),
                json.dumps(await call(client, "read_range", handle=handle, sheet="Inputs", range="A1:H20")),
                json.dumps(await call(client, "list_tasks"))]
        for suffix in ("prompt", "inputs"):
            seen.append((await client.read_resource(f"sheets://task/{handle}/{suffix}")).contents[0].text)
        templates = [t.uri_template for t in (await client.list_resource_templates()).resource_templates]
        with pytest.raises(MCPError):
            await client.read_resource(f"sheets://reference/{handle}")
        with pytest.raises(MCPError, match="after submit"):
            await client.read_resource(f"sheets://grade/{handle}")
    assert leaks("\n".join(seen), hidden) == []
    assert "Outputs!" not in seen[0] and "cell" not in json.dumps(started["required_outputs"])
    assert not any("reference" in t for t in templates) and "sheets://grade/{handle}" in templates
    assert json.loads(seen[-1])[0]["value"] == task.inputs[0].value
    async with Client(build(ServeOptions(evaluator=True), root=tmp_path)) as client:
        handle = (await call(client, "start_task", family=FAMILY, seed=2, difficulty=4))["handle"]
        reference = json.loads((await client.read_resource(f"sheets://reference/{handle}")).contents[0].text)
    assert [o["value"] for o in reference["task"]["outputs"]] == hidden
    assert [s["name"] for s in reference["sheets"]] == ["Inputs", "Calculations", "Outputs"]
    for output in task.outputs:
        assert reference["values"][output.cell] == pytest.approx(output.value, rel=1e-9)


async def test_a_free_form_workspace_has_no_task_resources_and_nothing_to_submit(tmp_path: Path) -> None:
    async with Client(build(ServeOptions(), root=tmp_path)) as client:
        handle = await model_book(client)
        text = await error(client, "submit", handle=handle)
        with pytest.raises(MCPError):
            await client.read_resource(f"sheets://task/{handle}/prompt")
        taken = await error(client, "open_workspace", file_name="model.xlsx")
    assert "no task" in text and "already open" in taken


async def test_a_saved_workbook_reopens_in_a_new_server_under_the_same_root(tmp_path: Path) -> None:
    async with Client(build(ServeOptions(), root=tmp_path)) as client:
        await model_book(client, "keep.xlsx")
    async with Client(build(ServeOptions(), root=tmp_path)) as client:
        opened = await call(client, "open_workspace", file_name="keep.xlsx")
        cell = await call(client, "read_range", handle=opened["handle"], sheet="Inputs", range="B3")
    assert opened["created"] is False and opened["sheets"] == ["Inputs"] and cell["rows"][0][0]["value"] == 500.0


async def test_a_real_stdio_subprocess_serves_a_short_session_with_the_suite_flags(tmp_path: Path) -> None:
    env = {"TESTBEDS_SHEETS_ROOT": str(tmp_path / "env")}
    async with stdio_client("testbeds_sheets", "--engine", "embedded", "--root", str(tmp_path / "cli"), env=env,
                            mode="legacy") as client:
        handle = await model_book(client)
        cell = await call(client, "read_range", handle=handle, sheet="Inputs", range="B3")
        bad = await error(client, "write_range", handle=handle, sheet="Inputs", start="B3", rows=[["=B3+1"]])
        started = await call(client, "start_task", family=FAMILY, seed=0, difficulty=1)
    assert cell["rows"][0][0]["value"] == 500.0 and "refers to B3 itself" in bad
    assert started["prompt"] and started["required_outputs"]
    assert (tmp_path / "cli" / "model.xlsx").is_file() and not (tmp_path / "env" / "model.xlsx").exists()


async def test_the_http_transport_serves_a_short_session_in_both_protocol_eras(tmp_path: Path) -> None:
    async with serve_http(build(ServeOptions(transport="http"), root=tmp_path)) as url:
        values = []
        for i, mode in enumerate(("auto", "legacy")):
            async with http_client(url, mode=mode) as client:
                handle = await model_book(client, f"http-{i}.xlsx")
                cell = await call(client, "read_range", handle=handle, sheet="Inputs", range="B3")
                values.append(cell["rows"][0][0]["value"])
    assert values == [500.0, 500.0]


async def test_the_readme_example_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    readme = Path(__file__).resolve().parents[2] / "servers" / "testbeds_sheets" / "README.md"
    block = re.search(r"## Example\n\n```python\n(.*?)```", readme.read_text(), re.S)
    assert block is not None
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {}
    exec("async def example():\n" + textwrap.indent(block.group(1), "    "), namespace)
    await namespace["example"]()
    assert len(list((tmp_path / "workbooks").glob("*.xlsx"))) == 1


async def test_parallel_writes_on_one_handle_are_serialised_and_all_kept(tmp_path: Path) -> None:
    async with Client(build(ServeOptions(), root=tmp_path)) as client:
        handle = await model_book(client)

        async def write(i: int) -> None:
            await call(client, "write_range", handle=handle, sheet="Inputs", start=f"D{i + 1}",
                       rows=[[i, f"=D{i + 1}*B1"]])

        async with anyio.create_task_group() as group:
            for i in range(8):
                group.start_soon(write, i)
        read = await call(client, "read_range", handle=handle, sheet="Inputs", range="D1:E8")
    assert [[c["value"] for c in row] for row in read["rows"]] == [[i, i * 12.5] for i in range(8)]
    stored = load_workbook(tmp_path / "model.xlsx")["Inputs"]
    assert [stored.cell(row=i + 1, column=5).value for i in range(8)] == [f"=D{i + 1}*B1" for i in range(8)]
