"""generate_toolset: an LLM writes a toolset (through MCP sampling or the configured model); a valid one is kept
under llm:<sha8> and loaded like load_toolset, an invalid one is rejected with its reasons and nothing is loaded."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.types import CreateMessageRequestParams, CreateMessageResult, TextContent
from testbeds_serving import ServeOptions
from testbeds_synthtools.generator import generate_toolset, valid_arguments
from testbeds_synthtools.server import GENERATION_MAX_TOKENS, OWN_TOOLS, SynthtoolsSettings, build

pytestmark = pytest.mark.anyio

SUB_FIELDS = ["Outpatient clinics", "Hospital wards", "Telehealth"]
TASKS = ["Book follow-up visits", "Look up patient records"]


def toolset_answer() -> str:
    """A sound toolset as a model might write it: a small generated one, fenced like a chat reply."""
    spec = json.loads(generate_toolset("healthcare", 0, n_tools=4).model_dump_json())
    return f"Here it is:\n```json\n{json.dumps(spec)}\n```"


def invalid_answer() -> str:
    """Toolset-shaped JSON that no repair can fix: a seed row whose integer column holds text."""
    spec = json.loads(generate_toolset("healthcare", 0, n_tools=4).model_dump_json())
    table = spec["state_schema"]["tables"][0]
    column = next(c for c, col in table["columns"].items() if col["type"] == "string" and c != table["key"])
    table["columns"][column]["type"] = "integer"
    return json.dumps(spec)


class Script:
    """Scripted answers per hierarchy prompt (sub-fields, tasks, toolset, repair), with a log of the prompts."""

    def __init__(self, toolset: str, repair: str | None = None) -> None:
        self.toolset = toolset
        self.repair = toolset if repair is None else repair
        self.prompts: list[str] = []
        self.max_tokens: list[int] = []

    def answer(self, prompt: str) -> str:
        self.prompts.append(prompt)
        if "distinct sub-fields" in prompt:
            return json.dumps(SUB_FIELDS)
        if "distinct, concrete tasks" in prompt:
            return json.dumps(TASKS)
        if prompt.startswith("Your previous answer was invalid"):
            return self.repair
        assert prompt.startswith("Design a toolset"), prompt
        return self.toolset

    async def sampling(self, ctx: Any, params: CreateMessageRequestParams) -> CreateMessageResult:
        self.max_tokens.append(params.max_tokens)
        text = self.answer(params.messages[-1].content.text)
        return CreateMessageResult(role="assistant", model="scripted", stop_reason="endTurn",
                                   content=TextContent(type="text", text=text))

    def chat_model(self) -> Any:
        from testbeds_agents.models import make_model

        def policy(messages) -> str:
            assert messages[0].type == "system"
            return self.answer(messages[-1].content)

        return make_model("scripted", policy=policy)


def text(result) -> str:
    return "\n".join(c.text for c in result.content if c.type == "text")


def server(state_dir: Path | None = None, chat_model: Any = None):
    return build(ServeOptions(), SynthtoolsSettings(state_dir=state_dir), sim_chat_model=chat_model)


async def tool_names(client: Client) -> set[str]:
    return {t.name for t in (await client.list_tools()).tools}


async def test_a_sampled_toolset_is_validated_kept_and_loaded_with_working_tools() -> None:
    script = Script(toolset_answer())
    expected = generate_toolset("healthcare", 0, n_tools=4)
    async with Client(server(), mode="legacy", sampling_callback=script.sampling) as client:
        assert await tool_names(client) == OWN_TOOLS
        result = await client.call_tool("generate_toolset", {"field": "healthcare", "seed": 3})
        assert not result.is_error, text(result)
        out = result.structured_content
        listed = await tool_names(client)
        name = "get_patient"
        call = await client.call_tool(name, {"handle": out["handle"], **valid_arguments(expected, name)})
        again = (await client.call_tool("load_toolset", {"toolset": out["ref"]})).structured_content
        page = (await client.call_tool("list_toolsets", {"source": "llm"})).structured_content
    sha = re.fullmatch(r"llm:([0-9a-f]{8})", out["ref"]).group(1)
    assert out["toolset_id"] == f"llm.healthcare.{sha}"
    assert out["sub_field"] in SUB_FIELDS and out["task"] in TASKS
    assert {t["name"] for t in out["tools"]} == {t.name for t in expected.tools} == listed - OWN_TOOLS
    assert not call.is_error and call.structured_content["patient_id"] == "PAT-000001"
    assert again["toolset_id"] == out["toolset_id"] and again["handle"] != out["handle"]
    assert [item["ref"] for item in page["items"]] == [out["ref"]]
    assert len(script.prompts) == 3  # sub-fields, tasks, toolset: valid at the first try
    assert script.max_tokens == [GENERATION_MAX_TOKENS] * 3


async def test_a_given_sub_field_and_task_skip_the_model_s_proposals() -> None:
    script = Script(toolset_answer())
    async with Client(server(), mode="legacy", sampling_callback=script.sampling) as client:
        out = (await client.call_tool("generate_toolset", {"field": "healthcare", "sub_field": "Dermatology",
                                                           "task": "Triage skin photos"})).structured_content
    assert (out["sub_field"], out["task"]) == ("Dermatology", "Triage skin photos")
    assert len(script.prompts) == 1 and "Triage skin photos" in script.prompts[0]


@pytest.mark.parametrize("answer", ["I am sorry, I cannot design tools today.", invalid_answer()],
                         ids=["not json", "invalid spec"])
async def test_an_invalid_answer_is_rejected_with_its_reasons_and_nothing_is_loaded(answer: str) -> None:
    script = Script(answer)
    async with Client(server(), mode="legacy", sampling_callback=script.sampling) as client:
        result = await client.call_tool("generate_toolset", {"field": "healthcare"})
        listed = await tool_names(client)
        page = (await client.call_tool("list_toolsets", {"source": "llm"})).structured_content
    message = text(result)
    assert result.is_error and "rejected" in message and "Nothing was loaded" in message
    assert ("no JSON value" in message) if answer.startswith("I am") else ("is not a integer" in message)
    assert script.prompts[-1].startswith("Your previous answer was invalid")  # re-asked once, then rejected
    assert listed == OWN_TOOLS and page["items"] == []


async def test_a_bad_first_answer_repaired_on_the_second_try_is_served() -> None:
    script = Script("not a toolset", repair=toolset_answer())
    async with Client(server(), mode="legacy", sampling_callback=script.sampling) as client:
        result = await client.call_tool("generate_toolset", {"field": "healthcare", "sub_field": "Clinics",
                                                             "task": "Book visits"})
    assert not result.is_error, text(result)
    assert len(script.prompts) == 2 and "no JSON value" in script.prompts[1]


async def test_the_configured_model_writes_the_toolset_when_the_client_cannot_sample() -> None:
    script = Script(toolset_answer())
    async with Client(server(chat_model=script.chat_model())) as client:  # 2026-07-28, no sampling callback
        result = await client.call_tool("generate_toolset", {"field": "healthcare"})
        assert not result.is_error, text(result)
        listed = await tool_names(client)
    assert {t["name"] for t in result.structured_content["tools"]} <= listed
    assert len(script.prompts) == 3


async def test_without_sampling_or_a_configured_model_the_tool_says_what_is_missing() -> None:
    async with Client(server(), mode="legacy") as client:
        result = await client.call_tool("generate_toolset", {"field": "healthcare"})
        listed = await tool_names(client)
    assert result.is_error and "sampling" in text(result) and "--sim-model" in text(result)
    assert listed == OWN_TOOLS


async def test_the_same_answer_twice_gives_one_kept_toolset() -> None:
    script = Script(toolset_answer())
    async with Client(server(), mode="legacy", sampling_callback=script.sampling) as client:
        first = (await client.call_tool("generate_toolset", {"field": "healthcare"})).structured_content
        second = (await client.call_tool("generate_toolset", {"field": "healthcare", "seed": 0,
                                                              "task": "Another task"})).structured_content
        page = (await client.call_tool("list_toolsets", {"source": "llm"})).structured_content
    assert first["duplicate_of"] is None and second["duplicate_of"] == first["ref"]
    assert second["ref"] == first["ref"] and second["handle"] != first["handle"]
    assert page["total"] == 1


async def test_a_kept_toolset_is_written_under_the_state_dir_and_loads_in_a_new_server(tmp_path: Path) -> None:
    script = Script(toolset_answer())
    async with Client(server(tmp_path), mode="legacy", sampling_callback=script.sampling) as client:
        out = (await client.call_tool("generate_toolset", {"field": "healthcare"})).structured_content
    sha = out["ref"].removeprefix("llm:")
    saved = json.loads((tmp_path / "llm_toolsets" / f"{sha}.json").read_text())
    async with Client(server(tmp_path)) as client:
        loaded = await client.call_tool("load_toolset", {"toolset": out["ref"]})
        missing = await client.call_tool("load_toolset", {"toolset": "llm:0000abcd"})
    assert saved["id"] == out["toolset_id"] and saved["task"] == out["task"]
    assert loaded.structured_content["toolset_id"] == out["toolset_id"]
    assert missing.is_error and "generate_toolset" in text(missing)
