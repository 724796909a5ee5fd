"""``DaskExecutor``: each step one task on a Dask distributed cluster (the only module that
imports ``distributed``: ``pip install 'modreg[dask]'``).

The engine keeps scheduling, retries and cancellation; Dask only places processes. A task
(``run_on_worker``) runs on a worker with the worker's own state folder, registry access and
credentials — from ``WorkerAccess``, a picklable factory the caller hands in (the engine cannot
import the client), which reads ``MODREG_TOKEN`` and ``AWS_*`` from the *worker's* environment,
never from the task. There the job is run by a ``LocalExecutor``, exactly as on a laptop:
sources fetched by digest into the worker's source cache, the module environment built in the
worker's state folder, inputs read from and outputs written to the shared artifact store,
scratch folder, log, metrics, timeout. The task returns only the outputs' digests, the
metrics and the log, itself put into the shared store; the engine copies that log into the
run's log file, so ``modreg runs logs`` and failure messages work as for a local step. The
variables a step declares (``[module] env``) come from the worker's environment too.

Lost workers: the scheduler's ``allowed-failures`` is set to 0, so Dask never runs a task a
second time by itself; a task lost with its worker fails with ``KilledWorker`` and the engine
submits it again (``LOST_WORKER_RESUBMITS`` times; not counted against ``retries``). The step's
process dies with its worker (``processes.death_signal``), so it never runs twice at once.

A step's ``resources`` (cpus, memory in bytes, GPU) are the task's Dask resources: only a
worker started with ``--resources`` that covers them takes it, and a step that no connected
worker could ever take fails at once instead of waiting forever. A user's input path is put
into the shared store first (the workers do not see the engine's files).

Ctrl-C: cancelling a future does not stop a running process, so every task waits on its own
``distributed.Event``; ``cancel`` sets the events of the running tasks, and each task kills its
process group within ``CANCEL_POLL_SECONDS`` plus the kill grace.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import distributed

from modreg.engine.environments import Environments, uv_environment
from modreg.engine.executors.base import Executor, JobContext, JobResult, StepJob
from modreg.engine.executors.environment import passed_environment
from modreg.engine.executors.local import LocalExecutor
from modreg.engine.processes import KILL_GRACE_SECONDS
from modreg.engine.protocol import RegistryProtocol
from modreg.engine.sources import SourceCache
from modreg.engine.state import StateDir
from modreg.engine.store import ArtifactStore, FsspecArtifactStore
from modreg.registry.schemas import OutputRef, PortType

SCHEME = "dask://"
CANCEL_POLL_SECONDS = 1.0  # each poll is a long-poll on the scheduler
LOST_WORKER_RESUBMITS = 3
# a running task answers a cancel within a poll and the kill grace (processes.kill_group)
CANCEL_GRACE_SECONDS = CANCEL_POLL_SECONDS + KILL_GRACE_SECONDS + 5


class WorkerAccess(Protocol):
    """What a worker uses in place of the engine's configuration; pickled into each task,
    so it holds no credential: the worker reads its own."""

    def registry(self) -> RegistryProtocol:
        """The registry, with the worker's token."""
        ...

    def state(self) -> StateDir:
        """The worker's own state folder."""
        ...


@dataclass(frozen=True)
class RemoteResult:
    """What a task sends back: the job's result, its log (a blob in the shared store) and
    where it ran."""

    result: JobResult
    log_digest: str | None
    worker: str
    pid: int


def scheduler_address(executor: str) -> str:
    """``dask://HOST:PORT`` as the ``tcp://HOST:PORT`` a Dask client connects to;
    ValueError for anything else."""
    if not executor.startswith(SCHEME) or not executor[len(SCHEME) :]:
        raise ValueError(f"expected 'local' or dask://HOST:PORT, got {executor!r}")
    return f"tcp://{executor[len(SCHEME) :]}"


