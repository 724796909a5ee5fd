"""A run's liveness in the registry: heartbeats while it runs, and closing the runs whose
engine died.

While the scheduler works, a ``Heartbeat`` thread tells the registry every ``interval``
seconds that each run is still ``running`` (a ``RunUpdate``; the registry stamps it) and
renews the engine's step leases (``leases.Leases``, one request for all of them): one loop
per engine, not one per step. A run whose engine was killed stops beating, and the registry
reads it ``abandoned`` once its ``run_heartbeat_timeout`` has passed; its leases expire and
another engine takes their steps over.

To close such a run for good, each recorded run leaves a marker ``STATE/open/<run id>.json``
(its pipeline) for as long as it is not recorded as ended, and its engine holds an ``flock``
on the marker while it lives. The next run of the same pipeline from this state folder
(``close_stale_runs``) takes every marker whose lock it can get — its engine is gone, since
the kernel drops a dead process's locks, so no pid can be mistaken — and closes the run: a
run that finished but could not be recorded (its registry went away) is recorded from its
local record; one killed mid-way is stored ``abandoned``. A marker is removed only once its
run is closed in the registry.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from modreg.engine.leases import Leases
from modreg.engine.protocol import RegistryProtocol
from modreg.engine.state import StateDir
from modreg.registry.schemas import RunStatus, RunUpdate, StepRunBatch


class Heartbeat:
    """Beats for ``run_ids`` and ``leases`` on a daemon thread from ``start`` to ``stop``."""

    def __init__(
        self,
        registry: RegistryProtocol,
        run_ids: list[str],
        interval: float,
        leases: Leases | None = None,
    ) -> None:
        self.registry = registry
        self.run_ids = list(run_ids)
        self.interval = interval
        self.leases = leases
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="modreg-heartbeat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join()

    def _beat(self) -> None:
        while not self._stopped.wait(self.interval):
            if self.leases is not None:
                with contextlib.suppress(Exception):  # a lease lives three beats
                    self.leases.renew()
            for run_id in self.run_ids:
                if self._stopped.is_set():
                    return
                with contextlib.suppress(Exception):  # a missed beat is not a failed run
                    self.registry.update_run(run_id, RunUpdate(status=RunStatus.running))


@dataclass
class OpenRuns:
    """The markers this engine holds (locked) for its runs; see the module docstring."""

    folder: Path
    held: dict[str, IO[str]] = field(default_factory=dict)

    def hold(self, run_id: str, pipeline: str) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        handle = open(self.folder / f"{run_id}.json", "w", encoding="utf-8")  # noqa: SIM115
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.write(json.dumps({"pipeline": pipeline}))
        handle.flush()
        self.held[run_id] = handle

    def release(self, recorded: set[str]) -> None:
        """Let go of every marker; those of ``recorded`` runs are closed, so removed."""
        for run_id, handle in self.held.items():
            if run_id in recorded:
                with contextlib.suppress(FileNotFoundError):
                    (self.folder / f"{run_id}.json").unlink()
            handle.close()
        self.held.clear()


def open_runs(state: StateDir) -> OpenRuns:
    return OpenRuns(state.root / "open")


@contextlib.contextmanager
def _if_abandoned(path: Path) -> Iterator[str | None]:
    """The pipeline of a marker whose engine is gone (locked for the caller), else None."""
    try:
        handle = open(path, encoding="utf-8")  # noqa: SIM115
    except FileNotFoundError:
        yield None
        return
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield None  # its engine is alive
            return
        try:
            pipeline = json.loads(handle.read() or "null")
        except ValueError:
            pipeline = None
        yield pipeline.get("pipeline") if isinstance(pipeline, dict) else None


def close_stale_runs(
    state: StateDir, registry: RegistryProtocol, pipelines: set[str], closer: str
) -> list[str]:
    """Close the runs of ``pipelines`` whose engine died; warnings for those that failed."""
    warnings = []
    for path in sorted((state.root / "open").glob("*.json")):
        with _if_abandoned(path) as pipeline:
            if pipeline not in pipelines:
                continue
            run_id = path.stem
            try:
                _close(state, registry, run_id, closer)
            except Exception as exc:  # noqa: BLE001 - the next run tries again
                warnings.append(f"could not close the abandoned run {run_id}: {exc}")
                continue
            path.unlink()
    return warnings


def _close(state: StateDir, registry: RegistryProtocol, run_id: str, closer: str) -> None:
    finished = state.load_run(run_id)
    if finished is not None:  # it ended, but its registry could not record it then
        finish = RunUpdate(status=finished.status, ended_at=finished.ended_at, error=finished.error)
        registry.record_steps(run_id, StepRunBatch(steps=finished.steps, finish=finish))
        state.save_run(finished.model_copy(update={"recorded": True}))
        return
    error = f"abandoned: the engine running it stopped; closed by run {closer}"
    update = RunUpdate(status=RunStatus.abandoned, ended_at=datetime.now(UTC), error=error)
    registry.update_run(run_id, update)
