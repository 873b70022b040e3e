"""Project appraisal: a product launch's cash flows from Y0 (the investment) to the end of its life, then NPV
(Excel's NPV from Y1 plus the Y0 flow), IRR, MIRR, payback and the profitability index."""

from __future__ import annotations

import random

from ..graph import Graph, Values, irr, mirr, npv_excel, pmt, safe_div
from ._common import growth_row, pick

NAME = "npv_irr"
TITLE = "Project NPV and IRR appraisal"


def build(rng: random.Random) -> Graph:
    life = int(pick(rng, [5, 6, 7]))
    g = Graph(TITLE, "A manufacturer considers launching a product line. The investment is paid at the start "
              "(Y0); operations run from Y1 to the end of the project's life. Build the project's cash flows and "
              "appraise it.", [f"Y{i}" for i in range(life + 1)])
    g.scalar_input("capex", "Initial investment, Y0", "currency", pick(rng, [2150000, 2450000, 2750000]),
                   driver=True)
    g.scalar_input("life", "Project life", "years", life, structural=True)
    g.scalar_input("market0", "Market size, Y1", "count", pick(rng, [415000, 486000, 552000]), driver=True)
    g.scalar_input("market_g", "Market growth per year", "percent", pick(rng, [0.032, 0.041, 0.048]))
    g.scalar_input("share", "Market share", "percent", pick(rng, [0.085, 0.095, 0.105]), driver=True)
    g.scalar_input("price0", "Price per unit, Y1", "currency", pick(rng, [64.5, 72.25, 79.9]), driver=True,
                   decimals=2)
    g.scalar_input("price_g", "Price growth per year", "percent", pick(rng, [0.018, 0.022, 0.026]))
    g.scalar_input("vc", "Variable cost per unit", "currency", pick(rng, [31.4, 35.6, 38.15]), driver=True,
                   decimals=2)
    g.scalar_input("fixed", "Fixed costs per year", "currency", pick(rng, [545000, 610000, 685000]))
    g.scalar_input("tax", "Tax rate", "percent", pick(rng, [0.21, 0.25, 0.28]))
    g.scalar_input("wacc", "Discount rate (cost of capital)", "percent", pick(rng, [0.085, 0.095, 0.11]),
                   driver=True)
    g.scalar_input("fin_rate", "Finance rate for MIRR", "percent", pick(rng, [0.065, 0.07, 0.075]))
    g.scalar_input("pb_limit", "Payback policy limit as a share of the life", "percent", pick(rng, [0.7, 0.75, 0.8]))
    g.scalar_input("reinv_rate", "Reinvestment rate for MIRR", "percent", pick(rng, [0.054, 0.058, 0.062]))

    growth_row(g, "market", "Market size", "count", "market0", "market_g", start=1)
    g.row("units", "Units sold", "count", "{market}*{share}", lambda v, t: v("market", t) * v("share"), start=1)
    growth_row(g, "price", "Price per unit", "currency", "price0", "price_g", start=1, decimals=2)
    g.row("revenue", "Revenue", "currency", "{units}*{price}", lambda v, t: v("units", t) * v("price", t), start=1,
          sign="in")
    g.row("var_costs", "Variable costs", "currency", "-{units}*{vc}", lambda v, t: -v("units", t) * v("vc"), start=1,
          sign="out")
    g.row("fixed_costs", "Fixed costs", "currency", "-{fixed}", lambda v, t: -v("fixed"), start=1, sign="out")
    g.row("ebitda", "EBITDA", "currency", "{revenue}+{var_costs}+{fixed_costs}",
          lambda v, t: v("revenue", t) + v("var_costs", t) + v("fixed_costs", t), start=1)
    g.scalar("dep", "Depreciation per year", "currency", "{capex}/{life}", lambda v: v("capex") / v("life"))
    g.row("dep_row", "Depreciation", "currency", "-{dep}", lambda v, t: -v("dep"), start=1, sign="out")
    g.row("ebit", "EBIT", "currency", "{ebitda}+{dep_row}", lambda v, t: v("ebitda", t) + v("dep_row", t), start=1)
    g.row("taxes", "Tax", "currency", "-MAX(0,{ebit})*{tax}", lambda v, t: -max(0.0, v("ebit", t)) * v("tax"),
          start=1, sign="out")
    g.row("ocf", "Operating cash flow", "currency", "{ebitda}+{taxes}", lambda v, t: v("ebitda", t) + v("taxes", t),
          start=1)
    g.row("ncf", "Net cash flow", "currency", "{ocf}", lambda v, t: v("ocf", t), first="-{capex}",
          py_first=lambda v, t: -v("capex"))
    g.row("cum", "Cumulative cash flow", "currency", "{cum@prev}+{ncf}", lambda v, t: v("cum", t - 1) + v("ncf", t),
          first="{ncf}", py_first=lambda v, t: v("ncf", t))
    g.scalar("npv", "Net present value", "currency", "{ncf@first}+NPV({wacc},{ncf@rest})",
             lambda v: v.first("ncf") + npv_excel(v("wacc"), v.rest("ncf")))
    g.scalar("irr", "Internal rate of return", "percent", "IRR({ncf@row})", lambda v: irr(v.row("ncf")), decimals=2)
    g.scalar("mirr", "Modified internal rate of return", "percent", "MIRR({ncf@row},{fin_rate},{reinv_rate})",
             lambda v: mirr(v.row("ncf"), v("fin_rate"), v("reinv_rate")), decimals=2)
    g.row("pb_frac", "Share of the year before payback", "ratio", "IFERROR(MAX(0,MIN(1,-{cum@prev}/{ncf})),0)",
          lambda v, t: max(0.0, min(1.0, safe_div(-v("cum", t - 1), v("ncf", t)))), start=1)
    g.scalar("payback", "Payback period", "years", "SUM({pb_frac@row})", lambda v: sum(v.row("pb_frac")), decimals=1)
    g.scalar("pb_share", "Payback as a share of the project life", "percent", "{payback}/{life}",
             lambda v: v("payback") / v("life"))
    g.scalar("pb_gap", "Payback share below the policy limit", "percent", "{pb_limit}-{pb_share}",
             lambda v: v("pb_limit") - v("pb_share"))
    g.scalar("pi", "Profitability index", "ratio", "1+{npv}/{capex}", lambda v: 1 + v("npv") / v("capex"))
    g.scalar("irr_spread", "IRR above the cost of capital", "percent", "{irr}-{wacc}", lambda v: v("irr") - v("wacc"),
             decimals=2)
    g.scalar("eav", "Equivalent annual value", "currency", "-PMT({wacc},{life},{npv})",
             lambda v: -pmt(v("wacc"), v("life"), v("npv")))

    last = g.periods[-1]
    g.output("market", "Market_Final", f"Market size, {last}")
    g.output("units", "Units_Final", f"Units sold, {last}")
    g.output("price", "Price_Final", f"Price per unit, {last}")
    g.output("revenue", "Revenue_Final", f"Revenue, {last}")
    g.output("var_costs", "VariableCosts_Final", f"Variable costs, {last}")
    g.output("ebitda", "EBITDA_Final", f"EBITDA, {last}")
    g.output("ebit", "EBIT_Final", f"EBIT, {last}")
    g.output("taxes", "Tax_Final", f"Tax, {last}")
    g.output("ocf", "OCF_Final", f"Operating cash flow, {last}")
    g.output("ncf", "NetCashFlow_Final", f"Net cash flow, {last}")
    g.output("cum", "Cumulative_Final", f"Cumulative cash flow, {last}")
    g.output("npv", "Project_NPV", "Net present value")
    g.output("irr", "Project_IRR", "Internal rate of return")
    g.output("mirr", "Project_MIRR", "Modified internal rate of return")
    g.output("payback", "Payback_Years", "Payback period")
    g.output("pb_share", "Payback_Share", "Payback as a share of the project life")
    g.output("pb_gap", "Payback_Gap", "Payback share below the policy limit")
    g.output("pi", "Profitability_Index", "Profitability index")
    g.output("irr_spread", "IRR_Spread", "IRR above the cost of capital")
    g.output("eav", "Equivalent_Annual_Value", "Equivalent annual value")
    return g


def valid(v: Values) -> bool:
    """One sign change (investment then positive flows), paid back within the life, a positive NPV."""
    flows = v.row("ncf")
    return flows[0] < 0 and all(x > 0 for x in flows[1:]) and v.last("cum") > 0 and v("npv") > 0
