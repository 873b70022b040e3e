"""Three-scenario analysis: a selector (1 base, 2 upside, 3 downside) picks each driver's live value with CHOOSE;
the model runs on the live values down to free cash flow and NPV, so flipping the selector moves every output."""

from __future__ import annotations

import random

from ..graph import Graph, Values
from ._common import growth_row, pick, running_total, years

NAME = "three_scenarios"
TITLE = "Three-scenario analysis"
SCENARIOS = ("base", "upside", "downside")


def _driver(g: Graph, id: str, label: str, values: tuple[float, float, float], decimals: int | None = None,
            unit: str = "percent") -> str:
    """Three scenario inputs and the live value chosen by the selector."""
    for name, value in zip(SCENARIOS, values):
        g.scalar_input(f"{id}_{name}", f"{label}, {name} case", unit, value, decimals=decimals)  # type: ignore[arg-type]
    return g.scalar(id, f"{label}, live case", unit,  # type: ignore[arg-type]
                    f"CHOOSE({{scenario}},{{{id}_base}},{{{id}_upside}},{{{id}_downside}})",
                    lambda v: v(f"{id}_{SCENARIOS[int(v('scenario')) - 1]}"), decimals=decimals)


def build(rng: random.Random) -> Graph:
    n = int(pick(rng, [5, 6]))
    g = Graph(TITLE, "A retailer plans a new store format under three scenarios. A scenario selector (1 = base, "
              "2 = upside, 3 = downside) picks the live value of each driver with CHOOSE; the model runs on the live "
              "values, so switching the selector re-runs the whole plan.", years(n))
    g.scalar_input("scenario", "Scenario selector", "selector",
                   float(pick(rng, [1, 2, 3])), driver=True)
    base_g = pick(rng, [0.055, 0.065, 0.075])
    base_p = pick(rng, [38.5, 42.5, 46.5])
    base_c = pick(rng, [0.56, 0.58, 0.6])
    _driver(g, "growth", "Volume growth per year", (base_g, round(base_g + 0.03, 6), round(base_g - 0.035, 6)))
    _driver(g, "price0", "Price per unit, Y1", (base_p, base_p + 3.25, base_p - 2.75), decimals=2, unit="currency")
    _driver(g, "vcr", "Variable cost as a share of revenue", (base_c, round(base_c - 0.025, 6),
                                                                 round(base_c + 0.03, 6)))
    g.scalar_input("vol0", "Units sold, Y1", "count", pick(rng, [148000, 172000, 196000]))
    g.scalar_input("infl", "Price inflation per year", "percent", pick(rng, [0.018, 0.021, 0.024]))
    g.scalar_input("fixed0", "Fixed costs, Y1", "currency", pick(rng, [1450000, 1650000, 1850000]))
    g.scalar_input("fixed_g", "Fixed cost growth per year", "percent", pick(rng, [0.027, 0.031, 0.034]))
    g.scalar_input("da", "Depreciation per year", "currency", pick(rng, [265000, 315000, 345000]))
    g.scalar_input("capex", "Maintenance capital expenditure per year", "currency", pick(rng, [185000, 215000, 245000]))
    g.scalar_input("tax", "Tax rate", "percent", pick(rng, [0.22, 0.25, 0.27]))
    g.scalar_input("invest", "Initial investment", "currency", pick(rng, [4150000, 4650000, 5250000]))
    g.scalar_input("disc", "Discount rate", "percent", pick(rng, [0.086, 0.091, 0.097]))

    g.row("volume", "Units sold", "count", "{volume@prev}*(1+{growth})",
          lambda v, t: v("volume", t - 1) * (1 + v("growth")), first="{vol0}", py_first=lambda v, t: v("vol0"))
    g.row("price", "Price per unit", "currency", "{price@prev}*(1+{infl})",
          lambda v, t: v("price", t - 1) * (1 + v("infl")), first="{price0}", py_first=lambda v, t: v("price0"),
          decimals=2)
    g.row("revenue", "Revenue", "currency", "{volume}*{price}", lambda v, t: v("volume", t) * v("price", t), sign="in")
    g.row("var_costs", "Variable costs", "currency", "-{revenue}*{vcr}", lambda v, t: -v("revenue", t) * v("vcr"),
          sign="out")
    growth_row(g, "fixed", "Fixed costs", "currency", "fixed0", "fixed_g", negate=True, sign="out")
    g.row("ebitda", "EBITDA", "currency", "{revenue}+{var_costs}+{fixed}",
          lambda v, t: v("revenue", t) + v("var_costs", t) + v("fixed", t))
    g.row("dep", "Depreciation", "currency", "-{da}", lambda v, t: -v("da"), sign="out")
    g.row("ebit", "EBIT", "currency", "{ebitda}+{dep}", lambda v, t: v("ebitda", t) + v("dep", t))
    g.row("taxes", "Tax", "currency", "-MAX(0,{ebit})*{tax}", lambda v, t: -max(0.0, v("ebit", t)) * v("tax"),
          sign="out")
    g.row("nopat", "Profit after tax", "currency", "{ebit}+{taxes}", lambda v, t: v("ebit", t) + v("taxes", t))
    g.row("capex_row", "Capital expenditure", "currency", "-{capex}", lambda v, t: -v("capex"), sign="out")
    g.row("fcf", "Free cash flow", "currency", "{nopat}-{dep}+{capex_row}",
          lambda v, t: v("nopat", t) - v("dep", t) + v("capex_row", t))
    running_total(g, "cum_fcf", "Cumulative free cash flow", "currency", "fcf")
    g.row("df", "Discount factor", "ratio", "{df@prev}/(1+{disc})", lambda v, t: v("df", t - 1) / (1 + v("disc")),
          first="1/(1+{disc})", py_first=lambda v, t: 1 / (1 + v("disc")), decimals=4)
    g.row("pv_fcf", "Present value of free cash flow", "currency", "{fcf}*{df}", lambda v, t: v("fcf", t) * v("df", t))
    g.scalar("npv", "Net present value", "currency", "SUM({pv_fcf@row})-{invest}",
             lambda v: sum(v.row("pv_fcf")) - v("invest"))
    g.scalar("npv_per_invest", "NPV per $ invested", "ratio", "{npv}/{invest}", lambda v: v("npv") / v("invest"),
             decimals=3)

    last = g.periods[-1]
    g.output("growth", "Live_Growth", "Volume growth per year, live case")
    g.output("vcr", "Live_VariableCostShare", "Variable cost as a share of revenue, live case")
    g.output("volume", "Units_Final", f"Units sold, {last}")
    g.output("price", "Price_Final", f"Price per unit, {last}")
    g.output("revenue", "Revenue_Final", f"Revenue, {last}")
    g.output("var_costs", "VariableCosts_Final", f"Variable costs, {last}")
    g.output("ebitda", "EBITDA_Final", f"EBITDA, {last}")
    g.output("ebit", "EBIT_Final", f"EBIT, {last}")
    g.output("taxes", "Tax_Final", f"Tax, {last}")
    g.output("nopat", "ProfitAfterTax_Final", f"Profit after tax, {last}")
    g.output("fcf", "FCF_Final", f"Free cash flow, {last}")
    g.output("cum_fcf", "FCF_Cumulative_Final", f"Cumulative free cash flow, {last}")
    g.output("pv_fcf", "PV_FCF_Final", f"Present value of free cash flow, {last}")
    g.output("npv", "Scenario_NPV", "Net present value, live case")
    g.output("npv_per_invest", "NPV_per_Invest", "NPV per $ invested, live case")
    return g


def valid(v: Values) -> bool:
    """Profitable in every year of the live case (one tax formula, no loss years)."""
    return all(x > 0 for x in v.row("ebit"))
