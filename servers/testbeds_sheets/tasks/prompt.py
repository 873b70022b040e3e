"""The case prompt: the story, every input with its value and unit, the required outputs with the defined name to
give each, and the conventions a reviewer expects."""

from __future__ import annotations

from .graph import Graph
from .layout import UNIT_TEXT, label_with_unit
from .model import Unit


def format_value(value: float, unit: Unit) -> str:
    """How the prompt writes a value: percentages as '6.5%', other numbers with thousands separators."""
    if unit == "percent":
        return f"{value * 100:.10g}%"
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.10g}"


def render(graph: Graph, title: str) -> str:
    """The prompt text of a generated task (`graph` is the selected sub-graph)."""
    n = len(graph.periods)
    lines = [f"# {title}", "", graph.story, "",
             f"The timeline has {n} periods, {graph.periods[0]} to {graph.periods[-1]}.", "", "## Inputs", ""]
    for node in graph.nodes.values():
        if node.kind != "input":
            continue
        if node.series is not None:
            covered = graph.periods[node.start:]
            values = ", ".join(f"{p}: {format_value(x, node.unit)}" for p, x in zip(covered, node.series))
            lines.append(f"- {label_with_unit(node.label, node.unit)}, per period: {values}")
        else:
            lines.append(f"- {label_with_unit(node.label, node.unit)}: {format_value(node.value or 0.0, node.unit)}")
    lines += ["", "## Required outputs", "",
              "Put each output on the Outputs sheet, label it with its unit, and give its cell the defined name shown:",
              ""]
    for spec in graph.outputs:
        unit = graph.nodes[spec.node].unit
        lines.append(f"- {spec.label} ({UNIT_TEXT[unit]}): defined name `{spec.name}`")
    outflows = [n.label for n in graph.nodes.values() if n.sign == "out"]
    lines += ["", "## Conventions", "",
              "- Three sheets in this order: `Inputs` (every input above as a typed constant, nothing else), "
              "`Calculations` (the workings), `Outputs` (links to the results).",
              "- One timeline: each period in the same column on every sheet, under a period header row.",
              "- Formulas only for calculations: no typed results, no numbers buried in formulas; read every input "
              "from its cell, with absolute references ($B$4) to fixed cells.",
              "- One formula per row, the same across the timeline (only the first period may differ).",
              "- Trap divisions by calculated cells (IFERROR) so no formula returns an error.",
              "- Inputs in blue font, formulas in black, links to other sheets in green; units in every label; "
              "number formats by unit (currency with thousands separators and negatives in parentheses, "
              "percentages as %).",
              "- Signs: money received is positive, money paid is negative"
              + (f"; these lines are payments, so negative: {', '.join(outflows)}." if outflows else ".")]
    return "\n".join(lines) + "\n"
