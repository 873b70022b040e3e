"""Chat models chosen by a spec string: deterministic scripted policies, replayed fakes, providers.

`scripted` models are the offline reference agents (DESIGN.md §7): a policy written as a chat model
that emits tool calls. Provider packages are optional extras and are imported only when asked for.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolCall, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import PrivateAttr

Policy = Callable[[Sequence[BaseMessage]], AIMessage | str | Awaitable[AIMessage | str]]
"""A scripted policy: the conversation so far -> the next assistant message (usually tool calls)."""

VALID_FORMS = "'scripted' (with policy=...), 'anthropic:<model>', 'openai:<model>', 'ollama:<model>'"

_CALL_ID = re.compile(r"^call_(\d+)$")


class ModelSpecError(ValueError):
    """A model spec that cannot be turned into a model (unknown form, missing policy, missing key)."""


class MissingExtraError(ImportError):
    """A provider's LangChain package is not installed."""


@dataclass(frozen=True)
class _Provider:
    module: str
    class_name: str
    extra: str
    key_env: str | None


_PROVIDERS: dict[str, _Provider] = {
    "anthropic": _Provider("langchain_anthropic", "ChatAnthropic", "anthropic", "ANTHROPIC_API_KEY"),
    "openai": _Provider("langchain_openai", "ChatOpenAI", "openai", "OPENAI_API_KEY"),
    "ollama": _Provider("langchain_ollama", "ChatOllama", "ollama", None),
}


def next_call_number(messages: Sequence[BaseMessage]) -> int:
    """One more than the largest `call_<n>` tool-call id in `messages` (1 if there is none).

    Derived from the conversation rather than a counter, so the same conversation always gets the
    same ids, and ids keep increasing after the graph trims a finished task (it keeps the last call).
    """
    largest = 0
    for message in messages:
        ids: list[str | None] = []
        if isinstance(message, AIMessage):
            ids = [call.get("id") for call in message.tool_calls]
        elif isinstance(message, ToolMessage):
            ids = [message.tool_call_id]
        for call_id in ids:
            match = _CALL_ID.match(call_id or "")
            if match:
                largest = max(largest, int(match.group(1)))
    return largest + 1


def with_call_ids(message: AIMessage, messages: Sequence[BaseMessage]) -> AIMessage:
    """`message` with every tool call lacking an id given a deterministic `call_<n>` id."""
    if all(call.get("id") for call in message.tool_calls):
        return message
    number = next_call_number(messages)
    calls = []
    for call in message.tool_calls:
        if not call.get("id"):
            call = {**call, "id": f"call_{number}"}
            number += 1
        calls.append(call)
    return message.model_copy(update={"tool_calls": calls})


def tool_call(name: str, args: dict[str, Any] | None = None, *, id: str | None = None) -> ToolCall:
    """A tool call for a policy's AIMessage; with no `id` the model assigns a deterministic `call_<n>`."""
    return ToolCall(name=name, args=dict(args or {}), id=id, type="tool_call")


def call_tools(*calls: ToolCall, content: str = "") -> AIMessage:
    """An assistant message making `calls`, e.g. `call_tools(tool_call("div", {"a": 1, "b": 2}))`."""
    return AIMessage(content=content, tool_calls=list(calls))


def _as_ai_message(reply: AIMessage | str) -> AIMessage:
    if isinstance(reply, str):
        return AIMessage(content=reply)
    if not isinstance(reply, AIMessage):
        raise TypeError(f"a policy must return an AIMessage or a str, not {type(reply).__name__}")
    return reply


class ScriptedChatModel(BaseChatModel):
    """A deterministic policy presented as a chat model.

    `bind_tools` returns the model itself: the policy already knows the tools it calls.
    """

    policy: Policy

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _generate(
        self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        reply = self.policy(messages)
        if inspect.isawaitable(reply):
            raise TypeError("this policy is asynchronous; call the model with ainvoke")
        return _result(with_call_ids(_as_ai_message(reply), messages))

    async def _agenerate(
        self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        # Overridden so a synchronous policy runs inline rather than on the default thread pool.
        reply = self.policy(messages)
        if inspect.isawaitable(reply):
            reply = await reply
        return _result(with_call_ids(_as_ai_message(reply), messages))

    def bind_tools(self, tools: Sequence[Any], *, tool_choice: str | None = None, **kwargs: Any) -> ScriptedChatModel:
        """Return the model itself; the policy decides which tools to call."""
        return self


class ReplayChatModel(BaseChatModel):
    """A fake LLM for tests: replays a fixed list of assistant messages, one per call, in order.

    Unlike a policy it does not look at the conversation, so it can replay LLM-like mistakes
    (unknown tools, bad arguments, unparsable calls) followed by recovery.
    """

    responses: list[AIMessage]
    _cursor: int = PrivateAttr(default=0)

    @property
    def _llm_type(self) -> str:
        return "replay"

    @property
    def calls(self) -> int:
        """How many responses have been replayed."""
        return self._cursor

    def _generate(
        self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        if self._cursor >= len(self.responses):
            raise RuntimeError(f"ReplayChatModel has replayed all {len(self.responses)} responses")
        reply = self.responses[self._cursor]
        self._cursor += 1
        return _result(with_call_ids(reply, messages))

    async def _agenerate(
        self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        return self._generate(messages, stop, run_manager, **kwargs)

    def bind_tools(self, tools: Sequence[Any], *, tool_choice: str | None = None, **kwargs: Any) -> ReplayChatModel:
        """Return the model itself; the replayed messages are fixed."""
        return self


def _result(message: AIMessage) -> ChatResult:
    return ChatResult(generations=[ChatGeneration(message=message)])


def make_model(spec: str, *, policy: Policy | None = None, **kwargs: Any) -> BaseChatModel:
    """Build a chat model from a spec: `scripted`, `anthropic:<model>`, `openai:<model>`, `ollama:<model>`.

    `scripted` needs `policy`. Provider models get `kwargs` (e.g. `temperature`) and need their extra
    installed (`pip install 'testbeds[anthropic]'`) and, for hosted providers, their API key in the
    environment (or an `api_key` keyword); both are checked before any network call.
    """
    spec = spec.strip()
    if spec == "scripted":
        if policy is None:
            raise ModelSpecError("the 'scripted' model needs a policy: make_model('scripted', policy=...)")
        if kwargs:
            raise ModelSpecError(f"the 'scripted' model takes no options besides policy; got {sorted(kwargs)}")
        return ScriptedChatModel(policy=policy)
    prefix, sep, name = spec.partition(":")
    provider = _PROVIDERS.get(prefix)
    if not sep or provider is None:
        raise ModelSpecError(f"unknown model spec {spec!r}; valid forms: {VALID_FORMS}")
    if not name:
        raise ModelSpecError(f"model spec {spec!r} names no model; use e.g. '{prefix}:<model>'")
    if policy is not None:
        raise ModelSpecError(f"policy= applies only to the 'scripted' model, not {spec!r}")
    try:
        module = importlib.import_module(provider.module)
    except ImportError as error:
        raise MissingExtraError(
            f"model {spec!r} needs the {provider.module.replace('_', '-')} package, which is not installed; "
            f"install it with: pip install 'testbeds[{provider.extra}]'"
        ) from error
    if provider.key_env is not None and not kwargs.get("api_key") and not os.environ.get(provider.key_env):
        raise ModelSpecError(
            f"model {spec!r} needs an API key: set the {provider.key_env} environment variable "
            "(or pass api_key=...)"
        )
    chat_class = getattr(module, provider.class_name)
    return chat_class(model=name, **kwargs)
