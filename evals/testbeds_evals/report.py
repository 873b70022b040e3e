"""Summary tables and plots over scored episodes, for any suite.

Input rows are `Store.latest_scores()` rows. Group keys and metric names are looked up by name in
a row's own columns (model, suite, seed, scorer, termination...), then in its episode settings,
then in its metrics; a dotted key (`settings.env`) names the place explicitly.

Statistics: per group and metric, the mean and its standard error (sample standard deviation over
sqrt(n), ddof=1; undefined for n < 2). Where tasks are repeated, pass^k is the probability that all
k of k independent attempts at a task pass, estimated without bias per task from c passes in n
attempts as C(c, k) / C(n, k), then averaged over the group's tasks (as in tau-bench).
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
from rich.console import Console
from rich.table import Table

MAX_AUTO_K = 8
"""The widest pass^k table chosen automatically (pass^1..pass^8)."""

_MISSING = object()


class MetricSummary(BaseModel):
    """Mean and standard error of one metric over the episodes of one group that report it."""

    n: int
    mean: float | None = None
    se: float | None = None


class GroupSummary(BaseModel):
    """One row of the summary table."""

    key: dict[str, Any]
    n: int = Field(description="Episodes in the group.")
    metrics: dict[str, MetricSummary] = Field(default_factory=dict)
    tasks: int = Field(0, description="Distinct tasks with a pass/fail outcome.")
    pass_k: dict[int, float | None] = Field(default_factory=dict)


class Summary(BaseModel):
    """A summary table: one `GroupSummary` per combination of the group-by keys."""

    title: str = "testbeds report"
    group_by: list[str]
    metrics: list[str]
    ks: list[int] = Field(default_factory=list, description="The k of pass^k columns (empty: no repeats).")
    groups: list[GroupSummary] = Field(default_factory=list)


def lookup(row: Mapping[str, Any], key: str) -> Any:
    """Find `key` in a score row: its columns, then `settings`, then `metrics`; `a.b` walks nested dicts.

    Returns None when the key is nowhere.
    """
    if "." in key and key not in row:
        value: Any = row
        for part in key.split("."):
            if not isinstance(value, Mapping) or part not in value:
                return None
            value = value[part]
        return value
    if key in row and not isinstance(row[key], Mapping):
        return row[key]
    for section in ("settings", "metrics"):
        inner = row.get(section)
        if isinstance(inner, Mapping) and key in inner:
            return inner[key]
    return None


def mean_se(values: Sequence[float]) -> MetricSummary:
    """Mean and standard error (ddof=1) of `values`; the standard error is None below two values."""
    n = len(values)
    if n == 0:
        return MetricSummary(n=0)
    mean = math.fsum(values) / n
    if n < 2:
        return MetricSummary(n=n, mean=mean)
    variance = math.fsum((v - mean) ** 2 for v in values) / (n - 1)
    return MetricSummary(n=n, mean=mean, se=math.sqrt(variance / n))


def pass_hat_k(passes: int, attempts: int, k: int) -> float:
    """Unbiased estimate of P(all k attempts pass) from `passes` of `attempts`: C(c, k) / C(n, k)."""
    if not 0 <= passes <= attempts:
        raise ValueError(f"passes must be in 0..attempts, got {passes} of {attempts}")
    if not 1 <= k <= attempts:
        raise ValueError(f"k must be in 1..{attempts} (the number of attempts), got {k}")
    return math.comb(passes, k) / math.comb(attempts, k)


def pass_k(outcomes: Mapping[Any, Sequence[bool]], k: int) -> float | None:
    """pass^k averaged over tasks; None unless every task has at least k attempts."""
    if not outcomes or any(len(attempts) < k for attempts in outcomes.values()):
        return None
    return math.fsum(pass_hat_k(sum(map(bool, a)), len(a), k) for a in outcomes.values()) / len(outcomes)


def summarize(
    rows: Iterable[Mapping[str, Any]],
    metrics: Sequence[str] | None = None,
    group_by: Sequence[str] = (),
    *,
    title: str = "testbeds report",
    pass_metric: str = "passed",
    task_key: str | Sequence[str] = "task",
    ks: Sequence[int] | None = None,
) -> Summary:
    """Group score rows and summarise each metric as mean ± standard error, plus pass^k on repeats.

    `metrics` defaults to every numeric metric found. When the rows come from several scorers and
    `group_by` does not mention `scorer`, groups are split by scorer too, so scorers never mix.
    pass^k needs rows that have `task_key` (one key or several) and a 0/1 `pass_metric`; `ks`
    defaults to 1..K where K is the most attempts every task of some group has (at least 2, at
    most `MAX_AUTO_K`).
    """
    rows = list(rows)
    group_by = list(group_by)
    if len({row.get("scorer") for row in rows}) > 1 and "scorer" not in group_by:
        group_by.insert(0, "scorer")
    metric_names = list(metrics) if metrics else _numeric_metrics(rows)
    task_keys = [task_key] if isinstance(task_key, str) else list(task_key)

    grouped: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
    for row in rows:
        grouped.setdefault(tuple(_hashable(lookup(row, k)) for k in group_by), []).append(row)

    groups: list[GroupSummary] = []
    outcomes_by_group: list[dict[Any, list[bool]]] = []
    for key in sorted(grouped, key=_sort_key):
        members = grouped[key]
        summary = GroupSummary(key=dict(zip(group_by, key)), n=len(members))
        for name in metric_names:
            values = [_number(lookup(r, name)) for r in members]
            summary.metrics[name] = mean_se([v for v in values if v is not None])
        outcomes: dict[Any, list[bool]] = {}
        for row in members:
            task = tuple(_hashable(lookup(row, k)) for k in task_keys)
            outcome = _outcome(lookup(row, pass_metric))
            if outcome is not None and all(part is not None for part in task):
                outcomes.setdefault(task, []).append(outcome)
        summary.tasks = len(outcomes)
        groups.append(summary)
        outcomes_by_group.append(outcomes)

    if ks is None:
        most = max((min(map(len, o.values())) for o in outcomes_by_group if o), default=0)
        ks = list(range(1, min(most, MAX_AUTO_K) + 1)) if most >= 2 else []
    for summary, outcomes in zip(groups, outcomes_by_group):
        summary.pass_k = {k: pass_k(outcomes, k) for k in ks}
    return Summary(title=title, group_by=group_by, metrics=metric_names, ks=list(ks), groups=groups)


def _hashable(value: Any) -> Any:
    """Nested values (a dict or list under a key) group by their JSON text."""
    if isinstance(value, (Mapping, list)):
        return json.dumps(value, sort_keys=True, default=str)
    return value


def _numeric_metrics(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    names: set[str] = set()
    for row in rows:
        for name, value in (row.get("metrics") or {}).items():
            if _number(value) is not None:
                names.add(name)
    return sorted(names)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


def _outcome(value: Any) -> bool | None:
    number = _number(value)
    return bool(number) if number in (0.0, 1.0) else None


def _sort_key(key: tuple[Any, ...]) -> tuple[tuple[int, Any], ...]:
    def part(value: Any) -> tuple[int, Any]:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return (0, value)
        return (2, "") if value is None else (1, str(value))

    return tuple(part(v) for v in key)


# -- rendering -----------------------------------------------------------------------------------


def fmt_number(value: float | None) -> str:
    """Three decimals, or three significant digits for very large or very small magnitudes."""
    if value is None:
        return "—"
    if value != 0 and (abs(value) >= 1000 or abs(value) < 0.001):
        return f"{value:.3g}"
    return f"{value:.3f}"


def fmt_metric(metric: MetricSummary, group_n: int | None = None) -> str:
    """`mean ± se`, with `(n=...)` when fewer episodes than the group's report the metric."""
    if metric.n == 0:
        return "—"
    text = fmt_number(metric.mean)
    if metric.se is not None:
        text += f" ± {fmt_number(metric.se)}"
    return text if group_n is None or metric.n == group_n else f"{text} (n={metric.n})"


