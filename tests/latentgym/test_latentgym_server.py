"""The testbeds-latentgym MCP server: agent tools, evaluator face, transports, isolation."""

from __future__ import annotations

import json
import re

import anyio
import pytest
from mcp import Client
from testbeds_latentgym.envs import get_env
from testbeds_latentgym.models import ENV_NAMES
from testbeds_latentgym.server import build
from testbeds_serving import ServeOptions
from testbeds_serving.testing import http_client, http_server, serve_http, stdio_client

pytestmark = pytest.mark.anyio


async def start(client: Client, **kwargs) -> dict:
    result = await client.call_tool("start_sequence", {"env": "secretary", "n_tasks": 2, "seed": 3, **kwargs})
    assert not result.is_error, result.content
    return result.structured_content


async def play_to_end(client: Client, handle: str) -> list[dict]:
    """Accept at position 3 whenever allowed: a fixed, visible-only script."""
    shown = []
    while True:
        obs = (await client.call_tool("observe", {"handle": handle})).structured_content
        if obs["sequence_done"]:
            return shown
        action = {"type": "accept"} if obs["state"]["position"] >= 3 else {"type": "continue"}
        result = await client.call_tool("act", {"handle": handle, "action": action})
        assert not result.is_error, result.content
        shown.append(result.structured_content)


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_the_same_seed_gives_the_same_bytes_apart_from_the_handle(mode: str) -> None:
    runs = []
    for _ in range(2):
        async with Client(build(ServeOptions()), mode=mode) as client:
            brief = await start(client)
            handle = brief.pop("handle")
            runs.append(json.dumps([brief, await play_to_end(client, handle)], sort_keys=True))
    assert runs[0] == runs[1]


async def test_the_brief_and_environment_list_reveal_no_seed_structure_or_rule_family() -> None:
    async with Client(build(ServeOptions())) as client:
        envs = (await client.call_tool("list_environments", {})).structured_content["environments"]
        assert [e["name"] for e in envs] == list(ENV_NAMES)
        listed = json.dumps(envs).lower()
        brief = await start(client, seed=987654321, structure="latent")
    assert "987654321" not in json.dumps(brief)
    assert "structure" not in brief and "seed" not in brief
    for name in ENV_NAMES:
        assert get_env(name).family_doc.lower() not in listed
    assert get_env("secretary").family_doc not in json.dumps(brief)
    assert not re.search(r"\b(early|middle|late)\b", json.dumps(brief))


async def test_an_invalid_action_gets_an_error_naming_the_allowed_actions_and_costs_no_turn() -> None:
    async with Client(build(ServeOptions())) as client:
        handle = (await start(client))["handle"]
        before = (await client.call_tool("observe", {"handle": handle})).structured_content
        bad = await client.call_tool("act", {"handle": handle, "action": {"type": "hire"}})
        assert bad.is_error and '"accept"' in bad.content[0].text and '"continue"' in bad.content[0].text
        missing = await client.call_tool("act", {"handle": handle})
        assert missing.is_error
        after = (await client.call_tool("observe", {"handle": handle})).structured_content
        assert before == after
        unknown = await client.call_tool("observe", {"handle": "not-a-handle"})
        assert unknown.is_error and "start_sequence" in unknown.content[0].text


async def test_evaluator_resources_open_only_after_the_sequence_ends_without_evaluator_mode() -> None:
    async with Client(build(ServeOptions())) as client:
        tools = {t.name for t in (await client.list_tools()).tools}
        assert "fork" not in tools
        handle = (await start(client))["handle"]
        with pytest.raises(Exception, match="--evaluator"):
            await client.read_resource(f"latentgym://sequence/{handle}/latent")
        await play_to_end(client, handle)
        latent = json.loads((await client.read_resource(f"latentgym://sequence/{handle}/latent")).contents[0].text)
        metrics = json.loads((await client.read_resource(f"latentgym://sequence/{handle}/metrics")).contents[0].text)
        trace = json.loads((await client.read_resource(f"latentgym://sequence/{handle}/posterior")).contents[0].text)
    assert latent["name"] in {"early", "middle", "late", "none"}
    assert metrics["tasks_played"] == 2
    assert metrics["agent_bits"] + metrics["feedback_bits"] == pytest.approx(
        metrics["prior_entropy_bits"] - metrics["final_entropy_bits"], abs=1e-9)
    assert trace["latent"] == latent["name"] and trace["events"]


async def test_evaluator_mode_exposes_the_latent_at_once_and_fork_continues_with_a_reference() -> None:
    async with Client(build(ServeOptions(evaluator=True))) as client:
        brief = await start(client, n_tasks=4)
        handle = brief["handle"]
        latent = await client.read_resource(f"latentgym://sequence/{handle}/latent")
        assert json.loads(latent.contents[0].text)["seed"] == 3
        await play_to_end(client, handle)
        fork = (await client.call_tool("fork", {"handle": handle, "at_task": 2, "policy": "oracle"})).structured_content
        assert len(fork["rewards"]) == 4 and fork["handoff_return"] == sum(fork["rewards"][2:])
        too_far = await client.call_tool("fork", {"handle": handle, "at_task": 9})
        assert too_far.is_error
        again = await start(client, n_tasks=4)
        assert again["handle"] != handle


