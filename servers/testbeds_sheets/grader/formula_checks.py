"""Formula checks, all from the tokens parsed once in `Book`: readability, edge cases, hard-coding, range hygiene
and absolute references. Each returns a `CheckResult` naming the offending cells."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from openpyxl.formula.tokenizer import Token
from openpyxl.utils.cell import get_column_letter

from ..engine.values import Evaluation, is_error
from .book import Book, Cell, Ref
from .locate import Located
from .report import CheckResult, make_check
from .report import summary as _summary

ALLOWED_NUMBERS = {0.0, 1.0, 2.0, 12.0, 100.0, 365.0, 1000.0}
# (function, argument index) slots where a literal number is idiom, not a buried assumption
IDIOMATIC_SLOTS: dict[str, set[int]] = {
    "ROUND": {1}, "ROUNDUP": {1}, "ROUNDDOWN": {1}, "TRUNC": {1}, "FLOOR": {1}, "CEILING": {1}, "MROUND": {1},
    "VLOOKUP": {2, 3}, "HLOOKUP": {2, 3}, "MATCH": {2}, "XMATCH": {2, 3}, "XLOOKUP": {4, 5},
    "INDEX": {1, 2, 3}, "CHOOSE": {0}, "OFFSET": {1, 2, 3, 4}, "SUBTOTAL": {0}, "AGGREGATE": {0, 1},
    "PMT": {4}, "PV": {4}, "FV": {4}, "NPER": {4}, "IPMT": {1, 5}, "PPMT": {1, 5}, "RATE": {4, 5},
    "CUMIPMT": {3, 4, 5}, "CUMPRINC": {3, 4, 5}, "IRR": {1}, "XIRR": {2}, "DDB": {3, 4}, "VDB": {3, 4, 5, 6},
    "DB": {3, 4}, "SYD": {3}, "DATE": {0, 1, 2}, "EDATE": {1}, "EOMONTH": {1}, "YEARFRAC": {2}, "DAYS360": {2},
    "WEEKDAY": {1}, "WEEKNUM": {1}, "TEXT": {1}, "LARGE": {1}, "SMALL": {1}, "PERCENTILE": {1}, "QUARTILE": {1},
    "LEFT": {1}, "RIGHT": {1}, "MID": {1, 2}, "MOD": {1}, "RANK": {2},
}
LOOKUPS = {"VLOOKUP", "HLOOKUP", "MATCH", "XMATCH", "LOOKUP", "XLOOKUP"}
TRAPS = {"IFERROR", "IFNA"}
MAX_LENGTH, MAX_NESTING, MAX_CALLS = 120, 3, 5


def _target(ref: Ref) -> tuple:
    return (ref.sheet, ref.min_row, ref.min_col, ref.max_row, ref.max_col)


def _r1c1(ref: Ref, cell: Cell) -> str:
    if ref.kind == "name":
        return ref.text.upper()

    def corner(row: int, col: int, row_abs: bool, col_abs: bool) -> str:
        r = f"R{row}" if row_abs else f"R[{row - cell.row}]"
        c = f"C{col}" if col_abs else f"C[{col - cell.col}]"
        return r + c

    sheet = "" if ref.sheet == cell.sheet else ref.sheet + "!"
    first = corner(ref.min_row, ref.min_col, ref.row_abs, ref.col_abs)
    if ref.is_single and ref.kind == "cell":
        return sheet + first
    return sheet + first + ":" + corner(ref.max_row, ref.max_col, ref.last_row_abs, ref.last_col_abs)


class FormulaIndex:
    """Per-cell derived forms (R1C1 atoms, absolute keys) and row runs, computed once for all formula checks."""

    def __init__(self, book: Book) -> None:
        self.book = book
        self.atoms: dict[str, list[tuple[str, str | None, tuple | None]]] = {}
        for c in book.formula_cells:
            if c.unparsable:
                continue
            refs = iter(c.refs)
            atoms: list[tuple[str, str | None, tuple | None]] = []
            for t in c.tokens:
                if t.type == Token.WSPACE:
                    continue
                if t.type == Token.OPERAND and t.subtype == Token.RANGE:
                    parsed = book.parse_ref(t.value, c.sheet)
                    if parsed is not None:
                        ref = next(refs)
                        atoms.append(("ref", _r1c1(ref, c), _target(ref)))
                        continue
                atoms.append((t.value.upper() if t.type == Token.FUNC else t.value, None, None))
            self.atoms[c.key] = atoms
        self.runs: list[list[Cell]] = []
        for sheet, rows in book.rows.items():
            for row in rows.values():
                run: list[Cell] = []
                for col in sorted(row):
                    c = row[col]
                    if c.is_formula and not c.unparsable and run and run[-1].col == col - 1:
                        run.append(c)
                    else:
                        if len(run) >= 2:
                            self.runs.append(run)
                        run = [c] if c.is_formula and not c.unparsable else []
                if len(run) >= 2:
                    self.runs.append(run)

    def r1c1(self, key: str) -> tuple:
        return tuple(a if kind == "ref" or a is None else kind for kind, a, _ in self.atoms[key])

    def compatible(self, a: str, b: str) -> bool:
        """Same formula copied: per atom the R1C1 form agrees, or both point at the very same cell."""
        xa, xb = self.atoms[a], self.atoms[b]
        if len(xa) != len(xb):
            return False
        for (ka, ra, ta), (kb, rb, tb) in zip(xa, xb):
            if ra is None or rb is None:
                if ka != kb or ra != rb:
                    return False
            elif ra != rb and ta != tb:
                return False
        return True


def _no_formulas(names: list[tuple[str, str]],
                 why: str = "the workbook holds no formula: nothing was computed") -> list[CheckResult]:
    return [make_check(n, crit, 1, ["(workbook)"], why, score=0.0) for n, crit in names]


FORMULA_CHECKS = [
    ("formula_length", "formula_readability"), ("row_consistency", "formula_readability"),
    ("duplicate_calc", "formula_readability"), ("error_traps", "edge_cases"), ("no_errors", "edge_cases"),
    ("no_cycles", "edge_cases"), ("outputs_are_formulas", "hardcoding"), ("no_buried_constants", "hardcoding"),
    ("no_whole_columns", "range_hygiene"), ("no_self_ranges", "range_hygiene"),
    ("sums_cover_timeline", "range_hygiene"), ("absolute_refs", "absolute_refs"),
]


class FormulaRun:
    """The Formula checks of one workbook, each run on demand: what several share (the `FormulaIndex`, the
    input closure) is built once, on first use. `formula_checks` runs them all; the reference's eligible counts
    (see `against_reference`) ask only for the few the attempt has nothing eligible for."""

    def __init__(self, book: Book, ev: Evaluation, outputs: dict[str, Located],
                 inputs: dict[str, Located] | None = None, unmoved: set[str] | None = None,
                 still: bool = False) -> None:
        self.book, self.ev, self.outputs, self.inputs, self.unmoved = book, ev, outputs, inputs, unmoved
        self._computed: set[str] | None = None
        self._index: FormulaIndex | None = None
        self._done: dict[str, CheckResult] = {}
        self.shells: dict[str, CheckResult] | None = None
        if not book.formula_cells:
            self.shells = _shells(_no_formulas(FORMULA_CHECKS))
            return
        if inputs:
            # the closure is non-empty exactly when some formula reads an input directly: that is all this needs
            if not reads_any(book, input_keys(inputs)):
                # links and `=123.45` shells around typed numbers: the formula checks would only grade the shells
                self.shells = _shells(_no_formulas(
                    FORMULA_CHECKS, f"none of the {len(book.formula_cells)} formulas reads a case input, directly "
                                    "or through other formulas: nothing was computed"))
                return
        if still:
            self.shells = _shells(_no_formulas(
                FORMULA_CHECKS, f"none of the {len(book.formula_cells)} formulas moves when a case input changes, "
                                "though the reference's outputs do: nothing was computed"))

    @property
    def computed(self) -> set[str] | None:
        """The formula cells reaching a located input (`computed_cells`); None without inputs."""
        if self._computed is None and self.inputs:
            self._computed = computed_cells(self.book, input_keys(self.inputs))
        return self._computed

    @property
    def index(self) -> FormulaIndex:
        if self._index is None:
            self._index = FormulaIndex(self.book)
        return self._index

    def check(self, name: str) -> CheckResult:
        """The check called `name` (one of `FORMULA_CHECKS`)."""
        if self.shells is not None:
            return self.shells[name]
        if name not in self._done:
            self._done[name] = self._run(name)
        return self._done[name]

    def _run(self, name: str) -> CheckResult:
        book = self.book
        if name == "formula_length":
            return formula_length(book)
        if name == "row_consistency":
            return row_consistency(self.index)
        if name == "duplicate_calc":
            return duplicate_calc(book, self.index)
        if name == "error_traps":
            return error_traps(book)
        if name == "no_errors":
            return no_errors(book, self.ev)
        if name == "no_cycles":
            return no_cycles(book)
        if name == "outputs_are_formulas":
            return outputs_are_formulas(book, self.outputs, self.inputs, self.computed, self.unmoved)
        if name == "no_buried_constants":
            return no_buried_constants(book)
        if name == "no_whole_columns":
            return no_whole_columns(book)
        if name == "no_self_ranges":
            return no_self_ranges(book)
        if name == "sums_cover_timeline":
            return sums_cover_timeline(book)
        if name == "absolute_refs":
            return absolute_refs(self.index)
        raise KeyError(f"no formula check {name!r}")

    def all(self) -> list[CheckResult]:
        """Every check, in `FORMULA_CHECKS` order."""
        return [self.check(n) for n, _ in FORMULA_CHECKS]


def _shells(checks: list[CheckResult]) -> dict[str, CheckResult]:
    return {c.name: c for c in checks}


FORMULA_CHECK_NAMES = frozenset(n for n, _ in FORMULA_CHECKS)


def formula_checks(book: Book, ev: Evaluation, outputs: dict[str, Located],
                   inputs: dict[str, Located] | None = None, unmoved: set[str] | None = None,
                   still: bool = False) -> list[CheckResult]:
    """Every deterministic Formula check except `inputs_linked` (which needs the perturbation runs); `inputs`
    (the located case inputs) lets `outputs_are_formulas` tell computed outputs from pasted ones, and `unmoved`
    (from `perturb.unmoved_outputs`) names the outputs that reach an input yet never move with one. `still`
    (from `perturb.nothing_moves`: no formula moves when an input changes) fails every check, as when no formula
    reads an input: `=Inputs!$B$4*0+123.45` shells are `=123.45` shells in disguise."""
    return FormulaRun(book, ev, outputs, inputs, unmoved, still).all()


# -- readability ---------------------------------------------------------------------------------------------------
def formula_length(book: Book) -> CheckResult:
    offending, notes = [], []
    for c in book.formula_cells:
        depth = nesting = calls = 0
        for t in c.tokens:
            if t.type == Token.FUNC and t.subtype == Token.OPEN:
                calls += 1
                depth += 1
                nesting = max(nesting, depth)
            elif t.type == Token.FUNC and t.subtype == Token.CLOSE:
                depth -= 1
        reasons = []
        if len(c.formula) - 1 > MAX_LENGTH:
            reasons.append(f"{len(c.formula) - 1} characters")
        if nesting > MAX_NESTING:
            reasons.append(f"functions nested {nesting} deep")
        if calls > MAX_CALLS:
            reasons.append(f"{calls} function calls")
        if reasons:
            offending.append(c.key)
            notes.append(f"{c.key} ({', '.join(reasons)})")
    return make_check("formula_length", "formula_readability", len(book.formula_cells), offending,
                      _summary(f"formulas within {MAX_LENGTH} characters, nesting {MAX_NESTING}, {MAX_CALLS} calls",
                               len(book.formula_cells), offending, notes))


def _covers_run(cell: Cell, run: list[Cell]) -> bool:
    """A row total: one of its ranges spans 2+ cells of its own run."""
    cols = {c.col for c in run}
    for r in cell.refs:
        if r.sheet == cell.sheet and r.min_row <= cell.row <= r.max_row and not r.is_single:
            if len(cols & set(range(r.min_col, r.max_col + 1))) >= 2:
                return True
    return False


def row_consistency(index: FormulaIndex) -> CheckResult:
    eligible, offending, notes = 0, [], []
    for run in index.runs:
        body = [c for c in run[1:] if not _covers_run(c, run)]
        if len(body) < 2:
            continue
        counts = Counter(index.r1c1(c.key) for c in body)
        top = counts.most_common(1)[0][0]
        rep = next(c for c in body if index.r1c1(c.key) == top)
        eligible += len(body)
        for c in body:
            if not index.compatible(c.key, rep.key):
                offending.append(c.key)
                notes.append(f"{c.key} differs from {rep.key} ({c.formula} vs {rep.formula})")
    return make_check("row_consistency", "formula_readability", eligible, offending,
                      _summary("formulas along copied rows are the same formula (first period apart)",
                               eligible, offending, notes))


def duplicate_calc(book: Book, index: FormulaIndex) -> CheckResult:
    seen: dict[tuple, Cell] = {}
    eligible, offending, notes = 0, [], []
    for c in book.formula_cells:
        atoms = index.atoms.get(c.key)
        if not atoms or not c.refs or len([a for a in atoms if a[0] != "="]) <= 1:
            continue  # links and single references are how a result is reused, not a recalculation
        eligible += 1
        key = tuple(t if t is not None else k for k, _, t in atoms)
        first = seen.get(key)
        if first is None:
            seen[key] = c
        elif (first.sheet, first.row) != (c.sheet, c.row) or index.r1c1(first.key) != index.r1c1(c.key):
            # one formula copied along a row onto fixed cells is a flat timeline line, not a recalculation
            offending.append(c.key)
            notes.append(f"{c.key} recomputes {first.key} ({c.formula}); link to it instead")
    return make_check("duplicate_calc", "formula_readability", eligible, offending,
                      _summary("calculations done once", eligible, offending, notes))


# -- edge cases ----------------------------------------------------------------------------------------------------
def _stacks(c: Cell) -> list[tuple[tuple[str, int], ...]]:
    """For each token, the enclosing (function, argument index) pairs."""
    out, stack = [], []
    for t in c.tokens:
        if t.type == Token.FUNC and t.subtype == Token.OPEN:
            out.append(tuple((f, a) for f, a in stack if f != "("))
            stack.append([t.value[:-1].upper(), 0])
            continue
        if t.type == Token.PAREN and t.subtype == Token.OPEN:
            stack.append(["(", 0])
        elif t.type in (Token.FUNC, Token.PAREN) and t.subtype == Token.CLOSE and stack:
            stack.pop()
        elif t.type == Token.SEP and t.subtype == Token.ARG and stack:
            stack[-1][1] += 1
        out.append(tuple((f, a) for f, a in stack if f != "("))
    return out


def _calculated(book: Book, ref: Ref) -> bool:
    if not ref.is_single:
        return False
    c = book.at(ref.sheet, ref.min_row, ref.min_col)
    return c is not None and c.is_formula


def error_traps(book: Book) -> CheckResult:
    eligible, offending, notes = 0, [], []
    for c in book.formula_cells:
        if c.unparsable:
            continue
        toks = c.tokens
        risky: list[tuple[int, str, list[tuple]]] = []  # (token index, what, divisor targets)
        for i, t in enumerate(toks):
            if t.type == Token.OP_IN and t.value == "/":
                j = i + 1
                while j < len(toks) and toks[j].type == Token.WSPACE:
                    j += 1
                if j >= len(toks):
                    continue
                nt = toks[j]
                if nt.type == Token.OPERAND and nt.subtype == Token.RANGE:
                    ref = book.parse_ref(nt.value, c.sheet)
                    if ref is not None and _calculated(book, ref):
                        risky.append((i, f"division by {nt.value}", [_target(ref)]))
                elif nt.type == Token.PAREN and nt.subtype == Token.OPEN:
                    depth, k, minus, targets = 0, j, False, []
                    while k < len(toks):
                        tk = toks[k]
                        if tk.subtype == Token.OPEN and tk.type in (Token.PAREN, Token.FUNC):
                            depth += 1
                        elif tk.subtype == Token.CLOSE and tk.type in (Token.PAREN, Token.FUNC):
                            depth -= 1
                            if depth == 0:
                                break
                        elif depth == 1 and tk.type == Token.OP_IN and tk.value == "-":
                            minus = True
                        elif tk.type == Token.OPERAND and tk.subtype == Token.RANGE:
                            ref = book.parse_ref(tk.value, c.sheet)
                            if ref is not None:
                                targets.append((ref, _target(ref)))
                        k += 1
                    if minus and any(_calculated(book, r) for r, _ in targets):
                        risky.append((i, "division by a calculated difference", [t for _, t in targets]))
            elif t.type == Token.FUNC and t.subtype == Token.OPEN:
                name = t.value[:-1].upper()
                if name in LOOKUPS:
                    if name == "XLOOKUP" and _arg_count(toks, i) >= 4:
                        continue
                    risky.append((i, name, []))
        if not risky:
            continue
        eligible += 1
        stacks = _stacks(c)  # only formulas with something risky need their function stacks
        guarded = _if_conditions(book, c, stacks)
        for i, what, targets in risky:
            trapped = any(f in TRAPS for f, _ in stacks[i]) or (targets and any(t in guarded for t in targets))
            if not trapped:
                offending.append(c.key)
                notes.append(f"{c.key}: {what} without IFERROR/IFNA or an IF on it")
                break
    return make_check("error_traps", "edge_cases", eligible, offending,
                      _summary("risky divisions and lookups are trapped", eligible, offending, notes))


def _arg_count(toks: list[Token], open_index: int) -> int:
    depth, args = 0, 1
    for t in toks[open_index:]:
        if t.subtype == Token.OPEN and t.type in (Token.FUNC, Token.PAREN):
            depth += 1
        elif t.subtype == Token.CLOSE and t.type in (Token.FUNC, Token.PAREN):
            depth -= 1
            if depth == 0:
                break
        elif depth == 1 and t.type == Token.SEP and t.subtype == Token.ARG:
            args += 1
    return args


def _if_conditions(book: Book, c: Cell, stacks: list) -> set[tuple]:
    """Targets referenced inside the condition of an IF (or IFS): a divisor tested there is guarded."""
    out = set()
    for i, t in enumerate(c.tokens):
        if t.type == Token.OPERAND and t.subtype == Token.RANGE and any(
                f in ("IF", "IFS") and a % 2 == 0 and (f == "IFS" or a == 0) for f, a in stacks[i]):
            ref = book.parse_ref(t.value, c.sheet)
            if ref is not None:
                out.add(_target(ref))
    return out


def no_errors(book: Book, ev: Evaluation) -> CheckResult:
    eligible, offending, notes = 0, [], []
    for c in book.formula_cells:
        if c.key in ev.problems:
            continue
        eligible += 1
        v = ev.values.get(c.key)
        if not is_error(v):
            continue
        upstream = [p for p in book.precedents.get(c.key, []) if is_error(ev.values.get(p))]
        if not upstream or c.error_literal:
            offending.append(c.key)
            notes.append(f"{c.key} = {v} ({c.formula})")
    return make_check("no_errors", "edge_cases", eligible, offending,
                      _summary("formula cells free of root-cause error values", eligible, offending, notes))


def tarjan_cycles(nodes: list[str], edges: dict[str, list[str]]) -> list[list[str]]:
    """Strongly connected components with a cycle (2+ cells, or a self-loop), iteratively: no recursion limit."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    cycles: list[list[str]] = []
    counter = 0
    node_set = set(nodes)
    for root in nodes:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            v, pi = work.pop()
            if pi == 0:
                index[v] = low[v] = counter
                counter += 1
                stack.append(v)
                on_stack.add(v)
            succ = [w for w in edges.get(v, []) if w in node_set]
            recurse = False
            for k in range(pi, len(succ)):
                w = succ[k]
                if w not in index:
                    work.append((v, k + 1))
                    work.append((w, 0))
                    recurse = True
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            if recurse:
                continue
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1 or v in edges.get(v, []):
                    cycles.append(sorted(comp))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[v])
    return cycles


