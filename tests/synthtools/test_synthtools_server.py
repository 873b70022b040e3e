"""The testbeds-synthtools MCP server: loading toolsets, generated tools over MCP, tasks, evaluator face."""

from __future__ import annotations

import json
import re
from pathlib import Path

import anyio
import pytest
from conftest import shared_data
from mcp import Client
from mcp.types import CreateMessageResult, TextContent
from testbeds_serving import ServeOptions
from testbeds_serving.testing import http_client, serve_http, stdio_client
from testbeds_synthtools.catalog import Catalog
from testbeds_synthtools.engine import Session
from testbeds_synthtools.generator import valid_arguments
from testbeds_synthtools.server import OWN_TOOLS, SynthtoolsSettings, build
from testbeds_synthtools.spec import Provenance, Tool, Toolset
from testbeds_synthtools.tasks import Task, reference_submission

pytestmark = pytest.mark.anyio

SMALL = "gen:healthcare:0:8"  # 8 tools: quick to generate
TASKS = "gen:healthcare:0:10"  # has simple tasks, feasible and infeasible


def server(**kwargs):
    return build(ServeOptions(**kwargs), SynthtoolsSettings())


async def load(client: Client, ref: str = SMALL) -> dict:
    result = await client.call_tool("load_toolset", {"toolset": ref})
    assert not result.is_error, result.content
    return result.structured_content


def text(result) -> str:
    return "\n".join(c.text for c in result.content if c.type == "text")


def simple_task(feasible: bool) -> tuple[int, Task]:
    tasks = Catalog.tier_tasks(Catalog().load(TASKS), "simple", 0)
    return next((i, t) for i, t in enumerate(tasks) if t.feasible == feasible)


def forecast_toolset(description: str = "Forecast for a city.") -> Toolset:
    """A hand-written toolset whose one tool synthesises its output (no state, no formula)."""
    return Toolset(id="manual.weather", field="weather", provenance=Provenance(origin="manual"), tools=[
        Tool(name="get_patient", title="Get Forecast", description=description,
             input_schema={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                           "additionalProperties": False},
             output_schema={"type": "object", "properties": {"city": {"type": "string"},
                                                             "summary": {"type": "string"}},
                            "required": ["city", "summary"], "additionalProperties": False})])


# ------------------------------------------------------------------------------------------ loading


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_loaded_tools_appear_in_the_tool_list_with_schema_and_annotations(mode: str) -> None:
    async with Client(server(), mode=mode) as client:
        before = {t.name for t in (await client.list_tools()).tools}
        loaded = await load(client)
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert before == OWN_TOOLS
    names = [t["name"] for t in loaded["tools"]]
    assert set(tools) == OWN_TOOLS | set(names)
    ts = Catalog().load(SMALL)
    get = tools["get_patient"]
    spec = ts.tool("get_patient")
    assert get.input_schema["required"] == ["handle", *spec.input_schema["required"]]
    assert get.input_schema["properties"]["patient_id"] == spec.input_schema["properties"]["patient_id"]
    assert get.input_schema["additionalProperties"] is False
    assert get.output_schema == spec.output_schema
    assert get.annotations.read_only_hint is True and get.annotations.open_world_hint is False
    assert tools["create_appointment"].annotations.read_only_hint is False


async def test_a_legacy_client_gets_a_tool_list_changed_notification() -> None:
    seen: list[str] = []

    async def on_message(message) -> None:
        seen.append(type(message).__name__)

    async with Client(server(), mode="legacy", message_handler=on_message) as client:
        # declared in the handshake, so clients that honour the capability act on the notification
        assert client.server_capabilities.tools.list_changed is True
        await load(client)
        with anyio.fail_after(2):
            while "ToolListChangedNotification" not in seen:
                await anyio.sleep(0.01)