async def test_two_concurrent_sequences_on_one_server_stay_isolated() -> None:
    server = build(ServeOptions())
    results: dict[str, list] = {}

    async def one(name: str, seed: int) -> None:
        async with Client(server) as client:
            handle = (await start(client, seed=seed, n_tasks=3))["handle"]
            results[name] = await play_to_end(client, handle)

    async with anyio.create_task_group() as tg:
        tg.start_soon(one, "a", 1)
        tg.start_soon(one, "b", 2)
    for name, seed in (("a", 1), ("b", 2)):
        async with Client(build(ServeOptions())) as client:
            alone = await play_to_end(client, (await start(client, seed=seed, n_tasks=3))["handle"])
        assert results[name] == alone


async def test_parallel_calls_on_one_handle_are_serialised() -> None:
    async with Client(build(ServeOptions())) as client:
        handle = (await start(client, n_tasks=1))["handle"]
        outcomes = []

        async def cont() -> None:
            r = await client.call_tool("act", {"handle": handle, "action": {"type": "continue"}})
            outcomes.append(r.structured_content["result"]["position"])

        async with anyio.create_task_group() as tg:
            for _ in range(5):
                tg.start_soon(cont)
    assert sorted(outcomes) == [2, 3, 4, 5, 6]


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_a_real_stdio_subprocess_serves_a_whole_sequence(mode: str) -> None:
    async with stdio_client("testbeds_latentgym", mode=mode) as client:
        brief = await start(client)
        shown = await play_to_end(client, brief["handle"])
        history = (await client.call_tool("task_history", {"handle": brief["handle"]})).structured_content
    assert shown[-1]["sequence_done"] is True
    assert len(history["tasks"]) == 2


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_http_transport_serves_without_a_token(mode: str) -> None:
    async with serve_http(build(ServeOptions(transport="http"))) as url:
        async with http_client(url, mode=mode) as client:
            brief = await start(client)
            assert (await play_to_end(client, brief["handle"]))[-1]["sequence_done"]


async def test_http_transport_with_a_token_accepts_the_right_one_and_refuses_others() -> None:
    with http_server("testbeds_latentgym", "--token", "s3cret") as url:
        for mode in ("auto", "legacy"):
            async with http_client(url, token="s3cret", mode=mode) as client:
                assert (await start(client))["environment"] == "secretary"
            for wrong in ("nope", None):
                with pytest.raises(Exception):
                    async with http_client(url, token=wrong, mode=mode) as client:
                        await start(client)


async def test_an_action_sent_as_a_json_string_is_decoded_and_garbage_is_refused_with_the_rules() -> None:
    async with Client(build(ServeOptions())) as client:
        handle = (await start(client))["handle"]
        ok = await client.call_tool("act", {"handle": handle, "action": '{"type": "continue"}'})
        assert not ok.is_error and ok.structured_content["result"]["position"] == 2
        bad = await client.call_tool("act", {"handle": handle, "action": "hire the next one " * 50})
        assert bad.is_error and '"accept"' in bad.content[0].text and len(bad.content[0].text) < 400


async def test_fork_of_a_hand_off_sequence_replays_only_the_players_tasks() -> None:
    async with Client(build(ServeOptions(evaluator=True))) as client:
        brief = await start(client, n_tasks=4, handoff_from="bayes", handoff_at=2)
        history = (await client.call_tool("task_history", {"handle": brief["handle"]})).structured_content
        assert len(history["tasks"]) == 2 and brief["observation"]["task"] == 3
        await play_to_end(client, brief["handle"])
        fork = await client.call_tool("fork", {"handle": brief["handle"], "at_task": 3, "policy": "no_transfer"})
        assert not fork.is_error, fork.content
        assert len(fork.structured_content["rewards"]) == 4
        early = await client.call_tool("fork", {"handle": brief["handle"], "at_task": 1})
        assert early.is_error and "between 2" in early.content[0].text
        metrics = json.loads((await client.read_resource(
            f"latentgym://sequence/{brief['handle']}/metrics")).contents[0].text)
        assert metrics["tasks_played"] == 2 and len(metrics["rewards"]) == 2


async def test_parallel_actions_are_recorded_so_that_the_episode_can_still_be_scored(tmp_path) -> None:
    """Results of parallel calls may be written out of order; the action number restores the applied order."""
    from testbeds_evals.scoring import score_db

    db = tmp_path / "runs.db"
    async with Client(build(ServeOptions(record=db))) as client:
        handle = (await start(client, n_tasks=1))["handle"]
        async with anyio.create_task_group() as tg:
            for _ in range(6):
                tg.start_soon(client.call_tool, "act", {"handle": handle, "action": {"type": "continue"}})
        await play_to_end(client, handle)
    scored, failures = score_db(db, show_progress=False)
    assert (scored, failures) == (1, [])
