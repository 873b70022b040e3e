"""Working capital: receivables, inventory and payables from days outstanding (payables on purchases), net working
capital and its change, cash flow after working capital, then the value of a programme that cuts the cycle."""

from __future__ import annotations

import random

from ..graph import Graph, Values, safe_div
from ._common import growth_row, pick, running_total, years

NAME = "working_capital"
TITLE = "Working capital"


def _days_rows(g: Graph, suffix: str, label: str, dso: str, dio: str, dpo: str) -> None:
    """Receivables, inventory, purchases, payables and net working capital for one set of days."""
    ar, inv, purchases, ap, nwc = (f"{x}{suffix}" for x in ("ar", "inv", "purchases", "ap", "nwc"))
    g.row(ar, f"Receivables{label}", "currency", f"{{rev}}*{{{dso}}}/365", lambda v, t: v("rev", t) * v(dso) / 365)
    g.row(inv, f"Inventory{label}", "currency", f"-{{cogs}}*{{{dio}}}/365", lambda v, t: -v("cogs", t) * v(dio) / 365)
    g.row(purchases, f"Purchases{label}", "currency", f"{{cogs}}-({{{inv}}}-{{{inv}@prev}})",
          lambda v, t: v("cogs", t) - (v(inv, t) - v(inv, t - 1)), first=f"{{cogs}}-({{{inv}}}-{{inv0}})",
          py_first=lambda v, t: v("cogs", t) - (v(inv, t) - v("inv0")), sign="out")
    g.row(ap, f"Payables{label}", "currency", f"-{{{purchases}}}*{{{dpo}}}/365",
          lambda v, t: -v(purchases, t) * v(dpo) / 365)
    g.row(nwc, f"Net working capital{label}", "currency", f"{{{ar}}}+{{{inv}}}-{{{ap}}}",
          lambda v, t: v(ar, t) + v(inv, t) - v(ap, t))