async def test_a_2026_client_listening_gets_a_tool_list_changed_event() -> None:
    async with Client(server()) as client:
        assert client.protocol_version == "2026-07-28"
        async with client.listen(tools_list_changed=True) as events:
            await load(client)
            with anyio.fail_after(2):
                async for event in events:
                    assert type(event).__name__ == "ToolsListChanged"
                    break


async def test_list_toolsets_pages_generated_fields_and_rejects_an_unknown_field() -> None:
    async with Client(server()) as client:
        page = (await client.call_tool("list_toolsets", {"limit": 2, "offset": 1})).structured_content
        bad = await client.call_tool("list_toolsets", {"field": "helthcare"})
        corpus = await client.call_tool("list_toolsets", {"source": "corpus"})
    assert page["offset"] == 1 and len(page["items"]) == 2 and page["next_offset"] == 3
    assert all(i["ref"].startswith("gen:") for i in page["items"])
    assert bad.is_error and "healthcare" in text(bad)
    assert corpus.is_error and "--corpus" in text(corpus)


async def test_a_toolset_from_a_spec_file_with_a_clashing_name_is_served_under_a_prefix(tmp_path: Path) -> None:
    spec = tmp_path / "weather.json"
    spec.write_text(forecast_toolset().model_dump_json())
    async with Client(server()) as client:
        await load(client)  # serves a different get_patient first
        loaded = (await client.call_tool("load_toolset", {"spec_path": str(spec)})).structured_content
        names = {t.name for t in (await client.list_tools()).tools}
        exposed = loaded["tools"][0]["name"]
        ok = await client.call_tool(exposed, {"handle": loaded["handle"], "city": "Oslo"})
        wrong = await client.call_tool("get_patient", {"handle": loaded["handle"], "city": "Oslo"})
    assert exposed == "manual_weather__get_patient" and {"get_patient", exposed} <= names
    assert not ok.is_error and ok.structured_content["city"] == "Oslo"
    assert wrong.is_error and exposed in text(wrong)


async def test_an_invalid_spec_file_gets_a_clear_error(tmp_path: Path) -> None:
    spec = tmp_path / "broken.json"
    doc = json.loads(forecast_toolset().model_dump_json())
    doc["tools"][0]["name"] = "Not A Name"
    spec.write_text(json.dumps(doc))
    async with Client(server()) as client:
        bad = await client.call_tool("load_toolset", {"spec_path": str(spec)})
        missing = await client.call_tool("load_toolset", {"spec_path": str(tmp_path / "nope.json")})
        both = await client.call_tool("load_toolset", {"toolset": SMALL, "spec_path": str(spec)})
        still = await client.call_tool("list_toolsets", {"limit": 1})
    assert bad.is_error and "not a valid toolset" in text(bad) and "tools.0.name" in text(bad)
    assert missing.is_error and "no spec file" in text(missing)
    assert both.is_error and "not both" in text(both)
    assert not still.is_error


# ------------------------------------------------------------------------------------------ generated tools


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_generated_tool_calls_over_mcp_equal_the_engine_in_process(mode: str) -> None:
    ts = Catalog().load(SMALL)
    calls = [(t.name, valid_arguments(ts, t.name)) for t in ts.tools]
    calls += [("get_appointment", {"appointment_id": "APT-000999"}), ("get_patient", {"patient_id": 7})]
    engine = Session(ts, seed=ts.seed)
    expected = [engine.call(name, dict(args)) for name, args in calls]
    engine.close()
    async with Client(server(), mode=mode) as client:
        handle = (await load(client))["handle"]
        got = [await client.call_tool(name, {"handle": handle, **args}) for name, args in calls]
    assert any(not e.ok for e in expected) and any(e.ok for e in expected)
    for want, have in zip(expected, got, strict=True):
        assert have.is_error == (not want.ok)
        if want.ok:
            assert have.structured_content == want.result
        else:
            assert text(have) == f"Error {want.status} ({want.code}): {want.message}"


