"""LLM-driven generation serves only valid, deduplicated toolsets: mechanical fixes are repaired, the rest rejected."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest
from testbeds_synthtools.engine import Session
from testbeds_synthtools.generator import generate_toolset
from testbeds_synthtools.llm_generation import (
    LLMToolsetGenerator,
    dedupe_toolsets,
    extract_json,
    normalised_tool_name,
    toolset_problems,
    toolset_similarity,
    validate_toolset_data,
)
from testbeds_synthtools.spec import Toolset


def library_answer() -> dict[str, Any]:
    """A small, sound toolset as a model might write it (output schemas lack `required`, which is repairable)."""
    row_out = {"type": "object", "properties": {"book_id": {"type": "string"}, "title": {"type": "string"},
                                                 "status": {"type": "string", "enum": ["available", "loaned"]}}}
    returns = {"book_id": "row.book_id", "title": "row.title", "status": "row.status"}
    return {
        "title": "Library desk", "description": "Lend and price books.", "difficulty": "easy",
        "state_schema": {"tables": [{
            "name": "books", "key": "book_id", "id_prefix": "BK-",
            "columns": {"book_id": {"type": "string"}, "title": {"type": "string"},
                        "status": {"type": "string", "enum": ["available", "loaned"], "default": "available",
                                   "transitions": {"available": ["loaned"], "loaned": ["available"]}}},
            "seed_rows": [{"book_id": "BK-000001", "title": "Atlas of Clouds", "status": "available"},
                          {"book_id": "BK-000002", "title": "River Songs", "status": "loaned"}]}]},
        "tools": [
            {"name": "get_book", "title": "Get Book", "description": "Fetch a book by id.",
             "input_schema": {"type": "object", "properties": {"book_id": {"type": "string"}},
                              "required": ["book_id"]},
             "output_schema": copy.deepcopy(row_out),
             "errors": [{"code": "book_not_found", "title": "Book not found", "guidance": "Check the id.",
                         "status": 404}],
             "effect": {"kind": "read", "table": "books", "key": "book_id", "returns": dict(returns)}},
            {"name": "lend_book", "title": "Lend Book", "description": "Mark a book as loaned to a patron.",
             "input_schema": {"type": "object", "properties": {
                 "book_id": {"type": "string"}, "status": {"type": "string", "enum": ["loaned", "available"]}},
                 "required": ["book_id", "status"]},
             "output_schema": copy.deepcopy(row_out),
             "errors": [{"code": "book_not_found", "title": "Book not found", "status": 404},
                        {"code": "bad_transition", "title": "Invalid status transition", "status": 409}],
             "effect": {"kind": "update", "table": "books", "key": "book_id", "set": {"status": "status"},
                        "returns": dict(returns)}},
            {"name": "late_fee", "title": "Late Fee", "description": "Compute the late fee for overdue days.",
             "input_schema": {"type": "object", "properties": {
                 "days": {"type": "integer", "minimum": 0},
                 "daily_rate": {"type": "number", "minimum": 0, "default": 0.25}}, "required": ["days"]},
             "output_schema": {"type": "object", "properties": {"fee": {"type": "number"}}},
             "constraints": [{"rule": "le(days, 365)", "description": "at most a year"}],
             "effect": {"kind": "compute", "formula": {"fee": "round(days * daily_rate, 2)"}}},
        ],
        "workflows": [{"tier": "simple", "label": "lend a book", "tools": ["get_book", "lend_book", "get_book"]}],
        "dependencies": [{"title": "Get Book", "tool": "get_book", "consumes": ["book_id"],
                          "produces": ["title", "status"]}],
    }


class ScriptedLLM:
    """A deterministic stand-in for a model: canned answers per prompt kind, toolset answers per task (in order;
    the last one repeats), and a log of the prompts it saw."""

    def __init__(self, answers: dict[str, list[str]], sub_fields: list[str] | str = ("Circulation",),
                 tasks: dict[str, list[str]] | None = None):
        self.answers = {k: list(v) for k, v in answers.items()}
        self.sub_fields = sub_fields
        self.tasks = tasks or {}
        self.prompts: list[str] = []
        self.last_task = ""

    async def __call__(self, system: str, prompt: str) -> str:
        assert "JSON" in system
        self.prompts.append(prompt)
        if "sub-fields of the domain" in prompt:
            return self.sub_fields if isinstance(self.sub_fields, str) else json.dumps(list(self.sub_fields))
        m = re.search(r"professional in '(.+?)'", prompt)
        if m:
            return "Sure! Here they are:\n" + json.dumps(self.tasks.get(m.group(1), list(self.answers)))
        m = re.search(r'for the task "(.+?)"', prompt)
        if m:
            self.last_task = m.group(1)
        queue = self.answers[self.last_task]
        return queue.pop(0) if len(queue) > 1 else queue[0]


def fenced(data: Any) -> str:
    return f"Here is the toolset you asked for.\n```json\n{json.dumps(data, indent=1)}\n```\nHope it helps!"


@pytest.mark.anyio
async def test_a_valid_answer_becomes_a_served_toolset_that_runs_on_the_engine() -> None:
    llm = ScriptedLLM({"Lend books": [fenced(library_answer())]})
    out = await LLMToolsetGenerator(llm, n_sub_fields=1, n_tasks=1).generate(["library"], seed=3)
    assert out.rejected == [] and len(out.toolsets) == 1
    ts = out.toolsets[0]
    assert (ts.field, ts.sub_field, ts.task, ts.seed) == ("library", "Circulation", "Lend books", 3)
    assert ts.provenance.origin == "generated" and "llm_generation" in (ts.provenance.generator or "")
    assert toolset_problems(ts) == []
    assert ts.tool("get_book").output_schema["required"] == ["book_id", "title", "status"]
    assert any("required = every output key" in n for n in out.repairs[ts.id])
    session = Session(ts)
    assert session.call("late_fee", {"days": 3}).result == {"fee": 0.75}
    bad = session.call("lend_book", {"book_id": "BK-000002", "status": "loaned"})
    assert bad.ok  # loaned -> loaned is no move
    assert session.call("lend_book", {"book_id": "BK-000001", "status": "loaned"}).result["status"] == "loaned"
    assert [p for p in llm.prompts if "Your previous answer" in p] == []


@pytest.mark.anyio
async def test_broken_tool_names_are_repaired_and_plans_follow_the_renames() -> None:
    data = library_answer()
    data["tools"][0]["name"] = "Get Book!!"
    data["tools"][1]["name"] = "lend__Book"
    data["tools"][2]["name"] = "2 late fee"
    data["workflows"][0]["tools"] = ["Get Book!!", "lend__Book", "Get Book!!"]
    data["dependencies"][0]["tool"] = "Get Book!!"
    llm = ScriptedLLM({"Lend books": [json.dumps(data)]})
    out = await LLMToolsetGenerator(llm, n_sub_fields=1, n_tasks=1).generate(["library"])
    ts = out.toolsets[0]
    assert [t.name for t in ts.tools] == ["get_book", "lend_book", "t_2_late_fee"]
    assert ts.workflows[0].tools == ["get_book", "lend_book", "get_book"] and ts.workflows[0].resolved
    assert ts.dependencies[0].tool == "get_book"
    assert any("'Get Book!!' -> 'get_book'" in n for n in out.repairs[ts.id])


@pytest.mark.anyio
async def test_an_invalid_schema_is_rejected_with_a_reason_after_the_model_fails_to_fix_it() -> None:
    data = library_answer()
    data["tools"][2]["output_schema"]["properties"]["fee"] = {"type": "money"}
    llm = ScriptedLLM({"Lend books": [json.dumps(data)]})
    out = await LLMToolsetGenerator(llm, n_sub_fields=1, n_tasks=1, max_tries=2).generate(["library"])
    assert out.toolsets == []
    [rej] = out.rejected
    assert rej.stage == "validate"
    assert any("late_fee.output_schema: not a valid JSON Schema" in r for r in rej.reasons)
    repair_prompts = [p for p in llm.prompts if p.startswith("Your previous answer was invalid")]
    assert len(repair_prompts) == 1 and "not a valid JSON Schema" in repair_prompts[0]


@pytest.mark.anyio
async def test_a_model_that_fixes_its_answer_on_the_second_try_is_served() -> None:
    broken = library_answer()
    broken["tools"][2]["effect"]["formula"] = {"fee": "__import__('os').system('x')"}
    llm = ScriptedLLM({"Lend books": [json.dumps(broken), fenced(library_answer())]})
    out = await LLMToolsetGenerator(llm, n_sub_fields=1, n_tasks=1, max_tries=2).generate(["library"])
    assert len(out.toolsets) == 1 and out.rejected == []
    assert "only the rule functions can be called" in next(p for p in llm.prompts if p.startswith("Your previous"))


def test_rule_language_breaks_and_dangling_seed_refs_are_rejected_with_reasons() -> None:
    bad_rule = library_answer()
    bad_rule["tools"][2]["constraints"] = [{"rule": "days.bit_length() < 3"}]
    ts, problems, _ = validate_toolset_data(bad_rule, toolset_id="x", field="library")
    assert ts is None and any("constraints.0.rule" in p and "no methods" in p for p in problems)
    dangling = library_answer()
    tables = dangling["state_schema"]["tables"]
    tables.append({"name": "loans", "key": "loan_id", "id_prefix": "LN-",
                   "columns": {"loan_id": {"type": "string"}, "book_id": {"type": "string", "ref": "books.book_id"},
                               "amount": {"type": "number", "money_scale": 2}},
                   "seed_rows": [{"loan_id": "LN-000001", "book_id": "BK-000404", "amount": 1.005}]})
    ts, problems, _ = validate_toolset_data(dangling, toolset_id="x", field="library")
    assert ts is None
    assert any("does not resolve in books.book_id" in p for p in problems)
    assert any("more than 2 decimals" in p for p in problems)


def test_null_like_and_invalid_defaults_are_dropped_and_error_statuses_inferred() -> None:
    data = library_answer()
    data["tools"][2]["input_schema"]["properties"]["daily_rate"]["default"] = "None"
    data["tools"][2]["input_schema"]["required"] = ["days", "ghost"]
    data["tools"][0]["errors"] = ["Book not found: check the id", {"title": "Book already loaned"}]
    ts, problems, notes = validate_toolset_data(data, toolset_id="x", field="library")
    assert problems == [] and ts is not None
    fee = ts.tool("late_fee")
    assert "default" not in fee.input_schema["properties"]["daily_rate"]
    assert fee.input_schema["required"] == ["days"]
    assert [(e.code, e.status) for e in ts.tool("get_book").errors] == [("book_not_found", 404),
                                                                        ("book_already_loaned", 409)]
    assert any("dropped an invalid default" in n for n in notes)


@pytest.mark.anyio
async def test_garbage_is_rejected_and_never_served() -> None:
    answers = {"Lend books": ["I'm sorry, I can't produce JSON today."],
               "Count books": ["```json\n{\"tools\": \"none\"}\n```"],
               "Shelve books": ["[1, 2, 3]"]}
    llm = ScriptedLLM(answers, tasks={"Circulation": list(answers)})
    out = await LLMToolsetGenerator(llm, n_sub_fields=1, n_tasks=3, max_tries=2).generate(["library"])
    assert out.toolsets == []
    assert sorted(r.task for r in out.rejected) == ["Count books", "Lend books", "Shelve books"]
    by_task = {r.task: r for r in out.rejected}
    assert by_task["Lend books"].stage == "parse" and "no JSON value" in by_task["Lend books"].reasons[0]
    assert "no tools list" in by_task["Count books"].reasons[0]
    assert "expected a JSON object" in by_task["Shelve books"].reasons[0]


@pytest.mark.anyio
async def test_an_unusable_sub_field_list_is_recorded_not_raised() -> None:
    llm = ScriptedLLM({}, sub_fields="no idea")
    out = await LLMToolsetGenerator(llm, max_tries=2).generate(["library"])
    assert out.toolsets == [] and out.rejected[0].stage == "parse"
    assert len(llm.prompts) == 2


@pytest.mark.anyio
async def test_duplicate_toolsets_and_duplicate_tools_are_dropped() -> None:
    twin = library_answer()
    twin["title"] = "Library desk, again"
    near = library_answer()
    near["tools"].append({**copy.deepcopy(near["tools"][0]), "name": "fetch_books"})
    answers = {"Lend books": [json.dumps(near)], "Loan books": [json.dumps(twin)]}
    llm = ScriptedLLM(answers, tasks={"Circulation": list(answers)})
    out = await LLMToolsetGenerator(llm, n_sub_fields=1, n_tasks=2).generate(["library"])
    assert len(out.toolsets) == 1
    kinds = sorted((d.kind, d.dropped.split("/")[-1]) for d in out.duplicates)
    assert kinds == [("tool", "fetch_books"), ("toolset", "llm.library.0.0.1")]
    assert [t.name for t in out.toolsets[0].tools] == ["get_book", "lend_book", "late_fee"]


def test_similarity_tells_related_generated_toolsets_from_copies() -> None:
    a = generate_toolset("healthcare", 0)
    b = generate_toolset("banking", 0)
    assert toolset_similarity(a, a) == 1.0
    assert toolset_similarity(a, b) < 0.85
    kept, dups = dedupe_toolsets([a, b, Toolset.model_validate({**a.model_dump(), "id": "copy"})])
    assert [t.id for t in kept] == [a.id, b.id] and dups[0].dropped == "copy"
    assert normalised_tool_name("fetch_orders") == normalised_tool_name("get_order") == "get_order"


def test_json_is_found_inside_prose_and_fences() -> None:
    assert extract_json('noise {"a": [1, 2]} trailing') == {"a": [1, 2]}
    assert extract_json("```json\n[\"x\"]\n```") == ["x"]
    with pytest.raises(ValueError):
        extract_json("{not json")
