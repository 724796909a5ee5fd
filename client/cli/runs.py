"""The ``runs`` group: list, show, logs, download, clone and compare recorded runs and sweeps.

Runs live in the registry (``modreg run`` records them), and every run made on this machine
also in its state folder; these commands read them back through ``run_records``, which
takes a run the registry does not hold (made ``--offline``, or not recorded because the
registry was unreachable) from this machine and marks it local. ``compare`` builds its
table with ``modreg.client.compare`` and prints it here, as a rich table, ``--json``,
``--csv`` or a ``--plot`` PNG.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from modreg.client.cli.context import App, json_option, pass_app
from modreg.client.config import engine_state_dir
from modreg.client.errors import RunLookupError
from modreg.client.output import (
    cell,
    emit,
    print_csv,
    print_json,
    print_message,
    print_table,
    print_warning,
    variant_label,
)
from modreg.client.progress import seconds_text

if TYPE_CHECKING:
    from modreg.client.compare import Comparison
    from modreg.client.http import RegistryClient
    from modreg.client.run_records import RunRecords
    from modreg.engine import ArtifactStore, RunResult, SweepResult
    from modreg.registry.schemas import StepRunRecord

T = TypeVar("T")


COUNTED = ("executed", "reused", "failed", "skipped")


def print_run_summary(result: RunResult, explain: bool, details: bool = False) -> None:
    """One run's steps as a table: what each ran with, how long, what it measured, where a
    reused one came from; with ``explain``, why each executed step ran; with ``details``,
    each failed step's error and the command that prints its log, and each warning."""
    rows = [
        (
            name,
            step.status,
            f"{step.module}@{step.version}",
            seconds_text(step.seconds) if step.seconds is not None else None,
            _pairs(step.params),
            _pairs(step.metrics),
            step.reused_from,
        )
        for name, step in result.steps.items()
    ]
    title = f"run {result.run_id}: {result.status}"
    if result.local:
        title += " (local: not in the registry)"
    if result.variant:
        title += "  " + variant_label(result.variant)
    columns = ["step", "status", "module", "took", "params", "metrics", "reused from"]
    print_table(columns, rows, title=title)
    if explain:
        for name, step in result.steps.items():
            if step.status == "executed" and step.explain:
                print_message(f"  {name}: executed because {step.explain}")
    if details:
        _print_step_details(result)


def _print_step_details(result: RunResult) -> None:
    """What a failed or cancelled step said and how to read its log; each step's warnings."""
    for name, step in result.steps.items():
        if step.status in ("failed", "cancelled"):
            print_message(f"step {name!r} {step.status}: {step.error or step.status}")
            if step.has_log:
                print_message(f"  its log: {result.logs_command(name)}")
        for warning in step.warnings:
            print_message(f"step {name!r}: warning: {warning}")


def _pairs(values: Mapping[str, Any]) -> str | None:
    """``lr=0.1, epochs=3``; None (a dash) when there are none."""
    return ", ".join(f"{key}={cell(value)}" for key, value in values.items()) or None


def print_sweep_summary(outcome: SweepResult, explain: bool) -> None:
    """One row per variant: its choices and how many of its steps executed or were reused."""
    axes = list(dict.fromkeys(axis for run in outcome.runs for axis in run.variant))
    rows = []
    for run in outcome.runs:
        counts = [sum(s.status == kind for s in run.steps.values()) for kind in COUNTED]
        rows.append([run.run_id, run.status, *(run.variant.get(a) for a in axes), *counts])
    title = f"sweep {outcome.sweep_id}: {outcome.status} ({len(outcome.runs)} runs)"
    print_table(["run", "status", *axes, *COUNTED], rows, title=title)
    executed = {
        s.fingerprint for run in outcome.runs for s in run.steps.values() if s.status == "executed"
    }
    print_message(f"{len(executed)} distinct steps executed; the rest were reused")
    if explain:
        for run in outcome.runs:
            for name, step in run.steps.items():
                if step.status == "executed" and step.explain:
                    print_message(f"  {run.run_id} {name}: executed because {step.explain}")
    if outcome.sweep_id:
        print_message(f"compare the variants: modreg runs compare {outcome.sweep_id} --sort METRIC")


@click.group("runs")
def runs_group() -> None:
    """Pipeline runs and sweeps: list, show, logs, download, clone, compare."""