async def test_the_gateway_reports_its_first_failure_not_the_sdk_validation_text() -> None:
    ts = Catalog().load(SMALL)
    engine = Session(ts, seed=ts.seed)
    # An unknown parameter and a missing required one: the gateway checks unknown parameters first.
    want = engine.call("get_patient", {"nickname": "Zed"})
    engine.close()
    async with Client(server()) as client:
        handle = (await load(client))["handle"]
        direct = await client.call_tool("get_patient", {"handle": handle, "nickname": "Zed"})
        generic = await client.call_tool("call", {"handle": handle, "tool": "get_patient",
                                                  "arguments": {"nickname": "Zed"}})
    assert want.code == "unknown_parameter"
    for result in (direct, generic):
        assert result.is_error
        assert want.message in text(result) and "400" in text(result) and "unknown_parameter" in text(result)
        assert "validation error" not in text(result).lower()


async def test_a_failing_call_changes_nothing_and_the_server_keeps_serving() -> None:
    ts = Catalog().load(SMALL)
    args = valid_arguments(ts, "create_appointment")
    engine = Session(ts, seed=ts.seed)
    want = engine.call("create_appointment", dict(args))
    engine.close()
    async with Client(server()) as client:
        handle = (await load(client))["handle"]
        bad = await client.call_tool("create_appointment", {"handle": handle, **args, "patient_id": "PAT-999999"})
        good = await client.call_tool("create_appointment", {"handle": handle, **args})
    assert bad.is_error and "404" in text(bad)
    # The failed create moved no id counter and no clock: the next create equals a first create.
    assert good.structured_content == want.result


async def test_an_unknown_handle_or_a_missing_handle_gets_a_clear_error() -> None:
    async with Client(server()) as client:
        await load(client)
        unknown = await client.call_tool("get_patient", {"handle": "nope", "patient_id": "PAT-000001"})
        missing = await client.call_tool("get_patient", {"patient_id": "PAT-000001"})
        generic = await client.call_tool("call", {"handle": "nope", "tool": "get_patient"})
    assert unknown.is_error and "unknown session handle" in text(unknown) and "load_toolset" in text(unknown)
    assert missing.is_error and "handle" in text(missing)
    assert generic.is_error and "unknown session handle" in text(generic)


async def test_two_handles_on_one_toolset_are_independent_worlds() -> None:
    ts = Catalog().load(SMALL)
    args = valid_arguments(ts, "create_appointment")
    async with Client(server()) as client:
        first, second = (await load(client))["handle"], (await load(client))["handle"]
        created = await client.call_tool("create_appointment", {"handle": first, **args})
        new_id = created.structured_content["appointment_id"]
        one = await client.call_tool("get_appointment", {"handle": first, "appointment_id": new_id})
        two = await client.call_tool("get_appointment", {"handle": second, "appointment_id": new_id})
    assert not one.is_error and one.structured_content["appointment_id"] == new_id
    assert two.is_error and "404" in text(two)

# ------------------------------------------------------------------------------------------ tasks


async def test_replaying_the_reference_solution_over_mcp_passes() -> None:
    index, task = simple_task(feasible=True)
    async with Client(server()) as client:
        started = (await client.call_tool("start_task", {"toolset": TASKS, "tier": "simple",
                                                        "index": index})).structured_content
        handle = started["handle"]
        for call in task.reference_solution:
            result = await client.call_tool(call.tool, {"handle": handle, **call.arguments})
            assert not result.is_error, text(result)
        sub = reference_submission(task)
        graded = await client.call_tool("submit_task", {"handle": handle, "answer": sub.answer})
        grade = json.loads((await client.read_resource(f"synthtools://task/{handle}/grade")).contents[0].text)
        after = await client.call_tool(task.reference_solution[0].tool,
                                       {"handle": handle, **task.reference_solution[0].arguments})
    assert started["instruction"] == task.instruction
    assert set(started["tools_allowed"]) == set(task.tools_allowed)
    assert graded.structured_content["passed"] is True, graded.structured_content
    assert grade["passed"] is True and "task_id" not in grade  # a twin's id would name it infeasible
    assert after.is_error and "ended" in text(after)


