"""The optional LLM judge (MCP sampling on the server, a chat model in the evals scorer) and tasks started from a
task folder (prompt + solution workbook), over an in-memory MCP client."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, MCPError
from mcp.client import ClientRequestContext
from mcp.types import CreateMessageRequestParams, CreateMessageResult, ErrorData, TextContent
from testbeds_agents import ScriptedChatModel
from testbeds_evals.events import ToolResult
from testbeds_evals.suites import sheets as plugin
from testbeds_serving import ServeOptions
from testbeds_sheets.__main__ import main as cli_main
from testbeds_sheets.calls import plan_to_calls
from testbeds_sheets.judging import (
    JUDGE_ENV,
    chat_judge,
    content_text,
    judge_prompt,
    parse_judge_setting,
    unavailable_judge,
)
from testbeds_sheets.server import JudgeAnswer, JudgeQuestion, build, sampled_judge
from testbeds_sheets.tasks import generate_task, reference_plan, reference_workbook
from testbeds_sheets.tasks.model import Task

pytestmark = pytest.mark.anyio
FAMILY, SEED, DIFFICULTY = "break_even", 4, 2
# A folder task's units are read from the solution's number formats (tasks/loader.py), which tell currency and
# percent apart but not counts: a family whose case values are currency and percent grades 100 as a folder.
FOLDER_FAMILY = "dcf"
SCORES = {"presentation": 0.5, "structure": 1.0}


def verdict(scores: dict[str, float] = SCORES) -> str:
    """A reply in the judge's JSON format (grader/judge.py parse_verdict)."""
    return json.dumps({"verdicts": [{"criterion": c, "score": s, "reason": f"{c} as judged"}
                                    for c, s in scores.items()]})


class Sampler:
    """The client's model, scripted: records each sampling prompt and answers with a verdict (or refuses)."""

    def __init__(self, reply: str | None = None) -> None:
        self.prompts: list[str] = []
        self.reply = reply

    async def __call__(self, _ctx: ClientRequestContext,
                       params: CreateMessageRequestParams) -> CreateMessageResult | ErrorData:
        content = params.messages[-1].content
        assert isinstance(content, TextContent)
        self.prompts.append(content.text)
        if self.reply is None:
            return ErrorData(code=-1, message="the user declined sampling")
        return CreateMessageResult(role="assistant", model="scripted", stop_reason="endTurn",
                                   content=TextContent(type="text", text=self.reply))


async def call(client: Client, tool: str, **args: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, args)
    assert not result.is_error, result.content
    return result.structured_content


async def error(client: Client, tool: str, **args: Any) -> str:
    result = await client.call_tool(tool, args)
    assert result.is_error, result.structured_content
    return result.content[0].text


async def build_reference(client: Client, handle: str, task: Task) -> None:
    for tool, args in plan_to_calls(reference_plan(task)):
        await call(client, tool, handle=handle, **args)


async def grade_of(client: Client, handle: str) -> dict[str, Any]:
    return json.loads((await client.read_resource(f"sheets://grade/{handle}")).contents[0].text)


def task_folder(tasks_dir: Path, name: str = "dcf case") -> Task:
    """A task folder built from a generated task: its prompt and its reference workbook as the solution."""
    task = generate_task(FOLDER_FAMILY, SEED, DIFFICULTY)
    folder = tasks_dir / name
    folder.mkdir(parents=True)
    (folder / "prompt.md").write_text(task.prompt, encoding="utf-8")
    reference_workbook(task).save(folder / "solution.xlsx")
    return task


# -- task folders ---------------------------------------------------------------------------------------------


async def test_a_task_folder_is_listed_by_name_started_by_folder_and_its_reference_plan_scores_100(
        tmp_path: Path) -> None:
    tasks_dir = tmp_path / "tasks"
    task = task_folder(tasks_dir)
    (tasks_dir / "half-made").mkdir()  # no solution: not a task folder
    (tasks_dir / "half-made" / "prompt.md").write_text("# Nothing to grade")
    async with Client(build(ServeOptions(), root=tmp_path / "books", tasks_dir=tasks_dir)) as client:
        catalog = await call(client, "list_tasks")
        started = await call(client, "start_task", folder="dcf case")
        await build_reference(client, started["handle"], task)
        submitted = await call(client, "submit", handle=started["handle"])
        report = await grade_of(client, started["handle"])
    assert catalog["folders"] == ["dcf case"] and catalog["families"]
    assert started["family"] == "folder" and started["prompt"] == task.prompt
    assert {o["name"] for o in started["required_outputs"]} == {o.name for o in task.outputs}
    assert str(tasks_dir) not in json.dumps(started) and "solution" not in json.dumps(started)
    assert submitted["final"] == 100.0 and report["final"] == 100.0 and report["judge"] is None


