"""Format checks: structure, labels, colours, number notation, alignment, fonts, fills, presentation.

Units come from the task where it knows them (located inputs and outputs), else from the row label
('Revenue ($m)', 'Growth (%)'), else only the magnitude-based rules apply.
"""

from __future__ import annotations

import re
from collections import Counter

from ..engine.values import Evaluation
from ..tasks.model import Task
from .accuracy import is_number
from .book import Book, Cell, sheet_role
from .colours import classify_font, theme_palette
from .locate import Located
from .numfmt import parse
from .report import CheckResult, make_check
from .report import summary as _summary

ROLE_RANK = {"input": 0, "calc": 1, "output": 2}
SERIF = ("times", "cambria", "georgia", "garamond", "palatino", "book antiqua", "courier", "century schoolbook")
FREEZE_ROWS, FREEZE_COLS = 60, 26
_TEXT_PERIOD = re.compile(r"^(y|yr|year|fy|q|m|p|period|month|quarter|t)\s*'?\d{1,4}[ae]?$", re.I)
_PERIOD_WORDS = re.compile(r"\b(period|year|month|quarter|fy|yr|t)\b", re.I)


def label_unit(label: str | None) -> str | None:
    """A unit read from a row label: percent, currency, years, days, count; None when it names none."""
    if not label:
        return None
    low = label.lower()
    if "%" in low or "percent" in low:
        return "percent"
    if re.search(r"[$€£¥]|\busd\b|\beur\b|\bgbp\b|\(\s*[$€£]?\s*(k|m|bn|000s?)\s*\)", low):
        return "currency"
    if re.search(r"\(\s*years?\s*\)", low):
        return "years"
    if re.search(r"\(\s*days?\s*\)", low):
        return "days"
    return None


class Units:
    """Each numeric cell's unit (task knowledge first, then its row label) and the timeline headers."""

    def __init__(self, book: Book, ev: Evaluation, task: Task, inputs: dict[str, Located],
                 outputs: dict[str, Located]) -> None:
        self.book, self.ev = book, ev
        self.known: dict[str, str] = {}
        for i in task.inputs:
            loc = inputs.get(i.id)
            if loc is not None and loc.key is not None:
                for k in loc.series_keys or [loc.key]:
                    self.known[k] = i.unit if loc.scale == 1.0 else "percent_whole"
        for o in task.outputs:
            loc = outputs.get(o.id)
            if loc is not None and loc.key is not None:
                self.known.setdefault(loc.key, o.unit)
        self.headers: dict[str, tuple[int, int]] = {}  # sheet -> (row, first period column)
        self.header_cells: set[str] = set()
        for sheet, rows in book.rows.items():
            for r in sorted(rows):
                run = self._rising_run(sheet, r)
                if run:
                    self.header_cells.update(c.key for c in run)
                    if sheet not in self.headers:
                        self.headers[sheet] = (r, run[0].col)

    def value(self, c: Cell) -> float | None:
        v = self.ev.values.get(c.key) if c.is_formula else c.raw
        return float(v) if is_number(v) else None

    def _rising_run(self, sheet: str, row: int) -> list[Cell]:
        cells = self.book.row_cells(sheet, row)
        texts = [c for c in cells if c.is_text and _TEXT_PERIOD.match(c.raw.strip())]
        if len(texts) >= 3 and all(b.col == a.col + 1 for a, b in zip(texts, texts[1:])):
            return texts
        best: list[Cell] = []
        run: list[Cell] = []
        for c in cells:
            v = self.value(c) if (c.is_number or c.is_formula) else None
            if (v is not None and float(v).is_integer() and run and run[-1].col == c.col - 1
                    and self.value(run[-1]) == v - 1):
                run.append(c)
            else:
                if len(run) > len(best):
                    best = run
                run = [c] if v is not None and float(v).is_integer() else []
        if len(run) > len(best):
            best = run
        if len(best) < 3:
            return []
        label = None
        first = best[0]
        for c in cells:
            if c.col < first.col and c.is_text:
                label = c.raw
        if label is None or not _PERIOD_WORDS.search(label):
            v0 = self.value(first) or 0
            if not (1900 <= v0 <= 2200 or v0 in (0, 1)):
                return []
        return best

    def unit(self, c: Cell) -> str | None:
        if c.key in self.known:
            return self.known[c.key]
        if c.key in self.header_cells:
            return "period"
        return label_unit(self.book.label_of(c))