def no_cycles(book: Book) -> CheckResult:
    nodes = [c.key for c in book.formula_cells]
    cycles = tarjan_cycles(nodes, book.precedents)
    offending = sorted({k for comp in cycles for k in comp})
    notes = [" -> ".join(comp[:6]) + (" ..." if len(comp) > 6 else "") for comp in cycles]
    return make_check("no_cycles", "edge_cases", len(nodes), offending,
                      _summary("formula cells outside circular references", len(nodes), offending, notes))


# -- hard-coding ---------------------------------------------------------------------------------------------------
def input_keys(inputs: dict[str, Located] | None) -> set[str]:
    """Every cell holding a located case input (a series counts each period)."""
    keys: set[str] = set()
    for loc in (inputs or {}).values():
        if loc.key is not None:
            keys.add(loc.key)
            keys.update(loc.series_keys)
    return keys


def computed_cells(book: Book, sources: set[str]) -> set[str]:
    """Formula cells whose precedent closure (through formula cells, across sheets) reaches one of `sources`:
    one forward sweep over the dependents graph, so a 5,000-cell model costs one pass, not one per output."""
    dependents: dict[str, list[str]] = {}
    for key, precs in book.precedents.items():
        for p in precs:
            dependents.setdefault(p, []).append(key)
    done: set[str] = set()
    todo = [k for k in sources if k in dependents]
    seen_sources = set(todo)
    while todo:
        for d in dependents.get(todo.pop(), ()):
            if d not in done:
                done.add(d)
                if d not in seen_sources:
                    todo.append(d)
    return done


