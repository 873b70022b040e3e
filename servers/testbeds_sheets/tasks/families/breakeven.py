"""Break-even analysis of a product over a few years: contribution margin, break-even volume and revenue, margin of
safety, operating leverage, then profit and the return on the launch investment."""

from __future__ import annotations

import random

from ..graph import Graph, Values, safe_div
from ._common import growth_row, pick, years

NAME = "break_even"
TITLE = "Break-even analysis"


def build(rng: random.Random) -> Graph:
    n = int(pick(rng, [4, 5, 6]))
    g = Graph(TITLE, "A firm launches a kitchen appliance sold through retailers at a discount to list price. For "
              "each year compute the contribution margin, the break-even volume and revenue, the margin of safety "
              "and operating leverage, then profit and the return on the launch investment.", years(n))
    g.scalar_input("list_price", "List price per unit", "currency", pick(rng, [149.0, 179.0, 219.0]), driver=True,
                   decimals=2)
    g.scalar_input("discount", "Retailer discount", "percent", pick(rng, [0.25, 0.3, 0.35]), driver=True)
    g.scalar_input("price_g", "Price growth per year", "percent", pick(rng, [0.015, 0.019, 0.023]))
    g.scalar_input("vc0", "Variable cost per unit, Y1", "currency", pick(rng, [54.5, 61.25, 67.8]), driver=True,
                   decimals=2)
    g.scalar_input("vc_g", "Variable cost growth per year", "percent", pick(rng, [0.027, 0.031, 0.036]))
    g.scalar_input("market0", "Market size, Y1", "count", pick(rng, [184000, 226000, 263000]), driver=True)
    g.scalar_input("market_g", "Market growth per year", "percent", pick(rng, [0.044, 0.052, 0.058]))
    g.scalar_input("share", "Market share", "percent", pick(rng, [0.065, 0.075, 0.085]), driver=True)
    g.scalar_input("fixed0", "Fixed costs, Y1", "currency", pick(rng, [1150000, 1320000, 1480000]), driver=True)
    g.scalar_input("fixed_g", "Fixed cost growth per year", "percent", pick(rng, [0.021, 0.024, 0.029]))
    g.scalar_input("tax", "Tax rate", "percent", pick(rng, [0.22, 0.26, 0.3]))
    g.scalar_input("invest", "Launch investment", "currency", pick(rng, [2250000, 2650000, 2950000]))
    g.scalar_input("hurdle", "Hurdle rate", "percent", pick(rng, [0.105, 0.115, 0.135]))

    g.scalar("net_price0", "Net price per unit, Y1", "currency", "{list_price}*(1-{discount})",
             lambda v: v("list_price") * (1 - v("discount")), decimals=2)
    g.row("price", "Net price per unit", "currency", "{price@prev}*(1+{price_g})",
          lambda v, t: v("price", t - 1) * (1 + v("price_g")), first="{net_price0}",
          py_first=lambda v, t: v("net_price0"), decimals=2)
    growth_row(g, "vc", "Variable cost per unit", "currency", "vc0", "vc_g", decimals=2)
    growth_row(g, "market", "Market size", "count", "market0", "market_g")
    g.row("volume", "Units sold", "count", "{market}*{share}", lambda v, t: v("market", t) * v("share"))
    growth_row(g, "fixed", "Fixed costs", "currency", "fixed0", "fixed_g", negate=True, sign="out")
    g.row("cm", "Contribution margin per unit", "currency", "{price}-{vc}", lambda v, t: v("price", t) - v("vc", t),
          decimals=2)
    g.row("cm_ratio", "Contribution margin ratio", "percent", "IFERROR({cm}/{price},0)",
          lambda v, t: safe_div(v("cm", t), v("price", t)))
    g.row("be_units", "Break-even volume", "count", "IFERROR(-{fixed}/{cm},0)",
          lambda v, t: safe_div(-v("fixed", t), v("cm", t)))
    g.row("be_rev", "Break-even revenue", "currency", "IFERROR(-{fixed}/{cm_ratio},0)",
          lambda v, t: safe_div(-v("fixed", t), v("cm_ratio", t)))
    g.row("revenue", "Revenue", "currency", "{volume}*{price}", lambda v, t: v("volume", t) * v("price", t), sign="in")
    g.row("var_costs", "Variable costs", "currency", "-{volume}*{vc}", lambda v, t: -v("volume", t) * v("vc", t),
          sign="out")
    g.row("contribution", "Contribution", "currency", "{revenue}+{var_costs}",
          lambda v, t: v("revenue", t) + v("var_costs", t))
    g.row("op_profit", "Operating profit", "currency", "{contribution}+{fixed}",
          lambda v, t: v("contribution", t) + v("fixed", t))
    g.row("mos_units", "Margin of safety", "count", "{volume}-{be_units}",
          lambda v, t: v("volume", t) - v("be_units", t))
    g.row("mos_pct", "Margin of safety as a share of volume", "percent", "IFERROR({mos_units}/{volume},0)",
          lambda v, t: safe_div(v("mos_units", t), v("volume", t)))
    g.row("dol", "Degree of operating leverage", "ratio", "IFERROR({contribution}/{op_profit},0)",
          lambda v, t: safe_div(v("contribution", t), v("op_profit", t)))
    g.row("taxes", "Tax", "currency", "-MAX(0,{op_profit})*{tax}",
          lambda v, t: -max(0.0, v("op_profit", t)) * v("tax"), sign="out")
    g.row("ni", "Net profit", "currency", "{op_profit}+{taxes}", lambda v, t: v("op_profit", t) + v("taxes", t))
    g.row("cum", "Cumulative profit after the launch investment", "currency", "{cum@prev}+{ni}",
          lambda v, t: v("cum", t - 1) + v("ni", t), first="-{invest}+{ni}",
          py_first=lambda v, t: -v("invest") + v("ni", t))
    g.scalar("total_ni", "Total net profit", "currency", "SUM({ni@row})", lambda v: sum(v.row("ni")))
    g.scalar("roi", "Return on the launch investment", "percent", "{total_ni}/{invest}-1",
             lambda v: v("total_ni") / v("invest") - 1)
    g.scalar("ann_roi", "Annualised return on the launch investment", "percent",
             "(1+{roi})^(1/COUNT({ni@row}))-1", lambda v: (1 + v("roi")) ** (1 / len(v.row("ni"))) - 1)
    g.scalar("excess", "Return above the hurdle rate", "percent", "{ann_roi}-{hurdle}",
             lambda v: v("ann_roi") - v("hurdle"))
    g.scalar("value_added", "Value added above the hurdle per year", "currency", "{excess}*{invest}",
             lambda v: v("excess") * v("invest"))

    last = g.periods[-1]
    g.output("net_price0", "NetPrice_Y1", "Net price per unit, Y1")
    g.output("market", "Market_Final", f"Market size, {last}")
    g.output("cm", "CM_Final", f"Contribution margin per unit, {last}")
    g.output("volume", "Units_Final", f"Units sold, {last}")
    g.output("cm_ratio", "CMRatio_Final", f"Contribution margin ratio, {last}")
    g.output("be_units", "BreakEvenUnits_Final", f"Break-even volume, {last}")
    g.output("be_rev", "BreakEvenRevenue_Final", f"Break-even revenue, {last}")
    g.output("revenue", "Revenue_Final", f"Revenue, {last}")
    g.output("contribution", "Contribution_Final", f"Contribution, {last}")
    g.output("op_profit", "OperatingProfit_Final", f"Operating profit, {last}")
    g.output("mos_units", "MarginOfSafety_Final", f"Margin of safety, {last}")
    g.output("mos_pct", "MarginOfSafetyPct_Final", f"Margin of safety as a share of volume, {last}")
    g.output("dol", "DOL_Final", f"Degree of operating leverage, {last}")
    g.output("taxes", "Tax_Final", f"Tax, {last}")
    g.output("ni", "NetProfit_Final", f"Net profit, {last}")
    g.output("cum", "CumulativeProfit_Final", f"Cumulative profit after the launch investment, {last}")
    g.output("total_ni", "NetProfit_Total", "Total net profit")
    g.output("roi", "ROI", "Return on the launch investment")
    g.output("ann_roi", "ROI_Annualised", "Annualised return on the launch investment")
    g.output("excess", "Excess_Return", "Return above the hurdle rate")
    g.output("value_added", "Value_Added", "Value added above the hurdle per year")
    return g


def valid(v: Values) -> bool:
    """Positive contribution margin and operating profit in every year; the investment earns something."""
    return (all(x > 0 for x in v.row("cm")) and all(x > 0 for x in v.row("op_profit"))
            and v("total_ni") > v("invest") * 0.5)