def numeric_cells(book: Book, ev: Evaluation) -> list[Cell]:
    out = []
    for c in book.cells.values():
        v = ev.values.get(c.key) if c.is_formula else c.raw
        if is_number(v):
            out.append(c)
    return out


# -- structure -----------------------------------------------------------------------------------------------------
def sheet_roles(book: Book) -> CheckResult:
    offending, notes = [], []
    roles = [(s, sheet_role(s)) for s in book.sheetnames]
    highest = -1
    for s, role in roles:
        if role == "default":
            offending.append(s)
            notes.append(f"sheet {s!r} keeps a default name")
            continue
        rank = ROLE_RANK.get(role)
        if rank is None:
            continue
        if rank < highest:
            offending.append(s)
            notes.append(f"sheet {s!r} ({role}) comes after a later-stage sheet")
        highest = max(highest, rank)
    present = {r for _, r in roles}
    for role in ("input", "output"):
        if role not in present:
            offending.append(f"({role} sheet)")
            notes.append(f"no {role} sheet (name one e.g. {'Inputs' if role == 'input' else 'Outputs'})")
    if "calc" not in present:
        offending.append("(calculation sheet)")
        notes.append("no calculation sheet")
    n = len(roles) + 3
    return make_check("sheet_roles", "structure", n, offending,
                      _summary("sheets and roles in order inputs -> calculations -> outputs", n, offending, notes))


def inputs_read_no_workings(book: Book) -> CheckResult:
    eligible, offending = 0, []
    for c in book.formula_cells:
        if sheet_role(c.sheet) != "input":
            continue
        eligible += 1
        bad = [r.text for r in c.refs if sheet_role(r.sheet) in ("calc", "output", "default")]
        if bad:
            offending.append(c.key)
    return make_check("inputs_read_no_workings", "structure", eligible, offending,
                      _summary("input-sheet formulas that read no workings", eligible, offending))


# -- readability ---------------------------------------------------------------------------------------------------
def freeze_panes(book: Book) -> CheckResult:
    eligible, offending = 0, []
    for ws in book.wb.worksheets:
        max_row, max_col = book.bounds.get(ws.title, (0, 0))
        if max_row > FREEZE_ROWS or max_col > FREEZE_COLS:
            eligible += 1
            if not ws.freeze_panes or ws.freeze_panes == "A1":
                offending.append(ws.title)
    return make_check("freeze_panes", "layout_readability", eligible, offending,
                      _summary(f"sheets past {FREEZE_COLS} columns or {FREEZE_ROWS} rows freeze panes",
                               eligible, offending))


def labels_and_units(book: Book, units: Units, nums: list[Cell]) -> CheckResult:
    rows: dict[tuple[str, int], list[Cell]] = {}
    for c in nums:
        if c.key not in units.header_cells:
            rows.setdefault((c.sheet, c.row), []).append(c)
    offending, notes = [], []
    for (sheet, r), cells in sorted(rows.items(), key=lambda kv: (book.sheetnames.index(kv[0][0]), kv[0][1])):
        first = min(cells, key=lambda c: c.col)
        label = book.label_of(first)
        if label is None:
            offending.append(first.key)
            notes.append(f"row {sheet}!{r} has numbers but no label")
            continue
        for c in cells:
            unit = units.known.get(c.key)
            if unit not in ("percent", "currency"):
                continue
            fmt = parse(c.cell.number_format)
            shown = (unit == "percent" and (fmt.percent or "%" in label)) or (
                unit == "currency" and (fmt.currency or label_unit(label) == "currency"))
            if not shown:
                offending.append(c.key)
                notes.append(f"{c.key} ({unit}) shows no unit in its label {label!r} or format")
                break
    n = len(rows)
    return make_check("labels_and_units", "layout_readability", n, offending,
                      _summary("numeric rows labelled, with units", n, offending, notes))


