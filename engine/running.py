"""Running a pipeline: ``prepare`` (resolve, validate, lock) and ``run_pipeline``.

``run_pipeline``: expand variants -> resolve (lock first, one bulk call for the rest) ->
validate every variant, all problems at once -> write the lock -> plan one deduplicated graph
-> create the run records (``records.start_runs``) -> schedule (``scheduler.Scheduler``) ->
turn the nodes' states into a ``RunResult`` per run -> record them in the registry and in
the local state folder (``records``). ``lock_pipeline`` is ``modreg lock``: the first half.

Nothing here reads environment variables or config files: the registry client, the stores,
the executor and the state folder come in as a ``Workspace``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modreg.engine.digests import DigestCache
from modreg.engine.heartbeat import Heartbeat, OpenRuns, close_stale_runs, open_runs
from modreg.engine.leases import Leases
from modreg.engine.lock import read_pipeline_lock, write_lock
from modreg.engine.plan import Plan, build_plan
from modreg.engine.protocol import RegistryProtocol
from modreg.engine.records import fill_remote_metrics, record_runs, save_local, start_runs
from modreg.engine.resolve import Resolved, ResolveOptions, resolve_pipelines
from modreg.engine.results import (
    RunResult,
    StepResult,
    SweepResult,
    logs_command,
    sweep_status,
)
from modreg.engine.scheduler import NodeState, Scheduler
from modreg.engine.spec import Pipeline, step_option_problems
from modreg.engine.sweep import Sweep
from modreg.engine.validate import raise_problems
from modreg.engine.variants import check, expand
from modreg.engine.workspace import RunOptions, Workspace
from modreg.registry.schemas import RunStatus, StepStatus

LOG_TAIL_LINES = 15


@dataclass
class Prepared:
    """A validated, resolved pipeline (every variant of it) ready to plan."""

    variants: list[tuple[dict[str, Any], Pipeline]]
    resolved: Resolved
    lock_changed: bool


def prepare(
    pipeline: Pipeline | Sweep,
    registry: RegistryProtocol | None,
    lock_file: Path | None,
    options: ResolveOptions,
    values: Mapping[str, Any] | None = None,
    vary: Mapping[str, Sequence[Any]] | None = None,
    regenerate: frozenset[str] = frozenset(),
) -> Prepared:
    """Resolve and validate every combination (``--set`` values, ``--vary`` axes); lock.

    Steps named by ``--upgrade STEP`` and ``--regenerate STEP`` are checked first: a name
    that is no step stops here, before anything is resolved or written.
    """
    expansion = expand(pipeline, values, vary)
    variants = expansion.variants
    steps = [name for _, each in variants for name in each.steps]
    named = {"--upgrade": options.upgrade_steps, "--regenerate": regenerate}
    raise_problems(
        [
            problem
            for option, names in named.items()
            for problem in step_option_problems(option, names, steps)
        ]
    )
    # a full --upgrade re-resolves everything: it needs nothing from the old lock, which
    # is how an unreadable lock gets replaced
    whole_upgrade = options.upgrade and not options.upgrade_steps
    lock, adopted = read_pipeline_lock(None if whole_upgrade else lock_file, variants[0][1].name)
    online = None if options.offline else registry
    resolved = resolve_pipelines([p for _, p in variants], lock, online, options)
    resolved.warnings[:0] = adopted
    raise_problems(check(expansion, resolved))
    changed = False
    if lock_file is not None and not options.locked and resolved.changed:
        changed = write_lock(lock_file, resolved.lock)
    return Prepared(variants, resolved, changed)


def lock_pipeline(
    pipeline: Pipeline, registry: RegistryProtocol | None, lock_file: Path, options: ResolveOptions
) -> Prepared:
    """``modreg lock``: resolve (or re-resolve with ``upgrade``) and write the lock."""
    return prepare(pipeline, registry, lock_file, options)


def _log_tail(path: Path | None) -> str:
    if path is None or not path.exists():
        return ""
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()[-LOG_TAIL_LINES:]
    return "\n".join(f"    | {line}" for line in lines)


def failure_message(run_id: str, step: str, state: NodeState) -> str:
    """One failed step: what happened, the command that prints its log, and the log's last
    lines. The command, not the log's path: the message is kept with the run, and read on
    other machines."""
    text = f"step {step!r} {state.error}"
    if state.log_path is not None:
        text += f" (full log: {logs_command(run_id, step)})"
    tail = _log_tail(state.log_path)
    return f"{text}\n{tail}" if tail else text


def _step_result(scheduler: Scheduler, run: int, step: str, workspace: Workspace) -> StepResult:
    node = scheduler.plan.node_of(run, step)
    state = scheduler.states[node.key]
    status, reused_from = state.status.step_status, state.reused_from
    if status == StepStatus.executed and node.users[0].run != run:
        status, reused_from = StepStatus.reused, scheduler.run_ids[node.users[0].run]
    if status in (StepStatus.pending, StepStatus.running):
        status = StepStatus.skipped
    return StepResult(
        name=step,
        status=status,
        module=node.module.module,
        version=node.module.version,
        fingerprint=state.fingerprint.digest if state.fingerprint else None,
        params=dict(node.params),
        outputs=dict(state.outputs),
        metrics=dict(state.metrics),
        reused_from=reused_from,
        explain=state.explain if status == StepStatus.executed else None,
        error=state.error,
        warnings=list(state.warnings),
        exit_code=state.exit_code,
        log_path=str(state.log_path) if state.log_path else None,
        started_at=state.started_at,
        ended_at=state.ended_at,
        _store=workspace.store,
        _registry=workspace.registry,
    )


def _run_status(steps: dict[str, StepResult], interrupted: bool) -> RunStatus:
    statuses = {step.status for step in steps.values()}
    if statuses <= {StepStatus.executed, StepStatus.reused}:
        return RunStatus.succeeded
    if interrupted and StepStatus.failed not in statuses:  # some steps never got to run
        return RunStatus.cancelled
    return RunStatus.failed


def _failure(scheduler: Scheduler, run: int, step: str) -> str:
    """A failed step's message, naming the run that ran it: the same text in every run of
    a sweep that shares the step, so it is printed once."""
    node = scheduler.plan.node_of(run, step)
    return failure_message(scheduler.run_ids[node.users[0].run], step, scheduler.states[node.key])


def _results(scheduler: Scheduler, workspace: Workspace, sweep_id: str | None) -> list[RunResult]:
    results = []
    for run in scheduler.plan.runs:
        steps = {name: _step_result(scheduler, run.index, name, workspace) for name in run.nodes}
        failed = [
            _failure(scheduler, run.index, name)
            for name, step in steps.items()
            if step.status == StepStatus.failed
        ]
        result = RunResult(
            run_id=scheduler.run_ids[run.index],
            local=True,
            pipeline=run.pipeline.name,
            status=_run_status(steps, scheduler.interrupted),
            steps=steps,
            variant=run.variant,
            sweep_id=sweep_id,
            error="\n".join(failed) or None,
            warnings=list(scheduler.warnings),
        )
        results.append(result)
    return results


def _metrics_unknown(scheduler: Scheduler, results: list[RunResult]) -> list[StepResult]:
    """Steps reused from the registry's cache, whose metrics are in their source run."""
    return [
        step
        for result, run in zip(results, scheduler.plan.runs, strict=True)
        for name, step in result.steps.items()
        if step.status == StepStatus.reused
        and not scheduler.states[scheduler.plan.node_of(run.index, name).key].metrics_known
    ]


