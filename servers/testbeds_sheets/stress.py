"""Large synthetic finance models for agreement tests and benchmarks: a ~5,000-formula business-unit plan and a
long debt corkscrew, each with a task (inputs, outputs with Python-computed values, perturbations) so the grader
can run on it.

Both are laid out as the reference workbooks are (`tasks.layout`): `Inputs` holds typed constants only, the
workings read them through `$`-anchored references, one formula per row along the timeline (only the first period
differs), labels with units, blue inputs, black formulas, green links, an `Outputs` sheet with defined names.
Values depend only on the size arguments.
"""

from __future__ import annotations

from openpyxl.utils.cell import get_column_letter
from pydantic import BaseModel, Field

from .engine.values import Evaluation, Value
from .ops import AddSheet, DefineName, FreezePanes, SetColumnWidth, SetStyle, WorkbookPlan, WriteRange
from .tasks.layout import BLACK, BLUE, GREEN, number_format
from .tasks.model import Perturbation, Task, TaskInput, TaskOutput, Unit

INPUTS, MODEL, SCHEDULE, OUTPUTS = "Inputs", "Model", "Schedule", "Outputs"
FIRST_ROW = 4
FIRST_PERIOD_COL = 3  # period t (0-based) sits in column C+t, as in the reference workbooks
CURRENCY = number_format("currency")
CURRENCY2 = number_format("currency", 2)
PERCENT2 = number_format("percent", 2)
# Constants a grader may not look inputs up by (design note §6): inputs must differ from them.
_RESERVED = frozenset({0.0, 1.0, 2.0, 12.0, 100.0, 365.0, 1000.0})


def _col(t: int) -> str:
    return get_column_letter(FIRST_PERIOD_COL + t)


def _sheet_header(sheet: str, title: str, header: list[str]) -> list:
    last = get_column_letter(len(header))
    return [WriteRange(sheet=sheet, start="A1", rows=[[title]]),
            SetStyle(sheet=sheet, range="A1", bold=True, font_size=14),
            WriteRange(sheet=sheet, start="A3", rows=[header]),
            SetStyle(sheet=sheet, range=f"A3:{last}3", bold=True, border="bottom"),
            SetStyle(sheet=sheet, range=f"B3:{last}3", align="right"),
            SetColumnWidth(sheet=sheet, columns="A", width=46),
            SetColumnWidth(sheet=sheet, columns=f"B:{last}", width=13),
            FreezePanes(sheet=sheet, cell=f"C{FIRST_ROW}")]


def _timeline_header(sheet: str, title: str, periods: int, prefix: str) -> list:
    return _sheet_header(sheet, title, ["Line item (unit)", "Value"] + [f"{prefix}{t + 1}" for t in range(periods)])


def _outputs_sheet(rows: list[tuple[str, str, str, str]]) -> list:
    """An Outputs sheet linking each (label with unit, defined name, source 'Sheet!$C$9', number format)."""
    ops: list = [AddSheet(name=OUTPUTS)] + _sheet_header(OUTPUTS, "Outputs", ["Line item (unit)", "Value"])[:-1]
    for i, (label, name, source, fmt) in enumerate(rows):
        r = FIRST_ROW + i
        ops.append(WriteRange(sheet=OUTPUTS, start=f"A{r}", rows=[[label, f"={source}"]]))
        ops.append(SetStyle(sheet=OUTPUTS, range=f"B{r}", number_format=fmt, font_color=GREEN))
        ops.append(DefineName(name=name, ref=f"{OUTPUTS}!$B${r}"))
    return ops


def _check_distinct(inputs: list[TaskInput]) -> None:
    """The grader finds inputs by value: they must be pairwise distinct (a percent also as x100) and unlike the
    constants formulas may hold."""
    seen: set[float] = set()
    for i in inputs:
        keys = {round(i.value, 9)} | ({round(i.value * 100, 9)} if i.unit == "percent" else set())
        if keys & (seen | _RESERVED):
            raise ValueError(f"input {i.id} = {i.value} collides with another input or a reserved constant; "
                             "choose other sizes")
        seen |= keys


# -- the business-unit plan ---------------------------------------------------------------------------------------