class DaskExecutor(Executor):
    """Runs step jobs as tasks on a Dask cluster; ``run`` is called from several threads.

    ``access`` reaches the registry from the workers; without one, the workspace's registry
    is asked for it (``worker_access()``, which ``RegistryClient`` has).
    """

    def __init__(
        self,
        client_or_address: distributed.Client | str,
        access: WorkerAccess | None = None,
    ) -> None:
        if isinstance(client_or_address, str):
            self.client = distributed.Client(client_or_address, set_as_default=False)
            self._owns_client = True
        else:
            self.client, self._owns_client = client_or_address, False
        self.access = access
        self.on_this_machine = False
        self.client.run_on_scheduler(_no_dask_retries)
        self.jobs = max(1, sum(self.client.nthreads().values()))
        self._events: dict[str, distributed.Event] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"DaskExecutor({self.client.scheduler.address!r}, jobs={self.jobs})"

    def slots(self, resources: dict[str, float], jobs: int) -> int:
        """One: the cluster places each task by the resources its workers declare."""
        return 1

    def run(self, job: StepJob, context: JobContext) -> JobResult:
        if job.resources and not self._placeable(job.resources):
            error = (
                f"needs resources {_resources_text(job.resources)} and no worker of the Dask "
                "cluster declares them (dask worker --resources 'cpus=N,memory=BYTES,GPU=N')"
            )
            return JobResult(exit_code=None, error=error, log_path=job.log_path)
        store_url = shared_store_url(context.store)
        access = self.access or _access_of(context.sources.registry)
        remote_job = replace(job, inputs=_shared_inputs(job, context.store), env={}, log_path=None)
        for lost in range(LOST_WORKER_RESUBMITS + 1):
            if context.cancelled.is_set():
                return JobResult(exit_code=None, error="cancelled", cancelled=True)
            try:
                remote = self._submit(remote_job, access, store_url, context.cancelled)
            except distributed.KilledWorker:
                _note(job.log_path, f"its worker was lost (resubmission {lost + 1})")
                continue
            if remote is None:
                _note(job.log_path, "cancelled before a worker started it")
                return JobResult(exit_code=None, error="cancelled", cancelled=True)
            _copy_log(context.store, remote.log_digest, job.log_path)
            remote.result.log_path = job.log_path
            return remote.result
        error = f"lost its Dask worker {LOST_WORKER_RESUBMITS + 1} times"
        return JobResult(exit_code=None, error=error, log_path=job.log_path)

    def _submit(
        self, job: StepJob, access: WorkerAccess, store_url: str, cancelled: threading.Event
    ) -> RemoteResult | None:
        """One task to its end; its cancel event exists while it runs. None: cancelled, and
        the task had not answered ``CANCEL_GRACE_SECONDS`` later (it was still waiting for a
        worker: a queued task sees no event, so its future is cancelled instead)."""
        name = f"modreg-cancel-{uuid.uuid4().hex}"
        event = distributed.Event(name, client=self.client)
        with self._lock:
            self._events[name] = event
        try:
            future = self.client.submit(
                run_on_worker,
                job,
                access,
                store_url,
                name,
                key=f"modreg-{job.step}-{uuid.uuid4().hex[:12]}",
                pure=False,
                resources=job.resources or None,
            )
            return _result(future, cancelled)
        finally:
            with self._lock:
                self._events.pop(name, None)

    def _placeable(self, resources: dict[str, float]) -> bool:
        """Whether some worker declares at least ``resources`` (a task needing what none has
        would wait forever)."""
        workers = self.client.scheduler_info(n_workers=-1)["workers"].values()
        return any(
            all(worker.get("resources", {}).get(k, 0) >= v for k, v in resources.items())
            for worker in workers
        )

    def cancel(self) -> None:
        with self._lock:
            events = list(self._events.values())
        for event in events:
            with contextlib.suppress(Exception):  # a cluster gone already stops nothing
                event.set()

    def close(self) -> None:
        if self._owns_client:
            self.client.close()


def _result(
    future: distributed.Future[RemoteResult], cancelled: threading.Event
) -> RemoteResult | None:
    cancelled_at = None
    while True:
        try:
            remote: RemoteResult = future.result(timeout=CANCEL_POLL_SECONDS)
            return remote
        except TimeoutError:
            pass
        if not cancelled.is_set():
            continue
        cancelled_at = cancelled_at or time.monotonic()
        if time.monotonic() - cancelled_at > CANCEL_GRACE_SECONDS:
            future.cancel()
            return None


def shared_store_url(store: ArtifactStore) -> str:
    """The URL every worker opens the run's artifact store with; ValueError for a store
    only this machine sees."""
    if store.shared_url is not None:
        return store.shared_url
    raise ValueError(
        "the Dask executor needs an artifact store every worker reaches: "
        "--store URL (e.g. s3://bucket/prefix)"
    )