def reads_any(book: Book, sources: set[str]) -> bool:
    """Whether some formula reads one of `sources` directly (so `computed_cells(book, sources)` is not empty),
    stopping at the first that does."""
    return any(p in sources for c in book.formula_cells for p in book.precedents_of(c))


def computes_anything(book: Book, inputs: dict[str, Located] | None) -> bool:
    """Whether some formula reads a case input, directly or through other formulas (True when the task has no
    inputs to tell)."""
    if not inputs:
        return bool(book.formula_cells)
    return bool(book.formula_cells) and reads_any(book, input_keys(inputs))


def _typed_leaves(book: Book, key: str, limit: int = 4) -> list[str]:
    """The non-formula cells a formula's closure ends in (where pasted numbers sit), first `limit` of them."""
    leaves: list[str] = []
    seen = {key}
    todo = [key]
    while todo and len(leaves) < limit:
        for p in book.precedents.get(todo.pop(), ()):
            if p in seen:
                continue
            seen.add(p)
            c = book.cells.get(p)
            if c is not None and c.is_formula:
                todo.append(p)
            else:
                leaves.append(p)
    return leaves[:limit]


def _pasted_note(book: Book, loc: Located, c: Cell) -> str:
    leaves = _typed_leaves(book, c.key)
    if not c.refs:
        how = f"{c.formula} reads no cell"
    elif leaves:
        how = f"{c.formula} leads only to typed numbers ({', '.join(leaves)})"
    else:
        how = f"{c.formula} reads no case input"
    return f"output {loc.id} at {loc.key} is pasted: {how}"


