"""The `testbeds` CLI: export, report, serve and the hook for subcommands in other modules."""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from testbeds_evals import cli
from testbeds_evals.events import Message, parse_event
from testbeds_evals.store import Store

WriteModule = Callable[[str, dict[str, str]], None]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "runs.db"
    with Store(path) as store:
        run_id = store.create_run(suite="latentgym", model="scripted", seed=0)
        for env, passes in (("a", [True, True, False]), ("b", [True, True, True])):
            for attempt, passed in enumerate(passes):
                episode = store.create_episode(run_id, suite="latentgym", settings={"env": env, "task": env})
                store.append(episode, Message(role="user", content=f"{env}{attempt}"))
                store.end_episode(episode, "completed")
                store.add_score(episode, "exact", {"passed": False, "reward": 0.0})  # superseded below
                store.add_score(episode, "exact", {"passed": passed, "reward": float(attempt)})
    return path


@pytest.fixture
def fake_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[WriteModule]:
    """Write importable packages into tmp_path; forget them afterwards."""
    created: list[str] = []
    monkeypatch.syspath_prepend(str(tmp_path))

    def write(package: str, files: dict[str, str]) -> None:
        (tmp_path / package).mkdir()
        for name, source in files.items():
            (tmp_path / package / name).write_text(textwrap.dedent(source), encoding="utf-8")
        created.append(package)

    yield write
    for name in list(sys.modules):
        if name.split(".")[0] in created:
            del sys.modules[name]


def test_export_writes_jsonl_to_stdout(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["export", str(db)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    kinds = [line["kind"] for line in lines]
    assert kinds.count("run") == 1 and kinds.count("episode") == 6 and kinds.count("score") == 12
    events = [parse_event({k: v for k, v in line.items() if k not in ("kind", "episode_id", "seq")})
              for line in lines if line["kind"] == "event"]
    assert len(events) == 12


def test_export_writes_to_a_file_for_one_run(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    with Store(db) as store:
        run_id = store.runs()[0]["run_id"]
    assert cli.main(["export", str(db), "--run", run_id, "-o", str(out)]) == 0
    assert json.loads(out.read_text(encoding="utf-8").splitlines()[0])["run_id"] == run_id


def test_export_of_a_missing_database_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["export", str(tmp_path / "nope.db")]) == 2
    assert "no database at" in capsys.readouterr().err
    assert not (tmp_path / "nope.db").exists()


def test_report_prints_a_table_and_writes_files_from_the_latest_scores(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report"
    argv = ["report", str(db), "--out", str(out), "--metric", "reward", "passed", "--group-by", "env"]
    status = cli.main(argv)
    assert status == 0
    printed = capsys.readouterr().out
    assert "1.000 ± 0.577" in printed  # rewards 0, 1, 2: the superseded zeros are ignored
    markdown = (out / "report.md").read_text(encoding="utf-8")
    assert "| a | 3 | 1.000 ± 0.577 | 0.667 ± 0.333 | 0.667 | 0.333 | 0.000 |" in markdown
    assert (out / "report.html").is_file()
    assert (out / "metric-reward.png").is_file()


def test_report_without_scores_says_what_to_do(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "empty.db"
    Store(path).close()
    assert cli.main(["report", str(path), "--out", str(tmp_path / "r")]) == 2
    assert "testbeds score" in capsys.readouterr().err


def test_serve_passes_the_remaining_arguments_to_the_suite(
    fake_module: WriteModule, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_module("testbeds_fakesuite_cli", {
        "__init__.py": "",
        "__main__.py": """
            RECEIVED = []
            def main(argv):
                RECEIVED.append(argv)
                return 3
        """,
    })
    monkeypatch.setitem(cli.SUITES, "fake", "testbeds_fakesuite_cli")
    assert cli.main(["serve", "fake", "--record", "runs.db", "--http", "--help"]) == 3
    module = sys.modules["testbeds_fakesuite_cli.__main__"]
    assert module.RECEIVED == [["--record", "runs.db", "--http", "--help"]]


def test_serve_rejects_an_unknown_suite(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["serve", "nosuch"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_serve_explains_a_suite_that_is_not_installed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(cli.SUITES, "ghost", "testbeds_ghost_not_installed")
    assert cli.main(["serve", "ghost"]) == 2
    assert "suite 'ghost' is not installed" in capsys.readouterr().err


def test_a_subcommand_module_registers_itself_with_add_parser(
    fake_module: WriteModule, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_module("testbeds_fakehook_cli", {
        "__init__.py": "",
        "hello.py": """
            def add_parser(subparsers):
                parser = subparsers.add_parser("hello")
                parser.add_argument("--times", type=int, default=1)
                parser.set_defaults(func=lambda args: 40 + args.times)
        """,
    })
    modules = ("testbeds_fakehook_cli.hello", "testbeds_fakehook_cli.absent")
    monkeypatch.setattr(cli, "SUBCOMMAND_MODULES", modules)
    assert cli.main(["hello", "--times", "2"]) == 42
    assert cli.main(["hello"]) == 41
