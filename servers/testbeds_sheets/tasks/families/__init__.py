"""The finance case families. Each module has NAME, TITLE, `build(rng) -> Graph` (the node library with seeded
inputs and candidate outputs) and `valid(values) -> bool` (economic validity, also under a perturbation)."""

from __future__ import annotations

from types import ModuleType

from . import breakeven, dcf, depreciation, loan, npv, revenue, scenarios, working_capital

REGISTRY: dict[str, ModuleType] = {
    m.NAME: m for m in (revenue, loan, dcf, npv, breakeven, depreciation, working_capital, scenarios)}