def outputs_are_formulas(book: Book, outputs: dict[str, Located], inputs: dict[str, Located] | None = None,
                         computed: set[str] | None = None, unmoved: set[str] | None = None) -> CheckResult:
    """Outputs are computed, not pasted. With `inputs`, an output counts only when its precedent closure reaches a
    located case input: `=123.45`, a link to a typed number or a chain of links ending in typed numbers is pasted.
    `computed` (from `computed_cells`) saves recomputing the closure. An output downstream of an error literal
    is left to `no_errors`. An output in `unmoved` (it moves under no perturbation although the reference's moves
    under one, e.g. `=Inputs!$B$4*0+123.45`) reaches an input in form only: it is pasted too."""
    if computed is None and inputs is not None:
        computed = computed_cells(book, input_keys(inputs))
    # a formula broken by an error literal (`=Calc!#REF!`) or unparsable text is a fault for no_errors, not a paste
    broken_roots = {c.key for c in book.formula_cells if c.error_literal or c.unparsable}
    broken = broken_roots | computed_cells(book, broken_roots) if computed is not None and broken_roots else set()
    items: dict[str, str | None] = {}
    for loc in outputs.values():
        if loc.key is None:
            continue
        c = book.cells.get(loc.key)
        if c is None or not c.is_formula:
            what = "formula stored as text" if c is not None and c.text_formula else "typed value"
            items[loc.key] = f"output {loc.id} at {loc.key} is a {what}"
        elif computed is not None and loc.key not in computed and loc.key not in broken:
            items[loc.key] = _pasted_note(book, loc, c)
        elif unmoved and loc.key in unmoved:
            items[loc.key] = f"{loc.key} does not move when any case input changes: typed, not computed"
        else:
            items[loc.key] = None
    for c in book.cells.values():
        if c.text_formula and c.key not in items:
            items[c.key] = f"{c.key} is a formula stored as text"
    for sheet, rows in book.rows.items():
        for r, row in rows.items():
            run: list[Cell] = []
            for col in sorted(row) + [None]:
                c = row.get(col) if col is not None else None
                numeric = c is not None and (c.is_formula or c.is_number)
                if numeric and (not run or run[-1].col == col - 1):
                    run.append(c)
                    continue
                if len(run) >= 3 and sum(1 for x in run if x.is_formula) >= 2:
                    for x in run[1:]:
                        if x.is_number and x.key not in items:
                            items[x.key] = f"{x.key} is a constant amid a row of formulas (pasted?)"
                run = [c] if numeric else []
    offending = [k for k, why in items.items() if why]
    notes = [why for why in items.values() if why]
    return make_check("outputs_are_formulas", "hardcoding", len(items), offending,
                      _summary("outputs and formula rows are formulas, not pasted values", len(items), offending,
                               notes))


