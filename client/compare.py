"""``modreg runs compare``: one row per run — its variant's choices and its steps' metrics.

A row's *choices* are what tells the runs apart: every axis of its variant (a ``.uses`` axis
shown as the exact ``module@version`` the step ran), plus any step version or param (from
the run's spec) whose value is not the same in all the runs compared. Its *metrics* are
those its steps wrote, as ``<step>.<metric>``. Runs with different sets of metrics still
compare: a missing value is an empty cell, sorted last. The runs come from ``run_records``:
the registry's, or this machine's for runs the registry does not hold (``local``, shown
in a column of its own when any is).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modreg.client.errors import CompareError
from modreg.client.output import variant_label
from modreg.client.run_records import is_local, is_sweep_id

if TYPE_CHECKING:
    from modreg.client.run_records import RunRecord, RunRecords


@dataclass
class Row:
    """One run of the comparison."""

    run: str
    status: str
    variant: dict[str, Any]
    metrics: dict[str, Any]
    local: bool = False

    def label(self) -> str:
        """How the run reads on a chart axis: its choices (``prep=…, lr=0.1``), else its id."""
        return variant_label(self.variant) or self.run


@dataclass
class Comparison:
    """The rows, and the choice and metric columns they fill."""

    choices: list[str]
    metrics: list[str]
    rows: list[Row] = field(default_factory=list)

    def to_json(self) -> list[dict[str, Any]]:
        """The DESIGN.md shape: ``[{"run", "variant", "metrics"}, …]`` (plus ``status``
        and ``local``)."""
        return [
            {
                "run": r.run,
                "status": r.status,
                "variant": r.variant,
                "metrics": r.metrics,
                "local": r.local,
            }
            for r in self.rows
        ]

    def _any_local(self) -> bool:
        return any(row.local for row in self.rows)

    def columns(self) -> list[str]:
        local = ["local"] if self._any_local() else []
        return ["run", "status", *local, *self.choices, *self.metrics]

    def values(self) -> list[list[Any]]:
        """Each row's values in column order; None where a run has no value."""
        any_local = self._any_local()
        return [
            [row.run, row.status, *([row.local] if any_local else [])]
            + [row.variant.get(c) for c in self.choices]
            + [row.metrics.get(m) for m in self.metrics]
            for row in self.rows
        ]

    def metric_column(self, name: str) -> str:
        """``train.accuracy``, also from a bare ``accuracy`` when only one step has it."""
        if name in self.metrics:
            return name
        matches = [column for column in self.metrics if column.split(".", 1)[1] == name]
        if len(matches) == 1:
            return matches[0]
        if matches:
            listed = ", ".join(matches)
            raise CompareError(f"metric {name!r} is ambiguous ({listed}); name the step")
        known = ", ".join(self.metrics) or "none"
        raise CompareError(f"no metric {name!r} in these runs (metrics: {known})")

    def sorted_by(self, metric: str, descending: bool = True) -> Comparison:
        """The rows ordered by ``metric``: numbers, then other values, then missing ones."""
        column = self.metric_column(metric)
        numbers = [r for r in self.rows if _is_number(r.metrics.get(column))]
        others = [r for r in self.rows if r not in numbers and r.metrics.get(column) is not None]
        missing = [r for r in self.rows if column not in r.metrics or r.metrics[column] is None]
        numbers.sort(key=lambda r: float(r.metrics[column]), reverse=descending)
        others.sort(key=lambda r: str(r.metrics[column]), reverse=descending)
        return Comparison(self.choices, self.metrics, numbers + others + missing)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


# --- building ---------------------------------------------------------------------------


def load_runs(records: RunRecords, ids: Iterable[str]) -> list[RunRecord]:
    """The runs named: a sweep id (``s-…``, ``local-s-…``) stands for its runs, in the
    order they ran."""
    runs: dict[str, RunRecord] = {}
    for ident in ids:
        found = records.sweep(ident) if is_sweep_id(ident) else [records.get(ident)]
        for run in found:
            runs.setdefault(run.id, run)
    return list(runs.values())


def _choices(run: RunRecord) -> dict[str, Any]:
    """The run's variant, with each ``.uses`` axis as the exact version the step ran."""
    found = {}
    for axis, value in run.variant.items():
        step, _, kind = axis.partition(".")
        record = run.steps.get(step)
        found[axis] = f"{record.module}@{record.version}" if kind == "uses" and record else value
    return found


