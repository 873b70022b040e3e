"""Generate sheets tasks: pick a family's inputs by seed, select the sub-graph of the asked depth, and derive the
prompt, the reference plan and the Python reference values from it."""

from __future__ import annotations

import functools
import random
from types import ModuleType

from openpyxl import Workbook

from ..ops import WorkbookPlan
from . import layout, prompt
from .families import REGISTRY
from .graph import Graph, OutputSpec, select
from .model import Perturbation, Task, TaskInput, TaskOutput

FAMILIES: tuple[str, ...] = tuple(REGISTRY)
MAX_DIFFICULTY = 12
FORBIDDEN_VALUES = (0.0, 1.0, 2.0, 12.0, 100.0, 365.0, 1000.0)
_ATTEMPTS = 200


def _family(name: str) -> ModuleType:
    if name not in REGISTRY:
        raise ValueError(f"unknown family {name!r}; families: {', '.join(FAMILIES)}")
    return REGISTRY[name]


def _keys(value: float, unit: str) -> set[float]:
    """Values under which a grader may look an input up: 5% is found as 0.05 or as 5."""
    keys = {round(value, 9)}
    if unit == "percent":
        keys.add(round(value * 100, 9))
    return keys


def _constants_ok(graph: Graph) -> bool:
    """Inputs are pairwise distinct (under every lookup key) and unlike the constants allowed in formulas."""
    seen: set[float] = set()
    for node in graph.nodes.values():
        if node.kind != "input":
            continue
        for value in node.series or (node.value,):
            keys = _keys(float(value), node.unit)
            if node.unit != "selector" and keys & set(FORBIDDEN_VALUES):
                return False
            if keys & seen:
                return False
            seen |= keys
    return True


@functools.lru_cache(maxsize=128)
def full_graph(family: str, seed: int) -> Graph:
    """The family's whole node library with the seed's inputs (the same for every difficulty). Cached: callers
    must not change it (`select` and `Graph.subgraph` copy what they keep)."""
    module = _family(family)
    for attempt in range(_ATTEMPTS):
        graph: Graph = module.build(random.Random(f"{family}:{seed}:{attempt}"))
        graph.check()
        if not _constants_ok(graph):
            continue
        try:
            values = graph.evaluate()
            graph.output_values()
            if module.valid(values):
                return graph
        except (ArithmeticError, ZeroDivisionError):
            continue
    raise RuntimeError(f"{family}: no valid inputs for seed {seed} in {_ATTEMPTS} attempts")


def selected_graph(family: str, seed: int, difficulty: int) -> Graph:
    """The sub-graph of `difficulty` calculation nodes on its longest input-to-output path (asserted)."""
    if not 1 <= difficulty <= MAX_DIFFICULTY:
        raise ValueError(f"difficulty must be 1..{MAX_DIFFICULTY}, not {difficulty}")
    graph = full_graph(family, seed)
    rng = random.Random(f"{family}:{seed}:{difficulty}:outputs")

    def pick(specs: list[OutputSpec]) -> OutputSpec:
        return specs[rng.randrange(len(specs))]

    def extra(specs: list[OutputSpec]) -> list[OutputSpec]:
        count = min(len(specs), rng.choice([1, 2]))
        chosen = rng.sample(range(len(specs)), count)
        return [specs[i] for i in sorted(chosen)]

    return select(graph, difficulty, pick, extra)


def _task_inputs(graph: Graph, place: layout.Placement) -> list[TaskInput]:
    out = []
    for node in graph.nodes.values():
        if node.kind != "input":
            continue
        t = node.start if node.per_period else None
        out.append(TaskInput(id=node.id, label=node.label, value=float(node.value or 0.0), unit=node.unit,
                             cell=place.cell(node.id, t),
                             series=[float(x) for x in node.series] if node.series is not None else None))
    return out