# -- colours -------------------------------------------------------------------------------------------------------
def font_colours(book: Book, inputs: dict[str, Located], units: Units) -> CheckResult:
    palette = theme_palette(getattr(book.wb, "loaded_theme", None))
    expected: dict[str, str] = {}
    for loc in inputs.values():
        for k in (loc.series_keys or ([loc.key] if loc.key else [])):
            c = book.cells.get(k)
            if c is not None and c.is_number:
                expected[k] = "blue"
    for k in book.read_by_formulas:
        c = book.cells.get(k)
        if c is not None and c.is_number and k not in units.header_cells:
            expected.setdefault(k, "blue")
    for c in book.formula_cells:
        if c.key in units.header_cells:
            continue
        if book.is_link(c):
            expected[c.key] = "green"
        elif c.refs or c.unparsable:
            expected[c.key] = "black"
        # a formula reading no cell (`=18400`) is a typed value in disguise: no colour class fits it, and
        # no_buried_constants already owns it
    offending, notes = [], []
    # cells share their workbook's font objects: classify each once (kept in the memo so no id is reused)
    classes: dict[int, tuple[object, str]] = {}
    for k, want in expected.items():
        font = book.cells[k].cell.font
        memo = classes.get(id(font))
        if memo is None:
            memo = classes[id(font)] = (font, classify_font(font, palette))
        got = memo[1]
        if got != want:
            offending.append(k)
            kind = {"blue": "input", "green": "link", "black": "formula"}[want]
            notes.append(f"{k} ({kind}) is {got}, not {want}")
    n = len(expected)
    return make_check("font_colours", "colour_standards", n, offending,
                      _summary("cells in the colour of their class (blue inputs, black formulas, green links)",
                               n, offending, notes))


# -- number notation -----------------------------------------------------------------------------------------------
def number_notation(book: Book, units: Units, nums: list[Cell]) -> CheckResult:
    offending, notes = [], []
    eligible = 0
    by_row: dict[tuple[str, int], list[Cell]] = {}
    for c in nums:
        v = units.value(c)
        if v is None:
            continue
        unit = units.unit(c)
        fmt = parse(c.cell.number_format)
        problems = []
        if unit == "percent" and abs(v) <= 2 and not fmt.percent:
            problems.append("a percentage without %")
        elif unit in ("years", "period", "date_year") or (unit is None and c.key in units.header_cells):
            if fmt.thousands:
                problems.append("a year or period with a thousands separator")
        elif unit == "date":
            if not fmt.date:
                problems.append("a date without a date format")
        elif unit not in ("percent", "percent_whole", "selector", "ratio") and abs(v) >= 1000 and not fmt.thousands:
            problems.append("no thousands separator")
        if unit in ("currency", None) and v < 0 and c.key not in units.header_cells and not fmt.negative_parentheses:
            problems.append("a negative not in parentheses")
        if unit is not None or abs(v) >= 1000 or v < 0:
            eligible += 1
            if problems:
                offending.append(c.key)
                notes.append(f"{c.key} ({unit or 'number'}, format {fmt.text!r}): {', '.join(problems)}")
        by_row.setdefault((c.sheet, c.row), []).append(c)
    for (sheet, r), cells in by_row.items():
        run = sorted(cells, key=lambda c: c.col)
        if len(run) < 2 or any(c.key in units.header_cells for c in run):
            continue
        decimals = Counter(parse(c.cell.number_format).decimals for c in run)
        if len(decimals) <= 1:
            continue
        top = decimals.most_common(1)[0][0]
        for c in run:
            if parse(c.cell.number_format).decimals != top and c.key not in offending:
                eligible += 1
                offending.append(c.key)
                notes.append(f"{c.key} shows a different precision from the rest of row {sheet}!{r}")
    return make_check("number_notation", "number_notation", eligible, offending,
                      _summary("numbers formatted for their unit", eligible, offending, notes))


# -- alignment -----------------------------------------------------------------------------------------------------
def number_alignment(book: Book, nums: list[Cell]) -> CheckResult:
    offending = [c.key for c in nums
                 if (c.cell.alignment.horizontal or "general") in ("left", "center", "centerContinuous", "justify",
                                                                   "distributed")]
    return make_check("number_alignment", "alignment", len(nums), offending,
                      _summary("numbers right-aligned (or general)", len(nums), offending))


def period_columns(units: Units) -> CheckResult:
    cols = Counter(col for _, col in units.headers.values())
    if len(units.headers) < 2:
        return make_check("period_columns", "alignment", 0, [], "nothing to check: fewer than two timelines")
    top = cols.most_common(1)[0][0]
    offending = [s for s, (_, col) in units.headers.items() if col != top]
    return make_check("period_columns", "alignment", len(units.headers), offending,
                      _summary("timelines start their first period in the same column", len(units.headers),
                               offending))