async def test_a_workbook_that_misses_the_solutions_outputs_scores_below_100_on_a_task_folder(tmp_path: Path) -> None:
    task_folder(tmp_path / "tasks")
    async with Client(build(ServeOptions(), root=tmp_path / "books", tasks_dir=tmp_path / "tasks")) as client:
        handle = (await call(client, "start_task", folder="dcf case"))["handle"]
        await call(client, "add_sheet", handle=handle, name="Inputs")
        await call(client, "write_range", handle=handle, sheet="Inputs", rows=[["Price ($)", 1.0]])
        submitted = await call(client, "submit", handle=handle)
    assert submitted["final"] < 50


@pytest.mark.parametrize(("folder", "message"), [
    ("../tasks", "not a task folder name"),
    ("..", "not a task folder name"),
    ("sub/case", "not a task folder name"),
    ("/etc", "not a task folder name"),
    ("case\\..\\x", "not a task folder name"),
    ("missing", "no task folder 'missing'"),
    ("outside", "no task folder 'outside'"),
])
async def test_a_folder_that_is_not_a_plain_sub_folder_name_gets_a_clear_error(
        tmp_path: Path, folder: str, message: str) -> None:
    task_folder(tmp_path / "tasks")
    task_folder(tmp_path / "elsewhere", "outside")
    (tmp_path / "tasks" / "outside").symlink_to(tmp_path / "elsewhere" / "outside")  # escapes the tasks folder
    async with Client(build(ServeOptions(), root=tmp_path / "books", tasks_dir=tmp_path / "tasks")) as client:
        text = await error(client, "start_task", folder=folder)
        catalog = await call(client, "list_tasks")
    assert message in text
    assert catalog["folders"] == ["dcf case"]


async def test_start_task_needs_exactly_one_of_family_and_folder_and_a_tasks_dir_for_folders(tmp_path: Path) -> None:
    async with Client(build(ServeOptions(), root=tmp_path)) as client:
        both = await error(client, "start_task", family=FAMILY, folder="x")
        neither = await error(client, "start_task")
        no_dir = await error(client, "start_task", folder="x")
        catalog = await call(client, "list_tasks")
    assert "either family" in both and "either family" in neither
    assert "--tasks-dir" in no_dir and catalog["folders"] == []


async def test_a_broken_task_folder_is_refused_without_revealing_server_paths(tmp_path: Path) -> None:
    task_folder(tmp_path / "tasks")
    (tmp_path / "tasks" / "dcf case" / "solution.xlsx").write_bytes(b"not a workbook")
    async with Client(build(ServeOptions(), root=tmp_path / "books", tasks_dir=tmp_path / "tasks")) as client:
        text = await error(client, "start_task", folder="dcf case")
    assert "task folder 'dcf case' cannot be loaded" in text and str(tmp_path) not in text


async def test_the_evaluator_resource_shows_the_solutions_values_only_to_an_evaluator(tmp_path: Path) -> None:
    task = task_folder(tmp_path / "tasks")
    async with Client(build(ServeOptions(evaluator=True), root=tmp_path / "a", tasks_dir=tmp_path / "tasks")) as c:
        handle = (await call(c, "start_task", folder="dcf case"))["handle"]
        reference = json.loads((await c.read_resource(f"sheets://reference/{handle}")).contents[0].text)
    async with Client(build(ServeOptions(), root=tmp_path / "b", tasks_dir=tmp_path / "tasks")) as c:
        handle = (await call(c, "start_task", folder="dcf case"))["handle"]
        with pytest.raises(MCPError):
            await c.read_resource(f"sheets://reference/{handle}")
    for output in task.outputs:
        assert reference["values"][output.cell] == pytest.approx(output.value, rel=1e-9)
    assert reference["task"]["source"] == "folder"


# -- the judge over MCP sampling ------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_the_sampling_judge_asks_the_clients_model_and_its_verdicts_join_the_grade(
        tmp_path: Path, mode: str) -> None:
    task = generate_task(FAMILY, SEED, DIFFICULTY)
    sampler = Sampler(verdict())
    async with Client(build(ServeOptions(), root=tmp_path, judge="sampling"), mode=mode,
                      sampling_callback=sampler) as client:
        started = await call(client, "start_task", family=FAMILY, seed=SEED, difficulty=DIFFICULTY)
        await build_reference(client, started["handle"], task)
        submitted = await call(client, "submit", handle=started["handle"])
        report = await grade_of(client, started["handle"])
        protocol = client.protocol_version
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["judge:presentation"]["score"] == 0.5 and checks["judge:structure"]["score"] == 1.0
    assert checks["judge:presentation"]["criterion"] == "presentation"
    assert [v["criterion"] for v in report["judge"]["verdicts"]] == ["presentation", "structure"]
    assert submitted["final"] == report["final"] < 100.0
    # the client's model saw the grader's own judge prompt for the submitted workbook, once
    assert sampler.prompts == [judge_prompt(task, tmp_path / started["file_name"])]
    assert protocol == ("2025-11-25" if mode == "legacy" else "2026-07-28")


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_a_client_without_sampling_still_gets_its_grade_and_the_report_says_the_judge_was_unavailable(
        tmp_path: Path, mode: str) -> None:
    task = generate_task(FAMILY, SEED, DIFFICULTY)
    async with Client(build(ServeOptions(), root=tmp_path, judge="sampling"), mode=mode) as client:
        handle = (await call(client, "start_task", family=FAMILY, seed=SEED, difficulty=DIFFICULTY))["handle"]
        await build_reference(client, handle, task)
        submitted = await call(client, "submit", handle=handle)
        report = await grade_of(client, handle)
    assert submitted["final"] == 100.0
    assert "judge unavailable" in report["judge"]["error"] and "sampling" in report["judge"]["error"]
    assert not any(c["name"].startswith("judge:") for c in report["checks"])