@runs_group.command("pin")
@click.argument("run_id", metavar="RUN")
@json_option
@pass_app
def runs_pin(app: App, run_id: str, as_json: bool) -> None:
    """Keep a run's step outputs, logs and cache entries through `modreg gc` (run token).

    \b
    Example:
        modreg runs pin r-0123456789ab
    """
    _set_pinned(app, run_id, True, as_json)


@runs_group.command("unpin")
@click.argument("run_id", metavar="RUN")
@json_option
@pass_app
def runs_unpin(app: App, run_id: str, as_json: bool) -> None:
    """Let `modreg gc` treat a pinned run like any other again.

    \b
    Example:
        modreg runs unpin r-0123456789ab
    """
    _set_pinned(app, run_id, False, as_json)


def _set_pinned(app: App, run_id: str, pinned: bool, as_json: bool) -> None:
    run = app.client.pin_run(run_id, pinned)
    data = {"run": run.id, "pinned": run.pinned}
    word = "pinned" if run.pinned else "unpinned"
    emit(data, as_json, lambda: print_message(f"run {run.id} {word}"))


@runs_group.command("list")
@click.option("--pipeline", help="Only runs of this pipeline.")
@click.option("--sweep", help="Only runs of this sweep.")
@click.option("--limit", type=click.IntRange(min=1, max=1000), default=50, show_default=True)
@json_option
@pass_app
def runs_list(app: App, pipeline: str | None, sweep: str | None, limit: int, as_json: bool) -> None:
    """List recent runs of your team, newest first; a sweep's runs show its id and variant.

    Runs made on this machine that the registry does not hold (--offline, or not recorded)
    are listed too, marked local; without a registry, only those are.

    \b
    Example:
        modreg runs list --pipeline digits
        modreg runs list --sweep s-0123456789ab --json
    """
    from modreg.client.run_records import is_local

    runs, warning = _records(app).listed(pipeline, sweep, limit)
    if warning:
        print_warning(warning)
    data = [
        {
            "run": r.id,
            "pipeline": r.pipeline,
            "status": str(r.status),
            "sweep": r.sweep_id,
            "created_at": r.created_at,
            "variant": r.variant,
            "local": is_local(r),
        }
        for r in runs
    ]
    emit(data, as_json, lambda: _print_run_list(data))


def _print_run_list(data: list[dict[str, Any]]) -> None:
    """Runs outside sweeps in one table; each sweep's runs in a table of their own."""
    groups: dict[str | None, list[dict[str, Any]]] = {}
    for item in data:
        groups.setdefault(item["sweep"], []).append(item)
    if not data:
        print_message("runs: none")
    local = ["local"] if any(d["local"] for d in data) else []
    for sweep, items in groups.items():
        marks = [["yes" if d["local"] else ""] if local else [] for d in items]
        if sweep is None:
            rows = [
                (d["run"], d["pipeline"], d["status"], *mark, d["created_at"])
                for d, mark in zip(items, marks, strict=True)
            ]
            print_table(["run", "pipeline", "status", *local, "created"], rows, title="runs")
            continue
        axes = list(dict.fromkeys(axis for d in items for axis in d["variant"]))
        rows = [
            (d["run"], d["status"], *mark, *(d["variant"].get(a) for a in axes), d["created_at"])
            for d, mark in zip(items, marks, strict=True)
        ]
        title = f"sweep {sweep} ({items[0]['pipeline']}, {len(items)} runs listed)"
        print_table(["run", "status", *local, *axes, "created"], rows, title=title)


def _step_of(run_id: str, steps: Mapping[str, T], step: str) -> T:
    """The run's step named ``step``; RunLookupError lists the steps it has."""
    if step not in steps:
        raise RunLookupError(f"run {run_id} has no step {step!r} (steps: {', '.join(steps)})")
    return steps[step]


def _records(app: App) -> RunRecords:
    from modreg.client.run_records import RunRecords
    from modreg.engine import StateDir

    return RunRecords(StateDir(engine_state_dir()), lambda: app.client)


def _client_if_configured(app: App) -> RegistryClient | None:
    """The registry client, or None when no registry is configured (a local run's needs)."""
    from modreg.client.errors import ConfigError

    try:
        return app.client
    except ConfigError:
        return None


