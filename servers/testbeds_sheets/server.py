"""MCP wiring of sheets: workbooks behind handles, task resources, the grade after submit, the evaluator's reference.

Thin by design: rules live in apply.py (operations), workspace.py (transactions, reads, descriptions), tasks/,
grader/ and judging.py (the optional LLM judge).

The judge over MCP sampling uses the resolver form: `submit`'s hidden parameters are filled before its body runs,
by `judge_question` (the judge prompt for the workbook as it stands) and `judge_reply` (the client's model's
answer). On 2026-07-28 connections the answer rides the client's retry of the call (`Sample`); on 2025-11-25
connections the resolver sends the sampling request itself so a refused or failed sampling is caught and the
submit still grades. The body grades with that answer when the workbook is still the one the judge read.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import anyio
from mcp.server.mcpserver import Context, MCPServer, Resolve, Sample
from mcp.shared.message import ServerMessageMetadata
from mcp.types import CreateMessageRequest, CreateMessageResult, SamplingMessage, TextContent, ToolAnnotations
from mcp_types.version import is_version_at_least
from openpyxl.utils.cell import get_column_letter
from pydantic import BaseModel, Field, ValidationError
from testbeds_serving import InvalidArgument, NotFound, Registry, ServeOptions, SuiteServer, UserError

from . import __version__
from .apply import parse_cell
from .judging import (
    Chat,
    JudgeSetting,
    answered_judge,
    bytes_digest,
    content_text,
    judge_prompt,
    parse_judge_setting,
    provider_judge,
    unavailable_judge,
)
from .models import (
    Changed,
    FamilyInfo,
    InputSpec,
    OutputSpec,
    RangeView,
    RecalcReport,
    Submitted,
    TaskFamilies,
    TaskStarted,
    WorkbookDescription,
    WorkspaceOpened,
    Written,
)
from .ops import (
    AddSheet,
    CellInput,
    DefineName,
    DeleteSheet,
    FreezePanes,
    HexColour,
    RenameSheet,
    SetColumnWidth,
    SetStyle,
    WriteRange,
)
from .tasks import FAMILIES, MAX_DIFFICULTY, generate_task, reference_workbook
from .tasks.loader import load_task_folder
from .workspace import Workspace, Workspaces, names_of, sheet_summaries

INSTRUCTIONS = (
    "sheets: build finance models as real .xlsx workbooks. list_tasks shows the task families; start_task gives a "
    "case prompt and an empty workbook behind a handle (open_workspace gives a free-form workbook). Add sheets, "
    "write inputs as constants and calculations as formulas (strings starting '='), style them, define the names "
    "the prompt asks for, check with recalculate, then submit to be graded on Accuracy, Formula and Format."
)
ENGINE_ENV = "TESTBEDS_SHEETS_ENGINE"
TASKS_DIR_ENV = "TESTBEDS_SHEETS_TASKS_DIR"
JUDGE_MAX_TOKENS = 1024
# The first protocol revision in which a tool's sampling request rides an InputRequiredResult (the client retries
# the call with the answer) rather than a server-to-client request during the call.
SAMPLING_IN_RETRY_VERSION = "2026-07-28"
FOLDER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.-]{0,100}")
log = logging.getLogger("testbeds.sheets")

Handle = Annotated[str, Field(description="The handle start_task or open_workspace returned.")]
SheetArg = Annotated[str, Field(description="Sheet name, e.g. 'Inputs'.")]
M = TypeVar("M", bound=BaseModel)


class TaskCatalog(TaskFamilies):
    """What start_task can start: generated families and, with --tasks-dir, task folders."""

    folders: list[str] = Field(default_factory=list, description="Task folders: start one with "
                               "start_task(folder=<name>). Each holds a case prompt; outputs are given at start.")


class SheetsServer(SuiteServer):
    """The sheets MCP server; its workspaces and settings are reachable from resolvers through `ctx.mcp_server`."""

    books: Registry[Workspace]
    places: Workspaces
    judge: JudgeSetting
    judge_chat: Chat | None  # a provider's (or an in-process) judge; None for off and sampling
    tasks_dir: Path | None


class JudgeQuestion(BaseModel):
    """What the sampling judge is asked at submit, built before the tool body."""

    status: Literal["off", "ask", "unavailable"]
    prompt: str = ""
    digest: str | None = None  # sha256 of the saved workbook bytes the prompt describes
    detail: str = ""


class JudgeAnswer(BaseModel):
    """The sampling judge's answer, or why there is none."""

    status: Literal["off", "answered", "unavailable"]
    text: str = ""
    detail: str = ""