def build(rng: random.Random) -> Graph:
    n = int(pick(rng, [4, 5, 6]))
    g = Graph(TITLE, "A wholesaler plans its working capital from days outstanding: receivables on revenue, "
              "inventory on cost of goods sold, payables on purchases (cost of goods sold plus the build-up of "
              "inventory). Compute net working capital, its change and the cash flow after working capital; then "
              "value a programme that moves the days to their targets and saves financing cost.", years(n))
    g.scalar_input("rev0", "Revenue, Y1", "currency", pick(rng, [24500000, 31500000, 38500000]), driver=True)
    g.scalar_input("rev_g", "Revenue growth per year", "percent", pick(rng, [0.055, 0.065, 0.08]), driver=True)
    g.scalar_input("cogs_pct", "Cost of goods sold as a share of revenue", "percent", pick(rng, [0.64, 0.68, 0.72]))
    g.scalar_input("margin", "EBITDA margin", "percent", pick(rng, [0.085, 0.095, 0.105]), driver=True)
    g.scalar_input("tax", "Tax rate", "percent", pick(rng, [0.21, 0.25, 0.28]))
    g.scalar_input("dso", "Days sales outstanding", "days", pick(rng, [48, 54, 61]), driver=True)
    g.scalar_input("dio", "Days inventory outstanding", "days", pick(rng, [57, 66, 73]), driver=True)
    g.scalar_input("dpo", "Days payables outstanding", "days", pick(rng, [38, 43, 47]), driver=True)
    g.scalar_input("inv0", "Inventory, opening", "currency", pick(rng, [3150000, 3850000, 4650000]))
    g.scalar_input("nwc0", "Net working capital, opening", "currency", pick(rng, [4350000, 5450000, 6550000]))
    g.scalar_input("dso_t", "Target days sales outstanding", "days", pick(rng, [39, 41, 44]))
    g.scalar_input("dio_t", "Target days inventory outstanding", "days", pick(rng, [49, 51, 53]))
    g.scalar_input("dpo_t", "Target days payables outstanding", "days", pick(rng, [55, 58, 62]))
    g.scalar_input("fin_rate", "Financing rate on working capital", "percent", pick(rng, [0.065, 0.072, 0.079]),
                   driver=True)
    g.scalar_input("prog_cost", "Programme cost", "currency", pick(rng, [145000, 185000, 235000]))
    g.scalar_input("disc", "Discount rate", "percent", pick(rng, [0.088, 0.092, 0.097]))

    g.scalar("ccc", "Cash conversion cycle", "days", "{dso}+{dio}-{dpo}", lambda v: v("dso") + v("dio") - v("dpo"))
    g.scalar("ccc_t", "Target cash conversion cycle", "days", "{dso_t}+{dio_t}-{dpo_t}",
             lambda v: v("dso_t") + v("dio_t") - v("dpo_t"))
    g.scalar("ccc_cut", "Reduction in the cash conversion cycle", "days", "{ccc}-{ccc_t}",
             lambda v: v("ccc") - v("ccc_t"))
    growth_row(g, "rev", "Revenue", "currency", "rev0", "rev_g", sign="in")
    g.row("cogs", "Cost of goods sold", "currency", "-{rev}*{cogs_pct}", lambda v, t: -v("rev", t) * v("cogs_pct"),
          sign="out")
    g.row("ebitda", "EBITDA", "currency", "{rev}*{margin}", lambda v, t: v("rev", t) * v("margin"))
    _days_rows(g, "", "", "dso", "dio", "dpo")
    g.row("d_nwc", "Increase in net working capital", "currency", "-({nwc}-{nwc@prev})",
          lambda v, t: -(v("nwc", t) - v("nwc", t - 1)), first="-({nwc}-{nwc0})",
          py_first=lambda v, t: -(v("nwc", t) - v("nwc0")))
    g.row("nwc_pct", "Net working capital as a share of revenue", "percent", "IFERROR({nwc}/{rev},0)",
          lambda v, t: safe_div(v("nwc", t), v("rev", t)))
    g.row("taxes", "Tax", "currency", "-MAX(0,{ebitda})*{tax}", lambda v, t: -max(0.0, v("ebitda", t)) * v("tax"),
          sign="out")
    g.row("op_cash", "Operating cash flow before working capital", "currency", "{ebitda}+{taxes}",
          lambda v, t: v("ebitda", t) + v("taxes", t))
    g.row("fcf", "Cash flow after working capital", "currency", "{op_cash}+{d_nwc}",
          lambda v, t: v("op_cash", t) + v("d_nwc", t))
    running_total(g, "cum_fcf", "Cumulative cash flow after working capital", "currency", "fcf")
    g.scalar("cash_conv", "Cash conversion over the plan", "percent", "IFERROR(SUM({fcf@row})/SUM({ebitda@row}),0)",
             lambda v: safe_div(sum(v.row("fcf")), sum(v.row("ebitda"))))
    _days_rows(g, "_t", " at target days", "dso_t", "dio_t", "dpo_t")
    g.row("released", "Working capital released by the programme", "currency", "{nwc}-{nwc_t}",
          lambda v, t: v("nwc", t) - v("nwc_t", t))
    g.row("saving", "After-tax financing saving", "currency", "{released}*{fin_rate}*(1-{tax})",
          lambda v, t: v("released", t) * v("fin_rate") * (1 - v("tax")))
    g.row("df", "Discount factor", "ratio", "{df@prev}/(1+{disc})", lambda v, t: v("df", t - 1) / (1 + v("disc")),
          first="1/(1+{disc})", py_first=lambda v, t: 1 / (1 + v("disc")), decimals=4)
    g.row("pv_saving", "Present value of the saving", "currency", "{saving}*{df}",
          lambda v, t: v("saving", t) * v("df", t))
    g.scalar("pv_sum", "Present value of the savings", "currency", "SUM({pv_saving@row})",
             lambda v: sum(v.row("pv_saving")))
    g.scalar("prog_npv", "Programme NPV", "currency", "{pv_sum}-{prog_cost}", lambda v: v("pv_sum") - v("prog_cost"))
    g.scalar("npv_per_day", "Programme NPV per day of cycle cut", "currency", "IFERROR({prog_npv}/{ccc_cut},0)",
             lambda v: safe_div(v("prog_npv"), v("ccc_cut")))

    last = g.periods[-1]
    g.output("ccc", "CCC_Days", "Cash conversion cycle")
    g.output("rev", "Revenue_Final", f"Revenue, {last}")
    g.output("ccc_cut", "CCC_Reduction", "Reduction in the cash conversion cycle")
    g.output("ar", "Receivables_Final", f"Receivables, {last}")
    g.output("inv", "Inventory_Final", f"Inventory, {last}")
    g.output("taxes", "Tax_Final", f"Tax, {last}")
    g.output("purchases", "Purchases_Final", f"Purchases, {last}")
    g.output("op_cash", "OperatingCash_Final", f"Operating cash flow before working capital, {last}")
    g.output("ap", "Payables_Final", f"Payables, {last}")
    g.output("nwc", "NWC_Final", f"Net working capital, {last}")
    g.output("d_nwc", "NWC_Increase_Final", f"Increase in net working capital, {last}")
    g.output("nwc_pct", "NWC_Share_Final", f"Net working capital as a share of revenue, {last}")
    g.output("fcf", "FCF_Final", f"Cash flow after working capital, {last}")
    g.output("cum_fcf", "FCF_Cumulative_Final", f"Cumulative cash flow after working capital, {last}")
    g.output("cash_conv", "Cash_Conversion", "Cash conversion over the plan")
    g.output("released", "Released_Final", f"Working capital released by the programme, {last}")
    g.output("saving", "Saving_Final", f"After-tax financing saving, {last}")
    g.output("pv_saving", "PV_Saving_Final", f"Present value of the saving, {last}")
    g.output("pv_sum", "PV_Savings", "Present value of the savings")
    g.output("prog_npv", "Programme_NPV", "Programme NPV")
    g.output("npv_per_day", "NPV_per_Day", "Programme NPV per day of cycle cut")
    return g


def valid(v: Values) -> bool:
    """Positive working capital, a programme that releases cash every year and pays for itself."""
    return (all(x > 0 for x in v.row("nwc")) and all(x > 0 for x in v.row("released")) and v("prog_npv") > 0
            and v("ccc_cut") > 0)
