"""The SynthTools corpus imports whole, to valid schemas and safe names, deterministically."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
from conftest import shared_data
from testbeds_synthtools.importer import (
    ImportReport,
    environment_schema,
    error_status,
    import_corpus,
    import_toolset,
    list_corpus,
    summary_counts,
)
from testbeds_synthtools.spec import Toolset, canonical_json, schema_validator

NAME = re.compile(r"^[a-z][a-z0-9_]{0,47}$")


@pytest.fixture(scope="session")
def corpus_root() -> Path:
    root = shared_data("synthtools")
    if not (root / "tool_json").is_dir():
        pytest.skip("SynthTools corpus absent")
    return root


@pytest.fixture(scope="session")
def imported(corpus_root: Path) -> tuple[list[Toolset], ImportReport]:
    return import_corpus(corpus_root)


def test_the_whole_corpus_imports_with_the_design_counts(imported: tuple[list[Toolset], ImportReport]) -> None:
    toolsets, report = imported
    counts = summary_counts(toolsets)
    assert (counts["toolsets"], counts["tools"], counts["fields"]) == (573, 5900, 100)
    assert (counts["field_subfield_pairs"], counts["tasks"]) == (221, 572)
    assert report.files == 5900 and report.tools == 5900 and report.errors == 28622
    assert report.workflows == {"simple": 1113, "medium": 1131, "complex": 1014}
    assert report.budget_equals_tools == 47


def _shape(schema: object) -> object:
    """The schema reduced to its shape: descriptions and defaults dropped, property names numbered, enum lists
    and numeric bounds replaced by placeholders. Metaschema validity does not depend on those values beyond
    their JSON types (asserted here), so equal shapes share one slow ($dynamicRef-heavy) metaschema check."""
    if isinstance(schema, dict):
        out = {}
        for k, v in schema.items():
            if k == "description":
                assert isinstance(v, str)
            elif k == "default":
                pass  # the metaschema accepts any JSON value here
            elif k == "enum":
                assert isinstance(v, list)
                out[k] = ["v"] if v else []
            elif k in ("minimum", "maximum"):
                assert isinstance(v, int | float) and not isinstance(v, bool)
                out[k] = 0
            elif k in ("minItems", "maxItems"):
                assert isinstance(v, int) and not isinstance(v, bool) and v >= 0
                out[k] = 0
            elif k == "properties":
                assert all(isinstance(n, str) for n in v)
                out[k] = {f"p{i}": _shape(sub) for i, sub in enumerate(v.values())}
            elif k == "required":
                names = list(schema.get("properties", {}))
                out[k] = [f"p{names.index(n)}" if n in names else n for n in v]
            else:
                out[k] = _shape(v) if k in ("items",) else v
        return out
    return schema


def test_every_schema_is_a_valid_draft_2020_12_schema(imported: tuple[list[Toolset], ImportReport]) -> None:
    meta = jsonschema.Draft202012Validator(jsonschema.Draft202012Validator.META_SCHEMA)
    shapes: dict[str, tuple[str, str]] = {}
    for t in imported[0]:
        for tool in t.tools:
            for schema in (tool.input_schema, tool.output_schema):
                shape = _shape(schema)
                assert isinstance(shape, dict)
                # each property schema is itself a schema: check it alone; the wrapper keeps one placeholder
                for sub in shape.get("properties", {}).values():
                    shapes.setdefault(canonical_json(sub), (t.id, tool.name))
                required = shape.get("required", [])
                assert len(set(required)) == len(required) and set(required) <= set(shape["properties"])
                wrapper = {**shape, "properties": {"p0": {}}, "required": ["p0"] if required else []}
                shapes.setdefault(canonical_json(wrapper), (t.id, tool.name))
    bad = [where for shape, where in shapes.items() if not meta.is_valid(json.loads(shape))]
    assert bad == []
    assert len(shapes) > 10
    assert not meta.is_valid({"type": "text"})  # the metaschema check can fail


def test_names_are_mcp_safe_and_unique_per_toolset(imported: tuple[list[Toolset], ImportReport]) -> None:
    for t in imported[0]:
        names = [tool.name for tool in t.tools]
        assert all(NAME.match(n) and "__" not in n for n in names), t.id
        assert len(set(names)) == len(names), t.id
    titles = {tool.title: tool.name for t in imported[0] for tool in t.tools}
    assert titles["A/B Test Manager"] == "a_b_test_manager"


def test_tool_meta_calls_and_returns_validate_except_the_null_in_a_number_array(
        corpus_root: Path, imported: tuple[list[Toolset], ImportReport]) -> None:
    tools = {tool.source.id: (tool, t) for t in imported[0] for tool in t.tools if tool.source}
    calls_ok = returns_ok = 0
    rejects = []
    for p in sorted((corpus_root / "tool_meta").glob("*__output.json")):
        doc = json.loads(p.read_text(encoding="utf-8"))
        tool, ts = tools[p.name[: -len("__output.json")]]
        args = {k: v for k, v in doc["Tool Call"].items()
                if k in tool.input_schema["properties"] or v != tool.title}
        if schema_validator(tool.input_schema, ts.lenient_dates).is_valid(args):
            calls_ok += 1
        else:
            rejects.append(p.name)
        returns_ok += schema_validator(tool.output_schema, ts.lenient_dates).is_valid(doc["Return Data"])
    assert (calls_ok, returns_ok) == (1057, 1058)
    assert rejects == ["financial_trading_tool_spec_62__Missing_Data_Handler__output.json"]
    _, report = imported
    assert (report.examples_attached, report.examples_rejected, report.examples_stray_keys_stripped) == (1057, 1, 20)


def test_attached_examples_validate_and_kept_inferences_accept_them(
        imported: tuple[list[Toolset], ImportReport]) -> None:
    n = 0
    for t in imported[0]:
        for tool in t.tools:
            for ex in tool.examples:
                assert schema_validator(tool.input_schema, True).is_valid(ex.arguments)
                assert schema_validator(tool.output_schema, True).is_valid(ex.result)
                n += 1
    assert n == 1057


def test_kept_defaults_validate_against_their_property(imported: tuple[list[Toolset], ImportReport]) -> None:
    checked = 0
    for t in imported[0]:
        for tool in t.tools:
            for prop in tool.input_schema["properties"].values():
                if "default" in prop:
                    assert schema_validator(prop, True).is_valid(prop["default"]), (tool.name, prop)
                    checked += 1
    assert checked == imported[1].defaults_kept > 10000


def test_inferred_keywords_are_in_the_schema_at_their_path(imported: tuple[list[Toolset], ImportReport]) -> None:
    confidences = set()
    for t in imported[0][:80]:
        for tool in t.tools:
            for inf in tool.inferred:
                node = tool.input_schema
                for part in inf.path.strip("/").split("/"):
                    node = node[part]
                assert node[inf.keyword] == inf.value
                confidences.add(inf.confidence)
    assert confidences == {"high", "medium"}


def test_an_error_value_list_becomes_a_high_confidence_enum(corpus_root: Path) -> None:
    ts = import_toolset(corpus_root, "academic_publishing_and_citations.469")
    tool = ts.tool("bibliography_validator")
    style = tool.input_schema["properties"]["citation_style"]
    assert style["enum"] == ["APA", "MLA", "Chicago", "Harvard", "IEEE", "Vancouver"]
    [inf] = [i for i in tool.inferred if i.path == "/properties/citation_style"]
    assert (inf.source, inf.confidence) == ("error:2", "high")
    assert tool.errors[0].code == "empty_bibliography" and tool.errors[0].status == 400


def test_reimport_is_byte_identical(corpus_root: Path, imported: tuple[list[Toolset], ImportReport]) -> None:
    again, _ = import_corpus(corpus_root)
    assert [canonical_json(t) for t in again] == [canonical_json(t) for t in imported[0]]
    one = imported[0][7]
    assert Toolset.model_validate_json(one.model_dump_json()) == one


def test_imported_tools_are_compute_and_read_only(imported: tuple[list[Toolset], ImportReport]) -> None:
    kinds = {tool.effect.kind for t in imported[0] for tool in t.tools}
    assert kinds == {"compute"}
    assert all(t.provenance.origin == "synthtools" and t.lenient_dates for t in imported[0])


def test_the_returns_environment_becomes_tables_with_child_tables(corpus_root: Path) -> None:
    ts = import_toolset(corpus_root, "ecommerce_and_retail.43")
    assert ts.state_schema is not None
    tables = {t.name: t for t in ts.state_schema.tables}
    assert tables["return_requests"].key == "return_request_id"
    assert tables["orders"].columns["customer_id"].ref == "customers.customer_id"
    assert tables["orders"].columns["total_amount"].money_scale == 2
    assert tables["orders_items"].parent == "orders.items"
    assert len(tables["orders_items"].seed_rows) == 4
    assert tables["return_policies"].key == "category"
    assert len(ts.tools) == 9 and ts.tool_budget == 12


def test_an_unparseable_environment_is_reported_not_raised(imported: tuple[list[Toolset], ImportReport]) -> None:
    report = imported[1]
    assert report.environments_unparsed == ["healthcare_medical_tool_spec_1.environment.yml: ScannerError"]
    assert report.state_schemas >= 1


def test_the_report_counts_what_could_not_be_inferred(imported: tuple[list[Toolset], ImportReport]) -> None:
    report = imported[1]
    assert report.dropped_inferences == sum(report.dropped_by_reason.values()) > 0
    assert sum(report.not_inferable.values()) > 0 and report.not_inferable_sample
    assert report.defaults_nullish > 3000 and report.defaults_dropped > 0
    assert sum(report.inferred_enums.values()) > 5000


def test_list_corpus_keys_toolsets_by_field_and_number(corpus_root: Path) -> None:
    entries = list_corpus(corpus_root)
    ids = [e.toolset_id for e in entries]
    assert len(ids) == len(set(ids)) == 573
    assert {"healthcare_medical.120", "healthcare_medical.228"} <= set(ids)


def test_reserved_names_are_avoided(corpus_root: Path) -> None:
    ts = import_toolset(corpus_root, "academic_publishing_and_citations.469", reserved={"citation_extractor"})
    assert "citation_extractor_2" in [t.name for t in ts.tools]
    assert "citation_extractor" not in [t.name for t in ts.tools]


def test_unknown_toolset_ids_raise_key_error(corpus_root: Path) -> None:
    with pytest.raises(KeyError):
        import_toolset(corpus_root, "no_such_field.1")


@pytest.mark.parametrize(("title", "status"), [
    ("Order not found", 404), ("Duplicate request", 409), ("Access denied", 403), ("Authentication failed", 401),
    ("Rate limit exceeded", 429), ("System error", 500), ("Invalid quantity", 400)])
def test_error_titles_map_to_statuses_by_class(title: str, status: int) -> None:
    assert error_status(title) == status


def test_nested_object_lists_split_into_child_tables_with_refs() -> None:
    schema, notes = environment_schema({
        "carts": [{"cart_id": "C1", "lines": [{"sku": "A", "qty": 2}, {"sku": "B", "qty": 1}], "total": 3.5}],
        "weird": 5,
    })
    child = schema.table("carts_lines")
    assert child.columns["cart_id"].ref == "carts.cart_id"
    assert [r["qty"] for r in child.seed_rows] == [2, 1]
    assert schema.table("carts").columns["total"].money_scale == 2
    assert notes == ["weird: not a list or map of objects; not represented"]