def _access_of(registry: RegistryProtocol | None) -> WorkerAccess:
    maker = getattr(registry, "worker_access", None)
    if maker is None:
        raise ValueError("the Dask executor needs the registry: give DaskExecutor(access=...)")
    access: WorkerAccess = maker()
    return access


def _no_dask_retries(dask_scheduler: Any) -> None:
    """A task lost with its worker is the engine's to resubmit: Dask must not run it again."""
    dask_scheduler.allowed_failures = 0


def _shared_inputs(job: StepJob, store: ArtifactStore) -> dict[str, OutputRef | Path]:
    """Inputs as store references: a path the user gave is put into the store first (the
    one time the engine moves data: workers do not see its files)."""
    shared: dict[str, OutputRef | Path] = {}
    for name, source in job.inputs.items():
        if isinstance(source, Path):
            kind = PortType.dir if source.is_dir() else PortType.file
            shared[name] = store.put_output(source, kind)
        else:
            shared[name] = source
    return shared


def _resources_text(resources: dict[str, float]) -> str:
    return ", ".join(f"{key}={value:g}" for key, value in sorted(resources.items()))


def _note(log_path: Path | None, text: str) -> None:
    if log_path is not None:
        with open(log_path, "a", encoding="utf-8") as log:
            log.write(f"[modreg] {text}\n")


def _copy_log(store: ArtifactStore, digest: str | None, log_path: Path | None) -> None:
    """Append the worker's log to the run's log of the step."""
    if digest is None or log_path is None:
        return
    with open(log_path, "ab") as log:
        log.write(store.read_bytes(digest))


# --- on the worker ------------------------------------------------------------------------


@dataclass
class _WorkerSide:
    """What a worker keeps between tasks: its registry client and caches."""

    state: StateDir
    store: ArtifactStore
    sources: SourceCache
    environments: Environments


_WORKER_SIDES: dict[tuple[WorkerAccess, str], _WorkerSide] = {}
_WORKER_LOCK = threading.Lock()


def _worker_side(access: WorkerAccess, store_url: str) -> _WorkerSide:
    with _WORKER_LOCK:
        side = _WORKER_SIDES.get((access, store_url))
        if side is None:
            state, registry = access.state(), access.registry()
            side = _WorkerSide(
                state,
                FsspecArtifactStore(store_url),
                SourceCache(state.sources, registry),
                Environments(state, uv_environment(os.environ), registry),
            )
            _WORKER_SIDES[(access, store_url)] = side
        return side


def run_on_worker(
    job: StepJob, access: WorkerAccess, store_url: str, cancel_name: str
) -> RemoteResult:
    """The task: run ``job`` here as the local executor does, until done or cancelled."""
    side = _worker_side(access, store_url)
    folder = side.state.root / "dask-logs"
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / f"{uuid.uuid4().hex}.log"
    log.write_bytes(b"")
    where = f"{socket.gethostname()} (dask worker {distributed.get_worker().address})"
    _note(log, f"running on {where}")
    local = replace(job, log_path=log, env=passed_environment(os.environ, job.env_names))
    executor = LocalExecutor(1)
    context = JobContext(side.store, side.sources, side.state.root / "scratch", side.environments)
    done = threading.Event()
    watcher = threading.Thread(
        target=_watch,
        # the worker's client named here: the watcher's thread has no task context to find it
        args=(
            distributed.Event(cancel_name, client=distributed.get_client()),
            done,
            context,
            executor,
        ),
        daemon=True,
    )
    watcher.start()
    try:
        result = executor.run(local, context)
    finally:
        done.set()
    digest = side.store.put_path(log)[0]
    log.unlink(missing_ok=True)
    result.log_path = None
    return RemoteResult(result, digest, distributed.get_worker().address, os.getpid())


def _watch(
    event: distributed.Event,
    done: threading.Event,
    context: JobContext,
    executor: LocalExecutor,
) -> None:
    """Kill the job's process once the engine sets the task's cancel event."""
    while not done.is_set():
        try:
            cancelled = event.wait(timeout=CANCEL_POLL_SECONDS)
        except Exception:  # noqa: BLE001 - the scheduler went away: nobody can cancel now
            return
        if cancelled:
            context.cancelled.set()
            executor.cancel()
            return