async def test_an_empty_submission_of_a_feasible_task_fails_with_reasons() -> None:
    index, _ = simple_task(feasible=True)
    async with Client(server()) as client:
        handle = (await client.call_tool("start_task", {"toolset": TASKS, "tier": "simple",
                                                       "index": index})).structured_content["handle"]
        graded = (await client.call_tool("submit_task", {"handle": handle})).structured_content
    assert graded["passed"] is False and graded["reasons"]


async def test_an_infeasible_task_passes_only_with_an_infeasible_report() -> None:
    index, _ = simple_task(feasible=False)
    async with Client(server()) as client:
        outcomes = []
        for infeasible in (False, True):
            handle = (await client.call_tool("start_task", {"toolset": TASKS, "tier": "simple",
                                                           "index": index})).structured_content["handle"]
            graded = await client.call_tool("submit_task", {"handle": handle, "infeasible": infeasible,
                                                           "reason": "a step breaks a rule"})
            outcomes.append(graded.structured_content["passed"])
    assert outcomes == [False, True]


async def test_a_sandbox_handle_cannot_be_submitted_and_a_bad_tier_or_index_is_explained() -> None:
    async with Client(server()) as client:
        handle = (await load(client))["handle"]
        sandbox = await client.call_tool("submit_task", {"handle": handle})
        index = await client.call_tool("start_task", {"toolset": TASKS, "tier": "simple", "index": 99})
    assert sandbox.is_error and "start_task" in text(sandbox)
    assert index.is_error and "out of range" in text(index)


async def test_nothing_hidden_reaches_the_agent_without_the_evaluator_flag() -> None:
    index, task = simple_task(feasible=True)
    async with Client(server()) as client:
        started = await client.call_tool("start_task", {"toolset": TASKS, "tier": "simple", "index": index})
        handle = started.structured_content["handle"]
        templates = [t.uri_template for t in (await client.list_resource_templates()).resource_templates]
        resources = (await client.list_resources()).resources
        shown = json.dumps(started.structured_content) + text(started)
        with pytest.raises(Exception):
            await client.read_resource(f"synthtools://task/{handle}/solution")
    assert templates == ["synthtools://task/{handle}/grade"] and resources == []
    assert task.id not in shown and '"feasible"' not in shown and "infeasible_kind" not in shown
    assert "reference" not in shown and "expected" not in shown
    created = [c for c in task.reference_solution if c.tool.startswith("create_")]
    for call in created:  # values only the solution holds (the instruction states them in its own words)
        assert json.dumps(call.arguments, sort_keys=True) not in shown


async def test_the_evaluator_sees_the_solution_the_diffs_and_an_audit() -> None:
    index, task = simple_task(feasible=True)
    async with Client(server(evaluator=True)) as client:
        handle = (await client.call_tool("start_task", {"toolset": TASKS, "tier": "simple",
                                                       "index": index})).structured_content["handle"]
        for call in task.reference_solution:
            await client.call_tool("call", {"handle": handle, "tool": call.tool, "arguments": call.arguments})
        solution = json.loads((await client.read_resource(f"synthtools://task/{handle}/solution")).contents[0].text)
        diff = json.loads((await client.read_resource(f"synthtools://task/{handle}/diff")).contents[0].text)
        audit = json.loads((await client.read_resource(
            f"synthtools://toolset/{task.toolset_id}/audit")).contents[0].text)
    assert solution["task_id"] == task.id and solution["feasible"] is True
    assert [c["tool"] for c in solution["reference_solution"]] == [c.tool for c in task.reference_solution]
    assert set(diff["expected"]) == set(task.expected_diff) and set(diff["actual"]) == set(task.expected_diff)
    assert audit["toolset_id"] == task.toolset_id and audit["verdicts"].get("correct") == audit["n_tools"]


