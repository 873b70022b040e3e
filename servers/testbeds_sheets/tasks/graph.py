"""Line-item graphs: the nodes a finance model is made of, their Excel templates and their Python values.

A family (see `families/`) declares a library of nodes on one timeline. Each calculation node carries two
definitions of the same thing: an Excel formula template (rendered by `layout.py`) and a Python function (the
reference value). Keeping both side by side is the point: the graph, our evaluator and LibreOffice check each
other, and reference values never come from a spreadsheet engine.

Template syntax (placeholders are replaced by cell references when the workbook is laid out):

- `{x}`       x itself: a scalar's cell (absolute, `$B$5`), or a row's cell in the same period (relative, `D9`);
- `{x@prev}`  a row's cell one period earlier (relative; a *lagged* edge, as in a corkscrew);
- `{x@row}`   a row's whole range over the periods it covers (absolute; only in scalar formulas);
- `{x@rest}`  the same range without its first period (e.g. CF1..CFn for Excel's NPV);
- `{x@first}` / `{x@last}`  a row's first / last covered cell (absolute; only in scalar formulas).

Depth. A node's depth is 1 + the largest depth among its non-lagged calculation precedents (inputs have depth
0), so a corkscrew's `opening = closing@prev` does not make a cycle. The depth of a set of nodes is the largest
depth inside the closure of its precedents (lagged edges included, since the workbook needs those rows): that
is the number of calculation nodes on the longest input-to-output path of the sub-DAG, and `select` asserts
it equals the difficulty.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from .model import Unit

_PLACEHOLDER = re.compile(r"\{([a-z][a-z0-9_]*)(?:@(prev|row|rest|first|last))?\}")

Sign = Literal["in", "out"]


@dataclass(frozen=True)
class Node:
    """One line item: an input (constant, scalar or one value per period) or a calculation."""

    id: str
    label: str
    unit: Unit
    kind: Literal["input", "calc"]
    per_period: bool
    formula: str | None = None
    first: str | None = None
    py: Callable[..., float] | None = None
    py_first: Callable[..., float] | None = None
    start: int = 0
    sign: Sign | None = None
    decimals: int | None = None
    value: float | None = None
    series: tuple[float, ...] | None = None
    driver: bool = False
    structural: bool = False  # fixes the timeline's length: never perturbed, the columns would not follow

    def templates(self) -> list[str]:
        return [t for t in (self.first, self.formula) if t]

    def deps(self, lagged: bool | None = None) -> list[str]:
        """Precedent ids; lagged=True only `@prev` ones, False only the others, None all."""
        out: list[str] = []
        for template in self.templates():
            for m in _PLACEHOLDER.finditer(template):
                is_lag = m.group(2) == "prev"
                if lagged is None or lagged == is_lag:
                    if m.group(1) not in out:
                        out.append(m.group(1))
        return out


@dataclass(frozen=True)
class OutputSpec:
    """A required output: a scalar node, or a row node read at one period (default: the last)."""

    node: str
    name: str
    label: str
    period: int | None = None


@dataclass
class Graph:
    """A family's node library on one timeline, with its candidate outputs."""

    title: str
    story: str
    periods: list[str]
    nodes: dict[str, Node] = field(default_factory=dict)
    outputs: list[OutputSpec] = field(default_factory=list)

    # building -------------------------------------------------------------------------------------------------
    def _add(self, node: Node) -> str:
        if node.kind == "input" and any(float(f"{x:.12g}") != x for x in node.series or (node.value,)):
            raise ValueError(f"input {node.id!r} is not a rounded value: {node.series or node.value}")
        if node.id in self.nodes:
            raise ValueError(f"duplicate node {node.id!r}")
        # lagged precedents may come later (a corkscrew's opening reads the closing below it)
        for dep in node.deps(lagged=False):
            if dep not in self.nodes:
                raise ValueError(f"node {node.id!r} reads {dep!r}, which is not defined before it")
        self.nodes[node.id] = node
        return node.id

    def scalar_input(self, id: str, label: str, unit: Unit, value: float, *, driver: bool = False,
                     decimals: int | None = None, structural: bool = False) -> str:
        return self._add(Node(id, label, unit, "input", False, value=value, driver=driver, decimals=decimals,
                              structural=structural))

    def series_input(self, id: str, label: str, unit: Unit, values: Sequence[float], *, start: int = 0,
                     driver: bool = False, decimals: int | None = None) -> str:
        if len(values) != len(self.periods) - start:
            raise ValueError(f"series {id!r} needs {len(self.periods) - start} values")
        return self._add(Node(id, label, unit, "input", True, value=values[0], series=tuple(values), start=start,
                              driver=driver, decimals=decimals))

    def scalar(self, id: str, label: str, unit: Unit, formula: str, py: Callable[[Values], float], *,
               sign: Sign | None = None, decimals: int | None = None) -> str:
        return self._add(Node(id, label, unit, "calc", False, formula=formula, py=py, sign=sign, decimals=decimals))

    def row(self, id: str, label: str, unit: Unit, formula: str, py: Callable[[Values, int], float], *,
            first: str | None = None, py_first: Callable[[Values, int], float] | None = None, start: int = 0,
            sign: Sign | None = None, decimals: int | None = None) -> str:
        if (first is None) != (py_first is None):
            raise ValueError(f"row {id!r}: give both or neither of first / py_first")
        return self._add(Node(id, label, unit, "calc", True, formula=formula, first=first, py=py,
                              py_first=py_first, start=start, sign=sign, decimals=decimals))

    def output(self, node: str, name: str, label: str, period: int | None = None) -> None:
        if node not in self.nodes:
            raise ValueError(f"unknown output node {node!r}")
        self.outputs.append(OutputSpec(node, name, label, period))

    def check(self) -> None:
        """Every precedent exists (lagged ones included) and every output names a calculation."""
        for node in self.nodes.values():
            missing = [d for d in node.deps() if d not in self.nodes]
            if missing:
                raise ValueError(f"node {node.id!r} reads undefined {missing}")
        for spec in self.outputs:
            if self.nodes[spec.node].kind != "calc":
                raise ValueError(f"output {spec.name!r} must be a calculation")

    # structure ------------------------------------------------------------------------------------------------
    def depth(self, node_id: str, _memo: dict[str, int] | None = None) -> int:
        """Calculation nodes on the longest non-lagged path from an input to this node (inputs: 0)."""
        memo = {} if _memo is None else _memo
        if node_id not in memo:
            node = self.nodes[node_id]
            if node.kind == "input":
                memo[node_id] = 0
            else:
                memo[node_id] = 1 + max((self.depth(d, memo) for d in node.deps(lagged=False) if d != node_id),
                                        default=0)
        return memo[node_id]

    def closure(self, ids: Sequence[str]) -> set[str]:
        """The nodes `ids` need, lagged precedents included."""
        seen: set[str] = set()
        stack = list(ids)
        while stack:
            nid = stack.pop()
            if nid in seen:
                continue
            seen.add(nid)
            stack.extend(d for d in self.nodes[nid].deps() if d not in seen)
        return seen

    def closure_depth(self, ids: Sequence[str]) -> int:
        memo: dict[str, int] = {}
        return max((self.depth(n, memo) for n in self.closure(ids)), default=0)

    def subgraph(self, keep: set[str], outputs: list[OutputSpec]) -> Graph:
        """A copy holding only `keep` (in library order) and the given outputs."""
        sub = Graph(self.title, self.story, list(self.periods))
        sub.nodes = {k: v for k, v in self.nodes.items() if k in keep}
        sub.outputs = list(outputs)
        return sub

    def max_depth(self) -> int:
        return max(self.closure_depth([o.node]) for o in self.outputs)

    def covered(self, node_id: str) -> range:
        """Period indices a row covers."""
        return range(self.nodes[node_id].start, len(self.periods))

    def output_period(self, spec: OutputSpec) -> int | None:
        node = self.nodes[spec.node]
        if not node.per_period:
            return None
        return len(self.periods) - 1 if spec.period is None else spec.period

    # values ---------------------------------------------------------------------------------------------------
    def evaluate(self, overrides: dict[str, float] | None = None) -> Values:
        return Values(self, overrides or {})

    def output_values(self, overrides: dict[str, float] | None = None) -> dict[str, float]:
        """Python value of every output, keyed by the output's name."""
        values = self.evaluate(overrides)
        result: dict[str, float] = {}
        for spec in self.outputs:
            period = self.output_period(spec)
            result[spec.name] = values.get(spec.node) if period is None else values.get(spec.node, period)
        return result


