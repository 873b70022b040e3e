"""Curated overlays: hand-written effects, formulas and rules for imported toolsets.

The importer binds no state (every imported tool is `compute`). For the toolset behind SynthTools' curated
tasks, `ecommerce_and_retail.43` (returns and refunds), this overlay binds what the curated tasks need, so
one engine computes both the reference and the agent's calls (the curated task 2 answer is 149.48, which
the original LLM simulator got wrong by inventing a tax):

- `refund_calculator`: a money-exact formula (gross = sum of item values; tax = round(gross x rate, 2);
  shipping refunded; deductions = restocking + condition deductions, each rounded to cents, plus return
  shipping; net = gross + tax + shipping - deductions) and the spec's own errors as rules: negative amounts,
  rates outside [0, 1] (already enforced as ranges), item values above the order total, a negative net.
- `return_status_tracker`: an `update` of `return_requests.status` keyed by `return_request_id` (missing
  request -> the spec's 404); `current_status` reads the row, `last_updated` the simulated clock.

Example replay still comes first, so the corpus examples keep returning their recorded results.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .spec import Toolset

_GROSS = "sum(item_values)"
_DEDUCTIONS = (f"round({_GROSS} * restocking_fee_rate, 2) + round({_GROSS} * condition_deduction_rate, 2)"
               " + return_shipping_cost")
_NET = f"{_GROSS} + round({_GROSS} * tax_rate, 2) + shipping_cost - ({_DEDUCTIONS})"


def _ecommerce_43(doc: dict[str, Any]) -> None:
    tools = {t["name"]: t for t in doc["tools"]}
    rc = tools["refund_calculator"]
    rc["effect"] = {"kind": "compute", "formula": {
        "gross_refund": _GROSS,
        "tax_refund": f"round({_GROSS} * tax_rate, 2)",
        "shipping_refund": "shipping_cost",
        "total_deductions": _DEDUCTIONS,
        "net_refund": _NET,
    }}
    rc["constraints"] = [
        {"rule": "original_order_total >= 0 and shipping_cost >= 0 and return_shipping_cost >= 0 "
                 "and min(item_values) >= 0",
         "error": "invalid_monetary_values", "description": "All dollar amounts are non-negative."},
        {"rule": "sum_le(item_values, original_order_total)", "error": "item_value_mismatch",
         "description": "Sum of item_values cannot exceed original_order_total."},
    ]
    for e in rc["errors"]:
        if e["code"] == "calculation_error":
            e["when"] = f"({_NET}) < 0"
    rst = tools["return_status_tracker"]
    rst["effect"] = {"kind": "update", "table": "return_requests", "key": "return_request_id",
                     "set": {"new_status": "status"},
                     "returns": {"current_status": "row.status", "last_updated": "now"}}
    rst["annotations"] = None


OVERLAYS: dict[str, Callable[[dict[str, Any]], None]] = {"ecommerce_and_retail.43": _ecommerce_43}
"""Toolset id -> function editing the toolset's JSON document in place."""


def curate(toolset: Toolset) -> Toolset:
    """The toolset with its curated overlay applied (unchanged when it has none)."""
    edit = OVERLAYS.get(toolset.id)
    if edit is None:
        return toolset
    doc = toolset.model_dump(mode="json")
    edit(doc)
    doc["version"] = f"{toolset.version}+curated"
    doc["provenance"]["curated"] = True
    doc["provenance"]["notes"] = [*doc["provenance"]["notes"], "curated overlay: testbeds_synthtools.curated"]
    return Toolset.model_validate(doc)
