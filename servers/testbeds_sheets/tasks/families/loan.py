"""Loan amortisation: a monthly annuity loan on an equipment purchase (PMT, corkscrew balance, interest and
principal), then the owner's debt service cover, cash and value."""

from __future__ import annotations

import random

from ..graph import Graph, Values, pmt, safe_div
from ._common import growth_row, pick, running_total

NAME = "loan_amortisation"
TITLE = "Loan amortisation"


def build(rng: random.Random) -> Graph:
    term = int(pick(rng, [3, 4, 5]))
    g = Graph(TITLE, "A company buys equipment with a bank loan repaid in equal monthly instalments. Build the "
              "monthly amortisation schedule (opening balance, interest, principal, closing balance), then the "
              "debt service cover and the cash left to the owner.", [f"M{i}" for i in range(1, term * 12 + 1)])
    g.scalar_input("price", "Equipment price", "currency", pick(rng, [285000, 340000, 415000, 560000]), driver=True)
    g.scalar_input("ltv", "Loan-to-value ratio", "percent", pick(rng, [0.6, 0.65, 0.7, 0.75]), driver=True)
    g.scalar_input("base", "Base rate, annual", "percent", pick(rng, [0.0325, 0.0375, 0.0425]), driver=True)
    g.scalar_input("margin", "Lending margin, annual", "percent", pick(rng, [0.0175, 0.0225, 0.0275]))
    g.scalar_input("term", "Loan term", "years", term, structural=True)
    g.scalar_input("fee_pct", "Arrangement fee as a share of the loan", "percent", pick(rng, [0.0075, 0.0125, 0.015]))
    g.scalar_input("tax", "Tax rate", "percent", pick(rng, [0.21, 0.25, 0.27]), driver=True)
    # size the operating cash flow to the instalment so debt service cover starts at a realistic 1.4-1.8x
    loan_amount = g.nodes["price"].value * g.nodes["ltv"].value  # type: ignore[operator]
    rate = (g.nodes["base"].value + g.nodes["margin"].value) / 12  # type: ignore[operator]
    cover = pick(rng, [1.45, 1.6, 1.75])
    g.scalar_input("cfads0", "Cash flow available for debt service, M1", "currency",
                   round(-pmt(rate, term * 12, loan_amount) * cover / 100) * 100, driver=True)
    g.scalar_input("cfads_g", "Cash flow growth per month", "percent", pick(rng, [0.0035, 0.0045, 0.0055]))
    g.scalar_input("covenant", "Minimum DSCR covenant", "ratio", pick(rng, [1.25, 1.3, 1.35]))
    g.scalar_input("disc", "Owner's discount rate, annual", "percent", pick(rng, [0.08, 0.09, 0.105]))

    g.scalar("loan", "Loan amount", "currency", "{price}*{ltv}", lambda v: v("price") * v("ltv"), sign="in")
    g.scalar("rate", "Interest rate, annual", "percent", "{base}+{margin}", lambda v: v("base") + v("margin"),
             decimals=2)
    g.scalar("nper", "Number of monthly payments", "count", "{term}*12", lambda v: v("term") * 12)
    g.scalar("disc_m", "Discount rate, monthly", "percent", "{disc}/12", lambda v: v("disc") / 12, decimals=3)
    g.scalar("m_rate", "Interest rate, monthly", "percent", "{rate}/12", lambda v: v("rate") / 12, decimals=3)
    g.scalar("fee", "Arrangement fee", "currency", "-{loan}*{fee_pct}", lambda v: -v("loan") * v("fee_pct"),
             sign="out")
    g.scalar("equity", "Equity contributed", "currency", "-({price}-{loan})", lambda v: -(v("price") - v("loan")),
             sign="out")
    g.scalar("payment", "Monthly payment", "currency", "PMT({m_rate},{nper},{loan})",
             lambda v: pmt(v("m_rate"), v("nper"), v("loan")), sign="out", decimals=2)
    g.scalar("net_proceeds", "Net loan proceeds", "currency", "{loan}+{fee}", lambda v: v("loan") + v("fee"))
    g.scalar("total_pay", "Total of payments", "currency", "{payment}*{nper}", lambda v: v("payment") * v("nper"),
             sign="out")
    g.row("opening", "Opening balance", "currency", "{closing@prev}", lambda v, t: v("closing", t - 1),
          first="{loan}", py_first=lambda v, t: v("loan"))
    g.row("interest", "Interest", "currency", "-{opening}*{m_rate}", lambda v, t: -v("opening", t) * v("m_rate"),
          sign="out", decimals=2)
    g.row("principal", "Principal repaid", "currency", "{payment}-{interest}",
          lambda v, t: v("payment") - v("interest", t), sign="out", decimals=2)
    g.row("closing", "Closing balance", "currency", "{opening}+{principal}",
          lambda v, t: v("opening", t) + v("principal", t))
    g.scalar("total_interest", "Total interest", "currency", "SUM({interest@row})", lambda v: sum(v.row("interest")),
             sign="out")
    g.row("cum_principal", "Principal repaid to date", "currency", "{cum_principal@prev}-{principal}",
          lambda v, t: v("cum_principal", t - 1) - v("principal", t), first="-{principal}",
          py_first=lambda v, t: -v("principal", t))
    g.row("repaid_share", "Share of the loan repaid", "percent", "IFERROR({cum_principal}/{loan},0)",
          lambda v, t: safe_div(v("cum_principal", t), v("loan")))
    g.row("tax_shield", "Tax saved on interest", "currency", "-{interest}*{tax}",
          lambda v, t: -v("interest", t) * v("tax"), decimals=2)
    g.row("service_at", "After-tax debt service", "currency", "{payment}+{tax_shield}",
          lambda v, t: v("payment") + v("tax_shield", t), sign="out", decimals=2)
    growth_row(g, "cfads", "Cash flow available for debt service", "currency", "cfads0", "cfads_g")
    g.row("dscr", "After-tax debt service cover", "ratio", "IFERROR({cfads}/-{service_at},0)",
          lambda v, t: safe_div(v("cfads", t), -v("service_at", t)))
    g.scalar("min_dscr", "Lowest debt service cover", "ratio", "MIN({dscr@row})", lambda v: min(v.row("dscr")))
    g.scalar("headroom", "Headroom over the DSCR covenant", "ratio", "{min_dscr}-{covenant}",
             lambda v: v("min_dscr") - v("covenant"))
    g.row("cash_after", "Cash after debt service", "currency", "{cfads}+{service_at}",
          lambda v, t: v("cfads", t) + v("service_at", t))
    running_total(g, "cum_cash", "Cumulative cash after debt service", "currency", "cash_after")
    g.scalar("min_cum_cash", "Lowest cumulative cash", "currency", "MIN({cum_cash@row})",
             lambda v: min(v.row("cum_cash")))
    g.row("df", "Discount factor", "ratio", "{df@prev}/(1+{disc_m})", lambda v, t: v("df", t - 1) / (1 + v("disc_m")),
          first="1/(1+{disc_m})", py_first=lambda v, t: 1 / (1 + v("disc_m")), decimals=4)
    g.row("pv_cash", "Present value of cash after debt service", "currency", "{cash_after}*{df}",
          lambda v, t: v("cash_after", t) * v("df", t))
    g.scalar("pv_total", "Present value of the owner's cash", "currency", "SUM({pv_cash@row})",
             lambda v: sum(v.row("pv_cash")))
    g.scalar("owner_npv", "Net present value to the owner", "currency", "{pv_total}+{equity}",
             lambda v: v("pv_total") + v("equity"))
    g.scalar("npv_per_equity", "NPV per $ of equity", "ratio", "IFERROR({owner_npv}/-{equity},0)",
             lambda v: safe_div(v("owner_npv"), -v("equity")))
    g.scalar("npv_yield", "Annualised value created on equity", "percent",
             "IFERROR((1+{npv_per_equity})^(12/{nper})-1,0)",
             lambda v: (1 + v("npv_per_equity")) ** safe_div(12, v("nper")) - 1 if v("nper") else 0.0)
    g.scalar("spread", "Value created above the discount rate", "percent", "{npv_yield}-{disc}",
             lambda v: v("npv_yield") - v("disc"))

    m12 = 11
    g.output("loan", "Loan_Amount", "Loan amount")
    g.output("m_rate", "Monthly_Rate", "Interest rate, monthly")
    g.output("payment", "Monthly_Payment", "Monthly payment")
    g.output("net_proceeds", "Net_Proceeds", "Net loan proceeds")
    g.output("total_pay", "Total_Payments", "Total of payments")
    g.output("total_interest", "Total_Interest", "Total interest over the loan")
    g.output("closing", "Balance_M12", "Closing balance after M12", period=m12)
    g.output("repaid_share", "Repaid_Share_M12", "Share of the loan repaid after M12", period=m12)
    g.output("dscr", "DSCR_Final", "After-tax debt service cover, final month")
    g.output("min_dscr", "DSCR_Min", "Lowest debt service cover")
    g.output("headroom", "DSCR_Headroom", "Headroom over the DSCR covenant")
    g.output("cum_cash", "Cash_Cumulative_Final", "Cumulative cash after debt service, final month")
    g.output("min_cum_cash", "Cash_Cumulative_Min", "Lowest cumulative cash")
    g.output("pv_total", "PV_Owner_Cash", "Present value of the owner's cash")
    g.output("owner_npv", "Owner_NPV", "Net present value to the owner")
    g.output("npv_per_equity", "NPV_per_Equity", "NPV per $ of equity")
    g.output("npv_yield", "Value_Yield", "Annualised value created on equity")
    g.output("spread", "Value_Spread", "Value created above the discount rate")
    return g


def valid(v: Values) -> bool:
    """The cash flow covers the debt service every month, so the owner's value is positive and well defined."""
    return min(v.row("dscr")) > 1.05 and v("owner_npv") > 0