class Values:
    """Lazy, memoised Python values of a graph; `overrides` replace inputs by id. For a per-period input the
    override replaces its first period only: the cell `TaskInput.cell` names, as a what-if on a workbook does."""

    def __init__(self, graph: Graph, overrides: dict[str, float]):
        self.graph = graph
        self.overrides = overrides
        self._memo: dict[tuple[str, int | None], float] = {}
        unknown = set(overrides) - {k for k, n in graph.nodes.items() if n.kind == "input"}
        if unknown:
            raise KeyError(f"not inputs of this task: {sorted(unknown)}")

    @property
    def n(self) -> int:
        return len(self.graph.periods)

    def get(self, node_id: str, t: int | None = None) -> float:
        key = (node_id, t)
        if key in self._memo:
            return self._memo[key]
        node = self.graph.nodes[node_id]
        if node.per_period != (t is not None):
            raise ValueError(f"{node_id}: {'a period is needed' if node.per_period else 'a scalar has no period'}")
        if t is not None and not (node.start <= t < self.n):
            raise IndexError(f"{node_id} covers periods {node.start}..{self.n - 1}, not {t}")
        if node.kind == "input":
            value = self._input(node, t)
        elif t is None:
            assert node.py is not None
            value = node.py(self)
        elif t == node.start and node.py_first is not None:
            value = node.py_first(self, t)
        else:
            assert node.py is not None
            value = node.py(self, t)
        if isinstance(value, complex):  # a negative base to a fractional power: Excel's #NUM!
            raise ArithmeticError(f"{node_id} at {t} has no real value")
        value = float(value)
        if not math.isfinite(value):
            raise ArithmeticError(f"{node_id} at {t} is not finite")
        self._memo[key] = value
        return value

    def _input(self, node: Node, t: int | None) -> float:
        if node.series is None:
            return float(self.overrides.get(node.id, node.value))
        if node.id in self.overrides and t == node.start:
            return float(self.overrides[node.id])
        return float(node.series[t - node.start])

    def __call__(self, node_id: str, t: int | None = None) -> float:
        return self.get(node_id, t)

    def row(self, node_id: str) -> list[float]:
        return [self.get(node_id, t) for t in self.graph.covered(node_id)]

    def rest(self, node_id: str) -> list[float]:
        return self.row(node_id)[1:]

    def last(self, node_id: str) -> float:
        return self.get(node_id, self.n - 1)

    def first(self, node_id: str) -> float:
        return self.get(node_id, self.graph.nodes[node_id].start)


