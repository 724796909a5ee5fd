"""A real Dask cluster on loopback for the Dask executor's tests and benchmark: a
``dask scheduler`` and ``dask worker`` processes, each worker with its own HOME and state
folder (``XDG_CACHE_HOME``), its own registry token (``MODREG_TOKEN``) and the step counter.

Two cores are shared by everything: heartbeats and timeouts are generous, and workers run
without a nanny (a test that kills one replaces it with ``replace``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from registry_servers import free_port

DASK = Path(sys.executable).with_name("dask")
GENEROUS = {
    "DASK_DISTRIBUTED__SCHEDULER__WORKER_TTL": "600s",
    "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "60s",
    "DASK_DISTRIBUTED__COMM__TIMEOUTS__TCP": "600s",
    "DASK_DISTRIBUTED__WORKER__HEARTBEAT_INTERVAL": "2s",
    "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0",
}


@dataclass
class Cluster:
    """The processes of one cluster; ``workers`` maps a worker's pid to its folder."""

    root: Path
    address: str
    worker_env: dict[str, str]
    scheduler: subprocess.Popen[bytes]
    workers: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)
    folders: dict[int, Path] = field(default_factory=dict)
    resources: dict[str, str] = field(default_factory=dict)  # worker name -> --resources

    @property
    def executor(self) -> str:
        return "dask://" + self.address.removeprefix("tcp://")

    def start_worker(self, name: str) -> int:
        folder = self.root / name
        (folder / "home").mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            **GENEROUS,
            **self.worker_env,
            "HOME": str(folder / "home"),
            "XDG_CACHE_HOME": str(folder / "cache"),
            "XDG_CONFIG_HOME": str(folder / "config"),
        }
        command = [str(DASK), "worker", self.address, "--name", name, "--nthreads", "1"]
        command += ["--no-nanny", "--no-dashboard", "--local-directory", str(folder / "dask")]
        command += ["--host", "127.0.0.1"]
        if name in self.resources:
            command += ["--resources", self.resources[name]]
        with open(folder / "worker.log", "ab") as log:
            process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.workers[process.pid], self.folders[process.pid] = process, folder
        return process.pid

    def wait_for_workers(self, count: int, timeout: float = 120) -> None:
        from distributed import Client

        with Client(self.address, timeout=60) as client:
            client.wait_for_workers(count, timeout=timeout)

    def replace(self, pid: int) -> None:
        """SIGKILL worker ``pid`` (mid-step, say) and start another in its folder."""
        process = self.workers.pop(pid)
        folder = self.folders.pop(pid)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        self.start_worker(folder.name)

    def stop(self) -> None:
        """Workers first (one that loses its scheduler first waits for it to come back)."""
        for group in (list(self.workers.values()), [self.scheduler]):
            for process in group:
                process.send_signal(signal.SIGTERM)
            for process in group:
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=15)


def start_cluster(
    root: Path, workers: int, worker_env: dict[str, str], resources: dict[str, str] | None = None
) -> Cluster:
    """A scheduler and ``workers`` workers (``w0``, ``w1``…), all connected; ``resources``
    are the ``--resources`` of some of them, by name."""
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    command = [str(DASK), "scheduler", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--no-dashboard"]
    with open(root / "scheduler.log", "ab") as log:
        scheduler = subprocess.Popen(
            command, env={**os.environ, **GENEROUS}, stdout=log, stderr=subprocess.STDOUT
        )
    cluster = Cluster(root, f"tcp://127.0.0.1:{port}", worker_env, scheduler)
    cluster.resources = dict(resources or {})
    try:
        _wait_listening(port, scheduler)
        for index in range(workers):
            cluster.start_worker(f"w{index}")
        cluster.wait_for_workers(workers)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _wait_listening(port: int, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"dask scheduler exited with {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"dask scheduler not listening on {port}")
