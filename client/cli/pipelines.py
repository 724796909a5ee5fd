"""Pipeline commands: ``lock`` and ``run`` (the ``runs`` group is in ``runs``).

These commands assemble the engine's parts — the registry client (from the usual config),
the local state folder (``$XDG_CACHE_HOME/modreg/engine``), the artifact store (local, or
``--store URL`` / ``$MODREG_STORE`` for any fsspec URL) and the executor (the ``LocalExecutor``,
or ``--executor dask://HOST:PORT`` / ``$MODREG_EXECUTOR`` for a Dask cluster) — and hand
them to ``modreg.engine``; the engine itself reads no config. The engine and its schemas
are imported inside the commands, so ``modreg --help`` stays fast.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from modreg.client.cli.assignments import parse_sets, parse_vary
from modreg.client.cli.context import App, json_option, pass_app
from modreg.client.cli.outdated import note_upgradable, outdated_command
from modreg.client.cli.runs import (
    artifact_store,
    print_run_summary,
    print_sweep_summary,
    runs_group,
)
from modreg.client.config import engine_state_dir
from modreg.client.output import emit, print_json, print_table, print_warning

if TYPE_CHECKING:
    from modreg.engine import ArtifactStore, RunResult, SweepResult, Workspace
    from modreg.engine.environments import Interpreter
    from modreg.engine.executors.base import Executor

EXIT_INTERRUPTED = 130
PIPELINE_ARG = click.argument(
    "pipeline", type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
store_option = click.option(
    "--store",
    "store_url",
    envvar="MODREG_STORE",
    metavar="URL",
    help="Artifact store: an fsspec URL such as s3://bucket/prefix (default: a local folder).",
)

executor_option = click.option(
    "--executor",
    envvar="MODREG_EXECUTOR",
    default="local",
    show_default=True,
    metavar="EXECUTOR",
    help="Where steps run: local (here) or dask://HOST:PORT (on that Dask scheduler's workers).",
)


def _workspace(
    app: App, store_url: str | None, jobs: int | None, offline: bool, executor: str = "local"
) -> Workspace:
    from modreg.engine import LocalExecutor, StateDir, Workspace

    state = StateDir(engine_state_dir())
    store = artifact_store(store_url)
    registry = None if offline else app.client
    # the steps' share of the caller's environment is chosen by the engine (scrubbed)
    return Workspace(
        state,
        store,
        _dask_executor(app, executor, store, offline)
        if executor != "local"
        else LocalExecutor(jobs),
        registry,
        caller_env=dict(os.environ),
        interpreter=_interpreter(),
    )


def _dask_executor(app: App, executor: str, store: ArtifactStore, offline: bool) -> Executor:
    """``--executor dask://HOST:PORT``: workers need a store they all reach and the registry."""
    from modreg.client.errors import ConfigError

    try:
        from modreg.engine.executors.dask import DaskExecutor, scheduler_address
    except ImportError as exc:  # distributed is an extra
        raise ConfigError(f"--executor {executor}: {exc.msg}; pip install 'modreg[dask]'") from exc
    try:
        address = scheduler_address(executor)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--executor'") from exc
    if store.shared_url is None:  # a local folder, or memory://: the workers cannot see it
        raise ConfigError(
            f"--executor {executor} needs an artifact store every worker reaches: "
            "--store URL (or MODREG_STORE)"
        )
    if offline:
        raise ConfigError(f"--executor {executor}: the workers need the registry; drop --offline")
    try:
        return DaskExecutor(address, app.client.worker_access())
    except OSError as exc:
        raise ConfigError(f"--executor {executor}: cannot reach the Dask scheduler: {exc}") from exc


def _interpreter() -> Interpreter:
    """``$MODREG_INTERPRETER``: the interpreter identity digests name (``engine.environments``,
    a seam for tests); the engine's own when unset."""
    from modreg.engine.environments import Interpreter

    raw = os.environ.get("MODREG_INTERPRETER", "")
    try:
        return Interpreter.parse(raw) if raw else Interpreter.current()
    except ValueError as exc:
        raise click.BadParameter(f"MODREG_INTERPRETER={exc}") from exc


def _heartbeat_seconds() -> float:
    """``$MODREG_RUN_HEARTBEAT``: how often a run tells the registry it is alive (30 s)."""
    raw = os.environ.get("MODREG_RUN_HEARTBEAT", "")
    try:
        seconds = float(raw) if raw else 30.0
    except ValueError:
        seconds = -1.0
    if not 0.05 <= seconds <= 3600:  # also NaN
        raise click.BadParameter(f"MODREG_RUN_HEARTBEAT={raw!r}: expected 0.05 to 3600 seconds")
    return seconds


# --- lock ---------------------------------------------------------------------------------


@click.command("lock")
@PIPELINE_ARG
@click.option(
    "--upgrade",
    is_flag=False,
    flag_value="",
    default=None,
    metavar="[STEP]",
    help="Re-resolve every step (or only STEP) instead of keeping the locked versions.",
)
@json_option
@pass_app
def lock_command(app: App, pipeline: Path, upgrade: str | None, as_json: bool) -> None:
    """Resolve PIPELINE's module references and write its lock beside it (NAME.yaml: NAME.lock).

    \b
    Example:
        modreg lock pipeline.yaml
        modreg lock pipeline.yaml --upgrade train
    """
    from modreg.engine import (
        ResolveOptions,
        find_outdated,
        load_pipeline,
        lock_path,
        lock_pipeline,
    )

    steps = frozenset({upgrade}) if upgrade else frozenset()
    options = ResolveOptions(upgrade=upgrade is not None, upgrade_steps=steps)
    spec = load_pipeline(pipeline)
    prepared = lock_pipeline(spec, app.client, lock_path(pipeline), options)
    for warning in prepared.resolved.warnings:
        print_warning(warning)
    lock = prepared.resolved.lock
    rows = [
        (step, ref, m.module, m.version, m.commit[:12])
        for step, refs in sorted(lock.steps.items())
        for ref, m in sorted(refs.items())
    ]
    found = find_outdated(lock, app.client)
    data = {
        "lock": str(lock_path(pipeline)),
        "changed": prepared.lock_changed,
        **lock.to_dict(),
        "outdated": [o.to_dict() for o in found],
    }
    emit(
        data,
        as_json,
        lambda: print_table(
            ["step", "uses", "module", "version", "commit"],
            rows,
            title=f"{lock_path(pipeline)} ({'updated' if prepared.lock_changed else 'unchanged'})",
        ),
    )
    if not as_json:
        note_upgradable(pipeline, found)