def _number_value(text: str, percent: bool) -> float | None:
    try:
        v = float(text)
    except ValueError:
        return None
    return v / 100 if percent else v


def _multiplies(toks: list[Token], index: int) -> bool:
    """Whether the operand at `index` is a factor of a product (`x*0`, `0*x`)."""
    def neighbour(step: int) -> Token | None:
        i = index + step
        while 0 <= i < len(toks) and toks[i].type == Token.WSPACE:
            i += step
        return toks[i] if 0 <= i < len(toks) else None

    return any(t is not None and t.type == Token.OP_IN and t.value == "*" for t in (neighbour(-1), neighbour(1)))


def buried_constants(c: Cell) -> list[str]:
    """The literal numbers of a formula that are assumptions rather than idiom. A 0 multiplying a term is one too:
    `Inputs!$B$4*0` reads an input only to discard it."""
    found = []
    toks = c.tokens
    for op in c.operands:
        t = op.token
        if t.subtype != Token.NUMBER:
            continue
        nxt = toks[op.index + 1] if op.index + 1 < len(toks) else None
        percent = nxt is not None and nxt.type == Token.OP_POST and nxt.value == "%"
        v = _number_value(t.value, percent)
        if v == 0.0 and _multiplies(toks, op.index):
            found.append("*0")
            continue
        if v is None or abs(v) in ALLOWED_NUMBERS:
            continue
        if op.functions:
            f, a = op.functions[-1]
            if a in IDIOMATIC_SLOTS.get(f, ()):
                continue
        found.append(t.value + ("%" if percent else ""))
    return found


