"""The records of a run: in the registry (the team's history) and in the local state folder.

Before the scheduler starts, ``start_runs`` creates the run records (one sweep holding them
when there are variants) and so learns the run ids; offline the ids are local
(``local-…``, ``local-s-…``). After it ends, ``record_runs`` sends every step of each run
and its end in one call per run (the runs of a sweep side by side), and ``save_local``
writes what each run did to ``STATE/runs/<run id>.json``. A registry that fails to record
never fails a run whose steps are done: the run says so in a warning.
"""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from modreg.engine.plan import Plan, PlannedRun
from modreg.engine.protocol import RegistryProtocol
from modreg.engine.results import RunResult, StepResult
from modreg.engine.spec import pipeline_to_dict
from modreg.engine.workspace import Workspace
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


def start_runs(
    plan: Plan, registry: RegistryProtocol | None, sweep: bool
) -> tuple[str | None, list[str]]:
    """Create the sweep (when ``sweep``) and run records; local ids without a registry."""
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


def record_runs(results: list[RunResult], registry: RegistryProtocol) -> None:
    """Record every run's steps and end; a failure becomes a warning of the runs."""
    try:
        _record_all(results, registry)
    except Exception as exc:  # noqa: BLE001 - the steps are done and cached locally
        for result in results:
            result.warnings.append(f"run {result.run_id} could not be recorded: {exc}")


def _record_all(results: list[RunResult], registry: RegistryProtocol) -> None:
    """Record the runs of a sweep side by side: each is its own few round trips."""
    if len(results) == 1:
        _record(results[0], registry)
        return
    with ThreadPoolExecutor(max_workers=RECORD_THREADS) as pool:
        for done in [pool.submit(_record, r, registry) for r in results]:
            done.result()


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
        reused_from=step.reused_from,
        outputs=step.outputs,
        metrics=step.metrics,
        exit_code=step.exit_code,
        error=step.error,
        explain=step.explain,
        log_digest=log_digest,
        started_at=step.started_at,
        ended_at=step.ended_at,
    )


def _record(result: RunResult, registry: RegistryProtocol) -> None:
    logged = {StepStatus.executed, StepStatus.failed}
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


def save_local(result: RunResult, workspace: Workspace) -> None:
    """Write what the run did to ``STATE/runs/<run id>.json``."""
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
