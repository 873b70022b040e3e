"""The example suite in servers/testbeds_serving/README.md works as written."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest
from mcp import Client
from testbeds_serving import ServeOptions

pytestmark = pytest.mark.anyio

README = Path(__file__).resolve().parents[2] / "servers" / "testbeds_serving" / "README.md"


def example_module(tmp_path: Path) -> ModuleType:
    first_block = re.search(r"```python\n(.*?)```", README.read_text(), re.S)
    assert first_block is not None
    path = tmp_path / "guess_example.py"
    path.write_text(first_block.group(1))
    spec = importlib.util.spec_from_file_location("guess_example", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["guess_example"] = module  # pydantic resolves postponed annotations through it
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules["guess_example"]
    return module


async def test_the_readme_example_suite_plays_a_game(tmp_path: Path) -> None:
    server = example_module(tmp_path).build(ServeOptions(evaluator=True))
    async with Client(server) as client:
        handle = (await client.call_tool("start_game", {"seed": 3})).structured_content["handle"]
        outside = await client.call_tool("guess", {"handle": handle, "number": 500})
        low, high, answer = 1, 100, ""
        while answer != "correct":
            number = (low + high) // 2
            feedback = (await client.call_tool("guess", {"handle": handle, "number": number})).structured_content
            answer = feedback["answer"]
            low, high = (number + 1, high) if answer == "higher" else (low, number - 1)
        after = await client.call_tool("guess", {"handle": handle, "number": number})
        secret = (await client.read_resource(f"guess://{handle}/secret")).contents[0].text  # type: ignore[union-attr]
    assert outside.is_error and outside.content[0].text == "500 is outside 1..100; guess a number in that range"  # type: ignore[union-attr]
    assert str(number) == secret
    assert after.is_error and "this game has ended; call start_game" in after.content[0].text  # type: ignore[union-attr]
