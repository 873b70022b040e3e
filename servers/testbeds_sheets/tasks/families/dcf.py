"""DCF valuation: revenue and margins to unlevered free cash flow, discounting at the WACC, a Gordon-growth
terminal value, enterprise value, equity value and value per share."""

from __future__ import annotations

import random

from ..graph import Graph, Values, safe_div
from ._common import growth_row, pick, years

NAME = "dcf"
TITLE = "DCF valuation"


def build(rng: random.Random) -> Graph:
    n = int(pick(rng, [5, 6, 7]))
    g = Graph(TITLE, "Value a mid-sized industrial company with a discounted cash flow model: forecast unlevered "
              "free cash flow, discount it at the WACC (end-of-year), add a Gordon-growth terminal value, and "
              "bridge from enterprise value to value per share.", years(n))
    g.scalar_input("rev0", "Revenue, Y1", "currency", pick(rng, [42500000, 58000000, 73500000]), driver=True)
    g.scalar_input("rev_g", "Revenue growth per year", "percent", pick(rng, [0.045, 0.055, 0.065, 0.075]),
                   driver=True)
    g.scalar_input("ebitda_m", "EBITDA margin", "percent", pick(rng, [0.18, 0.21, 0.24]), driver=True)
    g.scalar_input("da_pct", "Depreciation as a share of revenue", "percent", pick(rng, [0.035, 0.04, 0.045]))
    g.scalar_input("tax", "Tax rate", "percent", pick(rng, [0.23, 0.25, 0.27]), driver=True)
    g.scalar_input("capex_pct", "Capital expenditure as a share of revenue", "percent",
                   pick(rng, [0.048, 0.052, 0.058]))
    g.scalar_input("nwc_pct", "Net working capital as a share of revenue", "percent", pick(rng, [0.11, 0.13, 0.15]))
    g.scalar_input("nwc0", "Net working capital, opening", "currency", pick(rng, [5150000, 6350000, 7450000]))
    g.scalar_input("wacc", "WACC", "percent", pick(rng, [0.082, 0.087, 0.093, 0.098]), driver=True)
    g.scalar_input("tg", "Terminal growth rate", "percent", pick(rng, [0.015, 0.0225, 0.025]), driver=True)
    g.scalar_input("net_debt", "Net debt", "currency", pick(rng, [18500000, 24500000, 31500000]), driver=True)
    g.scalar_input("shares", "Shares outstanding", "count", pick(rng, [4850000, 6250000, 7150000]))
    g.scalar_input("share_price", "Current share price", "currency", pick(rng, [9.85, 11.4, 12.75, 14.2]), decimals=2)

    growth_row(g, "rev", "Revenue", "currency", "rev0", "rev_g", sign="in")
    g.row("ebitda", "EBITDA", "currency", "{rev}*{ebitda_m}", lambda v, t: v("rev", t) * v("ebitda_m"))
    g.row("da", "Depreciation", "currency", "-{rev}*{da_pct}", lambda v, t: -v("rev", t) * v("da_pct"), sign="out")
    g.row("ebit", "EBIT", "currency", "{ebitda}+{da}", lambda v, t: v("ebitda", t) + v("da", t))
    g.row("taxes", "Tax on EBIT", "currency", "-MAX(0,{ebit})*{tax}", lambda v, t: -max(0.0, v("ebit", t)) * v("tax"),
          sign="out")
    g.row("nopat", "NOPAT", "currency", "{ebit}+{taxes}", lambda v, t: v("ebit", t) + v("taxes", t))
    g.row("capex", "Capital expenditure", "currency", "-{rev}*{capex_pct}", lambda v, t: -v("rev", t) * v("capex_pct"),
          sign="out")
    g.row("nwc", "Net working capital", "currency", "{rev}*{nwc_pct}", lambda v, t: v("rev", t) * v("nwc_pct"))
    g.row("d_nwc", "Increase in net working capital", "currency", "-({nwc}-{nwc@prev})",
          lambda v, t: -(v("nwc", t) - v("nwc", t - 1)), first="-({nwc}-{nwc0})",
          py_first=lambda v, t: -(v("nwc", t) - v("nwc0")))
    g.row("fcf", "Unlevered free cash flow", "currency", "{nopat}-{da}+{capex}+{d_nwc}",
          lambda v, t: v("nopat", t) - v("da", t) + v("capex", t) + v("d_nwc", t))
    g.row("df", "Discount factor", "ratio", "{df@prev}/(1+{wacc})", lambda v, t: v("df", t - 1) / (1 + v("wacc")),
          first="1/(1+{wacc})", py_first=lambda v, t: 1 / (1 + v("wacc")), decimals=4)
    g.row("pv_fcf", "Present value of free cash flow", "currency", "{fcf}*{df}", lambda v, t: v("fcf", t) * v("df", t))
    g.scalar("sum_pv", "Sum of present values", "currency", "SUM({pv_fcf@row})", lambda v: sum(v.row("pv_fcf")))
    g.scalar("tv", "Terminal value", "currency", "IFERROR({fcf@last}*(1+{tg})/({wacc}-{tg}),0)",
             lambda v: safe_div(v.last("fcf") * (1 + v("tg")), v("wacc") - v("tg")))
    g.scalar("pv_tv", "Present value of the terminal value", "currency", "{tv}*{df@last}",
             lambda v: v("tv") * v.last("df"))
    g.scalar("ev", "Enterprise value", "currency", "{sum_pv}+{pv_tv}", lambda v: v("sum_pv") + v("pv_tv"))
    g.scalar("tv_share", "Terminal value share of enterprise value", "percent", "IFERROR({pv_tv}/{ev},0)",
             lambda v: safe_div(v("pv_tv"), v("ev")))
    g.scalar("equity", "Equity value", "currency", "{ev}-{net_debt}", lambda v: v("ev") - v("net_debt"))
    g.scalar("per_share", "Value per share", "currency", "{equity}/{shares}", lambda v: v("equity") / v("shares"),
             decimals=2)
    g.scalar("upside", "Upside to the current share price", "percent", "{per_share}/{share_price}-1",
             lambda v: v("per_share") / v("share_price") - 1)
    g.scalar("ev_ebitda", "Implied EV / EBITDA, Y1", "ratio", "IFERROR({ev}/{ebitda@first},0)",
             lambda v: safe_div(v("ev"), v.first("ebitda")), decimals=1)

    last = g.periods[-1]
    g.output("rev", "Revenue_Final", f"Revenue, {last}")
    g.output("ebitda", "EBITDA_Final", f"EBITDA, {last}")
    g.output("ebit", "EBIT_Final", f"EBIT, {last}")
    g.output("nwc", "NWC_Final", f"Net working capital, {last}")
    g.output("taxes", "Tax_Final", f"Tax on EBIT, {last}")
    g.output("d_nwc", "NWC_Increase_Final", f"Increase in net working capital, {last}")
    g.output("nopat", "NOPAT_Final", f"NOPAT, {last}")
    g.output("fcf", "FCF_Final", f"Unlevered free cash flow, {last}")
    g.output("pv_fcf", "PV_FCF_Final", f"Present value of free cash flow, {last}")
    g.output("tv", "Terminal_Value", "Terminal value")
    g.output("sum_pv", "PV_FCF_Sum", "Sum of present values of free cash flow")
    g.output("pv_tv", "PV_Terminal_Value", "Present value of the terminal value")
    g.output("ev", "Enterprise_Value", "Enterprise value")
    g.output("tv_share", "TV_Share", "Terminal value share of enterprise value")
    g.output("equity", "Equity_Value", "Equity value")
    g.output("per_share", "Value_per_Share", "Value per share")
    g.output("upside", "Upside", "Upside to the current share price")
    g.output("ev_ebitda", "EV_EBITDA", "Implied EV / EBITDA, Y1")
    return g


def valid(v: Values) -> bool:
    """WACC above terminal growth by more than a point, positive cash flows and equity."""
    return (v("wacc") > v("tg") + 0.01 and all(x > 0 for x in v.row("fcf")) and v("equity") > 0)