class _UnitRow:
    """One unit x line item: a revenue line (first amount, growth) or a cost line (share of a revenue line, drift)."""

    def __init__(self, unit: int, item: int, items: int) -> None:
        drivers = (items + 1) // 2
        k = unit * items + item
        self.revenue = item < drivers
        self.follows = None if self.revenue else unit * items + (item - drivers) % drivers
        if self.revenue:
            self.label = f"Unit {unit + 1} revenue line {item + 1}"
            self.first, self.driver = 1500.0 + 37.25 * k, round(0.0201 + 0.0003 * k, 7)
            self.first_label, self.driver_label = f"{self.label}, P1 ($)", f"{self.label} growth per period (%)"
            self.first_unit: Unit = "currency"
        else:
            self.label = f"Unit {unit + 1} cost line {item - drivers + 1}"
            self.first, self.driver = round(0.3011 + 0.0007 * k, 7), round(0.0011 + 0.000013 * k, 7)
            self.first_label = f"{self.label}, share of revenue growth (%)"
            self.driver_label = f"{self.label} drift per period (%)"
            self.first_unit = "percent"


def _unit_rows(units: int, items: int) -> list[_UnitRow]:
    if units < 1 or items < 2:
        raise ValueError("need at least 1 unit and 2 line items per unit")
    return [_UnitRow(u, i, items) for u in range(units) for i in range(items)]


UNIT_DISCOUNT_RATE = 0.0847


def unit_model_plan(units: int = 10, items: int = 10, periods: int = 50) -> WorkbookPlan:
    """A business-unit plan: `units * items * periods` line-item formulas, a SUM roll-up per period and an NPV
    (defaults: 10 x 10 x 50 + 50 + 1 = 5,051 formulas).

    `Inputs` holds a discount rate and, per unit and line item, a first value (column B) and a driver (column C).
    On `Model`, the first half of each unit's items are revenue lines: `=Inputs!$B$r` in the first period, then
    `=C5*(1+Inputs!$C$r)`. The others are costs following a revenue line: `=-C5*Inputs!$B$r` first, then last
    period's cost drifting plus a share of the revenue's growth, `=C9*(1+Inputs!$C$r)-(D5-C5)*Inputs!$B$r`. Net
    cash flow sums every line per period; its NPV is Excel's (the first period discounted once).
    """
    if periods < 2:
        raise ValueError("need at least 2 periods")
    rows = _unit_rows(units, items)
    first_input = FIRST_ROW + 1
    ops: list = [AddSheet(name=INPUTS), AddSheet(name=MODEL)]
    ops += _sheet_header(INPUTS, "Business-unit plan: inputs", ["Line item (unit)", "Value", "Driver (%)"])
    ops += [WriteRange(sheet=INPUTS, start=f"A{FIRST_ROW}", rows=[["Discount rate per period (%)",
                                                                   UNIT_DISCOUNT_RATE]]),
            WriteRange(sheet=INPUTS, start=f"A{first_input}", rows=[[r.first_label, r.first, r.driver] for r in rows]),
            SetStyle(sheet=INPUTS, range=f"B{FIRST_ROW}:C{first_input + len(rows) - 1}", number_format=PERCENT2,
                     font_color=BLUE)]
    for j, r in enumerate(rows):
        if r.revenue:
            ops.append(SetStyle(sheet=INPUTS, range=f"B{first_input + j}", number_format=CURRENCY2))

    ops += _timeline_header(MODEL, "Business-unit plan: workings", periods, "P")
    cells: list[list] = []
    for j, r in enumerate(rows):
        here, src = FIRST_ROW + j, first_input + j
        line: list = [f"{r.label} ($)", None]
        if r.follows is None:
            line.append(f"={INPUTS}!$B${src}")
            line += [f"={_col(t - 1)}{here}*(1+{INPUTS}!$C${src})" for t in range(1, periods)]
        else:
            rev = FIRST_ROW + r.follows
            line.append(f"=-{_col(0)}{rev}*{INPUTS}!$B${src}")
            line += [f"={_col(t - 1)}{here}*(1+{INPUTS}!$C${src})-({_col(t)}{rev}-{_col(t - 1)}{rev})*{INPUTS}!$B${src}"
                     for t in range(1, periods)]
        cells.append(line)
    last_item, last = FIRST_ROW + len(rows) - 1, _col(periods - 1)
    total, npv = last_item + 1, last_item + 2
    cells.append(["Net cash flow ($)", None]
                 + [f"=SUM({_col(t)}{FIRST_ROW}:{_col(t)}{last_item})" for t in range(periods)])
    cells.append(["Net present value ($)", f"=NPV({INPUTS}!$B${FIRST_ROW},$C${total}:${last}${total})"])
    ops.append(WriteRange(sheet=MODEL, start=f"A{FIRST_ROW}", rows=cells))
    ops.append(SetStyle(sheet=MODEL, range=f"B{FIRST_ROW}:{last}{npv}", number_format=CURRENCY, font_color=BLACK))
    ops.append(SetStyle(sheet=MODEL, range=f"B{total}:{last}{total}", border="top"))
    for j, r in enumerate(rows):
        if r.revenue:  # a revenue line's first period is a pure link to its input
            ops.append(SetStyle(sheet=MODEL, range=f"C{FIRST_ROW + j}", font_color=GREEN))
    ops += _outputs_sheet([("Net present value ($)", "NPV_Plan", f"{MODEL}!$B${npv}", CURRENCY),
                           ("Net cash flow, last period ($)", "Cash_Last", f"{MODEL}!${last}${total}", CURRENCY)])
    return WorkbookPlan(ops=ops)