def _every_formula(book: Book, name: str, criterion: str, what: str, find: Callable[[Cell], list[str]],
                   note: Callable[[Cell, list[str]], str]) -> CheckResult:
    """A check over every formula cell: `find` lists what is wrong with one cell, `note` explains it."""
    offending, notes = [], []
    for c in book.formula_cells:
        bad = find(c)
        if bad:
            offending.append(c.key)
            notes.append(note(c, bad))
    n = len(book.formula_cells)
    return make_check(name, criterion, n, offending, _summary(what, n, offending, notes))


def no_buried_constants(book: Book) -> CheckResult:
    return _every_formula(book, "no_buried_constants", "hardcoding", "formulas without buried constants",
                          buried_constants, lambda c, nums: f"{c.key} holds {', '.join(nums)} ({c.formula})")


# -- range hygiene -------------------------------------------------------------------------------------------------
def no_whole_columns(book: Book) -> CheckResult:
    return _every_formula(book, "no_whole_columns", "range_hygiene",
                          "formulas without whole-column or whole-row ranges",
                          lambda c: [r.text for r in c.refs if r.kind in ("columns", "rows")],
                          lambda c, bad: f"{c.key} uses {', '.join(bad)}")


def no_self_ranges(book: Book) -> CheckResult:
    return _every_formula(book, "no_self_ranges", "range_hygiene", "formulas whose ranges exclude their own cell",
                          lambda c: [r.text for r in c.refs if not r.is_single and r.contains(c.sheet, c.row, c.col)],
                          lambda c, bad: f"{c.key} sums a range containing itself ({', '.join(bad)})")