def table_cells(summary: Summary) -> tuple[list[str], list[list[str]]]:
    """The summary table as a header and rows of display strings."""
    header = [*summary.group_by, "n", *summary.metrics, *(f"pass^{k}" for k in summary.ks)]
    body = [
        [
            *("—" if g.key[k] is None else str(g.key[k]) for k in summary.group_by),
            str(g.n),
            *(fmt_metric(g.metrics[m], g.n) for m in summary.metrics),
            *(fmt_number(g.pass_k.get(k)) for k in summary.ks),
        ]
        for g in summary.groups
    ]
    return header, body


def _notes(summary: Summary) -> list[str]:
    notes = ["Cells are mean ± standard error over episodes (n < 2: mean only)."]
    if summary.ks:
        notes.append(
            "pass^k: probability that all k attempts at a task pass, estimated per task as C(c,k)/C(n,k) "
            "from c passes in n attempts, averaged over tasks; — where a task has fewer than k attempts."
        )
    return notes


def to_markdown(summary: Summary, images: Sequence[str | Path] = ()) -> str:
    """The summary as a Markdown document: title, table, notes and image links."""
    lines = [f"# {summary.title}", ""]
    if not summary.groups:
        return "\n".join([*lines, "No scored episodes.", ""])
    header, body = table_cells(summary)

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    lines += [line(header), "|" + "|".join("---" for _ in header) + "|", *(line(r) for r in body), ""]
    lines += [*_notes(summary), ""]
    for image in images:
        lines += [f"![{Path(image).stem}]({Path(image).name})", ""]
    return "\n".join(lines)


