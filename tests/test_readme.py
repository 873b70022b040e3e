"""The README's example commands run as written (in a scratch directory, with the venv's commands)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- readme-commands -->\s*```sh\n(.*?)```", text, re.S)
    assert block, "README.md lost its tested command block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_the_first_readme_commands_are_make_demo_and_make_test() -> None:
    text = (ROOT / "README.md").read_text()
    first_block = re.search(r"```sh\n(.*?)```", text, re.S).group(1)
    assert [line.split("#")[0].strip() for line in first_block.splitlines()] == ["make demo", "make test"]


def test_the_readme_example_commands_succeed(tmp_path: Path) -> None:
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
    for command in readme_commands():
        done = subprocess.run(shlex.split(command), cwd=tmp_path, env=env, capture_output=True, text=True)
        assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
    assert (tmp_path / "runs.jsonl").stat().st_size > 0
    assert (tmp_path / "report" / "report.md").is_file()