def artifact_store(url: str | None) -> ArtifactStore:
    """The team's store at ``url`` (``--store``, ``$MODREG_STORE``), else this machine's."""
    from modreg.engine import FsspecArtifactStore, LocalArtifactStore, StateDir

    return (
        FsspecArtifactStore(url) if url else LocalArtifactStore(StateDir(engine_state_dir()).store)
    )


def _get_run(app: App, run_id: str) -> RunResult:
    from modreg.client.run_records import is_local
    from modreg.engine import RunResult

    record = _records(app).get(run_id)
    registry = _client_if_configured(app) if is_local(record) else app.client
    # outputs of a run on a shared store are there, not in the registry's blobs
    store = artifact_store(os.environ.get("MODREG_STORE") or None)
    return RunResult.from_public(record, store, registry)


@runs_group.command("show")
@click.argument("run_id", metavar="RUN|SWEEP")
@json_option
@pass_app
def runs_show(app: App, run_id: str, as_json: bool) -> None:
    """Show a run: each step's status, version, params, duration, metrics, where a reused
    step came from, and a failed step's error and log command. A sweep id shows the sweep.

    \b
    Example:
        modreg runs show r-0123456789ab --json
        modreg runs show s-0123456789ab
    """
    from modreg.client.run_records import is_sweep_id

    if is_sweep_id(run_id):
        sweep = _get_sweep(app, run_id)
        emit(sweep.to_json(), as_json, lambda: print_sweep_summary(sweep, explain=False))
        return
    result = _get_run(app, run_id)
    emit(result.to_json(), as_json, lambda: print_run_summary(result, explain=True, details=True))


def _get_sweep(app: App, sweep_id: str) -> SweepResult:
    from modreg.client.run_records import is_local
    from modreg.engine import LocalArtifactStore, RunResult, StateDir, SweepResult
    from modreg.engine.results import sweep_status

    records = _records(app).sweep(sweep_id)
    if not records:
        raise RunLookupError(f"sweep {sweep_id} has no runs")
    registry = _client_if_configured(app) if is_local(records[0]) else app.client
    store = LocalArtifactStore(StateDir(engine_state_dir()).store)
    runs = [RunResult.from_public(record, store, registry) for record in records]
    return SweepResult(sweep_id, sweep_status(runs), runs)


@runs_group.command("logs")
@click.argument("run_id", metavar="RUN")
@click.argument("step")
@pass_app
def runs_logs(app: App, run_id: str, step: str) -> None:
    """Print the log of one step of a run.

    \b
    Example:
        modreg runs logs r-0123456789ab train
    """
    import tempfile

    from modreg.engine.state import LocalRun

    run = _records(app).get(run_id)
    record = _step_of(run_id, run.steps, step)
    local_log = run.logs.get(step) if isinstance(run, LocalRun) else None
    if local_log and Path(local_log).is_file():
        sys.stdout.write(Path(local_log).read_text(encoding="utf-8", errors="replace"))
        return
    if not record.log_digest:
        raise RunLookupError(_no_log(run_id, step, record))
    with tempfile.TemporaryDirectory() as temp:
        path = Path(temp) / "log"
        app.client.get_blob(record.log_digest, path)
        sys.stdout.write(path.read_text(encoding="utf-8", errors="replace"))


def _no_log(run_id: str, step: str, record: StepRunRecord) -> str:
    """Why a step has no log here, and where a reused step's log is."""
    from modreg.engine.results import logs_command

    if record.status == "reused" and record.reused_from:
        source = logs_command(record.reused_from, step)
        return f"step {step!r} of run {run_id} was reused from run {record.reused_from}: {source}"
    return f"step {step!r} of run {run_id} has no log (it was {record.status})"


dest_option = click.option(
    "--to",
    "dest",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder (default: ./RUN).",
)