def _hold_and_close(
    plan: Plan,
    run_ids: list[str],
    markers: OpenRuns,
    workspace: Workspace,
    registry: RegistryProtocol,
) -> list[str]:
    """Mark our runs open (``heartbeat``); close earlier runs of these pipelines whose
    engine died. Warnings for those that could not be closed."""
    for run, run_id in zip(plan.runs, run_ids, strict=True):
        markers.hold(run_id, run.pipeline.name)
    pipelines = {run.pipeline.name for run in plan.runs}
    return close_stale_runs(workspace.state, registry, pipelines, closer=run_ids[0])


def execute_plan(
    plan: Plan, workspace: Workspace, options: RunOptions, sweep: bool = False
) -> list[RunResult]:
    """Record (as one sweep when ``sweep``), schedule and finish every run of ``plan``."""
    registry = None if options.offline else workspace.registry
    started = start_runs(plan, registry, sweep or len(plan.runs) > 1)
    markers = open_runs(workspace.state)
    warnings: list[str] = []
    leases = None
    if registry is not None:
        machine = workspace.state.machine_id()
        leases = Leases(registry, options.heartbeat_seconds, warnings, machine)
    scheduler = Scheduler(plan, workspace, options, started.run_ids, leases, warnings)
    heartbeat = None
    if registry is not None:
        closing = _hold_and_close(plan, started.run_ids, markers, workspace, registry)
        scheduler.warnings += closing
        heartbeat = Heartbeat(registry, started.run_ids, options.heartbeat_seconds, leases)
        heartbeat.start()
    try:
        with workspace.state.in_use():  # `modreg cache prune` leaves this state alone meanwhile
            scheduler.run()
    finally:
        if heartbeat is not None:
            heartbeat.stop()
    results = _results(scheduler, workspace, started.sweep_id)
    if registry is not None:
        fill_remote_metrics(_metrics_unknown(scheduler, results), registry)
    for result in results:  # first, so a run killed while recording keeps its record
        save_local(result, started, workspace.state)
    if registry is None:
        return results
    recorded = record_runs(results, registry)
    markers.release(recorded)
    for result in results:
        result.local = result.run_id not in recorded
        save_local(result, started, workspace.state, recorded=not result.local)
    return results


def run_pipeline(
    pipeline: Pipeline | Sweep,
    workspace: Workspace,
    options: RunOptions | None = None,
    *,
    lock_file: Path | None = None,
    resolve: ResolveOptions | None = None,
    values: Mapping[str, Any] | None = None,
    vary: Mapping[str, Sequence[Any]] | None = None,
) -> RunResult | SweepResult:
    """Validate, resolve, lock and run a pipeline; a SweepResult for a sweep or variants."""
    options = options or RunOptions()
    resolve = resolve or ResolveOptions(offline=options.offline)
    if options.offline or resolve.offline:
        # offline means no registry anywhere: sources, results and downloads included
        options = dataclasses.replace(options, offline=True)
        resolve = dataclasses.replace(resolve, offline=True)
        workspace = dataclasses.replace(workspace, registry=None)
    prepared = prepare(
        pipeline, workspace.registry, lock_file, resolve, values, vary, options.regenerate
    )
    digests = DigestCache(workspace.state.digests_file)
    plan = build_plan(prepared.variants, prepared.resolved.lock, digests, workspace.interpreter)
    digests.save()
    single = isinstance(pipeline, Pipeline) and not pipeline.variants and not vary
    results = execute_plan(plan, workspace, options, sweep=not single)
    for result in results:
        result.warnings = prepared.resolved.warnings + result.warnings
    if single:
        return results[0]
    return SweepResult(results[0].sweep_id, sweep_status(results), results)
