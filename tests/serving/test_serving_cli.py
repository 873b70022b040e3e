"""The shared command line: flags, environment fallbacks, and what `main` runs."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from counter_server import build
from testbeds_serving import ServeOptions, SuiteServer, cli


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TESTBEDS_RECORD", raising=False)
    monkeypatch.delenv("TESTBEDS_TOKEN", raising=False)


def test_no_flags_serve_stdio_on_localhost_without_recording() -> None:
    assert cli.parse_options([]) == ServeOptions(
        transport="stdio", host="127.0.0.1", port=8000, record=None, token=None, evaluator=False,
        log_level="WARNING",
    )


def test_every_flag_reaches_the_options() -> None:
    options = cli.parse_options(
        ["--transport", "http", "--host", "0.0.0.0", "--port", "9001", "--record", "r.db", "--token", "t",
         "--evaluator", "-v"]
    )
    assert options == ServeOptions(transport="http", host="0.0.0.0", port=9001, record=Path("r.db"), token="t",
                                   evaluator=True, log_level="INFO")
    assert options.url == "http://0.0.0.0:9001/mcp"


@pytest.mark.parametrize(("flags", "level"), [([], "WARNING"), (["-v"], "INFO"), (["-vv"], "DEBUG"),
                                              (["-vvv"], "DEBUG")])
def test_verbosity_sets_the_log_level(flags: list[str], level: str) -> None:
    assert cli.parse_options(flags).log_level == level


def test_record_and_token_fall_back_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TESTBEDS_RECORD", "env.db")
    monkeypatch.setenv("TESTBEDS_TOKEN", "env-token")
    assert (cli.parse_options([]).record, cli.parse_options([]).token) == (Path("env.db"), "env-token")
    flagged = cli.parse_options(["--record", "flag.db", "--token", "flag-token"])
    assert (flagged.record, flagged.token) == (Path("flag.db"), "flag-token")


def test_the_token_is_kept_out_of_the_options_repr() -> None:
    assert "s3cret" not in repr(ServeOptions(token="s3cret"))


def test_a_token_on_stdio_is_ignored_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="testbeds.serving"):
        server = build(ServeOptions(transport="stdio", token="s3cret"))
    assert server.settings.auth is None
    assert any("--token only applies to --transport http" in r.getMessage() for r in caplog.records)


def test_ipv6_hosts_are_bracketed_in_urls() -> None:
    assert ServeOptions(host="::1", port=8123).url == "http://[::1]:8123/mcp"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [([], (("stdio",), {})),
     (["--transport", "http", "--port", "9123"], (("streamable-http",), {"host": "127.0.0.1", "port": 9123}))],
)
def test_main_builds_with_the_parsed_options_and_runs_the_chosen_transport(
    argv: list[str], expected: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    runs: list[tuple[Any, Any]] = []
    built: list[ServeOptions] = []
    monkeypatch.setattr(SuiteServer, "run", lambda self, *a, **k: runs.append((a, k)))
    monkeypatch.setattr(cli, "configure_logging", lambda level: None)

    def spy(options: ServeOptions) -> SuiteServer:
        built.append(options)
        return build(options)

    cli.main(spy, [*argv, "--evaluator"], prog="counter")
    assert runs == [expected]
    assert built[0].evaluator is True


def test_main_refuses_a_build_that_is_not_a_suite_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "configure_logging", lambda level: None)
    with pytest.raises(TypeError, match="must return a SuiteServer"):
        cli.main(lambda options: object(), [])  # type: ignore[arg-type,return-value]
