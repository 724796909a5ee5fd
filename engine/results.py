"""What a run produced, as Python objects: ``RunResult`` and ``StepResult``.

``RunResult.to_json()`` is the DESIGN.md shape of ``modreg run --json``; ``step(name)
.download(dest)`` writes a step's outputs (from the local store, or fetched from the
registry's blob API when they were computed elsewhere).
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from modreg.engine.errors import CorruptBlobError, MissingBlobError, StepFailedError
from modreg.engine.protocol import RegistryProtocol
from modreg.engine.staging import staged_folder
from modreg.engine.state import LocalRun
from modreg.engine.store import ArtifactStore
from modreg.registry.schemas import OutputRef, RunPublic, RunStatus, StepStatus


def ensure_local(store: ArtifactStore, registry: RegistryProtocol | None, ref: OutputRef) -> None:
    """Make every blob of an output present in ``store``, fetching from the registry."""
    _ensure_blob(store, registry, ref.digest)
    for digest in store.blobs_of(ref):
        _ensure_blob(store, registry, digest)


def _ensure_blob(store: ArtifactStore, registry: RegistryProtocol | None, digest: str) -> None:
    if store.has_blob(digest):
        return
    if registry is None:
        raise MissingBlobError(digest, f"blob {digest[:12]} is not in the local store")
    with tempfile.TemporaryDirectory(prefix="modreg-blob-") as temp:
        path = Path(temp) / digest
        try:
            registry.get_blob(digest, path)
        except Exception as exc:  # noqa: BLE001 - any failure means: not available
            raise MissingBlobError(digest, f"blob {digest[:12]} is not available: {exc}") from exc
        store.put_path(path, move=True)


def download_output(
    store: ArtifactStore, registry: RegistryProtocol | None, ref: OutputRef, dest: Path
) -> None:
    """Write one output to ``dest`` (a file or a folder), verified.

    A local blob found corrupt is dropped by the store; it is then fetched again from the
    registry in this same call, as a run does, each blob at most once.
    """
    refetched: set[str] = set()
    while True:
        try:
            ensure_local(store, registry, ref)
            store.materialize(ref, dest)
            return
        except CorruptBlobError as exc:
            if registry is None or exc.digest in refetched:
                raise
            refetched.add(exc.digest)
            _remove(dest)


def _remove(path: Path) -> None:
    """Whatever a failed attempt left at ``path`` (inside a staged folder)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def logs_command(run_id: str, step: str) -> str:
    """The command that prints the log a run kept of a step: what messages and run views
    name, since a log's path means nothing on another machine."""
    return f"modreg runs logs {run_id} {step}"


@dataclass(kw_only=True)
class StepResult:
    """One step of a run."""

    name: str
    status: StepStatus
    module: str
    version: str
    fingerprint: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, OutputRef] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    reused_from: str | None = None
    explain: str | None = None
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    exit_code: int | None = None
    log_path: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    _store: ArtifactStore | None = field(default=None, repr=False)
    _registry: RegistryProtocol | None = field(default=None, repr=False)

    @property
    def seconds(self) -> float | None:
        """How long the step's process ran in this run; None when it did not run here (a
        reused step's time is its source run's)."""
        if not self.has_log or self.started_at is None or self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()

    @property
    def has_log(self) -> bool:
        """Whether this run made a log of the step: it ran here, if only until cancelled (a
        reused step's log is its source run's)."""
        if self.status == StepStatus.cancelled:
            return self.started_at is not None
        return self.status in (StepStatus.executed, StepStatus.failed)

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "module": self.module,
            "version": self.version,
            "fingerprint": self.fingerprint,
            "params": self.params,
            "outputs": {name: ref.digest for name, ref in self.outputs.items()},
            "metrics": self.metrics,
            "reused_from": self.reused_from,
            "seconds": self.seconds,
            "error": self.error,
            "warnings": self.warnings,
        }

    def download(self, dest: Path | str) -> dict[str, Path]:
        """Write each output to ``dest/<output>``, all or nothing; the paths written.

        ``dest`` must be absent or an empty folder. A step that did not succeed has no
        outputs: ``StepFailedError`` says why.
        """
        if self.status not in (StepStatus.executed, StepStatus.reused):
            reason = self.error or self.status.value
            raise StepFailedError(
                self.name, f"has no outputs to download ({reason})", self.log_path, ""
            )
        if self._store is None:
            raise MissingBlobError("", f"step {self.name!r} has no artifact store to read from")
        with staged_folder(Path(dest)) as staged:
            for name, ref in self.outputs.items():
                download_output(self._store, self._registry, ref, staged / name)
        return {name: Path(dest) / name for name in self.outputs}


