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
    (["--handoff-at", "2"], "handoff_from and handoff_at go together"),
    (["--n-tasks", "0"], "n_tasks"),
    (["--seeds", "0-1x"], "--seeds"),
])
def test_a_run_that_cannot_start_says_why_and_records_nothing(tmp_path: Path, capsys, args, message) -> None:
    db = tmp_path / "runs.db"
    assert main(["run", "--env", "secretary", "--seeds", "0", "--db", str(db), *args]) == 2
    assert message in capsys.readouterr().err
    assert not db.exists()


def test_one_failing_episode_is_recorded_as_an_error_and_the_others_still_run(tmp_path: Path, monkeypatch) -> None:
    import anyio
    from testbeds_evals import runner
    from testbeds_evals.store import Store
    from testbeds_evals.suites import latentgym

    original = latentgym.scripted_policy

    def flaky(settings, policy: str, seed: int):
        decide = original(settings, policy, seed)
        if seed != 1:
            return decide

        def broken(messages):
            if len(messages) > 4:
                raise RuntimeError("provider rate limit")
            return decide(messages)
        return broken

    monkeypatch.setattr(latentgym, "scripted_policy", flaky)
    specs = runner.latentgym_specs(["secretary"], [0, 1, 2], ["bayes"], n_tasks=2)
    run_id, results = anyio.run(lambda: runner.run_many(tmp_path / "runs.db", "scripted", specs, transport="memory",
                                                        show_progress=False))
    assert [r.stop_reason for r in results] == ["completed", "error", "completed"]
    assert "rate limit" in results[1].error
    with Store(tmp_path / "runs.db") as store:
        terminations = sorted(e["termination"] for e in store.episodes(run_id=run_id))
    assert terminations == ["completed", "completed", "error"]