def select(graph: Graph, difficulty: int, pick: Callable[[Sequence[OutputSpec]], OutputSpec],
           extra: Callable[[Sequence[OutputSpec]], list[OutputSpec]]) -> Graph:
    """The sub-graph for `difficulty`: one primary output whose sub-DAG is exactly that deep, plus extra outputs
    from shallower candidates; asserts the depth of the whole selection."""
    by_depth: dict[int, list[OutputSpec]] = {}
    for spec in graph.outputs:
        by_depth.setdefault(graph.closure_depth([spec.node]), []).append(spec)
    if difficulty not in by_depth:
        raise ValueError(f"{graph.title}: no output at difficulty {difficulty}; "
                         f"this family supports {min(by_depth)}..{max(by_depth)}")
    primary = pick(by_depth[difficulty])
    shallower = [s for d, specs in sorted(by_depth.items()) if d < difficulty for s in specs]
    chosen = extra(shallower) + [primary]
    keep = graph.closure([s.node for s in chosen])
    sub = graph.subgraph(keep, chosen)
    depth = sub.closure_depth([s.node for s in chosen])
    assert depth == difficulty, f"{graph.title}: selected depth {depth} != difficulty {difficulty}"
    return sub


def irr(flows: Sequence[float]) -> float:
    """Internal rate of return by bisection on NPV (flows must change sign once, negative first)."""
    def npv(rate: float) -> float:
        return sum(cf / (1 + rate) ** i for i, cf in enumerate(flows))

    lo, hi = -0.99, 10.0
    if npv(lo) * npv(hi) > 0:
        raise ArithmeticError("no IRR in (-99%, 1000%)")
    for _ in range(300):
        mid = (lo + hi) / 2
        if npv(lo) * npv(mid) <= 0:
            hi = mid
        else:
            lo = mid
        if hi - lo < 1e-15:
            break
    return (lo + hi) / 2


def pmt(rate: float, nper: float, pv: float, fv: float = 0.0, when: int = 0) -> float:
    """Excel's PMT with its sign convention (a loan received, pv > 0, gives a negative payment)."""
    if rate == 0:
        return -(pv + fv) / nper
    growth = (1 + rate) ** nper
    return -(pv * growth + fv) * rate / ((1 + rate * when) * (growth - 1))


def npv_excel(rate: float, flows: Sequence[float]) -> float:
    """Excel's NPV: the first flow is discounted one period."""
    return sum(cf / (1 + rate) ** (i + 1) for i, cf in enumerate(flows))


def mirr(flows: Sequence[float], finance_rate: float, reinvest_rate: float) -> float:
    n = len(flows)
    fv_in = sum(cf * (1 + reinvest_rate) ** (n - 1 - i) for i, cf in enumerate(flows) if cf > 0)
    pv_out = sum(cf / (1 + finance_rate) ** i for i, cf in enumerate(flows) if cf < 0)
    return (fv_in / -pv_out) ** (1 / (n - 1)) - 1


def safe_div(num: float, den: float) -> float:
    """IFERROR(num/den, 0) in Python."""
    return num / den if den != 0 else 0.0
