"""The procedural generator builds valid, executable, deterministic toolsets for many fields without an LLM."""

from __future__ import annotations

import hashlib
import os
import re
import statistics
import subprocess
import sys
from decimal import Decimal

import pytest
from testbeds_synthtools.engine import Session
from testbeds_synthtools.generator import (
    format_step,
    generate_corpus,
    generate_toolset,
    list_fields,
    parse_step,
    resolve_arguments,
    valid_arguments,
    workflow_steps,
)
from testbeds_synthtools.llm_generation import toolset_problems
from testbeds_synthtools.ontology import field as ontology_field
from testbeds_synthtools.spec import Toolset, canonical_json, schema_validator

NAME = re.compile(r"^[a-z][a-z0-9_]{0,47}$")
# a spread of fields: 2, 3 and 4 entities, two refs to one table (sports), optional columns (education); the
# benchmark-style sweep over every field is what `valid_arguments` was checked with, too slow for the suite
ENGINE_FIELDS = ("healthcare", "ecommerce", "sports_management", "education", "pet_services", "construction")


@pytest.fixture(scope="module")
def corpus() -> list[Toolset]:
    return generate_corpus(50, seed=11)


def test_the_ontology_covers_at_least_fifty_fields_each_with_related_entities() -> None:
    names = list_fields()
    assert len(names) >= 50
    for name in names:
        spec = ontology_field(name)
        assert len(spec.entities) >= 2, name
        assert any(e.refs for e in spec.entities), f"{name} has no relation"
        assert spec.vocabulary and spec.sub_fields and all(s.tasks for s in spec.sub_fields)


def test_an_unknown_field_is_a_clear_error_naming_the_known_ones() -> None:
    with pytest.raises(KeyError, match="unknown field 'astrology'.*healthcare"):
        generate_toolset("astrology", 0)


def test_generated_toolsets_average_at_least_twenty_tools(corpus: list[Toolset]) -> None:
    counts = [len(t.tools) for t in corpus]
    assert statistics.mean(counts) >= 20
    assert min(counts) >= 10
    assert len({t.field for t in corpus}) == 50


def test_every_generated_toolset_validates(corpus: list[Toolset]) -> None:
    for ts in corpus:
        assert toolset_problems(ts) == [], ts.id
        assert Toolset.model_validate_json(ts.model_dump_json()) == ts
        assert ts.provenance.origin == "generated" and ts.provenance.generator
        assert ts.state_schema is not None and 2 <= len(ts.state_schema.tables) <= 4
        assert ts.tool_budget == len(ts.tools)
        for table in ts.state_schema.tables:
            assert 5 <= len(table.seed_rows) <= 20
            for col in table.columns.values():
                if col.money_scale is not None:
                    assert col.money_scale == 2 and col.type == "number"
        for tool in ts.tools:
            assert NAME.match(tool.name) and "__" not in tool.name
            assert tool.output_schema["additionalProperties"] is False
            assert sorted(tool.output_schema["required"]) == sorted(tool.output_schema["properties"])
            assert tool.input_schema["additionalProperties"] is False


def test_every_kind_of_tool_is_generated(corpus: list[Toolset]) -> None:
    kinds = {t.effect.kind for ts in corpus for t in ts.tools}
    assert kinds == {"create", "read", "update", "delete", "list", "search", "compute"}
    ts = corpus[0]
    names = {t.name for t in ts.tools}
    assert any(n.startswith("summarize_") for n in names) and any(n.startswith("quote_") for n in names)
    statuses = [t for t in ts.tools if t.name.endswith("_status")]
    assert statuses and all(e.status == 409 for t in statuses for e in t.errors if "transition" in e.code)


def test_the_same_field_and_seed_give_byte_identical_json_across_processes() -> None:
    code = ("import hashlib; from testbeds_synthtools.generator import generate_corpus, generate_toolset; "
            "from testbeds_synthtools.spec import canonical_json; "
            "ts = generate_corpus(4, 5) + [generate_toolset(None, 3), generate_toolset('banking', 9, n_tools=12)]; "
            "print(hashlib.sha256(''.join(canonical_json(t) for t in ts).encode()).hexdigest())")
    digests = set()
    for hash_seed in ("987",):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        digests.add(out.stdout.strip())
    here = generate_corpus(4, 5) + [generate_toolset(None, 3), generate_toolset("banking", 9, n_tools=12)]
    digests.add(hashlib.sha256("".join(canonical_json(t) for t in here).encode()).hexdigest())
    assert len(digests) == 1


def test_different_seeds_give_different_toolsets_for_one_field() -> None:
    a, b = generate_toolset("logistics", 0), generate_toolset("logistics", 1)
    assert canonical_json(a) != canonical_json(b)
    assert generate_toolset(None, 4).field in list_fields()


def test_n_tools_caps_the_toolset_and_its_workflows_use_only_kept_tools() -> None:
    small = generate_toolset("healthcare", 2, n_tools=8)
    assert len(small.tools) == 8
    names = {t.name for t in small.tools}
    assert all(set(w.tools) <= names for w in small.workflows)
    assert all(d.tool in names for d in small.dependencies)
    assert toolset_problems(small) == []
    big = generate_toolset("healthcare", 2, n_tools=60)
    assert len(big.tools) >= len(generate_toolset("healthcare", 2).tools)