async def judge_question(handle: str, ctx: Context) -> JudgeQuestion:
    """Resolver of submit: the judge prompt for the handle's workbook as it stands (status 'off' unless the
    server runs with --judge sampling). Never raises: submit's body reports a bad handle."""
    server = ctx.mcp_server
    if not isinstance(server, SheetsServer) or server.judge.mode != "sampling":
        return JudgeQuestion(status="off")
    try:
        async with server.books.use(handle) as entry:
            ws = entry.state
            task = ws.task
            if task is None:
                return JudgeQuestion(status="off")
            attempt: Any = ws.path if ws.saved else ws.wb
            digest = bytes_digest(ws.file_bytes)
            prompt = await anyio.to_thread.run_sync(lambda: judge_prompt(task, attempt))
    except UserError:
        return JudgeQuestion(status="off")
    except Exception:  # the judge is optional: a failure to describe the workbook must not fail the submit
        log.exception("could not build the judge prompt for a submit")
        return JudgeQuestion(status="unavailable", detail="the workbook could not be described to the judge")
    return JudgeQuestion(status="ask", prompt=prompt, digest=digest)


async def judge_reply(question: Annotated[JudgeQuestion, Resolve(judge_question)],
                      ctx: Context) -> Sample | JudgeAnswer:
    """Resolver of submit: the client's model's answer to the judge question, through MCP sampling."""
    if question.status != "ask":
        return JudgeAnswer(status=question.status if question.status == "off" else "unavailable",
                           detail=question.detail)
    capabilities = ctx.client_capabilities
    if capabilities is None or capabilities.sampling is None:
        return JudgeAnswer(status="unavailable", detail="the client does not support MCP sampling (it declared no "
                           "sampling capability); graded without the judge")
    message = SamplingMessage(role="user", content=TextContent(type="text", text=question.prompt))
    sample = Sample([message], max_tokens=JUDGE_MAX_TOKENS, temperature=0.0)
    version = ctx.protocol_version
    if version is not None and is_version_at_least(version, SAMPLING_IN_RETRY_VERSION):
        # The framework asks the client (InputRequiredResult) and calls again with its answer.
        return sample
    try:
        result = await ctx.session.send_request(
            CreateMessageRequest(params=sample.params), CreateMessageResult,
            metadata=ServerMessageMetadata(related_request_id=ctx.request_id))
    except Exception as exc:  # refused, failed or malformed sampling: grade without the judge
        detail = getattr(getattr(exc, "error", None), "message", None) or type(exc).__name__
        return JudgeAnswer(status="unavailable", detail=f"the client's sampling failed ({detail})")
    return JudgeAnswer(status="answered", text=content_text(result.content))


def folder_names(tasks_dir: Path) -> list[str]:
    """The task folders under `tasks_dir`: sub-folders with a valid name, a prompt and a solution workbook."""
    names = []
    for path in sorted(tasks_dir.iterdir()) if tasks_dir.is_dir() else []:
        if FOLDER_NAME.fullmatch(path.name) and _inside(tasks_dir, path) and (path / "solution.xlsx").is_file() \
                and any((path / n).is_file() for n in ("prompt.md", "prompt.txt")):
            names.append(path.name)
    return names


