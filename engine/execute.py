"""The whole of ``modreg run`` and ``modreg lock``, as functions over handed-in parts.

``run_pipeline``: expand variants -> resolve (lock first, one bulk call for the rest) ->
validate every variant, all problems at once -> write the lock -> plan one deduplicated graph
-> record the run(s) in the registry -> schedule (``runner.Scheduler``) -> record every step
(in one call per run when the registry offers it) and finish the run(s).

Nothing here reads environment variables or config files: the registry client, the stores,
the executor and the state folder come in as a ``Workspace``.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from modreg.engine.digests import DigestCache, sha256_path
from modreg.engine.lock import read_pipeline_lock, write_lock
from modreg.engine.plan import Plan, PlannedRun, build_plan
from modreg.engine.protocol import RegistryProtocol
from modreg.engine.resolve import Resolved, ResolveOptions, resolve_pipelines
from modreg.engine.results import RunResult, StepResult, SweepResult
from modreg.engine.runner import NodeState, RunOptions, Scheduler, Workspace
from modreg.engine.spec import Pipeline, pipeline_to_dict
from modreg.engine.sweep import Sweep
from modreg.engine.validate import raise_problems
from modreg.engine.variants import check, expand
from modreg.registry.schemas import (
    ERROR_TEXT,
    RunCreate,
    RunStatus,
    RunUpdate,
    StepRunBatch,
    StepRunRecord,
    StepStatus,
    SweepCreate,
)

LOG_TAIL_LINES = 15
RECORD_THREADS = 4


@dataclass
class Prepared:
    """A validated, resolved pipeline (every variant of it) ready to plan."""

    variants: list[tuple[dict[str, Any], Pipeline]]
    resolved: Resolved
    lock_changed: bool


def prepare(
    pipeline: Pipeline | Sweep,
    registry: Any,
    lock_file: Path | None,
    options: ResolveOptions,
    values: Mapping[str, Any] | None = None,
    vary: Mapping[str, Sequence[Any]] | None = None,
) -> Prepared:
    """Resolve and validate every combination (``--set`` values, ``--vary`` axes); lock."""
    expansion = expand(pipeline, values, vary)
    variants = expansion.variants
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
    pipeline: Pipeline, registry: Any, lock_file: Path, options: ResolveOptions
) -> Prepared:
    """``modreg lock``: resolve (or re-resolve with ``upgrade``) and write the lock."""
    return prepare(pipeline, registry, lock_file, options)


# --- recording -------------------------------------------------------------------------


def _start_runs(
    plan: Plan, workspace: Workspace, offline: bool, sweep: bool
) -> tuple[str | None, list[str]]:
    """Create the sweep (when ``sweep``) and run records; local ids when offline."""
    registry = None if offline else workspace.registry
    if registry is None:
        local_sweep = f"local-s-{uuid.uuid4().hex[:12]}" if sweep else None
        return local_sweep, [f"local-{uuid.uuid4().hex[:12]}" for _ in plan.runs]
    runs = [_run_create(plan, run) for run in plan.runs]
    if not sweep:
        return None, [registry.create_run(body).id for body in runs]
    name = plan.runs[0].pipeline.name
    created = registry.create_sweep(SweepCreate(pipeline=name, axes=_axes(plan), runs=runs))
    return created.id, created.run_ids


def _run_create(plan: Plan, run: PlannedRun) -> RunCreate:
    lock = plan.lock.restricted_to({(name, step.uses) for name, step in run.pipeline.steps.items()})
    return RunCreate(
        pipeline=run.pipeline.name,
        variant=run.variant,
        spec=pipeline_to_dict(run.pipeline),
        lock=lock.to_dict(),
    )


def _axes(plan: Plan) -> dict[str, list[Any]]:
    axes: dict[str, list[Any]] = {}
    for run in plan.runs:
        for axis, value in run.variant.items():
            if value not in axes.setdefault(axis, []):
                axes[axis].append(value)
    return axes


def _log_tail(path: Path | None) -> str:
    if path is None or not path.exists():
        return ""
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()[-LOG_TAIL_LINES:]
    return "\n".join(f"    | {line}" for line in lines)


def failure_message(step: str, state: NodeState) -> str:
    """One failed step: what happened, its log's path, and the last lines of the log."""
    text = f"step {step!r} {state.error}"
    if state.log_path is not None:
        text += f" (full log: {state.log_path})"
    tail = _log_tail(state.log_path)
    return f"{text}\n{tail}" if tail else text