# -- style ---------------------------------------------------------------------------------------------------------
def font_consistency(book: Book) -> CheckResult:
    cells = list(book.cells.values())
    if not cells:
        return make_check("font_consistency", "style_consistency", 0, [], "nothing to check: an empty workbook")
    names = Counter((c.cell.font.name or "Calibri") for c in cells)
    top, count = names.most_common(1)[0]
    offending, notes = [], []
    if any(s in top.lower() for s in SERIF):
        offending = [c.key for c in cells]
        notes.append(f"the main font {top!r} is a serif font")
    else:
        if count < 0.95 * len(cells):
            offending = [c.key for c in cells if (c.cell.font.name or "Calibri") != top]
            notes.append(f"{len(offending)} cells not in {top!r}")
        sizes = Counter(float(c.cell.font.sz or 11) for c in cells)
        if len(sizes) > 3:
            keep = {s for s, _ in sizes.most_common(3)}
            extra = [c.key for c in cells if float(c.cell.font.sz or 11) not in keep and c.key not in offending]
            offending += extra
            notes.append(f"{len(sizes)} font sizes")
    return make_check("font_consistency", "style_consistency", len(cells), offending,
                      _summary("cells in one sans-serif font and at most 3 sizes", len(cells), [], notes))


def fills(book: Book) -> CheckResult:
    cells = list(book.cells.values())
    filled: list[tuple[Cell, str]] = []
    for c in cells:
        f = c.cell.fill
        if f is not None and f.fill_type not in (None, "none"):
            colour = getattr(f.fgColor, "rgb", None)
            colour = colour if isinstance(colour, str) else str(getattr(f.fgColor, "theme", "?"))
            if colour[-6:].upper() != "FFFFFF":
                filled.append((c, colour))
    offending, notes = [], []
    allowance = int(0.25 * len(cells))
    if len(filled) > allowance:
        offending = [c.key for c, _ in filled[allowance:]]
        notes.append(f"{len(filled)}/{len(cells)} cells filled (at most 25%)")
    colours = Counter(col for _, col in filled)
    if len(colours) > 4:
        keep = {col for col, _ in colours.most_common(4)}
        offending += [c.key for c, col in filled if col not in keep and c.key not in offending]
        notes.append(f"{len(colours)} fill colours (at most 4)")
    return make_check("fills", "borders_shading", len(cells), offending,
                      _summary("cells within the shading budget", len(cells), [], notes))


def delineation(book: Book) -> CheckResult:
    """Cells set off by a border or a fill (headers, totals). Nothing here can offend: the check counts what the
    attempt delineates, and `against_reference` fails it when the reference delineates cells and the attempt none."""
    n = 0
    # cells share their workbook's border and fill objects: judge each distinct pair once
    # (the objects are kept in the memo so that an id is never reused while it is looked up)
    seen: dict[tuple[int, int], tuple[object, object, bool]] = {}
    for c in book.cells.values():
        b = c.cell.border
        f = c.cell.fill
        pair = (id(b), id(f))
        memo = seen.get(pair)
        if memo is None:
            memo = seen[pair] = (b, f, bool(
                any(getattr(b, side).style for side in ("top", "bottom", "left", "right")
                    if getattr(b, side) is not None) or (f is not None and f.fill_type not in (None, "none"))))
        if memo[2]:
            n += 1
    return make_check("delineation", "borders_shading", n, [],
                      _summary("cells set off by borders or fills", n, []))


