"""What the pages draw, built from the wire shapes: links, the run graph, the sweep table.

Plain functions of ``VersionPublic``, ``RunPublic`` and friends, with no request or session,
so each is tested and timed without a browser.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from modreg.registry.schemas import RunPublic, StepStatus, VersionPublic

# git@host:owner/repo(.git), ssh://git@host/owner/repo(.git), https://host/owner/repo(.git)
_REMOTE = re.compile(
    r"^(?:https?://(?:[^@/]+@)?|ssh://(?:[^@/]+@)?|[^@/\s]+@)"
    r"(?P<host>[A-Za-z0-9.-]+\.[A-Za-z]{2,})(?::\d+)?[:/](?P<path>[\w.~/-]+?)(?:\.git)?/?$"
)
_STEP_OUTPUT = re.compile(r"^(?P<step>[A-Za-z0-9._-]+?)\.outputs\.[A-Za-z0-9_-]+$")


def commit_url(remote: str | None, commit: str) -> str | None:
    """The web page of ``commit`` when ``remote`` is on a web host (GitHub, GitLab, Gitea
    and the like, over https or ssh); None for a local path or an unknown shape."""
    match = _REMOTE.match(remote or "")
    if match is None:
        return None
    host, path = match["host"], match["path"]
    separator = "/-/commit/" if "gitlab" in host else "/commit/"
    return f"https://{host}/{path}{separator}{commit}"


def uses_line(version: VersionPublic) -> str:
    """The ``uses:`` line a pipeline step copies: a caret range from this version (the
    exact version for a pre-release, which a caret would not pick)."""
    exact = "-" in version.version
    return f"uses: {version.module}@{'' if exact else '^'}{version.version}"


@dataclass(frozen=True)
class GraphNode:
    id: str
    label: str
    status: str


@dataclass(frozen=True)
class RunGraph:
    """The pipeline of one run: a node per step, an edge per step output another reads."""

    nodes: list[GraphNode]
    edges: list[tuple[str, str]]

    def as_json(self) -> dict[str, Any]:
        return {
            "nodes": [vars(node) for node in self.nodes],
            "edges": [list(edge) for edge in self.edges],
        }


def _spec_steps(run: RunPublic) -> dict[str, dict[str, Any]]:
    steps = run.spec.get("steps")
    return steps if isinstance(steps, dict) else {}


def _upstream(inputs: Any, steps: Iterable[str]) -> list[str]:
    names = set(steps)
    found = []
    for value in (inputs or {}).values() if isinstance(inputs, dict) else []:
        match = _STEP_OUTPUT.match(str(value))
        if match and match["step"] in names and match["step"] not in found:
            found.append(match["step"])
    return found


def run_graph(run: RunPublic) -> RunGraph:
    """The graph of ``run`` from its spec (the pipeline as run) and its step records; a step
    without a record yet is ``pending``."""
    spec = _spec_steps(run)
    names = list(spec) + [name for name in run.steps if name not in spec]
    nodes = []
    for name in names:
        record = run.steps.get(name)
        status = record.status.value if record else StepStatus.pending.value
        label = f"{name}\n{record.module}@{record.version}" if record else name
        nodes.append(GraphNode(name, label, status))
    edges = [
        (source, name)
        for name in names
        for source in _upstream(spec.get(name, {}).get("inputs"), names)
    ]
    return RunGraph(nodes, edges)


@dataclass(frozen=True)
class SweepTable:
    """One row per run of a sweep: its variant's choices and its metrics, sorted."""

    columns: list[str]  # "run", "status", then the variant's keys, then "step.metric"s
    variant_columns: list[str]
    metric_columns: list[str]
    rows: list[dict[str, Any]]
    sort: str
    descending: bool


def _metrics(run: RunPublic) -> dict[str, Any]:
    return {
        f"{step}.{name}": value
        for step, record in run.steps.items()
        for name, value in record.metrics.items()
    }


def _sort_key(column: str) -> Callable[[dict[str, Any]], tuple[int, float, str]]:
    """Numbers by value, then text (a column may mix both; missing values are set apart)."""

    def key(row: dict[str, Any]) -> tuple[int, float, str]:
        value = row[column]
        if isinstance(value, int | float) and not isinstance(value, bool):
            return (0, float(value), "")
        return (1, 0.0, str(value))

    return key


def sweep_table(runs: list[RunPublic], sort: str | None, descending: bool) -> SweepTable:
    """The comparison of a sweep's ``runs``, sorted by ``sort`` (any column; unknown: the
    runs in the order the sweep made them)."""
    variant_columns = sorted({key for run in runs for key in run.variant})
    rows = []
    for run in runs:
        row: dict[str, Any] = {"run": run.id, "status": run.status.value, **run.variant}
        rows.append({**row, **_metrics(run)})
    metric_columns = sorted(
        {key for row in rows for key in row} - {"run", "status"} - set(variant_columns)
    )
    columns = ["run", "status", *variant_columns, *metric_columns]
    chosen = sort if sort is not None and sort in columns else ""
    if chosen:
        rows = _sorted(rows, chosen, descending)
    return SweepTable(columns, variant_columns, metric_columns, rows, chosen, descending)


def _sorted(rows: list[dict[str, Any]], column: str, descending: bool) -> list[dict[str, Any]]:
    """``rows`` by ``column``, the rows without a value in it last either way."""
    missing = [row for row in rows if row.get(column) is None]
    present = [row for row in rows if row.get(column) is not None]
    return sorted(present, key=_sort_key(column), reverse=descending) + missing


def tail(text: str, lines: int) -> tuple[str, bool]:
    """The last ``lines`` lines of ``text``, and whether anything was cut."""
    parts = text.splitlines()
    return "\n".join(parts[-lines:]), len(parts) > lines
