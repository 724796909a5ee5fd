"""``LocalExecutor``: each step its own process on this machine, in a fresh scratch folder.

Per job: a fresh folder ``SCRATCH/<random>/`` with ``work/`` (a copy of the module sources,
the process's working directory), ``in/`` (inputs materialised from the artifact store),
``out/`` (fresh output paths), ``home/`` and ``tmp/`` (``$HOME``, ``$TMPDIR``) and
``metrics.json`` (``$MODREG_METRICS``); nothing else of the engine's environment is passed
(``executors.environment``). A module with an environment runs in its venv, built here first
if need be (``environments``): ``bin/`` first on ``PATH``, ``VIRTUAL_ENV`` set, and a leading
``python`` is the venv's. stdout and stderr
go to the job's log file. The process leads its own process group, so a timeout or Ctrl-C
kills it with everything it started; it also dies with the engine (``processes``), so a
killed run leaves no step running behind it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
from datetime import UTC, datetime
from pathlib import Path

from modreg.engine.errors import EnvironmentBuildError
from modreg.engine.executors.base import (
    Executor,
    JobContext,
    JobResult,
    StepJob,
    collect_outputs,
    fill_command,
    materialize_inputs,
    param_text,
    prepare_outputs,
    read_metrics,
)
from modreg.engine.executors.environment import job_environment
from modreg.engine.processes import death_signal, kill_group


class LocalExecutor(Executor):
    """Runs steps as local processes; the scheduler calls ``run`` from up to ``jobs`` threads."""

    def __init__(self, jobs: int | None = None) -> None:
        self.jobs = max(1, jobs or os.cpu_count() or 1)
        self._running: set[subprocess.Popen[bytes]] = set()
        self._lock = threading.Lock()
        self._preexec = death_signal()

    def __repr__(self) -> str:
        return f"LocalExecutor(jobs={self.jobs})"

    def run(self, job: StepJob, context: JobContext) -> JobResult:
        started = datetime.now(UTC)
        scratch = context.scratch_root / os.urandom(8).hex()
        try:
            result = self._run_in(job, context, scratch)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        result.started_at, result.ended_at = started, datetime.now(UTC)
        result.log_path = job.log_path
        return result

    def _run_in(self, job: StepJob, context: JobContext, scratch: Path) -> JobResult:
        if job.environment is None or not job.environment.builds:
            return self._run_with(job, context, scratch, None)
        if context.environments is None:
            error = "needs its module environment, and this run builds none (JobContext)"
            return JobResult(exit_code=None, error=error)
        try:
            with context.environments.activate(job.environment, job.log_path) as venv:
                return self._run_with(job, context, scratch, venv)
        except EnvironmentBuildError as exc:
            if context.cancelled.is_set():  # Ctrl-C stopped uv too
                return JobResult(exit_code=None, error="cancelled", cancelled=True)
            return JobResult(exit_code=None, error=str(exc))

    def _run_with(
        self, job: StepJob, context: JobContext, scratch: Path, venv: Path | None
    ) -> JobResult:
        """Run the job in ``venv`` (None: the engine's own interpreter)."""
        source = context.sources.ensure(job.source_sha256, job.step)
        shutil.copytree(source, scratch / "work", symlinks=True)
        paths = {
            "inputs": materialize_inputs(job, context.store, scratch / "in"),
            "outputs": prepare_outputs(job, scratch / "out"),
            "params": {name: param_text(value) for name, value in job.params.items()},
        }
        metrics_path = scratch / "metrics.json"
        env = job_environment(job.env, scratch, metrics_path)
        python = None
        if venv is not None:
            env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env['PATH']}"
            env["VIRTUAL_ENV"] = str(venv)
            python = str(venv / "bin" / "python")
        argv = fill_command(job.command, paths, python)
        exit_code, timed_out = self._spawn(argv, scratch / "work", env, job, context.cancelled)
        if context.cancelled.is_set():
            return JobResult(exit_code=exit_code, error="cancelled", cancelled=True)
        if timed_out:
            return JobResult(
                exit_code=exit_code, error=f"timed out after {job.timeout:g}s", timed_out=True
            )
        if exit_code != 0:
            return JobResult(exit_code=exit_code, error=f"exited with code {exit_code}")
        return self._finish(job, context, paths["outputs"], metrics_path)

    def _finish(
        self, job: StepJob, context: JobContext, outputs: dict[str, str], metrics_path: Path
    ) -> JobResult:
        try:
            refs = collect_outputs(job, context.store, outputs)
        except ValueError as exc:
            return JobResult(exit_code=0, error=str(exc))
        metrics, warning = read_metrics(metrics_path)
        if warning is None:
            return JobResult(exit_code=0, outputs=refs, metrics=metrics)
        if job.log_path is not None:
            with open(job.log_path, "a", encoding="utf-8") as log:
                log.write(f"[modreg] {warning}\n")
        return JobResult(exit_code=0, outputs=refs, metrics=metrics, warnings=[warning])

    def _spawn(
        self,
        argv: list[str],
        cwd: Path,
        env: dict[str, str],
        job: StepJob,
        cancelled: threading.Event,
    ) -> tuple[int, bool]:
        """Run the process to its end or timeout; (exit code, timed out)."""
        log_path = job.log_path or cwd.parent / "log.txt"
        with open(log_path, "ab") as log:
            if cancelled.is_set():
                return -signal.SIGTERM, False
            try:
                process = subprocess.Popen(
                    argv,
                    cwd=cwd,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=self._preexec,
                )
            except OSError as exc:
                log.write(f"[modreg] cannot start {argv[0]!r}: {exc}\n".encode())
                return 127, False
            with self._lock:
                self._running.add(process)
            try:
                return process.wait(timeout=job.timeout), False
            except subprocess.TimeoutExpired:
                kill_group(process)
                log.write(f"\n[modreg] killed after the {job.timeout:g}s timeout\n".encode())
                return process.returncode, True
            finally:
                with self._lock:
                    self._running.discard(process)

    def cancel(self) -> None:
        with self._lock:
            running = list(self._running)
        for process in running:
            kill_group(process)
