"""``runs compare`` table building and ``--set`` / ``--vary`` parsing, on known data.

The end-to-end compare tests (a real sweep on a real registry, through the CLI) are in
tests/engine/test_sweep_e2e.py; these pin the rules on run records built here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import pytest

from modreg.client.cli.assignments import parse_sets, parse_vary
from modreg.client.compare import build, exact_rows, plot, table_rows
from modreg.client.errors import CompareError
from modreg.registry.schemas import RunPublic, RunStatus, StepRunRecord, StepStatus


def step(version: str, module: str = "vision/train", **metrics: Any) -> StepRunRecord:
    return StepRunRecord(
        status=StepStatus.executed, module=module, version=version, metrics=metrics
    )


def run(
    run_id: str,
    variant: dict[str, Any],
    steps: dict[str, StepRunRecord],
    spec: dict[str, Any] | None = None,
) -> RunPublic:
    return RunPublic(
        id=run_id,
        team="vision",
        pipeline="digits",
        variant=variant,
        status=RunStatus.succeeded,
        created_at=datetime(2025, 1, 1, tzinfo=UTC),
        steps=steps,
        spec=spec or {},
    )


SWEEP = [
    run(
        "r-1",
        {"prep.uses": "vision/prep@^1.2", "train.params.lr": 0.1},
        {"prep": step("1.2.3", "vision/prep"), "train": step("2.0.0", accuracy=0.9, seconds=3)},
    ),
    run(
        "r-2",
        {"prep.uses": "vision/prep-robust@0.3.1", "train.params.lr": 0.1},
        {"prep": step("0.3.1", "vision/prep-robust", rows=10), "train": step("2.0.0")},
    ),
    run(
        "r-3",
        {"prep.uses": "vision/prep@^1.2", "train.params.lr": 0.01},
        {"prep": step("1.2.3", "vision/prep"), "train": step("2.0.0", accuracy=0.95, seconds=9)},
    ),
]


def test_choices_show_exact_versions_and_missing_metrics_are_omitted() -> None:
    comparison = build(SWEEP)
    assert comparison.choices == ["prep.uses", "train.params.lr"]
    assert comparison.metrics == ["train.accuracy", "train.seconds", "prep.rows"]
    assert comparison.to_json()[1] == {
        "run": "r-2",
        "status": "succeeded",
        "variant": {"prep.uses": "vision/prep-robust@0.3.1", "train.params.lr": 0.1},
        "metrics": {"prep.rows": 10},
        "local": False,
    }
    assert comparison.to_json()[0]["variant"]["prep.uses"] == "vision/prep@1.2.3"


def test_runs_outside_a_sweep_are_told_apart_by_versions_and_params() -> None:
    spec = {"steps": {"train": {"params": {"lr": 0.1, "epochs": 5}}}}
    other = {"steps": {"train": {"params": {"lr": 0.1, "epochs": 9}}}}
    runs = [
        run("r-a", {}, {"train": step("2.0.0", accuracy=0.5)}, spec),
        run("r-b", {}, {"train": step("2.1.0", accuracy=0.6)}, other),
    ]
    comparison = build(runs)
    assert comparison.choices == ["train.uses", "train.params.epochs"]
    assert [row.variant for row in comparison.rows] == [
        {"train.uses": "vision/train@2.0.0", "train.params.epochs": 5},
        {"train.uses": "vision/train@2.1.0", "train.params.epochs": 9},
    ]


@pytest.mark.parametrize(
    ("metric", "descending", "order"),
    [
        ("accuracy", True, ["r-3", "r-1", "r-2"]),
        ("train.accuracy", False, ["r-1", "r-3", "r-2"]),
        ("seconds", False, ["r-1", "r-3", "r-2"]),
        ("rows", True, ["r-2", "r-1", "r-3"]),  # the runs without it keep their order, last
    ],
)
def test_sorting_puts_missing_values_last(metric: str, descending: bool, order: list[str]) -> None:
    rows = build(SWEEP).sorted_by(metric, descending).rows
    assert [row.run for row in rows] == order


@pytest.mark.parametrize(
    ("metric", "message"),
    [
        (
            "loss",
            "no metric 'loss' in these runs "
            "(metrics: train.accuracy, train.seconds, prep.rows, prep.score, train.score)",
        ),
        ("score", "metric 'score' is ambiguous (prep.score, train.score); name the step"),
    ],
)
def test_unknown_and_ambiguous_metrics_are_clear_errors(metric: str, message: str) -> None:
    runs = SWEEP + [
        run("r-4", {}, {"prep": step("1.0.0", score=1), "train": step("1.0.0", score=2)})
    ]
    with pytest.raises(CompareError) as caught:
        build(runs).sorted_by(metric)
    assert str(caught.value) == message


def test_rows_as_csv_are_exact_and_as_a_table_are_short() -> None:
    runs = [
        run("r-1", {"train.params.layers": [64, 32]}, {"train": step("1.0.0", acc=2 / 3, ok=True)})
    ]
    comparison = build(runs)
    assert exact_rows(comparison) == [
        ["r-1", "succeeded", "[64, 32]", "0.6666666666666666", "true"]
    ]
    assert table_rows(comparison) == [["r-1", "succeeded", "[64, 32]", "0.6667", "true"]]


def test_plot_writes_a_png_of_the_runs_with_the_metric(tmp_path: Path) -> None:
    chart = tmp_path / "chart.png"
    assert plot(build(SWEEP), "accuracy", chart) == 2
    assert chart.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    with pytest.raises(CompareError, match="no run has a numeric value of 'prep.rows'"):
        plot(build([run("r-9", {}, {"prep": step("1.0.0", rows="many")})]), "rows", chart)


# --- --set and --vary ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        (("train.params.lr=0.1,0.01,1e-3",), {"train.params.lr": [0.1, 0.01, 0.001]}),
        (("a.params.flag=true,false",), {"a.params.flag": [True, False]}),
        (("a.params.tag=fast, slow",), {"a.params.tag": ["fast", "slow"]}),
        (('a.params.tag="1",2',), {"a.params.tag": ["1", 2]}),
        (("a.params.layers=[64,32],[8]",), {"a.params.layers": [[64, 32], [8]]}),
        (
            ("prep.uses=vision/prep@^1.2,vision/prep-robust@0.3.1",),
            {"prep.uses": ["vision/prep@^1.2", "vision/prep-robust@0.3.1"]},
        ),
        (
            ("prep.uses=vision/prep@>=1.2, <2,vision/prep@2.0.0",),
            {"prep.uses": ["vision/prep@>=1.2, <2", "vision/prep@2.0.0"]},
        ),
    ],
)
def test_vary_values_are_yaml_scalars(items: tuple[str, ...], expected: dict) -> None:
    assert parse_vary(items) == expected


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (
            ("train.params.lr",),
            "expected STEP.uses=A,B or STEP.params.NAME=V1,V2, got 'train.params.lr'",
        ),
        (("a.params.k=1", "a.params.k=2"), "axis 'a.params.k' given twice"),
    ],
)
def test_malformed_vary_is_a_usage_error(items: tuple[str, ...], message: str) -> None:
    with pytest.raises(click.BadParameter) as caught:
        parse_vary(items)
    assert caught.value.message == message


def test_set_values_are_yaml_scalars() -> None:
    assert parse_sets(("a.params.k=2", "a.params.lr=1e-3", "a.params.s=")) == {
        "a.params.k": 2,
        "a.params.lr": 0.001,
        "a.params.s": "",
    }