async def test_the_agent_sees_reasons_and_only_the_evaluator_sees_the_grade_details() -> None:
    index, _ = simple_task(feasible=True)
    async with Client(server(evaluator=True)) as client:
        handle = (await client.call_tool("start_task", {"toolset": TASKS, "tier": "simple",
                                                       "index": index})).structured_content["handle"]
        submitted = (await client.call_tool("submit_task", {"handle": handle})).structured_content
        grade = json.loads((await client.read_resource(f"synthtools://task/{handle}/grade")).contents[0].text)
        diff = json.loads((await client.read_resource(f"synthtools://task/{handle}/diff")).contents[0].text)
    assert not submitted["passed"] and submitted["reasons"] and "details" not in submitted
    assert grade["reasons"] == submitted["reasons"] and "details" not in grade
    assert diff["grade"]["details"] and diff["grade"]["reasons"] == submitted["reasons"]


# ------------------------------------------------------------------------------------------ LLM mode


def forecast_reply(ctx, params) -> CreateMessageResult:
    return CreateMessageResult(role="assistant", model="scripted", stop_reason="endTurn",
                               content=TextContent(type="text", text=json.dumps(
                                   {"result": {"city": "Oslo", "summary": "sunny"}})))


async def test_llm_mode_samples_the_client_then_replays_from_the_cache(tmp_path: Path) -> None:
    spec = tmp_path / "weather.json"
    spec.write_text(forecast_toolset().model_dump_json())
    asked: list[str] = []

    async def sampling(ctx, params) -> CreateMessageResult:
        asked.append(params.messages[-1].content.text)
        return forecast_reply(ctx, params)

    def llm_server(mode: str):
        return build(ServeOptions(), SynthtoolsSettings(simulator="llm", sim_cache=tmp_path / "cache.db",
                                                        sim_cache_mode=mode))

    async with Client(llm_server("record"), mode="legacy", sampling_callback=sampling) as client:
        handle = (await client.call_tool("load_toolset", {"spec_path": str(spec)})).structured_content["handle"]
        live = await client.call_tool("get_patient", {"handle": handle, "city": "Oslo"})
    async with Client(llm_server("replay")) as client:
        handle = (await client.call_tool("load_toolset", {"spec_path": str(spec)})).structured_content["handle"]
        replayed = await client.call_tool("get_patient", {"handle": handle, "city": "Oslo"})
        miss = await client.call_tool("get_patient", {"handle": handle, "city": "Rome"})
    assert len(asked) == 1 and "Oslo" in asked[0]
    assert live.structured_content == replayed.structured_content == {"city": "Oslo", "summary": "sunny"}
    assert miss.is_error and "replay_miss" in text(miss)


# ------------------------------------------------------------------------------------------ transports


async def test_the_stdio_server_loads_a_toolset_and_serves_its_tools() -> None:
    async with stdio_client("testbeds_synthtools", mode="legacy") as client:
        handle = (await load(client))["handle"]
        names = {t.name for t in (await client.list_tools()).tools}
        got = await client.call_tool("get_patient", {"handle": handle, "patient_id": "PAT-000001"})
    assert "get_patient" in names
    assert not got.is_error and got.structured_content["patient_id"] == "PAT-000001"


async def test_http_clients_of_one_process_share_tool_lists_but_not_worlds() -> None:
    ts = Catalog().load(SMALL)
    args = valid_arguments(ts, "create_appointment")
    async with serve_http(server(transport="http")) as url:
        async with http_client(url) as first, http_client(url, mode="legacy") as second:
            mine = (await load(first))["handle"]
            seen_by_second = {t.name for t in (await second.list_tools()).tools}
            theirs = (await load(second))["handle"]
            created = await first.call_tool("create_appointment", {"handle": mine, **args})
            new_id = created.structured_content["appointment_id"]
            two = await second.call_tool("get_appointment", {"handle": theirs, "appointment_id": new_id})
    assert "create_appointment" in seen_by_second
    assert two.is_error and "404" in text(two)