async def test_a_sampling_the_client_refuses_leaves_the_submit_graded_without_the_judge(tmp_path: Path) -> None:
    # On a 2025-11-25 connection the server sends the sampling request itself and catches the refusal (on
    # 2026-07-28 a client refusing its own declared capability aborts its own retry).
    task = generate_task(FAMILY, SEED, DIFFICULTY)
    sampler = Sampler(reply=None)
    async with Client(build(ServeOptions(), root=tmp_path, judge="sampling"), mode="legacy",
                      sampling_callback=sampler) as client:
        handle = (await call(client, "start_task", family=FAMILY, seed=SEED, difficulty=DIFFICULTY))["handle"]
        await build_reference(client, handle, task)
        submitted = await call(client, "submit", handle=handle)
        report = await grade_of(client, handle)
    assert len(sampler.prompts) == 1 and submitted["final"] == 100.0
    assert "sampling failed (the user declined sampling)" in report["judge"]["error"]


async def test_an_invalid_reply_from_the_clients_model_is_recorded_and_the_grade_stands(tmp_path: Path) -> None:
    task = generate_task(FAMILY, SEED, DIFFICULTY)
    async with Client(build(ServeOptions(), root=tmp_path, judge="sampling"),
                      sampling_callback=Sampler("I think it is fine")) as client:
        handle = (await call(client, "start_task", family=FAMILY, seed=SEED, difficulty=DIFFICULTY))["handle"]
        await build_reference(client, handle, task)
        submitted = await call(client, "submit", handle=handle)
        report = await grade_of(client, handle)
    assert submitted["final"] == 100.0 and "no JSON object" in report["judge"]["error"]


async def test_the_judge_is_off_by_default_and_never_samples(tmp_path: Path) -> None:
    sampler = Sampler(verdict())
    async with Client(build(ServeOptions(), root=tmp_path), sampling_callback=sampler) as client:
        handle = (await call(client, "start_task", family=FAMILY, seed=SEED, difficulty=1))["handle"]
        await call(client, "add_sheet", handle=handle, name="Inputs")
        await call(client, "submit", handle=handle)
        report = await grade_of(client, handle)
    assert sampler.prompts == [] and report["judge"] is None


async def test_submitting_a_free_form_workspace_under_the_sampling_judge_is_the_usual_clear_error(
        tmp_path: Path) -> None:
    sampler = Sampler(verdict())
    async with Client(build(ServeOptions(), root=tmp_path, judge="sampling"), sampling_callback=sampler) as client:
        handle = (await call(client, "open_workspace", file_name="free.xlsx"))["handle"]
        text = await error(client, "submit", handle=handle)
        unknown = await error(client, "submit", handle="no-such-handle")
    assert "nothing to grade" in text and "no-such-handle" in unknown and sampler.prompts == []


def test_a_sampled_answer_counts_only_for_the_workbook_the_judge_read() -> None:
    question = JudgeQuestion(status="ask", prompt="p", digest="abc")
    answered = JudgeAnswer(status="answered", text=verdict())
    same, status = sampled_judge(question, answered, "abc")
    changed, changed_status = sampled_judge(question, answered, "def")
    assert same("any prompt") == verdict() and status == "sampling: answered"
    with pytest.raises(RuntimeError, match="changed after the judge read it"):
        changed("p")
    assert "unavailable" in changed_status


async def test_a_chat_model_judge_given_to_the_server_grades_with_it(tmp_path: Path) -> None:
    task = generate_task(FAMILY, SEED, DIFFICULTY)
    model = ScriptedChatModel(policy=lambda _messages: verdict({"layout_readability": 0.25}))
    async with Client(build(ServeOptions(), root=tmp_path, judge=chat_judge(model))) as client:
        handle = (await call(client, "start_task", family=FAMILY, seed=SEED, difficulty=DIFFICULTY))["handle"]
        await build_reference(client, handle, task)
        await call(client, "submit", handle=handle)
        report = await grade_of(client, handle)
    assert {c["name"]: c["score"] for c in report["checks"]}["judge:layout_readability"] == 0.25


