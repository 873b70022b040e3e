"""Depreciation schedule of a machine: straight line, double-declining balance (no switch to straight line) and
sum-of-years'-digits, then the tax books on the declining-balance method and the machine's NPV."""

from __future__ import annotations

import random

from ..graph import Graph, Values, pmt, safe_div
from ._common import growth_row, pick, years

NAME = "depreciation"
TITLE = "Depreciation schedule"


def build(rng: random.Random) -> Graph:
    life = int(pick(rng, [5, 6, 7, 8]))
    g = Graph(TITLE, "A plant buys a machine. Compare three depreciation methods over its useful life: straight "
              "line, double-declining balance (without switching to straight line; never below salvage value) and "
              "sum-of-years'-digits. Then, on declining-balance tax depreciation, compute the machine's after-tax "
              "cash flows and its net present value.", years(life))
    g.scalar_input("list_price", "List price of the machine", "currency", pick(rng, [196000, 248000, 326000]),
                   driver=True)
    g.scalar_input("supplier_disc", "Supplier discount", "percent", pick(rng, [0.04, 0.06, 0.075]))
    g.scalar_input("install", "Installation and delivery", "currency", pick(rng, [14500, 18500, 23500]))
    g.scalar_input("salvage_pct", "Salvage value as a share of installed cost", "percent",
                   pick(rng, [0.08, 0.1, 0.15]), driver=True)
    g.scalar_input("life", "Useful life", "years", life, structural=True)
    # EBITDA sized to the machine so the investment is realistic whatever price was drawn
    ebitda0 = round(g.nodes["list_price"].value * pick(rng, [0.3, 0.34, 0.38]) / 500) * 500  # type: ignore[operator]
    g.scalar_input("ebitda0", "EBITDA from the machine, Y1", "currency", ebitda0, driver=True)
    g.scalar_input("ebitda_g", "EBITDA change per year", "percent", pick(rng, [-0.035, -0.025, 0.015]))
    g.scalar_input("tax", "Tax rate", "percent", pick(rng, [0.21, 0.25, 0.28]), driver=True)
    g.scalar_input("disc", "Discount rate", "percent", pick(rng, [0.075, 0.085, 0.095]), driver=True)

    g.scalar("price", "Purchase price", "currency", "{list_price}*(1-{supplier_disc})",
             lambda v: v("list_price") * (1 - v("supplier_disc")))
    g.scalar("cost", "Installed cost", "currency", "{price}+{install}", lambda v: v("price") + v("install"))
    g.scalar("salvage", "Salvage value", "currency", "{cost}*{salvage_pct}", lambda v: v("cost") * v("salvage_pct"))
    g.scalar("sl", "Straight-line depreciation per year", "currency", "({cost}-{salvage})/{life}",
             lambda v: (v("cost") - v("salvage")) / v("life"))
    g.row("sl_dep", "Straight-line depreciation", "currency", "-{sl}", lambda v, t: -v("sl"), sign="out")
    g.row("sl_nbv", "Net book value, straight line", "currency", "{sl_nbv@prev}+{sl_dep}",
          lambda v, t: v("sl_nbv", t - 1) + v("sl_dep", t), first="{cost}+{sl_dep}",
          py_first=lambda v, t: v("cost") + v("sl_dep", t))
    g.row("ddb_open", "Opening book value, declining balance", "currency", "{ddb_close@prev}",
          lambda v, t: v("ddb_close", t - 1), first="{cost}", py_first=lambda v, t: v("cost"))
    g.row("ddb_dep", "Declining-balance depreciation", "currency", "-MIN({ddb_open}*2/{life},{ddb_open}-{salvage})",
          lambda v, t: -min(v("ddb_open", t) * 2 / v("life"), v("ddb_open", t) - v("salvage")), sign="out")
    g.row("ddb_close", "Closing book value, declining balance", "currency", "{ddb_open}+{ddb_dep}",
          lambda v, t: v("ddb_open", t) + v("ddb_dep", t))
    g.row("remaining", "Remaining life at the start of the year", "years", "{remaining@prev}-1",
          lambda v, t: v("remaining", t - 1) - 1, first="{life}", py_first=lambda v, t: v("life"))
    g.row("syd_dep", "Sum-of-years'-digits depreciation", "currency",
          "-({cost}-{salvage})*{remaining}/({life}*({life}+1)/2)",
          lambda v, t: -(v("cost") - v("salvage")) * v("remaining", t) / (v("life") * (v("life") + 1) / 2),
          sign="out")
    g.row("syd_nbv", "Net book value, sum-of-years'-digits", "currency", "{syd_nbv@prev}+{syd_dep}",
          lambda v, t: v("syd_nbv", t - 1) + v("syd_dep", t), first="{cost}+{syd_dep}",
          py_first=lambda v, t: v("cost") + v("syd_dep", t))
    growth_row(g, "ebitda", "EBITDA from the machine", "currency", "ebitda0", "ebitda_g")
    g.row("ebit", "EBIT (declining-balance tax books)", "currency", "{ebitda}+{ddb_dep}",
          lambda v, t: v("ebitda", t) + v("ddb_dep", t))
    g.row("taxes", "Tax", "currency", "-MAX(0,{ebit})*{tax}", lambda v, t: -max(0.0, v("ebit", t)) * v("tax"),
          sign="out")
    g.row("ni", "Net income", "currency", "{ebit}+{taxes}", lambda v, t: v("ebit", t) + v("taxes", t))
    g.row("ocf", "After-tax operating cash flow", "currency", "{ni}-{ddb_dep}",
          lambda v, t: v("ni", t) - v("ddb_dep", t))
    g.row("roa", "Return on opening book value", "percent", "IFERROR({ni}/{ddb_open},0)",
          lambda v, t: safe_div(v("ni", t), v("ddb_open", t)))
    g.row("df", "Discount factor", "ratio", "{df@prev}/(1+{disc})", lambda v, t: v("df", t - 1) / (1 + v("disc")),
          first="1/(1+{disc})", py_first=lambda v, t: 1 / (1 + v("disc")), decimals=4)
    g.row("pv_ocf", "Present value of operating cash flow", "currency", "{ocf}*{df}",
          lambda v, t: v("ocf", t) * v("df", t))
    g.scalar("pv_salvage", "Present value of the salvage value", "currency", "{salvage}*{df@last}",
             lambda v: v("salvage") * v.last("df"))
    g.scalar("npv", "Net present value of the machine", "currency", "SUM({pv_ocf@row})+{pv_salvage}-{cost}",
             lambda v: sum(v.row("pv_ocf")) + v("pv_salvage") - v("cost"))
    g.scalar("max_price", "Highest purchase price with a non-negative NPV", "currency", "{price}+{npv}",
             lambda v: v("price") + v("npv"))
    g.scalar("headroom", "Price headroom over the purchase price", "percent", "IFERROR({max_price}/{price}-1,0)",
             lambda v: v("max_price") / v("price") - 1 if v("price") else 0.0)
    g.scalar("eav", "Equivalent annual value", "currency", "-PMT({disc},{life},{npv})",
             lambda v: -pmt(v("disc"), v("life"), v("npv")))
    g.scalar("eav_per_cost", "Equivalent annual value per $ of installed cost", "percent", "IFERROR({eav}/{cost},0)",
             lambda v: safe_div(v("eav"), v("cost")), decimals=2)

    last = g.periods[-1]
    g.output("price", "Purchase_Price", "Purchase price")
    g.output("cost", "Installed_Cost", "Installed cost")
    g.output("salvage", "Salvage_Value", "Salvage value")
    g.output("sl", "SL_Depreciation", "Straight-line depreciation per year")
    g.output("sl_nbv", "SL_NBV_Final", f"Net book value, straight line, {last}")
    g.output("ddb_dep", "DDB_Depreciation_Final", f"Declining-balance depreciation, {last}")
    g.output("ddb_close", "DDB_NBV_Y2", "Closing book value, declining balance, Y2", period=1)
    g.output("syd_dep", "SYD_Depreciation_Y1", "Sum-of-years'-digits depreciation, Y1", period=0)
    g.output("syd_nbv", "SYD_NBV_Y3", "Net book value, sum-of-years'-digits, Y3", period=2)
    g.output("ebit", "EBIT_Y1", "EBIT (declining-balance tax books), Y1", period=0)
    g.output("taxes", "Tax_Y1", "Tax, Y1", period=0)
    g.output("ni", "NetIncome_Y1", "Net income, Y1", period=0)
    g.output("ocf", "OCF_Final", f"After-tax operating cash flow, {last}")
    g.output("roa", "ROA_Y1", "Return on opening book value, Y1", period=0)
    g.output("pv_ocf", "PV_OCF_Final", f"Present value of operating cash flow, {last}")
    g.output("npv", "Machine_NPV", "Net present value of the machine")
    g.output("max_price", "Max_Price", "Highest purchase price with a non-negative NPV")
    g.output("headroom", "Price_Headroom", "Price headroom over the purchase price")
    g.output("eav", "Equivalent_Annual_Value", "Equivalent annual value")
    g.output("eav_per_cost", "EAV_per_Cost", "Equivalent annual value per $ of installed cost")
    return g


def valid(v: Values) -> bool:
    """A machine worth buying, with taxable profit in its first year."""
    return v("ebit", 0) > 0 and v("npv") > 0