def _inside(tasks_dir: Path, path: Path) -> bool:
    # A symlinked sub-folder pointing elsewhere is not a task folder of this directory.
    return path.is_dir() and path.resolve().parent == tasks_dir.resolve()


def folder_path(tasks_dir: Path, name: str) -> Path:
    """The task folder `name` (a plain sub-folder name, no path) under `tasks_dir`; UserError otherwise."""
    if not FOLDER_NAME.fullmatch(name):
        raise InvalidArgument(f"folder {name!r} is not a task folder name: give the bare name list_tasks shows "
                              "(letters, digits, space, '_', '.', '-'; no '/', '\\' or '..')")
    path = tasks_dir / name
    if not _inside(tasks_dir, path):
        raise NotFound(f"no task folder {name!r}; list_tasks lists the folders")
    return path


def make_op(model: type[M], **fields: Any) -> M:
    """Build an operation model from a tool's arguments, turning validation errors into a clear tool error."""
    try:
        return model(**fields)
    except ValidationError as exc:
        parts = []
        for error in exc.errors():
            where = ".".join(str(p) for p in error["loc"])
            parts.append(f"{where}: {error['msg']}" if where else error["msg"])
        raise InvalidArgument("; ".join(parts)) from None


def _family_infos() -> list[FamilyInfo]:
    from .tasks.families import REGISTRY

    infos = []
    for name, module in REGISTRY.items():
        doc = " ".join((module.__doc__ or "").split())
        description = doc if doc.startswith(module.TITLE) else f"{module.TITLE}: {doc}".rstrip(": ")
        infos.append(FamilyInfo(name=name, description=description, difficulties=f"1-{MAX_DIFFICULTY}"))
    return infos