@dataclass(kw_only=True)
class RunResult:
    """One pipeline run (one variant of a sweep)."""

    run_id: str
    pipeline: str
    status: RunStatus
    steps: dict[str, StepResult]
    variant: dict[str, Any] = field(default_factory=dict)
    sweep_id: str | None = None
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    local: bool = False  # only this machine holds the run (the registry does not)

    def step(self, name: str) -> StepResult:
        return self.steps[name]

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "run": self.run_id,
            "status": self.status.value,
            "steps": {name: self._step_json(name, step) for name, step in self.steps.items()},
            "local": self.local,
        }
        if self.sweep_id is not None:
            body["variant"] = self.variant
        return body

    def logs_command(self, step: str) -> str:
        """The command that prints a step's log, wherever the run is read."""
        return logs_command(self.run_id, step)

    def _step_json(self, name: str, step: StepResult) -> dict[str, Any]:
        return {**step.to_json(), "logs": self.logs_command(name) if step.has_log else None}

    @classmethod
    def from_public(
        cls,
        run: RunPublic | LocalRun,
        store: ArtifactStore | None = None,
        registry: RegistryProtocol | None = None,
    ) -> RunResult:
        """A RunResult from a run record: the registry's (``runs show``, ``download``), or
        this machine's for a run the registry does not hold (``local``)."""
        logs = run.logs if isinstance(run, LocalRun) else {}
        steps = {
            name: StepResult(
                name=name,
                status=record.status,
                module=record.module,
                version=record.version,
                fingerprint=record.fingerprint,
                params=dict(record.params),
                outputs=dict(record.outputs),
                metrics=dict(record.metrics),
                reused_from=record.reused_from,
                explain=record.explain,
                error=record.error,
                warnings=list(record.warnings),
                exit_code=record.exit_code,
                log_path=logs.get(name),
                started_at=record.started_at,
                ended_at=record.ended_at,
                _store=store,
                _registry=registry,
            )
            for name, record in run.steps.items()
        }
        return cls(
            run_id=run.id,
            pipeline=run.pipeline,
            status=run.status,
            steps=steps,
            variant=dict(run.variant),
            sweep_id=run.sweep_id,
            error=run.error,
            warnings=list(run.warnings) if isinstance(run, LocalRun) else [],
            local=isinstance(run, LocalRun) and run.local,
        )


def sweep_status(runs: list[RunResult]) -> RunStatus:
    """A sweep's status from its runs': ``cancelled`` when one was interrupted (the rest may
    never have started), ``succeeded`` when all did, else ``failed``."""
    statuses = {run.status for run in runs}
    if RunStatus.cancelled in statuses:
        return RunStatus.cancelled
    return RunStatus.succeeded if statuses == {RunStatus.succeeded} else RunStatus.failed


@dataclass
class SweepResult:
    """A pipeline with variants: one RunResult per combination."""

    sweep_id: str | None
    status: RunStatus
    runs: list[RunResult]

    def to_json(self) -> dict[str, Any]:
        return {
            "sweep": self.sweep_id,
            "status": self.status.value,
            "runs": [{**run.to_json(), "variant": run.variant} for run in self.runs],
        }