def to_html(summary: Summary, images: Sequence[str | Path] = ()) -> str:
    """The summary as a self-contained HTML page (images referenced by file name)."""
    esc = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(summary.title)}</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:2em}table{border-collapse:collapse}"
        "th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#f3f3f3}"
        "img{max-width:100%;margin-top:1em}</style>",
        "</head><body>",
        f"<h1>{esc(summary.title)}</h1>",
    ]
    if not summary.groups:
        parts.append("<p>No scored episodes.</p>")
    else:
        header, body = table_cells(summary)
        head = "".join(f"<th>{esc(h)}</th>" for h in header)
        parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>")
        parts += ["<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in body]
        parts.append("</tbody></table>")
        parts += [f"<p>{esc(note)}</p>" for note in _notes(summary)]
        parts += [f'<div><img src="{esc(Path(i).name)}" alt="{esc(Path(i).stem)}"></div>' for i in images]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def print_summary(summary: Summary, console: Console | None = None) -> None:
    """Print the summary table with rich (plain text when the console is not a terminal)."""
    console = console or Console()
    table = Table(title=summary.title)
    header, body = table_cells(summary)
    for i, name in enumerate(header):
        table.add_column(name, justify="left" if i < len(summary.group_by) else "right")
    for row in body:
        table.add_row(*row)
    console.print(table)
    for note in _notes(summary) if summary.groups else ["No scored episodes."]:
        console.print(note, style="dim", highlight=False)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "metric"


def _label(group: GroupSummary) -> str:
    return " / ".join("—" if v is None else str(v) for v in group.key.values()) or "all"


def plot_summary(summary: Summary, out_dir: str | Path) -> list[Path]:
    """Write one bar plot (mean with standard-error bars) per metric, and a pass^k plot; return paths."""
    from matplotlib.figure import Figure  # imported here: matplotlib is slow to import

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    if not summary.groups:
        return paths
    labels = [_label(g) for g in summary.groups]
    width = max(4.0, 0.6 * len(labels) + 2.0)
    for name in summary.metrics:
        stats = [g.metrics[name] for g in summary.groups]
        fig = Figure(figsize=(width, 3.6), layout="constrained")
        ax = fig.subplots()
        ax.bar(
            range(len(labels)),
            [s.mean if s.mean is not None else 0.0 for s in stats],
            yerr=[s.se if s.se is not None else math.nan for s in stats],  # nan: no bar where n < 2
            capsize=4,
            color="#4C72B0",
        )
        crowded = len(labels) > 3
        ax.set_xticks(
            range(len(labels)), labels, rotation=30 if crowded else 0, ha="right" if crowded else "center"
        )
        ax.set_xlabel(" / ".join(summary.group_by))
        ax.set_ylabel(name)
        ax.set_title(f"{name} (mean ± SE)")
        path = out / f"metric-{_slug(name)}.png"
        fig.savefig(path, dpi=100)
        paths.append(path)
    if summary.ks:
        fig = Figure(figsize=(5.0, 3.6), layout="constrained")
        ax = fig.subplots()
        for label, group in zip(labels, summary.groups):
            points = [(k, v) for k, v in group.pass_k.items() if v is not None]
            if points:
                ax.plot([k for k, _ in points], [v for _, v in points], marker="o", label=label)
        ax.set_xlabel("k")
        ax.set_ylabel("pass^k")
        ax.set_xticks(summary.ks)
        ax.set_ylim(0, 1.05)
        ax.set_title("pass^k")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small")
        path = out / "pass_k.png"
        fig.savefig(path, dpi=100)
        paths.append(path)
    return paths


def write_report(
    rows: Iterable[Mapping[str, Any]],
    out_dir: str | Path,
    metrics: Sequence[str] | None = None,
    group_by: Sequence[str] = (),
    title: str = "testbeds report",
    **options: Any,
) -> Path:
    """Summarise `rows` and write `report.md`, `report.html` and PNG plots into `out_dir`.

    `options` go to `summarize` (pass_metric, task_key, ks). Returns the path of `report.md`.
    """
    return write_summary(summarize(rows, metrics, group_by, title=title, **options), out_dir)


def write_summary(summary: Summary, out_dir: str | Path) -> Path:
    """Write `report.md`, `report.html` and PNG plots of `summary` into `out_dir`; return `report.md`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    images = plot_summary(summary, out)
    (out / "report.html").write_text(to_html(summary, images), encoding="utf-8")
    markdown = out / "report.md"
    markdown.write_text(to_markdown(summary, images), encoding="utf-8")
    return markdown