# -- settings and adapters ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "mode", "spec"), [
    (None, "off", None), ("", "off", None), ("off", "off", None), ("sampling", "sampling", None),
    ("anthropic:claude-x", "provider", "anthropic:claude-x"),
])
def test_judge_settings_are_off_sampling_or_a_chat_model_spec(value: str | None, mode: str, spec: str | None) -> None:
    setting = parse_judge_setting(value)
    assert (setting.mode, setting.spec) == (mode, spec)


@pytest.mark.parametrize("argv", [["--judge", "gpt"], ["--judge", "nope:model"], ["--tasks-dir", "/no/such/dir"]])
def test_the_command_line_refuses_a_bad_judge_or_tasks_dir(argv: list[str], tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli_main(["--root", str(tmp_path), *argv])
    assert exc.value.code == 2 and argv[0] in capsys.readouterr().err


def test_reply_content_text_joins_text_blocks_and_drops_others() -> None:
    blocks = [{"type": "text", "text": '{"verdicts": '}, {"type": "image", "url": "x"}, {"type": "text", "text": "[]}"}]
    assert content_text(blocks) == '{"verdicts": []}'
    assert content_text(TextContent(type="text", text="hi")) == "hi"
    with pytest.raises(RuntimeError, match="judge unavailable: offline"):
        unavailable_judge("offline")("prompt")


# -- the evals scorer -----------------------------------------------------------------------------------------


def generated_episode(tmp_path: Path) -> tuple[dict[str, Any], list[ToolResult]]:
    task = generate_task(FAMILY, SEED, DIFFICULTY)
    path = tmp_path / "attempt.xlsx"
    reference_workbook(task).save(path)
    settings = {"family": FAMILY, "seed": SEED, "difficulty": DIFFICULTY, "file": str(path)}
    submit = ToolResult(call_id="c1", name="submit", content="", structured={
        "final": 100.0, "coverage": 1.0, "dimensions": {"accuracy": 100.0, "formula": 100.0, "format": 100.0}})
    return {"settings": settings}, [submit]


def test_the_evals_scorer_regrades_with_a_scripted_chat_model_as_the_judge(tmp_path: Path) -> None:
    episode, events = generated_episode(tmp_path)
    seen: list[str] = []

    def policy(messages: Any) -> str:
        seen.append(messages[-1].content)
        return verdict({"formula_readability": 0.0})

    metrics = plugin.score_episode(episode, events, judge=chat_judge(ScriptedChatModel(policy=policy)))
    assert metrics["checks"]["judge:formula_readability"] == 0.0 and metrics["judged"] is True
    assert metrics["regraded"] and metrics["final"] < 100.0 and len(seen) == 1 and "Criteria" in seen[0]


def test_the_evals_scorer_takes_its_judge_from_the_environment_and_refuses_an_unknown_spec(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    episode, events = generated_episode(tmp_path)
    monkeypatch.setenv(JUDGE_ENV, "sampling")  # a server-side setting: the scorer re-grades without a judge
    plain = plugin.score_episode(episode, events)
    monkeypatch.setenv(JUDGE_ENV, "nope:model")
    with pytest.raises(ValueError, match="unknown model spec"):
        plugin.score_episode(episode, events)
    assert plain["final"] == 100.0 and "judged" not in plain


def test_a_task_folder_episode_is_scored_from_the_grade_the_server_returned() -> None:
    submit = ToolResult(call_id="c1", name="submit", content="", structured={
        "final": 87.5, "coverage": 1.0, "dimensions": {"accuracy": 100.0, "formula": 80.0, "format": 60.0}})
    metrics = plugin.score_episode({"settings": {"folder": "case one", "file": "/gone.xlsx"}}, [submit])
    assert metrics["final"] == 87.5 and metrics["formula"] == 80.0 and not metrics["regraded"]
    assert not metrics["passed"]
    with pytest.raises(ValueError, match="never submitted"):
        plugin.score_episode({"settings": {"folder": "case one"}}, [])


def test_the_question_the_server_samples_is_the_prompt_the_grader_gives_its_judge(tmp_path: Path) -> None:
    from testbeds_sheets.grader import grade

    task = generate_task(FAMILY, SEED, DIFFICULTY)
    path = tmp_path / "attempt.xlsx"
    reference_workbook(task).save(path)
    asked: list[str] = []
    grade(task, path, reference_workbook(task), judge=lambda prompt: asked.append(prompt) or verdict())
    assert asked == [judge_prompt(task, path)]