def test_the_corpus_lists_and_loads_when_configured() -> None:
    root = shared_data("synthtools")
    if not (root / "tool_json").is_dir():
        pytest.skip("SynthTools corpus not available")
    catalog = Catalog(root, reserved=OWN_TOOLS)
    page = catalog.list_toolsets("corpus", field="ecommerce_and_retail", limit=500)
    assert any(i.ref == "ecommerce_and_retail.43" for i in page.items)
    toolset = catalog.load("ecommerce_and_retail.43")
    assert toolset.provenance.curated and "refund_calculator" in {t.name for t in toolset.tools}


# ------------------------------------------------------------------------------------------ CLI and README


def test_the_cli_refuses_replay_without_a_cache_and_a_corpus_without_tool_json(tmp_path: Path) -> None:
    from testbeds_synthtools.__main__ import main

    for argv in (["--simulator", "llm", "--sim-cache-mode", "replay"], ["--corpus", str(tmp_path)]):
        with pytest.raises(SystemExit) as stopped:
            main(argv)
        assert stopped.value.code == 2


async def test_the_readme_example_runs_as_written(capsys: pytest.CaptureFixture[str]) -> None:
    readme = Path(__file__).resolve().parents[2] / "servers" / "testbeds_synthtools" / "README.md"
    block = re.search(r"## Example\n\n```python\n(.*?)```", readme.read_text(), re.S)
    assert block is not None
    lines = block.group(1).splitlines()
    imports = [line for line in lines if line.startswith(("from ", "import "))]
    body = [line for line in lines if line not in imports]
    source = "\n".join(imports) + "\n\nasync def example():\n" + "\n".join("    " + line for line in body) + "\n"
    namespace: dict = {}
    exec(compile(source, str(readme), "exec"), namespace)
    await namespace["example"]()
    out = capsys.readouterr().out
    assert "Error 400 (unknown_parameter): Unknown parameter: nickname" in out


# ------------------------------------------------------------------------------------------ hostile arguments


@pytest.mark.parametrize("arguments, problem", [
    ([1, 2], "arguments must be an object, got array"),
    (5, "arguments must be an object, got number"),
    (True, "arguments must be an object, got boolean"),
    ("[1, 2]", "arguments must be an object, got array"),
    ("not json", "not valid JSON"),
    ('{"patient_id": ' + "9" * 5000 + "}", "not usable JSON"),
    ("[" * 100_000 + "]" * 100_000, "nests deeper than"),
    ('{"patient_id": ' + "[" * 40 + "]" * 40 + "}", "nest deeper than"),
])
async def test_call_answers_unusable_arguments_with_the_gateways_error_not_an_internal_one(
        arguments: object, problem: str) -> None:
    async with Client(server()) as client:
        handle = (await load(client))["handle"]
        result = await client.call_tool("call", {"handle": handle, "tool": "get_patient", "arguments": arguments})
        still = await client.call_tool("call", {"handle": handle, "tool": "get_patient",
                                                "arguments": {"patient_id": "PAT-000001"}})
    assert result.is_error
    assert text(result).startswith("Error 400 (invalid_arguments): Invalid arguments: ")
    assert problem in text(result) and "internal error" not in text(result) and "validation error" not in text(result)
    assert result.meta["testbeds/synthtools"]["code"] == "invalid_arguments"
    assert not still.is_error


async def test_call_with_a_tool_that_is_not_a_string_gets_the_unknown_tool_error() -> None:
    async with Client(server()) as client:
        handle = (await load(client))["handle"]
        result = await client.call_tool("call", {"handle": handle, "tool": 5, "arguments": {}})
    assert result.is_error and text(result).startswith("Error 404 (unknown_tool): Unknown tool: 5.")


