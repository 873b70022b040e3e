"""Spec tools compile to MCP tool descriptions: schemas, titles, annotations from the effect."""

from __future__ import annotations

import jsonschema
import pytest
from conftest import shared_data
from test_synthtools_spec import returns_toolset
from testbeds_synthtools.compiler import compile_tool, compile_toolset, describe
from testbeds_synthtools.importer import import_toolset


def test_a_read_tool_compiles_to_a_read_only_mcp_tool() -> None:
    tool = returns_toolset().tool("get_return")
    c = compile_tool(tool)
    assert (c.name, c.title) == ("get_return", "Get Return")
    assert c.annotations == {"title": "Get Return", "readOnlyHint": True, "destructiveHint": False,
                             "idempotentHint": True, "openWorldHint": False}
    assert c.input_schema == tool.input_schema and c.output_schema == tool.output_schema
    assert "404 return_not_found: Return not found. Check the id." in c.description


def test_an_update_tool_is_destructive_and_a_create_is_not_idempotent() -> None:
    ts = returns_toolset()
    c = compile_tool(ts.tool("update_return_status"))
    assert c.annotations["readOnlyHint"] is False and c.annotations["destructiveHint"] is True
    data = ts.tool("update_return_status").model_dump()
    data["effect"] = {"kind": "create", "table": "returns", "set": {"new_status": "status"}}
    data["annotations"] = None
    created = type(ts.tools[0]).model_validate(data)
    assert compile_tool(created).annotations["idempotentHint"] is False


def test_injected_arguments_come_first_and_cannot_collide() -> None:
    tool = returns_toolset().tool("get_return")
    c = compile_tool(tool, extra_properties={"handle": {"type": "string"}}, extra_required=("handle",))
    assert list(c.input_schema["properties"]) == ["handle", "return_id"]
    assert c.input_schema["required"] == ["handle", "return_id"]
    assert "handle" not in tool.input_schema["properties"]  # the spec is not mutated
    with pytest.raises(ValueError, match="collide"):
        compile_tool(tool, extra_properties={"return_id": {"type": "string"}})


def test_an_imported_toolset_compiles_to_valid_schemas() -> None:
    root = shared_data("synthtools")
    if not (root / "tool_json").is_dir():
        pytest.skip("SynthTools corpus absent")
    ts = import_toolset(root, "ecommerce_and_retail.43")
    compiled = compile_toolset(ts)
    assert [c.name for c in compiled] == [t.name for t in ts.tools]
    for c in compiled:
        jsonschema.Draft202012Validator.check_schema(c.input_schema)
        assert c.annotations["readOnlyHint"] is True and c.annotations["openWorldHint"] is False
        assert c.description.startswith(ts.tool(c.name).description)


def test_long_error_lists_are_abridged_in_the_description() -> None:
    data = returns_toolset().tool("get_return").model_dump()
    data["errors"] = [{"code": f"e{i}", "title": f"Error {i}", "status": 400} for i in range(15)]
    tool = type(returns_toolset().tools[0]).model_validate(data)
    assert describe(tool).endswith("- ... and 3 more")
