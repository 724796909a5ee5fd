"""What a person reads of tables, progress and charts: the exact text, on known data.

The end-to-end output of real runs (lines as steps happen, ``runs show``) is pinned in
tests/engine/test_run_output_e2e.py; these pin the rules on values built here.
"""

from __future__ import annotations

import io
import re
import sys
from typing import Any

import pytest
from rich.console import Console
from test_compare import SWEEP

from modreg.client.compare import build, chart, value_limits
from modreg.client.output import print_fields, print_table, variant_label
from modreg.client.progress import LineProgress, LiveProgress
from modreg.engine import StepEvent
from modreg.registry.schemas import StepStatus

RUN_ID = "r-54c00a7a856d"
DIGEST = "7a856db" + "0" * 57


def test_a_piped_table_never_folds_an_id_a_digest_or_a_status(
    capsys: pytest.CaptureFixture[str],
) -> None:
    print_table(
        ["run", "status", "fingerprint", "note"],
        [(RUN_ID, "succeeded", DIGEST, "a note " * 12)],
        title="runs",
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "runs"
    row = next(line for line in lines if RUN_ID in line)
    assert re.fullmatch(rf"│ {RUN_ID} │ succeeded │ {DIGEST} │ (a note ){{11}}a note +│", row)
    assert all(line == line.rstrip() for line in lines), "no trailing blanks"


def test_a_narrow_terminal_wraps_texts_at_spaces_but_splits_no_word(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    monkeypatch.setenv("COLUMNS", "40")
    print_table(["run", "status", "note"], [(RUN_ID, "succeeded", "one two three four five")])
    lines = re.sub(r"\x1b\[[0-9;]*m", "", capsys.readouterr().out).splitlines()  # no styles
    assert max(len(line) for line in lines) <= 40
    assert f"│ {RUN_ID} │ succeeded │ one two │" in lines
    assert "│                │           │ three   │" in lines


def test_a_piped_field_list_keeps_a_digest_whole(capsys: pytest.CaptureFixture[str]) -> None:
    print_fields([("sha256", DIGEST), ("module", "vision/prep")])
    assert capsys.readouterr().out.splitlines() == [
        f" sha256  {DIGEST}",
        " module  vision/prep",
    ]


@pytest.mark.parametrize(
    ("variant", "label"),
    [
        (
            {"prep.uses": "vision/prep@^1.2", "train.params.lr": 0.1},
            "prep=vision/prep@^1.2, lr=0.1",
        ),
        ({"a.params.lr": 1, "b.params.lr": 2}, "a.params.lr=1, b.params.lr=2"),
        ({"lr.uses": "v/lr@1", "train.params.lr": 0.1}, "lr.uses=v/lr@1, train.params.lr=0.1"),
        ({"train.params.layers": [64, 32]}, "layers=[64, 32]"),
        ({}, ""),
    ],
)
def test_a_variant_reads_by_its_steps_and_params_when_unambiguous(
    variant: dict[str, Any], label: str
) -> None:
    assert variant_label(variant) == label


LR = {"train.params.lr": 0.1}


@pytest.mark.parametrize(
    ("event", "line"),
    [
        (StepEvent(step="prep", status=StepStatus.running), "prep: started"),
        (
            StepEvent(step="train", variant=LR, status=StepStatus.running, detail="retry 1/2"),
            "train (lr=0.1): started (retry 1/2)",
        ),
        (
            StepEvent(step="prep", status=StepStatus.executed, seconds=3.25),
            "prep: executed in 3.2s",
        ),
        (
            StepEvent(step="prep", status=StepStatus.executed, seconds=185),
            "prep: executed in 3m05s",
        ),
        (
            StepEvent(step="prep", status=StepStatus.reused, reused_from=RUN_ID),
            f"prep: reused from {RUN_ID}",
        ),
        (
            StepEvent(step="b", status=StepStatus.failed, seconds=0.5, detail="exited with code 3"),
            "b: failed in 0.5s: exited with code 3",
        ),
        (
            StepEvent(step="c", status=StepStatus.skipped, detail="skipped: step 'b' failed"),
            "c: skipped: step 'b' failed",
        ),
        (
            StepEvent(step="c", status=StepStatus.cancelled, detail="cancelled (interrupted)"),
            "c: cancelled (interrupted)",
        ),
    ],
)
def test_off_a_terminal_each_step_event_is_one_line_on_stderr(
    event: StepEvent, line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    LineProgress().step_changed(event)
    assert capsys.readouterr() == ("", line + "\n")


class GoneReader(io.StringIO):
    """A stderr whose reader went away (``2>&1 | head -1`` once head has exited)."""

    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_progress_whose_reader_went_away_stops_and_never_fails_the_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gone = GoneReader()
    monkeypatch.setattr(sys, "stderr", gone)
    progress = LineProgress()
    for status in (StepStatus.running, StepStatus.executed):
        progress.step_changed(StepEvent(step="prep", status=status, seconds=1.0))
    assert gone.getvalue() == ""


def test_the_live_table_shows_what_runs_with_its_elapsed_time_and_what_ended() -> None:
    live = LiveProgress("small")
    live.step_changed(StepEvent(step="prep", status=StepStatus.reused, reused_from=RUN_ID))
    live.step_changed(StepEvent(step="train", variant=LR, status=StepStatus.running))
    live.step_changed(
        StepEvent(step="eval", status=StepStatus.failed, seconds=1.0, detail="exited with code 2")
    )
    console = Console(file=io.StringIO(), width=80)
    console.print(live._render())
    lines = [line.rstrip() for line in console.file.getvalue().splitlines()]  # type: ignore[attr-defined]
    assert lines[0] == "small"
    assert lines[2:] == [
        f" prep            reused   from {RUN_ID}",
        " train (lr=0.1)  running  0.0s",
        " eval            failed   exited with code 2",
    ]


@pytest.mark.parametrize(
    ("values", "limits"),
    [
        ([0.8, 0.85, 0.95], (0.785, 0.965)),
        ([0.9, 0.9], (0.81, 0.99)),
        ([0.0], (-1.0, 1.0)),
        ([-2.0, 2.0], (-2.4, 2.4)),
    ],
)
def test_the_plot_s_axis_spans_the_values_not_from_zero(
    values: list[float], limits: tuple[float, float]
) -> None:
    assert value_limits(values) == pytest.approx(limits)


def test_the_plot_labels_each_run_by_its_variant() -> None:
    figure, drawn = chart(build(SWEEP), "accuracy")
    axes = figure.axes[0]
    assert drawn == 2
    assert [label.get_text() for label in axes.get_xticklabels()] == [
        "prep=vision/prep@1.2.3, lr=0.1",
        "prep=vision/prep@1.2.3, lr=0.01",
    ]
    assert axes.get_ylim() == pytest.approx((0.895, 0.955))