def _perturbations(family: str, seed: int, difficulty: int, graph: Graph) -> list[Perturbation]:
    """2-3 one-input what-ifs that keep the inputs valid and move at least one output."""
    module = _family(family)
    library = full_graph(family, seed)  # validity is judged on the whole model, whatever the selection shows
    rng = random.Random(f"{family}:{seed}:{difficulty}:perturb")
    base = graph.output_values()
    scalars = [n for n in graph.nodes.values() if n.kind == "input" and not n.per_period and not n.structural]
    drivers = [n for n in scalars if n.driver or n.unit == "selector"]
    others = [n for n in scalars if n not in drivers]
    rng.shuffle(drivers)
    rng.shuffle(others)
    taken: set[float] = set()
    for node in graph.nodes.values():
        if node.kind == "input":
            for value in node.series or (node.value,):
                taken |= _keys(float(value), node.unit)
    wanted = rng.choice([2, 3])
    result: list[Perturbation] = []
    for node in drivers + others:
        if len(result) == wanted:
            break
        assert node.value is not None
        if node.unit == "selector":
            candidates = [float(s) for s in (1, 2, 3) if s != node.value]
            rng.shuffle(candidates)
        else:
            factors = [1.1, 0.9] if rng.random() < 0.5 else [0.9, 1.1]
            candidates = [float(f"{node.value * f:.6g}") for f in factors]
            if node.unit in ("count", "years", "days"):
                candidates = [float(round(c)) for c in candidates]
        for value in candidates:
            if node.unit != "selector" and (_keys(value, node.unit) & (taken | set(FORBIDDEN_VALUES))):
                continue
            try:
                overrides = {node.id: value}
                if not module.valid(library.evaluate(overrides)):
                    continue
                moved = graph.output_values(overrides)
            except (ArithmeticError, ZeroDivisionError):
                continue
            if any(abs(moved[k] - base[k]) > 1e-9 * max(1.0, abs(base[k])) for k in base):
                result.append(Perturbation(input_id=node.id, value=value))
                break
    return result


def generate_task(family: str, seed: int, difficulty: int) -> Task:
    """A task of `family` with `difficulty` chained calculation steps; deterministic per (family, seed, difficulty)."""
    module = _family(family)
    graph = selected_graph(family, seed, difficulty)
    place = layout.Placement(graph)
    values = graph.output_values()
    title = f"{module.TITLE} (difficulty {difficulty})"
    outputs = []
    for spec in graph.outputs:
        node = graph.nodes[spec.node]
        cell = f"{layout.OUTPUTS}!B{layout.FIRST_ROW + graph.outputs.index(spec)}"
        outputs.append(TaskOutput(id=spec.name.lower(), label=spec.label, name=spec.name, unit=node.unit, cell=cell,
                                  value=values[spec.name]))
    return Task(
        id=f"{family}-d{difficulty}-s{seed}", family=family, seed=seed, difficulty=difficulty, title=title,
        prompt=prompt.render(graph, title), inputs=_task_inputs(graph, place), outputs=outputs,
        periods=len(graph.periods),
        outflow_labels=[layout.label_with_unit(n.label, n.unit) for n in graph.nodes.values() if n.sign == "out"],
        perturbations=_perturbations(family, seed, difficulty, graph))


def _graph_of(task: Task) -> Graph:
    if task.source != "generated":
        raise ValueError(f"task {task.id} was loaded from a folder: its reference is the solution workbook")
    return selected_graph(task.family, task.seed, task.difficulty)


def reference_plan(task: Task) -> WorkbookPlan:
    """The operations that build the task's reference workbook (regenerated from family, seed and difficulty)."""
    return layout.plan(_graph_of(task), task.title)


def reference_workbook(task: Task) -> Workbook:
    """The reference workbook: formulas, Inputs / Calculations / Outputs, professional formatting."""
    from ..apply import build  # apply pulls in the formula checker; the rest of the generator does not need it

    return build(reference_plan(task))


def reference_outputs(task: Task, overrides: dict[str, float] | None = None) -> dict[str, float]:
    """Python values of the task's outputs by output id, with inputs replaced by `overrides` (by input id)."""
    graph = _graph_of(task)
    values = graph.output_values(overrides)
    return {spec.name.lower(): values[spec.name] for spec in graph.outputs}