def unit_model_values(units: int = 10, items: int = 10, periods: int = 50,
                      overrides: dict[str, float] | None = None) -> dict[str, float]:
    """Python values of the plan's outputs ('npv_plan', 'cash_last'), computed in the workbook's order of
    operations; `overrides` replaces inputs by task input id."""
    rows = _unit_rows(units, items)
    o = overrides or {}
    rate = o.get("rate", UNIT_DISCOUNT_RATE)
    lines: list[list[float]] = []
    for j, r in enumerate(rows):
        first, driver = o.get(f"first_{j}", r.first), o.get(f"driver_{j}", r.driver)
        if r.follows is None:
            line = [first]
            for _ in range(1, periods):
                line.append(line[-1] * (1 + driver))
        else:
            rev = lines[r.follows]
            line = [-rev[0] * first]
            for t in range(1, periods):
                line.append(line[-1] * (1 + driver) - (rev[t] - rev[t - 1]) * first)
        lines.append(line)
    totals = [sum(line[t] for line in lines) for t in range(periods)]
    npv = sum(v / (1 + rate) ** (t + 1) for t, v in enumerate(totals))
    return {"npv_plan": npv, "cash_last": totals[-1]}


def unit_model_task(units: int = 10, items: int = 10, periods: int = 50) -> Task:
    """The grading task of `unit_model_plan` (its own reference): every input, the two outputs with Python values,
    and two perturbations (the discount rate, then the first revenue line's growth)."""
    rows = _unit_rows(units, items)
    first_input = FIRST_ROW + 1
    inputs = [TaskInput(id="rate", label="Discount rate per period", value=UNIT_DISCOUNT_RATE, unit="percent",
                        cell=f"{INPUTS}!B{FIRST_ROW}")]
    for j, r in enumerate(rows):
        inputs.append(TaskInput(id=f"first_{j}", label=r.first_label.rsplit(" (", 1)[0], value=r.first,
                                unit=r.first_unit, cell=f"{INPUTS}!B{first_input + j}"))
        inputs.append(TaskInput(id=f"driver_{j}", label=r.driver_label.rsplit(" (", 1)[0], value=r.driver,
                                unit="percent", cell=f"{INPUTS}!C{first_input + j}"))
    _check_distinct(inputs)
    values = unit_model_values(units, items, periods)
    outputs = [TaskOutput(id="npv_plan", label="Net present value", name="NPV_Plan", unit="currency",
                          cell=f"{OUTPUTS}!B4", value=values["npv_plan"]),
               TaskOutput(id="cash_last", label="Net cash flow, last period", name="Cash_Last", unit="currency",
                          cell=f"{OUTPUTS}!B5", value=values["cash_last"])]
    size = units * items * periods
    return Task(id=f"stress-units-{units}x{items}x{periods}", family="stress_units", seed=0, difficulty=4,
                title=f"Business-unit plan ({units} units x {items} line items x {periods} periods)",
                prompt=(f"Plan {units} business units, {items} line items each, over {periods} periods "
                        f"({size:,} line-item cells); sum net cash flow per period and discount it."),
                inputs=inputs, outputs=outputs, periods=periods,
                perturbations=[Perturbation(input_id="rate", value=round(UNIT_DISCOUNT_RATE * 1.1, 9)),
                               Perturbation(input_id="driver_0", value=round(rows[0].driver * 0.9, 9))])


# -- the debt corkscrew ------------------------------------------------------------------------------------------

