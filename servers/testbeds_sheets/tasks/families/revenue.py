"""Revenue build-up: two products' volume and price, total revenue, then the income statement down to retained
earnings."""

from __future__ import annotations

import random

from ..graph import Graph, Values, safe_div
from ._common import growth_row, pick, running_total, years

NAME = "revenue_buildup"
TITLE = "Revenue build-up"


def build(rng: random.Random) -> Graph:
    n = int(pick(rng, [5, 6, 7]))
    g = Graph(TITLE, "A consumer-goods company sells two products. Build revenue from volume and price, then the "
              "income statement down to retained earnings, for each year of the plan.", years(n))
    g.scalar_input("vol_a0", "Product A volume, Y1", "count", pick(rng, [12500, 18400, 24300, 31600]), driver=True)
    g.scalar_input("gr_a", "Product A volume growth per year", "percent", pick(rng, [0.045, 0.06, 0.075, 0.085]),
                   driver=True)
    g.scalar_input("price_a0", "Product A price per unit, Y1", "currency", pick(rng, [24.5, 32.75, 41.9, 57.25]),
                   driver=True, decimals=2)
    g.scalar_input("vol_b0", "Product B volume, Y1", "count", pick(rng, [6200, 7450, 9800, 11350]), driver=True)
    g.scalar_input("gr_b", "Product B volume growth per year", "percent", pick(rng, [0.095, 0.11, 0.125, 0.14]))
    g.scalar_input("price_b0", "Product B price per unit, Y1", "currency", pick(rng, [68.5, 84.25, 96.4, 118.75]),
                   driver=True, decimals=2)
    g.scalar_input("infl", "Price inflation per year", "percent", pick(rng, [0.021, 0.025, 0.028, 0.032]))
    g.scalar_input("cogs_pct", "Cost of goods sold as a share of revenue", "percent",
                   pick(rng, [0.38, 0.42, 0.46, 0.52]), driver=True)
    g.scalar_input("opex0", "Operating expenses, Y1", "currency", pick(rng, [185000, 240000, 265000, 315000]),
                   driver=True)
    g.scalar_input("opex_g", "Operating expense growth per year", "percent", pick(rng, [0.034, 0.038, 0.043]))
    g.scalar_input("da_pct", "Depreciation and amortisation as a share of revenue", "percent",
                   pick(rng, [0.04, 0.05, 0.06]))
    g.scalar_input("int_exp", "Interest expense per year", "currency", pick(rng, [42000, 56000, 71000]))
    g.scalar_input("tax", "Tax rate", "percent", pick(rng, [0.21, 0.25, 0.28, 0.3]), driver=True)
    g.scalar_input("payout", "Dividend payout ratio", "percent", pick(rng, [0.35, 0.4, 0.45]), driver=True)
    g.scalar_input("re0", "Retained earnings, opening balance", "currency", pick(rng, [450000, 620000, 780000]))

    growth_row(g, "vol_a", "Product A volume", "count", "vol_a0", "gr_a")
    growth_row(g, "price_a", "Product A price per unit", "currency", "price_a0", "infl", decimals=2)
    g.row("rev_a", "Product A revenue", "currency", "{vol_a}*{price_a}", lambda v, t: v("vol_a", t) * v("price_a", t),
          sign="in")
    growth_row(g, "vol_b", "Product B volume", "count", "vol_b0", "gr_b")
    growth_row(g, "price_b", "Product B price per unit", "currency", "price_b0", "infl", decimals=2)
    g.row("rev_b", "Product B revenue", "currency", "{vol_b}*{price_b}", lambda v, t: v("vol_b", t) * v("price_b", t),
          sign="in")
    g.row("rev", "Total revenue", "currency", "{rev_a}+{rev_b}", lambda v, t: v("rev_a", t) + v("rev_b", t),
          sign="in")
    g.scalar("rev_sum", "Total revenue over the plan", "currency", "SUM({rev@row})", lambda v: sum(v.row("rev")))
    g.row("cogs", "Cost of goods sold", "currency", "-{rev}*{cogs_pct}", lambda v, t: -v("rev", t) * v("cogs_pct"),
          sign="out")
    g.row("gp", "Gross profit", "currency", "{rev}+{cogs}", lambda v, t: v("rev", t) + v("cogs", t))
    g.scalar("gm_last", "Gross margin, final year", "percent", "IFERROR({gp@last}/{rev@last},0)",
             lambda v: safe_div(v.last("gp"), v.last("rev")))
    growth_row(g, "opex", "Operating expenses", "currency", "opex0", "opex_g", negate=True, sign="out")
    g.row("ebitda", "EBITDA", "currency", "{gp}+{opex}", lambda v, t: v("gp", t) + v("opex", t))
    g.row("da", "Depreciation and amortisation", "currency", "-{rev}*{da_pct}",
          lambda v, t: -v("rev", t) * v("da_pct"), sign="out")
    g.row("ebit", "EBIT", "currency", "{ebitda}+{da}", lambda v, t: v("ebitda", t) + v("da", t))
    g.row("interest", "Interest expense", "currency", "-{int_exp}", lambda v, t: -v("int_exp"), sign="out")
    g.row("ebt", "Profit before tax", "currency", "{ebit}+{interest}", lambda v, t: v("ebit", t) + v("interest", t))
    g.row("taxes", "Tax", "currency", "-MAX(0,{ebt})*{tax}", lambda v, t: -max(0.0, v("ebt", t)) * v("tax"),
          sign="out")
    g.row("ni", "Net income", "currency", "{ebt}+{taxes}", lambda v, t: v("ebt", t) + v("taxes", t))
    g.row("div", "Dividends", "currency", "-MAX(0,{ni})*{payout}", lambda v, t: -max(0.0, v("ni", t)) * v("payout"),
          sign="out")
    g.row("retained", "Earnings retained", "currency", "{ni}+{div}", lambda v, t: v("ni", t) + v("div", t))
    running_total(g, "re", "Retained earnings, closing balance", "currency", "retained", opening="re0")
    g.scalar("re_growth", "Growth in retained earnings over the plan", "percent", "{re@last}/{re0}-1",
             lambda v: v.last("re") / v("re0") - 1)

    last = g.periods[-1]
    g.output("vol_a", "VolumeA_Final", f"Product A volume, {last}")
    g.output("price_b", "PriceB_Final", f"Product B price per unit, {last}")
    g.output("rev_a", "RevenueA_Final", f"Product A revenue, {last}")
    g.output("rev_b", "RevenueB_Final", f"Product B revenue, {last}")
    g.output("rev", "Revenue_Final", f"Total revenue, {last}")
    g.output("rev_sum", "Revenue_Total", "Total revenue over the plan")
    g.output("cogs", "COGS_Final", f"Cost of goods sold, {last}")
    g.output("gp", "GrossProfit_Final", f"Gross profit, {last}")
    g.output("gm_last", "GrossMargin_Final", f"Gross margin, {last}")
    g.output("ebitda", "EBITDA_Final", f"EBITDA, {last}")
    g.output("ebit", "EBIT_Final", f"EBIT, {last}")
    g.output("ebt", "PBT_Final", f"Profit before tax, {last}")
    g.output("taxes", "Tax_Final", f"Tax, {last}")
    g.output("ni", "NetIncome_Final", f"Net income, {last}")
    g.output("div", "Dividends_Final", f"Dividends, {last}")
    g.output("retained", "Retained_Final", f"Earnings retained, {last}")
    g.output("re", "RetainedEarnings_Closing", f"Retained earnings, closing balance {last}")
    g.output("re_growth", "RetainedEarnings_Growth", "Growth in retained earnings over the plan")
    return g


def valid(v: Values) -> bool:
    """Profitable every year, so tax and dividends follow one formula without a loss year."""
    return all(x > 0 for x in v.row("ebt"))
