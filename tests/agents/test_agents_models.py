"""Model specs: scripted policies, the replaying fake LLM, and provider construction and errors."""

from __future__ import annotations

import sys
import types
from collections.abc import Sequence

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from testbeds_agents import (
    MissingExtraError,
    ModelSpecError,
    ReplayChatModel,
    ScriptedChatModel,
    call_tools,
    make_model,
    tool_call,
)

pytestmark = pytest.mark.anyio


class FakeChat:
    """Stands in for a provider's chat class; records how it was built."""

    def __init__(self, **kwargs: object) -> None:
        self.kwargs = kwargs


def fake_provider(monkeypatch: pytest.MonkeyPatch, module: str, class_name: str) -> None:
    fake = types.ModuleType(module)
    setattr(fake, class_name, FakeChat)
    monkeypatch.setitem(sys.modules, module, fake)


def test_scripted_needs_a_policy():
    with pytest.raises(ModelSpecError, match=r"needs a policy: make_model\('scripted', policy=\.\.\.\)"):
        make_model("scripted")


def test_scripted_binds_tools_to_itself_and_numbers_tool_calls_deterministically():
    model = make_model("scripted", policy=lambda m: call_tools(tool_call("a"), tool_call("b", id="mine")))
    assert isinstance(model, ScriptedChatModel)
    assert model.bind_tools([]) is model
    first = model.invoke([HumanMessage("go")])
    assert [c["id"] for c in first.tool_calls] == ["call_1", "mine"]
    history = [HumanMessage("go"), first, ToolMessage("x", tool_call_id="call_1")]
    again = model.invoke(history)
    assert [c["id"] for c in again.tool_calls] == ["call_2", "mine"]
    assert model.invoke(history).tool_calls == again.tool_calls


def test_a_policy_may_answer_with_plain_text():
    reply = make_model("scripted", policy=lambda m: "the answer is 4").invoke([HumanMessage("2+2?")])
    assert isinstance(reply, AIMessage) and reply.content == "the answer is 4" and not reply.tool_calls


async def test_an_asynchronous_policy_works_through_ainvoke():
    async def policy(messages: Sequence[BaseMessage]) -> AIMessage:
        return call_tools(tool_call("reveal"))

    reply = await make_model("scripted", policy=policy).ainvoke([HumanMessage("go")])
    assert reply.tool_calls[0]["name"] == "reveal"


def test_the_replay_model_replays_in_order_then_says_it_ran_out():
    model = ReplayChatModel(responses=[call_tools(tool_call("a")), AIMessage("done")])
    assert model.invoke([HumanMessage("x")]).tool_calls[0]["id"] == "call_1"
    assert model.invoke([HumanMessage("x")]).content == "done"
    with pytest.raises(RuntimeError, match="replayed all 2 responses"):
        model.invoke([HumanMessage("x")])


@pytest.mark.parametrize("spec", ["gpt-4o", "claude:opus", "scripted:bayes", "", "google:gemini"])
def test_an_unknown_spec_lists_the_valid_forms(spec: str):
    with pytest.raises(ModelSpecError, match=r"unknown model spec .*'anthropic:<model>', 'openai:<model>', 'ollama:<model>'"):
        make_model(spec)


def test_a_provider_spec_without_a_model_name_is_rejected():
    with pytest.raises(ModelSpecError, match=r"names no model; use e.g. 'openai:<model>'"):
        make_model("openai:")


@pytest.mark.parametrize(
    ("spec", "module", "extra"),
    [
        ("anthropic:claude-sonnet-4-5", "langchain_anthropic", "anthropic"),
        ("openai:gpt-4o-mini", "langchain_openai", "openai"),
        ("ollama:llama3.2", "langchain_ollama", "ollama"),
    ],
)
def test_a_missing_provider_package_names_the_extra_to_install(
    monkeypatch: pytest.MonkeyPatch, spec: str, module: str, extra: str
):
    monkeypatch.setitem(sys.modules, module, None)  # makes the import fail even if it is installed
    with pytest.raises(MissingExtraError, match=rf"pip install 'testbeds\[{extra}\]'"):
        make_model(spec)


@pytest.mark.parametrize(
    ("spec", "module", "class_name", "key"),
    [
        ("anthropic:claude-sonnet-4-5", "langchain_anthropic", "ChatAnthropic", "ANTHROPIC_API_KEY"),
        ("openai:gpt-4o-mini", "langchain_openai", "ChatOpenAI", "OPENAI_API_KEY"),
    ],
)
def test_a_missing_api_key_is_reported_before_the_model_is_built(
    monkeypatch: pytest.MonkeyPatch, spec: str, module: str, class_name: str, key: str
):
    fake_provider(monkeypatch, module, class_name)
    monkeypatch.delenv(key, raising=False)
    with pytest.raises(ModelSpecError, match=f"set the {key} environment variable"):
        make_model(spec)


@pytest.mark.parametrize(
    ("spec", "module", "class_name", "key", "model"),
    [
        ("anthropic:claude-sonnet-4-5", "langchain_anthropic", "ChatAnthropic", "ANTHROPIC_API_KEY",
         "claude-sonnet-4-5"),
        ("openai:gpt-4o-mini", "langchain_openai", "ChatOpenAI", "OPENAI_API_KEY", "gpt-4o-mini"),
        ("ollama:llama3.2:1b", "langchain_ollama", "ChatOllama", None, "llama3.2:1b"),
    ],
)
def test_a_provider_model_is_built_with_the_model_name_and_options(
    monkeypatch: pytest.MonkeyPatch, spec: str, module: str, class_name: str, key: str | None, model: str
):
    fake_provider(monkeypatch, module, class_name)
    if key:
        monkeypatch.setenv(key, "sk-test")
    built = make_model(spec, temperature=0)
    assert isinstance(built, FakeChat)
    assert built.kwargs == {"model": model, "temperature": 0}


def test_an_api_key_argument_satisfies_the_key_check(monkeypatch: pytest.MonkeyPatch):
    fake_provider(monkeypatch, "langchain_openai", "ChatOpenAI")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert make_model("openai:gpt-4o-mini", api_key="sk-test").kwargs["api_key"] == "sk-test"


def test_a_policy_given_to_a_provider_spec_is_rejected(monkeypatch: pytest.MonkeyPatch):
    with pytest.raises(ModelSpecError, match="policy= applies only to the 'scripted' model"):
        make_model("ollama:llama3.2", policy=lambda m: AIMessage("x"))