def _step_result(scheduler: Scheduler, run: int, step: str, workspace: Workspace) -> StepResult:
    node = scheduler.plan.node_of(run, step)
    state = scheduler.states[node.key]
    status, reused_from = state.status, state.reused_from
    if status == "executed" and node.users[0].run != run:
        status, reused_from = "reused", scheduler.run_ids[node.users[0].run]
    if status not in {s.value for s in StepStatus} or status in {"waiting", "ready", "running"}:
        status = "skipped"
    return StepResult(
        step,
        status,
        node.module.module,
        node.module.version,
        state.fingerprint.digest if state.fingerprint else None,
        dict(state.outputs),
        dict(state.metrics),
        reused_from,
        state.explain if status == "executed" else None,
        state.error,
        state.exit_code,
        str(state.log_path) if state.log_path else None,
        workspace.store,
        workspace.registry,
    )


def _run_status(steps: dict[str, StepResult], interrupted: bool) -> str:
    statuses = {step.status for step in steps.values()}
    if statuses <= {"executed", "reused"}:
        return RunStatus.succeeded.value
    return (
        RunStatus.cancelled.value
        if interrupted and "cancelled" in statuses
        else RunStatus.failed.value
    )


def _results(scheduler: Scheduler, workspace: Workspace, sweep_id: str | None) -> list[RunResult]:
    results = []
    for run in scheduler.plan.runs:
        steps = {name: _step_result(scheduler, run.index, name, workspace) for name in run.nodes}
        status = _run_status(steps, scheduler.interrupted)
        failed = [
            failure_message(name, scheduler.states[scheduler.plan.node_of(run.index, name).key])
            for name, step in steps.items()
            if step.status == "failed"
        ]
        result = RunResult(
            scheduler.run_ids[run.index], run.pipeline.name, status, steps, run.variant, sweep_id
        )
        result.error = "\n".join(failed) or None
        result.warnings = list(scheduler.warnings)
        results.append(result)
    return results


def _fill_remote_metrics(results: list[RunResult], scheduler: Scheduler, registry: Any) -> None:
    """Metrics of steps reused from the registry's cache: one fetch per source run."""
    pending = [
        step
        for index, result in enumerate(results)
        for name, step in result.steps.items()
        if step.status == "reused"
        and step.reused_from
        and not scheduler.states[scheduler.plan.node_of(index, name).key].metrics_known
    ]
    records = {}
    for run_id in sorted({s.reused_from for s in pending if s.reused_from}):
        if run_id.startswith("local-"):
            continue
        try:
            records[run_id] = registry.get_run(run_id)
        except Exception:  # noqa: BLE001 - metrics are a nicety here
            continue
    for step in pending:
        source = records.get(step.reused_from or "")
        if source is not None:
            match = [r for r in source.steps.values() if r.fingerprint == step.fingerprint]
            step.metrics = dict(match[0].metrics) if match else {}


def _log_digest(registry: RegistryProtocol, path: str | None) -> str | None:
    """Give the registry a step's log (a local file) as a blob; its digest, or None."""
    if not path or not Path(path).exists():
        return None
    try:
        digest = sha256_path(Path(path))
        registry.put_blob(digest, Path(path))
        return digest
    except Exception:  # noqa: BLE001 - the log stays local
        return None