# -- presentation --------------------------------------------------------------------------------------------------
def outputs_summary(book: Book, task: Task, outputs: dict[str, Located]) -> CheckResult:
    offending, notes = [], []
    first_sheet = book.sheetnames[0] if book.sheetnames else None
    linked_from_output: set[str] = set()
    for c in book.formula_cells:
        if sheet_role(c.sheet) == "output":
            linked_from_output.update(book.precedents.get(c.key, []))
    for o in task.outputs:
        loc = outputs.get(o.id)
        if loc is None or loc.key is None:
            offending.append(o.id)
            notes.append(f"{o.id} not presented")
            continue
        c = book.cells.get(loc.key)
        where_ok = c is not None and (sheet_role(c.sheet) == "output" or loc.key in linked_from_output
                                      or (c.sheet == first_sheet and c.row <= 15))
        if not where_ok:
            offending.append(loc.key)
            notes.append(f"{loc.key} ({o.id}) is not on an outputs sheet or the top of the first sheet")
            continue
        if o.unit in ("percent", "currency") and c is not None:
            label = book.label_of(c) or ""
            fmt = parse(c.cell.number_format)
            shown = (o.unit == "percent" and (fmt.percent or "%" in label)) or (
                o.unit == "currency" and (fmt.currency or label_unit(label) == "currency"))
            if not shown:
                offending.append(loc.key)
                notes.append(f"{loc.key} ({o.id}) shows no unit")
    n = len(task.outputs)
    return make_check("outputs_summary", "presentation", n, offending,
                      _summary("outputs presented on a summary with units", n, offending, notes))


# Format checks that judge how calculations are laid out and marked: with nothing calculated they judge nothing.
NEEDS_CALCULATION = ("sheet_roles", "inputs_read_no_workings", "font_colours")


FORMAT_CHECKS = ("sheet_roles", "inputs_read_no_workings", "freeze_panes", "labels_and_units", "font_colours",
                 "number_notation", "number_alignment", "period_columns", "font_consistency", "fills", "delineation",
                 "outputs_summary")


class FormatRun:
    """The Format checks of one workbook, each run on demand; the units and numeric cells several share are
    worked out once, on first use. `format_checks` runs them all."""

    def __init__(self, book: Book, ev: Evaluation, task: Task, inputs: dict[str, Located],
                 outputs: dict[str, Located], computes: bool = True) -> None:
        self.book, self.ev, self.task, self.inputs, self.outputs = book, ev, task, inputs, outputs
        self.computes = computes
        self._units: Units | None = None
        self._nums: list[Cell] | None = None
        self._done: dict[str, CheckResult] = {}

    @property
    def units(self) -> Units:
        if self._units is None:
            self._units = Units(self.book, self.ev, self.task, self.inputs, self.outputs)
        return self._units

    @property
    def nums(self) -> list[Cell]:
        if self._nums is None:
            self._nums = numeric_cells(self.book, self.ev)
        return self._nums

    def check(self, name: str) -> CheckResult:
        """The check called `name` (one of `FORMAT_CHECKS`)."""
        if name not in self._done:
            c = self._run(name)
            if not self.computes and name in NEEDS_CALCULATION:
                c = c.model_copy(update={
                    "score": 0.0, "offending": ["(workbook)"],
                    "explanation": "no formula reads a case input: nothing was calculated, so there are no inputs, "
                                   "workings and outputs to separate and no formulas to colour"})
            self._done[name] = c
        return self._done[name]

    def _run(self, name: str) -> CheckResult:
        book = self.book
        if name == "sheet_roles":
            return sheet_roles(book)
        if name == "inputs_read_no_workings":
            return inputs_read_no_workings(book)
        if name == "freeze_panes":
            return freeze_panes(book)
        if name == "labels_and_units":
            return labels_and_units(book, self.units, self.nums)
        if name == "font_colours":
            return font_colours(book, self.inputs, self.units)
        if name == "number_notation":
            return number_notation(book, self.units, self.nums)
        if name == "number_alignment":
            return number_alignment(book, self.nums)
        if name == "period_columns":
            return period_columns(self.units)
        if name == "font_consistency":
            return font_consistency(book)
        if name == "fills":
            return fills(book)
        if name == "delineation":
            return delineation(book)
        if name == "outputs_summary":
            return outputs_summary(book, self.task, self.outputs)
        raise KeyError(f"no format check {name!r}")

    def all(self) -> list[CheckResult]:
        """Every check, in `FORMAT_CHECKS` order."""
        return [self.check(n) for n in FORMAT_CHECKS]


def format_checks(book: Book, ev: Evaluation, task: Task, inputs: dict[str, Located],
                  outputs: dict[str, Located], computes: bool = True) -> list[CheckResult]:
    """Every deterministic Format check. `computes` False (no formula reads a case input) fails the checks of
    `NEEDS_CALCULATION`: a workbook of typed numbers has no inputs, workings and outputs to keep apart (a sheet
    named Outputs is only a name), and no formulas or links to colour."""
    return FormatRun(book, ev, task, inputs, outputs, computes).all()
