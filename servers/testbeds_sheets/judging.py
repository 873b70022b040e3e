"""Adapters that turn a chat function into the grader's optional judge (a callable `prompt -> reply text`).

The judge scores the rubric's subjective criteria (grader/judge.py); it is off by default and never needed
offline. Its sources:

- a LangChain chat model (`chat_judge`, `provider_judge`): `--judge anthropic:<model>` on the server, or
  TESTBEDS_SHEETS_JUDGE=<provider:model> for the evals scorer;
- MCP sampling (`--judge sampling`): the client's model must answer before the submit tool's body runs (on
  2026-07-28 connections the answer arrives with the client's retry of the call), so the server builds the
  question first with `judge_prompt` and grades with `answered_judge(reply)`;
- a reason the judge could not be asked (`unavailable_judge`): the grader records it in the report's `judge`
  field and the grade stays deterministic.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from openpyxl import Workbook
from pydantic import BaseModel

from .tasks.model import Task

Chat = Callable[[str], str]
"""The grader's judge: the judge prompt -> the model's reply text."""

JUDGE_ENV = "TESTBEDS_SHEETS_JUDGE"
JudgeMode = Literal["off", "sampling", "provider"]


class JudgeSetting(BaseModel):
    """Which judge grades the subjective criteria: none, the MCP client's model, or a provider model."""

    mode: JudgeMode = "off"
    spec: str | None = None  # provider:model when mode is 'provider'

    @property
    def label(self) -> str:
        return self.spec if self.mode == "provider" and self.spec else self.mode


def parse_judge_setting(value: str | None) -> JudgeSetting:
    """'off' (or empty), 'sampling', or a chat model spec 'provider:model' (e.g. 'anthropic:claude-x').

    Raises ValueError for anything else."""
    text = (value or "").strip()
    if text.lower() in ("", "off", "none"):
        return JudgeSetting()
    if text.lower() == "sampling":
        return JudgeSetting(mode="sampling")
    provider, sep, model = text.partition(":")
    if not sep or not provider or not model:
        raise ValueError(f"judge {text!r}: use 'off', 'sampling' (the MCP client's model) or a chat model spec "
                         "'provider:model', e.g. 'anthropic:claude-x'")
    return JudgeSetting(mode="provider", spec=text)


def content_text(content: Any) -> str:
    """The text of a chat reply's content: a string, a text block, or a list of blocks (other kinds dropped)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(content_text(part) for part in content)
    if isinstance(content, dict):
        return str(content.get("text", "")) if content.get("type", "text") == "text" else ""
    text = getattr(content, "text", None)  # MCP TextContent, LangChain messages
    return text if isinstance(text, str) and getattr(content, "type", "text") == "text" else ""


def chat_judge(model: Any) -> Chat:
    """The judge asking a LangChain chat model: prompt -> `model.invoke(prompt)`'s text content."""

    def chat(prompt: str) -> str:
        return content_text(model.invoke(prompt).content)

    return chat


def provider_judge(spec: str, **kwargs: Any) -> Chat:
    """The judge asking the chat model `spec` ('anthropic:<model>', 'openai:<model>', 'ollama:<model>').

    Raises testbeds_agents' ModelSpecError / MissingExtraError (a ValueError / ImportError) before any network
    call when the spec is malformed, its package is not installed or its API key is not set."""
    from testbeds_agents import make_model

    if spec.strip() == "scripted":
        raise ValueError("a scripted judge needs a policy: use chat_judge(make_model('scripted', policy=...))")
    return chat_judge(make_model(spec, **kwargs))


def answered_judge(reply: str) -> Chat:
    """The judge whose reply was obtained before grading (MCP sampling), for the prompt `judge_prompt` built.

    The grader may build its prompt from another engine's values (LibreOffice) than the embedded one the question
    used, so the reply is given for whatever prompt it passes: the caller checks that the graded workbook is the
    one the judge read (`bytes_digest`)."""

    def chat(_prompt: str) -> str:
        return reply

    return chat


class JudgeUnavailable(RuntimeError):
    """The judge could not be asked (the client does not sample, the sampling failed, the workbook changed)."""


def unavailable_judge(reason: str) -> Chat:
    """A judge that fails with `reason`: the grader then records {"error": "judge unavailable: <reason>"} in the
    report and grades deterministically."""

    def chat(_prompt: str) -> str:
        raise JudgeUnavailable(f"judge unavailable: {reason}")

    return chat


def judge_prompt(task: Task, attempt: Workbook | str | Path) -> str:
    """The prompt the grader's judge gets for `attempt`, with values from the embedded engine (as `grade` computes
    them with engine='embedded')."""
    from .engine.evaluator import load_model
    from .grader import build_prompt, load
    from .grader.book import Book

    wb = load(attempt)
    return build_prompt(task, Book(wb), load_model(wb).evaluate())


def bytes_digest(data: bytes | None) -> str | None:
    """sha256 of a workbook's saved bytes (None for a workbook never saved)."""
    return None if data is None else hashlib.sha256(data).hexdigest()


__all__ = ["JUDGE_ENV", "Chat", "JudgeSetting", "JudgeUnavailable", "answered_judge", "bytes_digest", "chat_judge",
           "content_text", "judge_prompt", "parse_judge_setting", "provider_judge", "unavailable_judge"]