def _record(result: RunResult, scheduler: Scheduler, workspace: Workspace, registry: Any) -> None:
    now = datetime.now(UTC)
    records = {}
    for name, step in result.steps.items():
        state = scheduler.states[scheduler.plan.node_of(_run_index(scheduler, result), name).key]
        records[name] = StepRunRecord(
            status=StepStatus(step.status),
            module=step.module,
            version=step.version,
            fingerprint=step.fingerprint,
            reused_from=step.reused_from,
            outputs=step.outputs,
            metrics=step.metrics,
            exit_code=step.exit_code,
            error=step.error,
            explain=step.explain,
            log_digest=_log_digest(registry, step.log_path)
            if step.status in {"executed", "failed"}
            else None,
            started_at=state.started_at,
            ended_at=state.ended_at,
        )
    error = result.error
    if error is not None and len(error) > ERROR_TEXT:  # the full text stays in the local record
        error = error[: ERROR_TEXT - 20] + "\n… (cut; see the logs)"
    finish = RunUpdate(status=RunStatus(result.status), ended_at=now, error=error)
    registry.record_steps(result.run_id, StepRunBatch(steps=records, finish=finish))


def _run_index(scheduler: Scheduler, result: RunResult) -> int:
    return scheduler.run_ids.index(result.run_id)


def _save_local(result: RunResult, workspace: Workspace) -> None:
    record = result.to_json()
    record.update(
        pipeline=result.pipeline, variant=result.variant, sweep=result.sweep_id, error=result.error
    )
    record["logs"] = {name: step.log_path for name, step in result.steps.items() if step.log_path}
    record["explain"] = {name: step.explain for name, step in result.steps.items() if step.explain}
    record["output_refs"] = {
        name: {out: ref.model_dump(mode="json") for out, ref in step.outputs.items()}
        for name, step in result.steps.items()
    }
    workspace.state.save_run(result.run_id, record)


def execute_plan(
    plan: Plan, workspace: Workspace, options: RunOptions, sweep: bool = False
) -> list[RunResult]:
    """Record (as one sweep when ``sweep``), schedule and finish every run of ``plan``."""
    sweep_id, run_ids = _start_runs(plan, workspace, options.offline, sweep or len(plan.runs) > 1)
    scheduler = Scheduler(plan, workspace, options, run_ids)
    scheduler.run()
    results = _results(scheduler, workspace, sweep_id)
    for result in results:
        _save_local(result, workspace)
    registry = None if options.offline else workspace.registry
    if registry is not None:
        _fill_remote_metrics(results, scheduler, registry)
        try:
            _record_all(results, scheduler, workspace, registry)
        except Exception as exc:  # noqa: BLE001 - the steps are done and cached locally
            for result in results:
                result.warnings.append(f"run {result.run_id} could not be recorded: {exc}")
    return results


def _record_all(
    results: list[RunResult], scheduler: Scheduler, workspace: Workspace, registry: Any
) -> None:
    """Record the runs of a sweep side by side: each is its own few round trips."""
    if len(results) == 1:
        _record(results[0], scheduler, workspace, registry)
        return
    with ThreadPoolExecutor(max_workers=RECORD_THREADS) as pool:
        for done in [pool.submit(_record, r, scheduler, workspace, registry) for r in results]:
            done.result()


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
    prepared = prepare(pipeline, workspace.registry, lock_file, resolve, values, vary)
    digests = DigestCache(workspace.state.digests_file)
    plan = build_plan(prepared.variants, prepared.resolved.lock, digests)
    digests.save()
    single = isinstance(pipeline, Pipeline) and not pipeline.variants and not vary
    results = execute_plan(plan, workspace, options, sweep=not single)
    for result in results:
        result.warnings = prepared.resolved.warnings + result.warnings
    if single:
        return results[0]
    status = "succeeded" if all(r.status == "succeeded" for r in results) else "failed"
    return SweepResult(results[0].sweep_id, status, results)