async def test_engine_calls_run_off_the_event_loop_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    threads: list[bool] = []
    original = Session.call

    def recording_call(self, tool_name, arguments):
        threads.append(threading.current_thread() is threading.main_thread())
        return original(self, tool_name, arguments)

    monkeypatch.setattr(Session, "call", recording_call)
    async with Client(server()) as client:
        handle = (await load(client))["handle"]
        direct = await client.call_tool("get_patient", {"handle": handle, "patient_id": "PAT-000001"})
        routed = await client.call_tool("call", {"handle": handle, "tool": "get_patient",
                                                 "arguments": {"patient_id": "PAT-000001"}})
    assert not direct.is_error and direct.structured_content == routed.structured_content
    assert threads == [False, False]


# ------------------------------------------------------------------------------------------ LLM through a provider


def scripted_forecaster(asked: list[str]):
    from testbeds_agents.models import make_model

    def policy(messages) -> str:
        asked.append(messages[-1].content)
        assert messages[0].type == "system"
        return json.dumps({"result": {"city": "Oslo", "summary": "drizzle"}})

    return make_model("scripted", policy=policy)


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_llm_mode_uses_the_configured_model_when_the_client_cannot_sample(tmp_path: Path, mode: str) -> None:
    spec = tmp_path / "weather.json"
    spec.write_text(forecast_toolset().model_dump_json())
    asked: list[str] = []
    srv = build(ServeOptions(), SynthtoolsSettings(simulator="llm"), sim_chat_model=scripted_forecaster(asked))
    async with Client(srv, mode=mode) as client:
        handle = (await client.call_tool("load_toolset", {"spec_path": str(spec)})).structured_content["handle"]
        result = await client.call_tool("get_patient", {"handle": handle, "city": "Oslo"})
    assert result.structured_content == {"city": "Oslo", "summary": "drizzle"}
    assert len(asked) == 1 and "Oslo" in asked[0] and "schema" in asked[0]


async def test_llm_mode_prefers_sampling_on_a_legacy_client_and_the_model_on_a_2026_one(tmp_path: Path) -> None:
    spec = tmp_path / "weather.json"
    spec.write_text(forecast_toolset().model_dump_json())
    asked: list[str] = []
    sampled: list[str] = []

    async def sampling(ctx, params) -> CreateMessageResult:
        sampled.append(params.messages[-1].content.text)
        return forecast_reply(ctx, params)

    srv = build(ServeOptions(), SynthtoolsSettings(simulator="llm"), sim_chat_model=scripted_forecaster(asked))
    results = {}
    for mode in ("legacy", "auto"):
        async with Client(srv, mode=mode, sampling_callback=sampling) as client:
            handle = (await client.call_tool("load_toolset", {"spec_path": str(spec)})).structured_content["handle"]
            results[mode] = (await client.call_tool("get_patient", {"handle": handle, "city": "Oslo"}))
    assert results["legacy"].structured_content == {"city": "Oslo", "summary": "sunny"}  # the client's model
    assert results["auto"].structured_content == {"city": "Oslo", "summary": "drizzle"}  # the configured one
    assert len(sampled) == 1 and len(asked) == 1


def test_the_sim_model_setting_comes_from_the_flag_or_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from testbeds_synthtools.__main__ import _suite_parser

    monkeypatch.setenv("TESTBEDS_SYNTHTOOLS_SIM_MODEL", "ollama:llama3")
    assert SynthtoolsSettings.from_env().sim_model == "ollama:llama3"
    args = _suite_parser("testbeds-synthtools").parse_args(["--simulator", "llm", "--sim-model", "openai:gpt-x"])
    assert args.sim_model == "openai:gpt-x"


def test_the_cli_refuses_an_unusable_sim_model() -> None:
    from testbeds_synthtools.__main__ import main

    with pytest.raises(SystemExit) as exc:
        main(["--simulator", "llm", "--sim-model", "nonsense"])
    assert exc.value.code == 2
