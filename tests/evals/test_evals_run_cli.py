"""`testbeds run` refuses a bad model spec, a missing provider extra or a bad policy before recording anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from testbeds_evals.cli import main


@pytest.mark.parametrize(("args", "message"), [
    (["--model", "foo"], "unknown model spec"),
    (["--model", "anthropic:claude-sonnet-4-5"], "pip install 'testbeds[anthropic]'"),
    (["--model", "openai:gpt-4o"], "pip install 'testbeds[openai]'"),
    (["--policy", "oracle"], "--policy must be"),
])
def test_a_run_that_cannot_start_says_why_and_records_nothing(tmp_path: Path, capsys, args, message) -> None:
    db = tmp_path / "runs.db"
    assert main(["run", "--env", "secretary", "--seeds", "0", "--db", str(db), *args]) == 2
    assert message in capsys.readouterr().err
    assert not db.exists()