def build(options: ServeOptions | None = None, *, root: str | os.PathLike[str] | None = None,
          engine: str | None = None, judge: str | Chat | None = None,
          tasks_dir: str | os.PathLike[str] | None = None) -> SheetsServer:
    """The sheets MCP server.

    Args:
        options: the shared serving options (transport, recording, evaluator face).
        root: where workbooks are saved (default $TESTBEDS_SHEETS_ROOT or ~/.local/state/testbeds/sheets).
        engine: recalculation engine, 'embedded' (default; $TESTBEDS_SHEETS_ENGINE) or 'libreoffice'.
        judge: the optional LLM judge of the subjective criteria: None or 'off' (default), 'sampling' (the MCP
            client's model), a chat model spec 'provider:model', or a chat callable (prompt -> text). Not read
            from the environment here ($TESTBEDS_SHEETS_JUDGE is read by the command line).
        tasks_dir: a folder of task folders (prompt.md + solution.xlsx + optional outputs.json) start_task can
            start by name; not read from the environment here ($TESTBEDS_SHEETS_TASKS_DIR: the command line).
    """
    if callable(judge):
        setting, judge_chat = JudgeSetting(mode="provider", spec="callable"), judge
    else:
        setting = parse_judge_setting(judge)
        judge_chat = provider_judge(setting.spec) if setting.mode == "provider" and setting.spec else None
    folders_root = Path(tasks_dir).expanduser() if tasks_dir is not None else None
    if folders_root is not None and not folders_root.is_dir():
        raise ValueError(f"tasks_dir {str(folders_root)!r} is not a folder")
    places = Workspaces(root, engine or os.environ.get(ENGINE_ENV) or "embedded")

    @asynccontextmanager
    async def lifespan(_server: MCPServer[Any]) -> AsyncIterator[None]:
        try:
            yield None
        finally:
            places.close()  # stops LibreOffice if it was started; it restarts on next use

    server = SheetsServer("sheets", instructions=INSTRUCTIONS, version=__version__, options=options,
                          lifespan=lifespan)
    books: Registry[Workspace] = server.attach(Registry(kind="workspace", start_tool="start_task or open_workspace"))
    server.books, server.places, server.judge, server.judge_chat = books, places, setting, judge_chat
    server.tasks_dir = folders_root
    books.add_listener(lambda entry, _reason: places.release(entry.state))

    async def run(fn: Callable[[], Any]) -> Any:
        # Saving, recalculating and grading are CPU-bound: keep the event loop serving other calls.
        return await anyio.to_thread.run_sync(fn)

    async def change(handle: str, op: Any, done: str) -> Changed:
        async with books.use(handle) as entry:
            ws = entry.state
            await run(lambda: ws.change(op))
            return Changed(done=done, sheets=list(ws.wb.sheetnames), file_name=ws.file_name)

    # -- tasks and workspaces -------------------------------------------------------------------------------------

    @server.tool(annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True))
    async def list_tasks() -> TaskCatalog:
        """The task families (finance models) start_task can generate, with their difficulty levels, and the task
        folders it can start by name (when the server has any).

        Difficulty is the number of chained calculations from an input to the deepest output."""
        folders = await run(lambda: folder_names(folders_root)) if folders_root is not None else []
        return TaskCatalog(families=_family_infos(), folders=folders)

    @server.tool(annotations=ToolAnnotations(destructive_hint=False, idempotent_hint=False))
    async def start_task(
        family: Annotated[str | None, Field(description="A family from list_tasks, e.g. 'revenue_buildup'.")] = None,
        seed: Annotated[int, Field(ge=0, le=2**31 - 1, description="Chooses the case's numbers.")] = 0,
        difficulty: Annotated[int, Field(ge=1, le=MAX_DIFFICULTY, description="Chained calculations from an "
                                         "input to the deepest output.")] = 3,
        folder: Annotated[str | None, Field(description="Instead of family: a task folder from list_tasks, by "
                                            "name (seed and difficulty do not apply).")] = None,
    ) -> TaskStarted:
        """Start a task: returns the case prompt, the outputs to produce and a handle to a new, empty workbook
        (no sheets yet: add your own). Put every case input in an input cell as a constant, compute the outputs
        with formulas that read those cells, give each output cell the defined name listed in required_outputs,
        then submit. The workbook is saved as a real .xlsx after every change."""
        if (family is None) == (folder is None):
            raise InvalidArgument("give either family (a generated task) or folder (a task folder), as list_tasks "
                                  "shows them")
        info: dict[str, Any]
        if folder is not None:
            if folders_root is None:
                raise InvalidArgument("this server has no task folders: start it with --tasks-dir DIR "
                                      f"(env {TASKS_DIR_ENV})")
            path = folder_path(folders_root, folder)
            try:
                task, solution = await run(lambda: load_task_folder(path))
            except Exception as exc:  # a broken folder is the operator's to fix; say which and why, no paths
                log.warning("task folder %s cannot be loaded", path, exc_info=True)
                reason = str(exc).replace(str(path), folder) or type(exc).__name__
                raise InvalidArgument(f"task folder {folder!r} cannot be loaded: {reason}") from None
            info = {"task_id": task.id, "folder": folder, "solution": str(solution)}
        else:
            assert family is not None
            if family not in FAMILIES:
                raise InvalidArgument(f"unknown family {family!r}; choose one of {', '.join(FAMILIES)}")
            try:
                task = await run(lambda: generate_task(family, seed, difficulty))
            except ValueError as exc:
                raise InvalidArgument(f"cannot generate {family} at difficulty {difficulty}: {exc}") from None
            info = {"task_id": task.id, "family": family, "seed": seed, "difficulty": difficulty}
        ws = places.for_task(task)
        try:
            handle = books.create(ws, evaluator_info={**info, "file": str(ws.path)})
        except BaseException:
            places.release(ws)
            raise
        outputs = [OutputSpec(id=o.id, label=o.label, name=o.name, unit=o.unit) for o in task.outputs]
        return TaskStarted(handle=handle, task_id=task.id, family=task.family, difficulty=task.difficulty,
                           title=task.title, prompt=task.prompt, required_outputs=outputs, file_name=ws.file_name,
                           resources=[f"sheets://task/{handle}/prompt", f"sheets://task/{handle}/inputs"])

    @server.tool(annotations=ToolAnnotations(destructive_hint=False, idempotent_hint=False))
    async def open_workspace(
        file_name: Annotated[str | None, Field(description="A workbook under the workspace root, e.g. "
                                               "'model.xlsx': opened if it exists, else created. Omit for a new "
                                               "workbook with a generated name.")] = None,
    ) -> WorkspaceOpened:
        """Open or create a free-form workbook (no task, nothing to grade) and get its handle."""
        ws, created = await run(lambda: places.open(file_name))
        try:
            handle = books.create(ws, evaluator_info={"file": str(ws.path)})
        except BaseException:
            places.release(ws)
            raise
        return WorkspaceOpened(handle=handle, file_name=ws.file_name, created=created, sheets=list(ws.wb.sheetnames))

    @server.tool(annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True))
    async def describe_workbook(handle: Handle) -> WorkbookDescription:
        """The workbook's sheets in order, each with its used range, its input cells (numeric constants) and
        formula cells as compact runs ('C5:H5'), label count, frozen panes and column widths; and the defined
        names. Values are not included: use read_range."""
        async with books.use(handle, allow_ended=True) as entry:
            ws = entry.state
            return await run(ws.describe)

    # -- structure --------------------------------------------------------------------------------------------

    @server.tool(annotations=ToolAnnotations(destructive_hint=False, idempotent_hint=False))
    async def add_sheet(
        handle: Handle,
        name: Annotated[str, Field(description="1-31 characters, none of [ ] : * ? / \\.")],
        index: Annotated[int | None, Field(description="Position among the sheets (0 = first); default last.")] = None,
    ) -> Changed:
        """Add an empty sheet. Name sheets by role (e.g. Inputs, Calculations, Outputs), in that order."""
        return await change(handle, make_op(AddSheet, name=name, index=index), f"added sheet {name!r}")

    @server.tool(annotations=ToolAnnotations(destructive_hint=False, idempotent_hint=True))
    async def rename_sheet(handle: Handle, sheet: SheetArg,
                           new_name: Annotated[str, Field(description="The new name.")]) -> Changed:
        """Rename a sheet. Formulas elsewhere are not rewritten: rename before writing formulas that refer to it."""
        op = make_op(RenameSheet, sheet=sheet, new_name=new_name)
        return await change(handle, op, f"renamed sheet {sheet!r} to {new_name!r}")

    @server.tool(annotations=ToolAnnotations(destructive_hint=True, idempotent_hint=False))
    async def delete_sheet(handle: Handle, sheet: SheetArg) -> Changed:
        """Delete a sheet and everything on it (a workbook keeps at least one sheet)."""
        return await change(handle, make_op(DeleteSheet, sheet=sheet), f"deleted sheet {sheet!r}")

    # -- cells ----------------------------------------------------------------------------------------------------

    @server.tool(annotations=ToolAnnotations(destructive_hint=True, idempotent_hint=True))
    async def write_range(
        handle: Handle,
        sheet: SheetArg,
        rows: Annotated[list[list[CellInput]], Field(
            min_length=1, description="The block, row by row, e.g. [['Revenue ($)', '=C5*C6', '=D5*D6']]. A string "
            "starting '=' is a formula (write it plainly, e.g. '=XLOOKUP(...)': the _xlfn. prefix is added for "
            "you); numbers are constants; other strings are labels; null clears a cell. Rows may differ in "
            "length.")],
        start: Annotated[str, Field(description="Top-left cell of the block, e.g. 'B3'.")] = "A1",
        recalculate: Annotated[bool, Field(description="Return recomputed values of the block (default). False "
                                           "skips the recalculation in large workbooks.")] = True,
    ) -> Written:
        """Write a block of values and formulas starting at `start` (a single cell is [[value]]) and return the
        written cells with their recomputed values. The whole block is validated first: a bad reference, a
        formula stored as text (e.g. " =A1", with a leading space), a formula reading its own cell (=B10+1 or
        =SUM(B1:B10) in B10), an unknown sheet or defined name, a formula that does not parse, or a link outside
        the workbook ([Book.xlsx], WEBSERVICE, DDE) refuses the call and nothing is written. A function name
        Excel does not know is written and evaluates to #NAME?, as in Excel."""
        op = make_op(WriteRange, sheet=sheet, start=start, rows=rows)
        async with books.use(handle) as entry:
            ws = entry.state

            def write() -> Written:
                ws.change(op)
                row0, col0 = parse_cell(op.start)
                last = f"{get_column_letter(col0 + max(len(r) for r in op.rows) - 1)}{row0 + len(op.rows) - 1}"
                view = ws.read(op.sheet, f"{get_column_letter(col0)}{row0}:{last}", values=recalculate)
                return Written(**view.model_dump(), cells_written=sum(len(r) for r in op.rows),
                               file_name=ws.file_name)

            return await run(write)

    @server.tool(annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True))
    async def read_range(
        handle: Handle,
        sheet: SheetArg,
        range: Annotated[str, Field(description="A cell or range, e.g. 'B3' or 'A1:H20' (at most 10,000 cells).")],
        include_styles: Annotated[bool, Field(description="Also return number format, font colour, bold, italic, "
                                              "font, fill, alignment and borders.")] = False,
    ) -> RangeView:
        """Read a block: each cell's value (recomputed: formula results, or an error code such as '#DIV/0!'), its
        formula as written, why it could not be evaluated if so, and optionally its styles."""
        async with books.use(handle, allow_ended=True) as entry:
            ws = entry.state
            return await run(lambda: ws.read(sheet, range, include_styles=include_styles))

    # -- styles and layout -------------------------------------------------------------------------------------

    @server.tool(annotations=ToolAnnotations(destructive_hint=False, idempotent_hint=True))
    async def set_style(
        handle: Handle,
        sheet: SheetArg,
        range: Annotated[str, Field(description="A cell or range, e.g. 'B3' or 'B3:F10'.")],
        number_format: Annotated[str | None, Field(description="Excel number format, e.g. '#,##0;(#,##0)', "
                                                   "'0.0%', '0'.")] = None,
        font_color: Annotated[HexColour | None, Field(description="Font colour 'RRGGBB': inputs blue '0000FF', "
                                                      "formulas black '000000', links to other sheets green "
                                                      "'008000'.")] = None,
        bold: bool | None = None,
        italic: bool | None = None,
        font_name: Annotated[str | None, Field(description="e.g. 'Arial'.")] = None,
        font_size: Annotated[float | None, Field(gt=0, le=100)] = None,
        fill: Annotated[HexColour | None, Field(description="Solid background colour 'RRGGBB'.")] = None,
        clear_fill: Annotated[bool, Field(description="Remove the background fill.")] = False,
        border: Annotated[Literal["none", "thin", "medium", "top", "bottom", "box"] | None,
                          Field(description="none; thin or medium on all sides of every cell; a thin top / bottom line "
                                            "on every cell; or box: a thin outline around the whole range.")] = None,
        align: Literal["left", "center", "right"] | None = None,
    ) -> Changed:
        """Style every cell of a range (at most 20,000 cells); arguments left out are not changed."""
        op = make_op(SetStyle, sheet=sheet, range=range, number_format=number_format, font_color=font_color,
                     bold=bold, italic=italic, font_name=font_name, font_size=font_size, fill=fill,
                     clear_fill=clear_fill, border=border, align=align)
        return await change(handle, op, f"styled {sheet}!{range}")

    @server.tool(annotations=ToolAnnotations(destructive_hint=False, idempotent_hint=True))
    async def set_column_width(
        handle: Handle,
        sheet: SheetArg,
        columns: Annotated[str, Field(description="A column or span, e.g. 'A' or 'B:F'.")],
        width: Annotated[float, Field(gt=0, le=255, description="Width in characters, e.g. 40 for a label column.")],
    ) -> Changed:
        """Set the width of one or more columns."""
        op = make_op(SetColumnWidth, sheet=sheet, columns=columns, width=width)
        return await change(handle, op, f"set width of {sheet}!{columns} to {width:g}")

    @server.tool(annotations=ToolAnnotations(destructive_hint=False, idempotent_hint=True))
    async def freeze_panes(
        handle: Handle,
        sheet: SheetArg,
        cell: Annotated[str | None, Field(description="Rows above and columns left of this cell stay in view, "
                                          "e.g. 'C4'; null unfreezes.")],
    ) -> Changed:
        """Freeze the rows above and the columns left of a cell (labels and period headers stay visible)."""
        op = make_op(FreezePanes, sheet=sheet, cell=cell)
        return await change(handle, op, f"froze {sheet} at {cell}" if cell else f"unfroze {sheet}")

    @server.tool(annotations=ToolAnnotations(destructive_hint=False, idempotent_hint=True))
    async def define_name(
        handle: Handle,
        name: Annotated[str, Field(description="e.g. 'EV'; must not look like a cell ('TAX2024').")],
        ref: Annotated[str, Field(description="A cell or range with its sheet, e.g. 'Outputs!$C$4' or "
                                  "'Calc!$C$10:$G$10'.")],
    ) -> Changed:
        """Define (or redefine) a workbook-wide name for a cell or range; formulas may use it, and required
        outputs are found by their names."""
        return await change(handle, make_op(DefineName, name=name, ref=ref), f"defined {name} = {ref}")

    # -- checking and submitting ------------------------------------------------------------------------------

    @server.tool(annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True))
    async def recalculate(handle: Handle) -> RecalcReport:
        """Recalculate the workbook and list, by cell, every error value (#DIV/0!, #REF!, #NAME?, #VALUE!, #N/A,
        #NUM!) and every formula that could not be evaluated (circular reference, unsupported function,
        unevaluable), with the share of formulas evaluated (coverage)."""
        async with books.use(handle, allow_ended=True) as entry:
            ws = entry.state
            return await run(ws.recalc_report)

    @server.tool(annotations=ToolAnnotations(destructive_hint=False, idempotent_hint=False))
    async def submit(
        handle: Handle,
        question: Annotated[JudgeQuestion, Resolve(judge_question)],
        reply: Annotated[CreateMessageResult | JudgeAnswer, Resolve(judge_reply)],
    ) -> Submitted:
        """Finish the task: the workbook is graded against the task's reference (Accuracy, Formula, Format) and
        the episode ends (the workbook stays readable, no longer writable). Returns the final score (0-100)
        and the dimension scores; the full report is the resource sheets://grade/{handle}."""
        answer = reply if isinstance(reply, JudgeAnswer) else JudgeAnswer(status="answered",
                                                                           text=content_text(reply.content))
        async with books.use(handle) as entry:
            ws = entry.state
            task = ws.task
            if task is None:
                raise InvalidArgument("this workspace has no task, so there is nothing to grade; its workbook is "
                                      f"already saved as {ws.file_name!r}")
            judge, judge_status = server.judge_chat, server.judge.label
            if setting.mode == "sampling":
                judge, judge_status = sampled_judge(question, answer, bytes_digest(ws.file_bytes))
            solution = entry.evaluator_info.get("solution")
            report = await run(lambda: grade_workspace(ws, places.engine.name, reference=solution, judge=judge))
            if setting.mode != "off":
                entry.evaluator_info["judge"] = judge_status
            ws.grade = report
            # The file can be reopened after submit (open_workspace), so re-grading trusts it only while its
            # bytes are the ones graded here.
            entry.evaluator_info["graded_sha256"] = file_digest(ws.path) if ws.saved else None
            entry.evaluator_info["graded_final"] = float(report.final)
            entry.end("submitted")
            places.release(ws)  # an ended workspace no longer writes: its file may be opened again
            return Submitted(task_id=task.id, final=float(report.final), dimensions=dict(report.dimensions),
                             coverage=float(report.coverage), grade_resource=f"sheets://grade/{handle}",
                             file_name=ws.file_name)

    # -- resources ------------------------------------------------------------------------------------------------

    def task_of(handle: str) -> Any:
        task = books.get(handle).state.task
        if task is None:
            raise NotFound("this workspace was opened without a task (open_workspace): it has no prompt or inputs")
        return task

    @server.resource("sheets://task/{handle}/prompt", mime_type="text/markdown")
    async def task_prompt(handle: str) -> str:
        """The case prompt of the task behind the handle."""
        return task_of(handle).prompt

    @server.resource("sheets://task/{handle}/inputs", mime_type="application/json")
    async def task_inputs(handle: str) -> str:
        """The case inputs (id, label, value, unit, per-period series) as JSON."""
        inputs = [InputSpec(id=i.id, label=i.label, value=i.value, unit=i.unit, series=i.series).model_dump()
                  for i in task_of(handle).inputs]
        return json.dumps(inputs)

    @server.resource("sheets://grade/{handle}", mime_type="application/json")
    async def grade_report(handle: str) -> str:
        """The full grade report (every criterion, check and offending cell), available after submit."""
        ws = books.get(handle).state
        if ws.grade is None:
            raise UserError("no grade yet: the report is available after submit")
        return ws.grade.model_dump_json()

    @server.evaluator_resource("sheets://reference/{handle}", mime_type="application/json")
    async def reference(handle: str) -> str:
        """Evaluator only: the task with its expected outputs, and the reference workbook's layout and values (for
        a task folder: the solution workbook's)."""
        task = task_of(handle)
        solution = books.get(handle).evaluator_info.get("solution")
        return await run(lambda: json.dumps(reference_of(task, solution)))

    return server