DEBT_PRINCIPAL = 250_000.0
DEBT_ANNUAL_RATE = 0.066


def debt_schedule_plan(periods: int = 60) -> WorkbookPlan:
    """A monthly loan corkscrew over `periods` months (defaults: 5 x 60 + 4 = 304 formulas).

    `Schedule` holds the monthly rate (`=Inputs!$B$5/12`) and the level payment (`=PMT($B$4,Inputs!$B$6,
    Inputs!$B$4)`, negative: paid), then per month: opening (the loan, then last month's closing), interest
    (`=-C6*$B$4`), payment (`=$B$5`), principal (payment less interest) and closing (opening plus principal),
    which reaches 0 after the last month.
    """
    if periods < 2:
        raise ValueError("need at least 2 periods")
    last = _col(periods - 1)
    ops: list = [AddSheet(name=INPUTS), AddSheet(name=SCHEDULE)]
    ops += _sheet_header(INPUTS, "Loan: inputs", ["Line item (unit)", "Value"])
    ops += [WriteRange(sheet=INPUTS, start=f"A{FIRST_ROW}", rows=[["Loan principal ($)", DEBT_PRINCIPAL],
                                                                  ["Annual interest rate (%)", DEBT_ANNUAL_RATE],
                                                                  ["Term (months)", periods]]),
            SetStyle(sheet=INPUTS, range="B4", number_format=CURRENCY, font_color=BLUE),
            SetStyle(sheet=INPUTS, range="B5", number_format=PERCENT2, font_color=BLUE),
            SetStyle(sheet=INPUTS, range="B6", number_format="0", font_color=BLUE)]
    ops += _timeline_header(SCHEDULE, "Loan: schedule", periods, "M")
    rest = range(1, periods)
    rows: list[list] = [
        ["Monthly interest rate (%)", f"={INPUTS}!$B$5/12"],
        ["Monthly payment ($)", f"=PMT($B$4,{INPUTS}!$B$6,{INPUTS}!$B$4)"],
        ["Opening balance ($)", None, f"={INPUTS}!$B$4"] + [f"={_col(t - 1)}10" for t in rest],
        ["Interest ($)", None] + [f"=-{_col(t)}6*$B$4" for t in range(periods)],
        ["Payment ($)", None] + ["=$B$5"] * periods,
        ["Principal repaid ($)", None] + [f"={_col(t)}8-{_col(t)}7" for t in range(periods)],
        ["Closing balance ($)", None] + [f"={_col(t)}6+{_col(t)}9" for t in range(periods)],
        ["Total interest paid ($)", f"=SUM($C$7:${last}$7)"],
    ]
    ops.append(WriteRange(sheet=SCHEDULE, start=f"A{FIRST_ROW}", rows=rows))
    ops += [SetStyle(sheet=SCHEDULE, range="B4", number_format=number_format("percent", 3), font_color=BLACK),
            SetStyle(sheet=SCHEDULE, range=f"B5:{last}11", number_format=CURRENCY2, font_color=BLACK),
            SetStyle(sheet=SCHEDULE, range="C6", font_color=GREEN)]
    ops += _outputs_sheet([("Monthly payment ($)", "Payment", f"{SCHEDULE}!$B$5", CURRENCY2),
                           ("Total interest paid ($)", "Interest_Total", f"{SCHEDULE}!$B$11", CURRENCY2),
                           ("Closing balance, last month ($)", "Closing_Last", f"{SCHEDULE}!${last}$10", CURRENCY2)])
    return WorkbookPlan(ops=ops)


def debt_schedule_values(periods: int = 60, overrides: dict[str, float] | None = None) -> dict[str, float]:
    """Python values of the schedule's outputs ('payment', 'interest_total', 'closing_last')."""
    o = overrides or {}
    principal, annual, n = o.get("principal", DEBT_PRINCIPAL), o.get("rate", DEBT_ANNUAL_RATE), o.get("term", periods)
    r = annual / 12
    payment = -principal * r / (1 - (1 + r) ** -n) if r else -principal / n
    balance, interest_total = principal, 0.0
    for _ in range(periods):
        interest = -balance * r
        interest_total += interest
        balance += payment - interest
    return {"payment": payment, "interest_total": interest_total, "closing_last": balance}