@runs_group.command("download")
@click.argument("run_id", metavar="RUN")
@click.option("--step", help="Only this step's outputs.")
@dest_option
@json_option
@pass_app
def runs_download(
    app: App, run_id: str, step: str | None, dest: Path | None, as_json: bool
) -> None:
    """Download a run's outputs to DIR/<step>/<output>.

    Without --step, the steps that did not succeed (they have no outputs) are left out.

    \b
    Example:
        modreg runs download r-0123456789ab --step train --to results
    """
    from modreg.registry.schemas import StepStatus

    result = _get_run(app, run_id)
    dest = dest or Path(run_id)
    if step is not None:
        _step_of(run_id, result.steps, step)
    written: dict[str, dict[str, str]] = {}
    for name, item in result.steps.items():
        succeeded = item.status in (StepStatus.executed, StepStatus.reused)
        if (step is None and succeeded) or name == step:
            written[name] = {out: str(path) for out, path in item.download(dest / name).items()}
    emit(
        written,
        as_json,
        lambda: print_message(f"wrote the outputs of {len(written)} step(s) to {dest}"),
    )


@runs_group.command("clone")
@click.argument("run_id", metavar="RUN")
@dest_option
@pass_app
def runs_clone(app: App, run_id: str, dest: Path | None) -> None:
    """Write a pipeline.yaml + pipeline.lock that reproduce a run exactly (into a new folder).

    \b
    Example:
        modreg runs clone r-0123456789ab --to retry && modreg run retry/pipeline.yaml --locked
    """
    import yaml

    from modreg.engine import Lock
    from modreg.engine.staging import staged_folder

    run = _records(app).get(run_id)
    dest = dest or Path(run_id)
    pipeline, lock = yaml.safe_dump(run.spec, sort_keys=False), Lock.from_dict(run.lock).dumps()
    with staged_folder(dest) as staged:  # both files or neither; never over a user's files
        (staged / "pipeline.yaml").write_text(pipeline, encoding="utf-8")
        (staged / "pipeline.lock").write_text(lock, encoding="utf-8")
    print_message(f"wrote {dest / 'pipeline.yaml'} and {dest / 'pipeline.lock'} (run {run_id})")


@runs_group.command("compare")
@click.argument("ids", nargs=-1, required=True, metavar="SWEEP|RUN...")
@click.option("--sort", "sort_metric", metavar="METRIC", help="Order rows by a metric.")
@click.option("--desc/--asc", default=True, help="With --sort: highest first (default) or lowest.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV instead of a table.")
@click.option(
    "--plot",
    "plot_file",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE.png",
    help="Also draw a bar chart of --metric across the runs (needs matplotlib).",
)
@click.option(
    "--metric", "plot_metric", metavar="METRIC", help="What --plot draws (default: --sort)."
)
@json_option
@pass_app
def runs_compare(
    app: App,
    ids: tuple[str, ...],
    sort_metric: str | None,
    desc: bool,
    as_csv: bool,
    plot_file: Path | None,
    plot_metric: str | None,
    as_json: bool,
) -> None:
    """Compare runs: one row per run, its variant's choices and its steps' metrics.

    A sweep id stands for all its runs. Metrics are named <step>.<metric>; --sort and
    --metric also take a bare metric name when only one step wrote it. Runs the registry
    does not hold (--offline, or not recorded) are compared from this machine, marked local.

    \b
    Example:
        modreg runs compare s-0123456789ab --sort accuracy
        modreg runs compare r-0123456789ab r-ba9876543210 --csv > runs.csv
        modreg runs compare s-0123456789ab --plot accuracy.png --metric train.accuracy
    """
    from modreg.client.compare import build, exact_rows, load_runs, plot

    if as_csv and as_json:
        raise click.UsageError("--csv and --json cannot be combined")
    if plot_file is not None and not (plot_metric or sort_metric):
        raise click.UsageError("--plot needs --metric METRIC (or --sort METRIC)")
    comparison = build(load_runs(_records(app), ids))
    if sort_metric:
        comparison = comparison.sorted_by(sort_metric, descending=desc)
    if plot_file is not None:
        bars = plot(comparison, plot_metric or sort_metric or "", plot_file)
    if as_json:
        print_json(comparison.to_json())
    elif as_csv:
        print_csv(comparison.columns(), exact_rows(comparison))
    else:
        _print_comparison(comparison, ids)
        if plot_file is not None:
            print_message(f"wrote a chart of {bars} runs to {plot_file}")


def _print_comparison(comparison: Comparison, ids: tuple[str, ...]) -> None:
    from modreg.client.compare import table_rows

    rows = table_rows(comparison)
    title = f"{' '.join(ids)}: {len(rows)} run{'s' if len(rows) != 1 else ''}"
    print_table(comparison.columns(), rows, title=title)