def file_digest(path: str | os.PathLike[str]) -> str:
    """sha256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def sampled_judge(question: JudgeQuestion, answer: JudgeAnswer, digest: str | None) -> tuple[Chat, str]:
    """The grader's judge from a sampled answer, and its status for the evaluator: the answer counts only for the
    workbook bytes the judge read; otherwise the judge is recorded as unavailable, with the reason."""
    if answer.status == "answered":
        if digest == question.digest:
            return answered_judge(answer.text), "sampling: answered"
        reason = "the workbook changed after the judge read it"
    else:
        reason = answer.detail or "the judge was not asked"
    return unavailable_judge(reason), f"sampling: unavailable ({reason})"


def grade_workspace(ws: Workspace, engine: str, *, reference: str | os.PathLike[str] | None = None,
                    judge: Chat | None = None) -> Any:
    """Grade `ws`'s saved workbook (as Excel would read it) against `reference` (a task folder's solution
    workbook), else its task's generated reference workbook; `judge` is the optional LLM judge."""
    from .grader import grade

    assert ws.task is not None
    attempt: Any = ws.path if ws.saved else ws.wb
    ref: Any = Path(reference) if reference is not None else reference_workbook(ws.task)
    return grade(ws.task, attempt, ref, engine=engine, judge=judge)


def reference_of(task: Any, solution: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The evaluator's view of a task: the full task (expected outputs, input cells, perturbations) and the
    reference workbook's (a task folder's solution workbook's) description and recomputed values."""
    from .engine.evaluator import evaluate_workbook
    from .grader import load

    wb = load(solution) if solution is not None else reference_workbook(task)
    evaluation = evaluate_workbook(wb)
    return {"task": task.model_dump(mode="json"), "sheets": [s.model_dump(mode="json") for s in sheet_summaries(wb)],
            "defined_names": names_of(wb), "values": evaluation.values, "coverage": evaluation.coverage}


__all__ = ["SheetsServer", "TaskCatalog", "build", "folder_names", "folder_path", "grade_workspace", "make_op",
           "reference_of", "sampled_judge"]