# --- run ----------------------------------------------------------------------------------


def _print_failures(runs: list[RunResult]) -> None:
    """Each distinct failure once, with the runs it failed."""
    failed: dict[str, list[str]] = {}
    for run in runs:
        if run.error:
            failed.setdefault(run.error, []).append(run.run_id)
    for error, ids in failed.items():
        which = f"run {ids[0]}" if len(ids) == 1 else f"{len(ids)} runs ({', '.join(ids)})"
        click.echo(f"error: {which} failed:\n{error}", err=True)


def _report(outcome: RunResult | SweepResult, as_json: bool, explain: bool) -> int:
    from modreg.engine import RunResult

    runs = [outcome] if isinstance(outcome, RunResult) else outcome.runs
    for warning in dict.fromkeys(w for run in runs for w in run.warnings):
        print_warning(warning)
    if as_json:
        print_json(outcome.to_json())
    elif isinstance(outcome, RunResult):
        print_run_summary(outcome, explain)
    else:
        print_sweep_summary(outcome, explain)
    _print_failures(runs)
    statuses = {run.status for run in runs}
    if "cancelled" in statuses:
        return EXIT_INTERRUPTED
    return 0 if statuses == {"succeeded"} else 1


@click.command("run")
@PIPELINE_ARG
@click.option("--locked", is_flag=True, help="Fail instead of changing the pipeline's lock.")
@click.option("--offline", is_flag=True, help="Use only the pipeline's lock and the local caches.")
@click.option("--jobs", "-j", type=click.IntRange(min=1), help="Steps run at once (default: CPUs).")
@click.option("--no-reuse", is_flag=True, help="Execute every step, even with stored results.")
@click.option("--regenerate", multiple=True, metavar="STEP", help="Execute STEP even if stored.")
@click.option("--explain", is_flag=True, help="Say why each executed step executed.")
@click.option("--set", "sets", multiple=True, metavar="STEP.params.K=V", help="Override a param.")
@click.option(
    "--vary",
    multiple=True,
    metavar="AXIS=V1,V2",
    help="Sweep over STEP.uses or STEP.params.K (repeatable; replaces that axis of variants:).",
)
@store_option
@executor_option
@json_option
@pass_app
def run_command(
    app: App,
    pipeline: Path,
    locked: bool,
    offline: bool,
    jobs: int | None,
    no_reuse: bool,
    regenerate: tuple[str, ...],
    explain: bool,
    sets: tuple[str, ...],
    vary: tuple[str, ...],
    store_url: str | None,
    executor: str,
    as_json: bool,
) -> None:
    """Validate, lock and run PIPELINE, reusing every step result already computed.

    \b
    Example:
        modreg run pipeline.yaml --jobs 4
        modreg run pipeline.yaml --set train.params.lr=0.01 --explain
        modreg run pipeline.yaml --executor dask://scheduler:8786 --store s3://team/artifacts
        modreg run pipeline.yaml --vary 'prep.uses=vision/prep@^1.2,vision/prep-robust@0.3.1'
                                 --vary 'train.params.lr=0.1,0.01'
    """
    from modreg.engine import (
        ResolveOptions,
        RunOptions,
        load_pipeline,
        lock_path,
        run_pipeline,
    )

    values, axes = parse_sets(sets), parse_vary(vary)
    spec = load_pipeline(pipeline)  # the file's own problems come before any config
    workspace = _workspace(app, store_url, jobs, offline, executor)
    options = RunOptions(
        jobs=jobs,
        no_reuse=no_reuse,
        regenerate=frozenset(regenerate),
        offline=offline,
        heartbeat_seconds=_heartbeat_seconds(),
    )
    resolve = ResolveOptions(locked=locked, offline=offline)
    live = _live(spec.name, as_json)
    workspace.observer = live
    with live or _null():
        try:
            outcome = run_pipeline(
                spec,
                workspace,
                options,
                lock_file=lock_path(pipeline),
                resolve=resolve,
                values=values,
                vary=axes,
            )
        finally:
            workspace.executor.close()
    sys.exit(_report(outcome, as_json, explain))


def _live(title: str, as_json: bool) -> Any:
    """Progress on stderr: a live table on a terminal (not under ``--json``), else a line
    per step event, so a pipe, ``tee`` or a CI log shows the run as it goes."""
    from modreg.client.progress import LineProgress, LiveProgress

    if not sys.stderr.isatty():
        return LineProgress()
    return None if as_json else LiveProgress(title)


def _null() -> Any:
    from contextlib import nullcontext

    return nullcontext()


def register(group: click.Group) -> None:
    """Add ``lock``, ``outdated``, ``run`` and the ``runs`` group to the ``modreg`` group."""
    group.add_command(lock_command)
    group.add_command(outdated_command)
    group.add_command(run_command)
    group.add_command(runs_group)
