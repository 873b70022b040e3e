"""The spec model: strict, self-consistent, and round-trips through JSON unchanged."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError
from testbeds_synthtools.spec import (
    Annotations,
    Column,
    Constraint,
    Effect,
    ErrorSpec,
    Example,
    Filter,
    Inferred,
    Provenance,
    Source,
    StateSchema,
    Table,
    Tool,
    Toolset,
    Workflow,
    canonical_json,
    is_datetime,
    schema_validator,
)


def _obj(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": required or [], "additionalProperties": False}


def returns_toolset() -> Toolset:
    tables = [
        Table(name="returns", key="return_id", id_prefix="RET-", unique=[["order_id"]], columns={
            "return_id": Column(type="string", nullable=False),
            "order_id": Column(type="string"),
            "status": Column(type="string", enum=["initiated", "approved", "refunded"],
                             transitions={"initiated": ["approved"], "approved": ["refunded"]}),
            "refund": Column(type="number", money_scale=2),
            "updated_at": Column(type="date-time", volatile=True),
        }, seed_rows=[{"return_id": "RET-000001", "order_id": "ORD1", "status": "initiated", "refund": 0}]),
    ]
    get = Tool(
        name="get_return", title="Get Return", input_schema=_obj({"return_id": {"type": "string"}}, ["return_id"]),
        output_schema=_obj({"status": {"type": "string"}}, ["status"]),
        errors=[ErrorSpec(code="return_not_found", title="Return not found", guidance="Check the id.", status=404)],
        effect=Effect(kind="read", table="returns", key="return_id", returns={"status": "row.status"}))
    update = Tool(
        name="update_return_status", title="Update Return Status",
        input_schema=_obj({"return_id": {"type": "string"}, "new_status": {"type": "string"},
                           "refund": {"type": "number", "minimum": 0}}, ["return_id"]),
        output_schema=_obj({"status": {"type": "string"}}, ["status"]),
        errors=[ErrorSpec(code="bad_refund", title="Bad refund", status=400,
                          when="refund is not None and refund > 1000")],
        constraints=[Constraint(rule="requires(refund, new_status)", error="bad_refund")],
        effect=Effect(kind="update", table="returns", key="return_id", set={"new_status": "status", "refund": "refund"},
                      assign={"updated_at": "now"}, returns={"status": "row.status"}),
        examples=[Example(arguments={"return_id": "RET-000001"}, result={"status": "initiated"}, source="manual")],
        inferred=[Inferred(path="/properties/refund", keyword="minimum", value=0, source="description",
                           confidence="medium")],
        source=Source(corpus="manual", id="update"))
    search = Tool(
        name="search_returns", title="Search Returns", input_schema=_obj({"q": {"type": "string"}}),
        output_schema=_obj({"ids": {"type": "array", "items": {"type": "string"}}, "n": {"type": "integer"}}),
        effect=Effect(kind="search", table="returns", filters=[Filter(arg="q", column="order_id", op="match")],
                      returns={"ids": "rows.return_id", "n": "count"}))
    total = Tool(
        name="refund_total", title="Refund Total",
        input_schema=_obj({"values": {"type": "array", "items": {"type": "number"}}, "rate": {"type": "number"}}),
        output_schema=_obj({"total": {"type": "number"}}),
        effect=Effect(kind="compute", formula={"total": "round(sum(values) * (1 + rate), 2)"}))
    return Toolset(id="demo.1", field="demo", provenance=Provenance(origin="manual"),
                   workflows=[Workflow(tier="simple", steps=["Get Return"], tools=["get_return"], resolved=True)],
                   state_schema=StateSchema(tables=tables), tools=[get, update, search, total])


def test_a_toolset_round_trips_through_json_unchanged() -> None:
    ts = returns_toolset()
    again = Toolset.model_validate_json(ts.model_dump_json())
    assert again == ts
    assert canonical_json(again) == canonical_json(ts)
    assert again.spec_hash() == ts.spec_hash()


def test_annotations_follow_the_effect() -> None:
    ts = returns_toolset()
    assert ts.tool("get_return").annotations == Annotations(read_only=True, destructive=False, idempotent=True)
    assert ts.tool("update_return_status").annotations == Annotations(read_only=False, destructive=True,
                                                                      idempotent=True)
    assert Annotations.for_effect("create").idempotent is False
    assert all(t.annotations and t.annotations.open_world is False for t in ts.tools)


def test_unknown_keys_are_refused() -> None:
    data = returns_toolset().model_dump(mode="json")
    data["tools"][0]["colour"] = "red"
    with pytest.raises(ValidationError):
        Toolset.model_validate(data)


def test_a_rule_outside_the_language_makes_the_spec_invalid() -> None:
    with pytest.raises(ValidationError, match="can be called"):
        Constraint(rule="__import__('os').system('true') or x.y")
    with pytest.raises(ValidationError, match="unknown function"):
        Effect(kind="compute", formula={"total": "eval('1')"})


def test_rules_may_only_name_arguments_and_engine_names() -> None:
    tool = returns_toolset().tool("refund_total").model_dump()
    tool["constraints"] = [{"rule": "lt(rate, mystery)"}]
    with pytest.raises(ValidationError, match="unknown names"):
        Tool.model_validate(tool)


@pytest.mark.parametrize("mutate", [
    lambda d: d["tools"][0].update(name="Get Return"),
    lambda d: d["tools"][1].update(name="get_return"),
    lambda d: d["tools"][0]["effect"].update(table="nowhere"),
    lambda d: d["tools"][1]["effect"]["set"].update(new_status="no_column"),
    lambda d: d["tools"][0]["effect"].update(key=None),
    lambda d: d["state_schema"]["tables"][0].update(key="missing"),
    lambda d: d["state_schema"]["tables"][0]["columns"]["order_id"].update(ref="orders.order_id"),
    lambda d: d["state_schema"]["tables"][0]["seed_rows"].append({"return_id": "RET-000001"}),
    lambda d: d["state_schema"]["tables"][0]["columns"]["status"].update(money_scale=2),
    lambda d: d["tools"][0]["errors"][0].update(status=200),
    lambda d: d["tools"][0].update(input_schema={"type": "string"}),
])
def test_inconsistent_specs_are_refused(mutate: Any) -> None:
    data = returns_toolset().model_dump(mode="json")
    mutate(data)
    with pytest.raises(ValidationError):
        Toolset.model_validate(data)


def test_date_times_follow_our_rule_with_lenient_dates_for_imports() -> None:
    assert is_datetime("2025-03-15T10:00:00Z") and is_datetime("2025-03-15T10:00:00.5+02:00")
    assert not is_datetime("1985-03-15") and is_datetime("1985-03-15", lenient=True)
    assert not is_datetime("15/03/1985", lenient=True) and not is_datetime("2025-13-40", lenient=True)
    schema = _obj({"d": {"type": "string", "format": "date-time"}})
    assert not schema_validator(schema).is_valid({"d": "1985-03-15"})
    assert schema_validator(schema, lenient_dates=True).is_valid({"d": "1985-03-15"})