def sums_cover_timeline(book: Book) -> CheckResult:
    eligible, offending, notes = 0, [], []
    for c in book.formula_cells:
        stacks = None
        for op in c.operands:
            if op.token.subtype != Token.RANGE or not op.functions or op.functions[-1][0] != "SUM":
                continue
            ref = book.parse_ref(op.token.value, c.sheet)
            if ref is None or ref.kind != "range" or ref.min_row != ref.max_row or ref.min_col == ref.max_col:
                continue
            if ref.col_abs and not ref.last_col_abs:
                continue  # a running total ($C5:D5) grows with the copy on purpose
            stacks = True
            row = book.rows.get(ref.sheet, {}).get(ref.min_row, {})
            end = ref.max_col
            while end + 1 in row and (row[end + 1].is_formula or row[end + 1].is_number):
                end += 1
            if end > ref.max_col:
                offending.append(c.key)
                notes.append(f"{c.key} sums {ref.text} but the row runs to "
                             f"{get_column_letter(end)}{ref.min_row}")
                break
        if stacks:
            eligible += 1
    return make_check("sums_cover_timeline", "range_hygiene", eligible, offending,
                      _summary("sums over a timeline row reach its last period", eligible, offending, notes))


# -- absolute references -------------------------------------------------------------------------------------------
def absolute_refs(index: FormulaIndex) -> CheckResult:
    eligible, offending, notes = 0, [], []
    for run in index.runs:
        body = run[1:] if len(run) >= 3 else run
        eligible += len(body)
        shared: set[tuple] | None = None
        for c in body:
            targets = {_target(r) for r in c.refs}
            shared = targets if shared is None else shared & targets
        if not shared:
            continue
        for c in body:
            loose = [r.text for r in c.refs if _target(r) in shared and r.kind != "name"
                     and not (r.col_abs and (r.is_single or r.last_col_abs))]
            if loose:
                offending.append(c.key)
                notes.append(f"{c.key}: {', '.join(loose)} points at one cell across the row but lacks '$' "
                             f"on the column")
    return make_check("absolute_refs", "absolute_refs", eligible, offending,
                      _summary("formulas in copied rows anchor the fixed cells they read", eligible, offending, notes))