def debt_schedule_task(periods: int = 60) -> Task:
    """The grading task of `debt_schedule_plan`: principal, rate and term; payment, total interest and the last
    closing balance; one perturbation of the rate."""
    inputs = [TaskInput(id="principal", label="Loan principal", value=DEBT_PRINCIPAL, unit="currency",
                        cell=f"{INPUTS}!B4"),
              TaskInput(id="rate", label="Annual interest rate", value=DEBT_ANNUAL_RATE, unit="percent",
                        cell=f"{INPUTS}!B5"),
              TaskInput(id="term", label="Term", value=float(periods), unit="count", cell=f"{INPUTS}!B6")]
    _check_distinct(inputs)
    values = debt_schedule_values(periods)
    outputs = [TaskOutput(id="payment", label="Monthly payment", name="Payment", unit="currency",
                          cell=f"{OUTPUTS}!B4", value=values["payment"]),
               TaskOutput(id="interest_total", label="Total interest paid", name="Interest_Total", unit="currency",
                          cell=f"{OUTPUTS}!B5", value=values["interest_total"]),
               TaskOutput(id="closing_last", label="Closing balance, last month", name="Closing_Last",
                          unit="currency", cell=f"{OUTPUTS}!B6", value=values["closing_last"])]
    return Task(id=f"stress-debt-{periods}", family="stress_debt", seed=0, difficulty=5,
                title=f"Loan schedule ({periods} months)",
                prompt=f"Amortise a {DEBT_PRINCIPAL:,.0f} loan at {DEBT_ANNUAL_RATE:.1%} a year over {periods} months.",
                inputs=inputs, outputs=outputs, periods=periods, outflow_labels=["Interest ($)", "Payment ($)"],
                perturbations=[Perturbation(input_id="rate", value=round(DEBT_ANNUAL_RATE * 1.1, 9))])


# -- agreement between two engines -------------------------------------------------------------------------------


class Disagreement(BaseModel):
    """One formula cell on which two engines differ (a value, an error code, or one of them has no value)."""

    cell: str
    formula: str | None = None
    ours: Value = None
    theirs: Value = None
    note: str = ""


class Agreement(BaseModel):
    """How two evaluations of one workbook compare on its formula cells."""

    compared: int = Field(description="Formula cells both engines evaluated and that were compared.")
    agreed: int
    disagreements: list[Disagreement] = Field(default_factory=list)
    skipped: list[str] = Field(default_factory=list, description="Cells the reference engine skipped (a function "
                                                                 "it lacks): listed, not counted.")

    @property
    def rate(self) -> float:
        return 1.0 if self.compared == 0 else self.agreed / self.compared


def values_agree(a: Value, b: Value, rel: float = 1e-9, abs_tol: float = 1e-9) -> bool:
    """Numbers within `rel` relative (`abs_tol` near zero); booleans, text, error codes and blanks exactly."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return abs(a - b) <= max(abs_tol, rel * max(abs(a), abs(b)))
    return a == b


def compare_evaluations(ours: Evaluation, theirs: Evaluation, formulas: dict[str, str] | None = None, *,
                        rel: float = 1e-9, abs_tol: float = 1e-9) -> Agreement:
    """Compare `ours` with the reference engine's `theirs` on every formula cell either engine saw.

    A cell `theirs` marks 'skipped' is listed, not compared. A cell with a problem in only one engine, or in
    only one list of formula cells, is a disagreement; `formulas` (cell -> text) annotates disagreements.
    """
    formulas = formulas or {}
    cells = sorted(set(ours.formula_cells) | set(theirs.formula_cells))
    skipped, wrong = [], []
    for key in cells:
        p_theirs, p_ours = theirs.problems.get(key), ours.problems.get(key)
        if p_theirs is not None and p_theirs.kind == "skipped":
            skipped.append(key)
            continue
        a, b = ours.values.get(key), theirs.values.get(key)
        note = ""
        if p_ours is not None or p_theirs is not None:
            if p_ours is not None and p_theirs is not None and p_ours.kind == p_theirs.kind:
                continue  # both engines refuse it for the same reason (a cycle)
            note = (f"ours: {p_ours.kind if p_ours else 'value'}; theirs: {p_theirs.kind if p_theirs else 'value'}")
        elif not values_agree(a, b, rel, abs_tol):
            note = "values differ"
        if note:
            wrong.append(Disagreement(cell=key, formula=formulas.get(key), ours=a, theirs=b, note=note))
    compared = len(cells) - len(skipped)
    return Agreement(compared=compared, agreed=compared - len(wrong), disagreements=wrong, skipped=skipped)