def test_workflow_steps_round_trip_and_resolve_from_earlier_outputs() -> None:
    text = format_step("get_order", {"order_id": {"$step": 0, "$path": "items.1.order_id"}, "note": "x"})
    step = parse_step(text)
    assert step.tool == "get_order"
    assert step.arguments["order_id"].from_step == 0 and step.arguments["note"].value == "x"
    args = resolve_arguments(step, [{"items": [{"order_id": "A"}, {"order_id": "B"}]}])
    assert args == {"order_id": "B", "note": "x"}
    with pytest.raises(ValueError, match="has not run"):
        resolve_arguments(parse_step(format_step("t", {"a": {"$step": 2, "$path": "x"}})), [{}])


@pytest.mark.parametrize("field", ENGINE_FIELDS)
def test_every_generated_tool_succeeds_on_the_engine_with_arguments_from_seed_rows(field: str) -> None:
    ts = generate_toolset(field, 3)
    for tool in ts.tools:
        session = Session(ts, seed=0)
        args = valid_arguments(ts, tool.name)
        result = session.call(tool.name, args)
        assert result.ok, (tool.name, args, result.code, result.message)
        assert schema_validator(tool.output_schema).is_valid(result.result)
        assert bool(result.changes) == (tool.effect.kind in ("create", "update", "delete")), tool.name
        session.close()


@pytest.mark.parametrize("field", ENGINE_FIELDS)
def test_each_workflow_executes_end_to_end_with_its_argument_flow(field: str) -> None:
    ts = generate_toolset(field, 5)
    tiers = {w.tier for w in ts.workflows}
    assert tiers == {"simple", "medium", "complex"}
    for w in ts.workflows:
        assert w.resolved and len(w.steps) == len(w.tools)
        assert len(w.tools) == {"simple": 3, "medium": 5, "complex": 8}[w.tier]
        session = Session(ts, seed=0)
        outputs: list[dict] = []
        derived = 0
        for i, step in enumerate(workflow_steps(w)):
            assert step.tool == w.tools[i]
            derived += sum(1 for a in step.arguments.values() if a.from_step is not None)
            result = session.call(step.tool, resolve_arguments(step, outputs))
            assert result.ok, (w.label, i, step.tool, result.code, result.message)
            outputs.append(result.result or {})
        assert derived >= 1 if w.tier == "simple" else derived >= 3
        session.close()


def test_a_status_move_outside_the_state_machine_is_a_409_and_changes_nothing() -> None:
    ts = generate_toolset("ecommerce", 1)
    tool = next(t for t in ts.tools if t.name.endswith("_status"))
    table = ts.state_schema.table(tool.effect.table)  # type: ignore[union-attr]
    row = table.seed_rows[0]
    col = table.columns["status"]
    allowed = set(col.transitions[row["status"]])  # type: ignore[index]
    bad = next(s for s in col.enum if s not in allowed and s != row["status"])  # type: ignore[union-attr]
    session = Session(ts)
    before = session.state_hash()
    result = session.call(tool.name, {table.key: row[table.key], "status": bad})
    assert (result.ok, result.status, result.code) == (False, 409, "invalid_status_transition")
    assert session.state_hash() == before


def test_a_create_with_a_dangling_reference_is_a_404_and_deleting_a_referenced_row_a_409() -> None:
    ts = generate_toolset("healthcare", 0)
    session = Session(ts)
    create = next(t for t in ts.tools if t.name == "create_appointment")
    args = valid_arguments(ts, create.name)
    args["patient_id"] = "PAT-999999"
    result = session.call(create.name, args)
    assert (result.ok, result.status, result.code) == (False, 404, "patient_not_found")
    patients = ts.state_schema.table("patients")  # type: ignore[union-attr]
    used = {r["patient_id"] for r in ts.state_schema.table("appointments").seed_rows}  # type: ignore[union-attr]
    referenced = next(r["patient_id"] for r in patients.seed_rows if r["patient_id"] in used)
    result = session.call("delete_patient", {"patient_id": referenced})
    assert (result.ok, result.status, result.code) == (False, 409, "patient_in_use")


def test_a_quote_is_exact_in_cents_with_half_up_rounding() -> None:
    ts = generate_toolset("ecommerce", 1)
    quote = next(t for t in ts.tools if t.name.startswith("quote_"))
    result = Session(ts).call(quote.name, {"unit_amount": 19.99, "quantity": 3, "discount_pct": 10,
                                           "tax_rate": 0.08})
    # 59.97 - 6.00 (5.997 rounds up) = 53.97; tax 4.3176 -> 4.32; total 58.29
    assert result.ok and result.result == {"subtotal": 59.97, "discount": 6.0, "tax": 4.32, "total": 58.29}


def test_summarize_agrees_with_an_exact_aggregate_of_the_seed_rows() -> None:
    ts = generate_toolset("accounting", 4)
    tool = next(t for t in ts.tools if t.name.startswith("summarize_"))
    table = ts.state_schema.table(tool.effect.table)  # type: ignore[union-attr]
    measure = next(k[len("total_"):] for k in tool.output_schema["properties"] if k.startswith("total_"))
    status = table.seed_rows[0].get("status")
    args = {"status": status} if status is not None and "status" in tool.input_schema["properties"] else {}
    rows = [r for r in table.seed_rows if not args or r["status"] == status]
    total = sum((Decimal(str(r[measure])) for r in rows), Decimal(0))
    result = Session(ts).call(tool.name, args)
    assert result.ok and result.result is not None
    assert result.result["count"] == len(rows)
    assert Decimal(str(result.result[f"total_{measure}"])) == total
    assert Decimal(str(result.result[f"max_{measure}"])) == max(Decimal(str(r[measure])) for r in rows)
