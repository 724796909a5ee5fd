"""The records of a run: in the registry (the team's history) and in the local state folder.

Before the scheduler starts, ``start_runs`` creates the run records (one sweep holding them
when there are variants) and so learns the run ids; offline the ids are local
(``local-…``, ``local-s-…``). After it ends, ``save_local`` writes what each run did to
``STATE/runs/<run id>.json`` (a ``state.LocalRun``, not yet ``recorded``), then
``record_runs`` sends every step of each run and its end in one call per run (the runs of a
sweep side by side), and the runs the registry took are marked ``recorded``. A registry
that fails to record never fails a run whose steps are done: the run says so in a warning,
and its local record is what ``modreg runs`` shows of it.
"""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from modreg.engine.plan import Plan, PlannedRun
from modreg.engine.protocol import RegistryProtocol
from modreg.engine.results import RunResult, StepResult
from modreg.engine.spec import pipeline_to_dict
from modreg.engine.state import LocalRun, StateDir
from modreg.registry.hashing import sha256_file
from modreg.registry.schemas import (
    ERROR_TEXT,
    RunCreate,
    RunUpdate,
    StepRunBatch,
    StepRunRecord,
    StepStatus,
    SweepCreate,
)

RECORD_THREADS = 4


# --- before the run ------------------------------------------------------------------------


@dataclass(frozen=True)
class StartedRuns:
    """The ids of a plan's runs (and sweep), and what each run is: its spec and lock."""

    sweep_id: str | None
    run_ids: list[str]
    bodies: list[RunCreate]
    created_at: datetime


def start_runs(plan: Plan, registry: RegistryProtocol | None, sweep: bool) -> StartedRuns:
    """Create the sweep (when ``sweep``) and run records; local ids without a registry."""
    created_at = datetime.now(UTC)
    bodies = [_run_create(plan, run) for run in plan.runs]
    if registry is None:
        local_sweep = f"local-s-{uuid.uuid4().hex[:12]}" if sweep else None
        local_ids = [f"local-{uuid.uuid4().hex[:12]}" for _ in plan.runs]
        return StartedRuns(local_sweep, local_ids, bodies, created_at)
    if not sweep:
        run_ids = [registry.create_run(body).id for body in bodies]
        return StartedRuns(None, run_ids, bodies, created_at)
    name = plan.runs[0].pipeline.name
    created = registry.create_sweep(SweepCreate(pipeline=name, axes=_axes(plan), runs=bodies))
    return StartedRuns(created.id, created.run_ids, bodies, created_at)


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


# --- after the run: the registry -----------------------------------------------------------


def fill_remote_metrics(steps: list[StepResult], registry: RegistryProtocol) -> None:
    """Metrics of steps reused from the registry's cache: one fetch per source run."""
    records = {}
    for run_id in sorted({s.reused_from for s in steps if s.reused_from}):
        if run_id.startswith("local-"):
            continue
        try:
            records[run_id] = registry.get_run(run_id)
        except Exception:  # noqa: BLE001 - metrics are a nicety here
            continue
    for step in steps:
        source = records.get(step.reused_from or "")
        if source is not None:
            match = [r for r in source.steps.values() if r.fingerprint == step.fingerprint]
            step.metrics = dict(match[0].metrics) if match else {}


def record_runs(results: list[RunResult], registry: RegistryProtocol) -> set[str]:
    """Record every run's steps and end (a sweep's side by side); the ids of those recorded.

    A run that could not be recorded gets a warning saying so.
    """
    if len(results) == 1:
        recorded = [_try_record(results[0], registry)]
    else:
        with ThreadPoolExecutor(max_workers=RECORD_THREADS) as pool:
            recorded = list(pool.map(lambda result: _try_record(result, registry), results))
    return {result.run_id for result, ok in zip(results, recorded, strict=True) if ok}


def _try_record(result: RunResult, registry: RegistryProtocol) -> bool:
    try:
        _record(result, registry)
    except Exception as exc:  # noqa: BLE001 - the steps are done and cached locally
        result.warnings.append(f"run {result.run_id} could not be recorded: {exc}")
        return False
    return True


def _log_digest(registry: RegistryProtocol, path: str | None) -> str | None:
    """Give the registry a step's log (a local file) as a blob; its digest, or None."""
    if not path or not Path(path).exists():
        return None
    try:
        digest = sha256_file(Path(path))
        registry.put_blob(digest, Path(path))
        return digest
    except Exception:  # noqa: BLE001 - the log stays local
        return None


def _step_record(step: StepResult, log_digest: str | None) -> StepRunRecord:
    return StepRunRecord(
        status=step.status,
        module=step.module,
        version=step.version,
        fingerprint=step.fingerprint,
        params=step.params,
        reused_from=step.reused_from,
        outputs=step.outputs,
        metrics=step.metrics,
        exit_code=step.exit_code,
        error=step.error,
        warnings=step.warnings,
        explain=step.explain,
        log_digest=log_digest,
        started_at=step.started_at,
        ended_at=step.ended_at,
    )


def _record(result: RunResult, registry: RegistryProtocol) -> None:
    logged = {StepStatus.executed, StepStatus.failed, StepStatus.cancelled}  # a partial log too
    records = {
        name: _step_record(
            step, _log_digest(registry, step.log_path) if step.status in logged else None
        )
        for name, step in result.steps.items()
    }
    error = result.error
    if error is not None and len(error) > ERROR_TEXT:  # the full text stays in the local record
        error = error[: ERROR_TEXT - 20] + "\n… (cut; see the logs)"
    finish = RunUpdate(status=result.status, ended_at=datetime.now(UTC), error=error)
    registry.record_steps(result.run_id, StepRunBatch(steps=records, finish=finish))


# --- after the run: the local state folder -------------------------------------------------


def save_local(
    result: RunResult, started: StartedRuns, state: StateDir, recorded: bool = False
) -> None:
    """Write what the run did to ``STATE/runs/<run id>.json``; ``recorded``: the registry
    holds it too."""
    index = started.run_ids.index(result.run_id)
    body = started.bodies[index]
    record = LocalRun(
        id=result.run_id,
        pipeline=result.pipeline,
        sweep_id=result.sweep_id,
        sweep_index=index,
        variant=result.variant,
        status=result.status,
        error=result.error,
        spec=body.spec,
        lock=body.lock,
        created_at=started.created_at,
        ended_at=datetime.now(UTC),
        steps={name: _step_record(step, None) for name, step in result.steps.items()},
        logs={name: step.log_path for name, step in result.steps.items() if step.log_path},
        warnings=result.warnings,
        recorded=recorded,
    )
    state.save_run(record)