def _facts(run: RunRecord) -> dict[str, Any]:
    """Everything about a run that could tell it apart: versions, params, variant."""
    facts: dict[str, Any] = {
        f"{name}.uses": f"{record.module}@{record.version}" for name, record in run.steps.items()
    }
    for name, body in (run.spec.get("steps") or {}).items():
        for key, value in ((body or {}).get("params") or {}).items():
            facts[f"{name}.params.{key}"] = value
    facts.update(_choices(run))
    return facts


def _differing(facts: Sequence[dict[str, Any]]) -> list[str]:
    keys = list(dict.fromkeys(key for row in facts for key in row))
    return [
        key
        for key in keys
        if len({json.dumps(row[key], sort_keys=True, default=str) for row in facts if key in row})
        > 1
    ]


def build(runs: Sequence[RunRecord]) -> Comparison:
    """One row per run; see the module docstring for what the columns are."""
    if not runs:
        raise CompareError("no runs to compare")
    facts = [_facts(run) for run in runs]
    axes = list(dict.fromkeys(axis for run in runs for axis in run.variant))
    choices = axes + [key for key in _differing(facts) if key not in axes]
    rows = []
    for run, known in zip(runs, facts, strict=True):
        metrics = {
            f"{name}.{key}": value
            for name, record in run.steps.items()
            for key, value in record.metrics.items()
        }
        variant = {c: known[c] for c in choices if c in known}
        rows.append(Row(run.id, str(run.status), variant, metrics, is_local(run)))
    columns = list(dict.fromkeys(column for row in rows for column in row.metrics))
    return Comparison(choices, columns, rows)


# --- rendering --------------------------------------------------------------------------


def text_cell(value: Any) -> str:
    """A value as a table shows it: floats to 4 significant digits, missing as empty."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return _exact(value)


def _exact(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool | dict | list):
        return json.dumps(value, sort_keys=True)
    return str(value)


def exact_rows(comparison: Comparison) -> list[list[str]]:
    """The rows as CSV holds them: exact values, empty where a run has no value."""
    return [[_exact(value) for value in values] for values in comparison.values()]


def table_rows(comparison: Comparison) -> list[list[str]]:
    """The rows as a table shows them (see ``text_cell``)."""
    return [[text_cell(value) for value in values] for values in comparison.values()]


def plot(comparison: Comparison, metric: str, path: Path) -> int:
    """A chart of ``metric`` across the runs, saved to ``path``; the runs drawn."""
    figure, drawn = chart(comparison, metric)
    figure.savefig(path, dpi=100)
    return drawn


def chart(comparison: Comparison, metric: str) -> tuple[Any, int]:
    """A dot per run (with its value), on an axis that spans the values, not from 0: runs
    that differ by a little are what a sweep compares. Each run reads by its variant."""
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise CompareError("--plot needs matplotlib: pip install 'modreg[plot]'") from exc
    column = comparison.metric_column(metric)
    rows = [row for row in comparison.rows if _is_number(row.metrics.get(column))]
    if not rows:
        raise CompareError(f"no run has a numeric value of {column!r} to plot")
    values = [float(row.metrics[column]) for row in rows]
    figure = Figure(figsize=(max(6.0, 0.5 * len(rows) + 2), 4.5), layout="constrained")
    axes = figure.subplots()
    axes.plot(range(len(rows)), values, "o", color="tab:blue")
    for index, value in enumerate(values):
        axes.annotate(
            f"{value:.4g}", (index, value), textcoords="offset points", xytext=(0, 6), ha="center"
        )
    axes.set_xticks(range(len(rows)), [row.label() for row in rows], rotation=60, ha="right")
    axes.set_xlim(-0.5, len(rows) - 0.5)
    axes.set_ylim(*value_limits(values))
    axes.grid(axis="y", alpha=0.3)
    axes.set_ylabel(column)
    axes.set_title(f"{column} across {len(rows)} runs")
    return figure, len(rows)


def value_limits(values: Sequence[float]) -> tuple[float, float]:
    """The value axis: the values' span with a margin of a tenth of it each side (of a
    tenth of the value itself, or 1, when every run has the same value)."""
    low, high = min(values), max(values)
    margin = (high - low) / 10 or abs(high) / 10 or 1.0
    return low - margin, high + margin
