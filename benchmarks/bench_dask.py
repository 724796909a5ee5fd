"""The Dask executor: a fan-out on a 2-worker cluster, and what it adds to each task.

- fan-out 1 -> 50 -> 1 (bench_engine's fan: tiny Python steps on 1 MiB blobs), run with
  ``modreg run --no-reuse`` as a fresh user: on a local 2-worker cluster (``dask scheduler``
  plus two single-threaded ``dask worker`` processes, tests/dask_cluster.py) with a shared
  ``file://`` store, against the local executor with ``--jobs 2``. Both share the machine's
  two cores with the registry. Aim: within 1.3x.
- per-task overhead: one tiny step (a Python process writing one small file), run ``--tasks``
  times in a row through ``DaskExecutor.run`` (sources, scratch folder, log, cancel event,
  store round trip) against a bare ``client.submit`` of a function that starts the same
  process; the median per task of each, and their difference. Aim: under 20 ms a step on top.

    .venv/bin/python benchmarks/bench_dask.py [--repeat 3] [--tasks 40]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_engine import (  # noqa: E402
    MIB,
    PYTHON,
    Runner,
    fan_pipeline,
    make_repo,
    manifest,
    new_team,
    publish_modules,
)
from dask_cluster import Cluster, start_cluster  # noqa: E402
from registry_servers import start_server, stop_server  # noqa: E402

TINY = "import sys\nopen(sys.argv[-1], 'w').write('x')\n"


def fan_figures(
    runner: Runner, cluster: Cluster, work: Path, repeat: int
) -> tuple[float, float, float]:
    """Median seconds of the fan-out: local --jobs 2 (its own store, then the shared
    ``file://`` one, which sharing with the registry reads back), and on the cluster."""
    fan = fan_pipeline(work)
    store = ["--store", f"file://{work / 'shared'}"]
    dask_args = ["--executor", cluster.executor, *store]
    runner.run(runner.fresh_user(), fan, "--no-reuse", *dask_args)  # workers pull sources once
    local, local_shared, remote = [], [], []
    for _ in range(repeat):
        local.append(runner.run(runner.fresh_user(), fan, "--no-reuse", "--jobs", "2"))
        local_shared.append(
            runner.run(runner.fresh_user(), fan, "--no-reuse", "--jobs", "2", *store)
        )
        remote.append(runner.run(runner.fresh_user(), fan, "--no-reuse", *dask_args))
    return (
        statistics.median(local),
        statistics.median(local_shared),
        statistics.median(remote),
    )


def publish_tiny(work: Path, url: str, token: str) -> str:
    """``bench/tiny``: its archive's sha256."""
    from modreg.client.config import ClientConfig
    from modreg.client.http import RegistryClient
    from modreg.client.publishing import publish

    files = {"tiny.py": TINY, "modreg.toml": manifest("bench/tiny", [], "tiny.py", False)}
    with RegistryClient.from_config(ClientConfig(url, token)) as client:
        publish(client, make_repo(work / "repos", "bench/tiny", files))
        [found] = client.resolve(["bench/tiny@^1"])
    assert found.version is not None
    return found.version.sha256


def _bare(python: str, script: str, out: str) -> int:
    """What a bare task does: the same process, nothing else."""
    return subprocess.run([python, script, out], check=True).returncode


def overhead_figures(
    cluster: Cluster, work: Path, url: str, sha256: str, tasks: int
) -> tuple[float, float]:
    """Median seconds per task: through DaskExecutor.run, and a bare client.submit."""
    from distributed import Client

    from modreg.client.worker_access import RegistryAccess
    from modreg.engine.executors.base import JobContext, StepJob
    from modreg.engine.executors.dask import DaskExecutor
    from modreg.engine.sources import SourceCache
    from modreg.engine.store import FsspecArtifactStore
    from modreg.registry.schemas import PortType

    script = work / "tiny.py"
    script.write_text(TINY)
    with Client(cluster.address) as client:
        executor = DaskExecutor(client, RegistryAccess(url))
        store = FsspecArtifactStore(f"file://{work / 'shared'}")
        context = JobContext(store, SourceCache(work / "sources", None), work / "scratch")
        job = StepJob(
            step="tiny",
            command=["python", "tiny.py", "{outputs.out}"],
            source_sha256=sha256,
            inputs={},
            params={},
            outputs={"out": PortType.file},
            log_path=work / "tiny.log",
        )
        modreg, bare = [], []
        for index in range(tasks + 2):  # the first two warm each worker up
            start = time.perf_counter()
            result = executor.run(job, context)
            assert result.ok, result.error
            elapsed = time.perf_counter() - start
            if index >= 2:
                modreg.append(elapsed)
            start = time.perf_counter()
            out = str(work / f"bare-{index}")
            client.submit(_bare, PYTHON, str(script), out, pure=False).result()
            if index >= 2:
                bare.append(time.perf_counter() - start)
        executor.close()
    return statistics.median(modreg), statistics.median(bare)


def report(fan: tuple[float, float, float], overhead: tuple[float, float], tasks: int) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="modreg Dask executor (median seconds)", header_style="bold")
    for column in ("workload", "dask", "against", "seconds", "ratio / difference", "aim"):
        table.add_column(column)
    local, local_shared, remote = fan
    table.add_row(
        "fan 1->50->1, 2 workers",
        f"{remote:.3f}",
        "local --jobs 2",
        f"{local:.3f}",
        f"{remote / local:.2f}x",
        "<= 1.3x",
    )
    table.add_row(
        "",
        "",
        "the same, --store file://",
        f"{local_shared:.3f}",
        f"{remote / local_shared:.2f}x",
        "",
    )
    step, bare = overhead
    table.add_row(
        f"one tiny step (x{tasks})",
        f"{step * 1000:.1f} ms",
        "bare client.submit",
        f"{bare * 1000:.1f} ms",
        f"+{(step - bare) * 1000:.1f} ms",
        "< +20 ms",
    )
    Console(width=max(120, Console().width)).print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tasks", type=int, default=40)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="modreg-bench-dask-"))
    server = start_server(work / "registry")
    cluster = None
    try:
        token = new_team(server.url, server.admin_token, "bench")
        publish_modules(work, server.url, token)
        sha256 = publish_tiny(work, server.url, token)
        (work / "raw.bin").write_bytes(bytes(range(256)) * (MIB // 256))
        cluster = start_cluster(work / "cluster", 2, {"MODREG_TOKEN": server.admin_token})
        runner = Runner(server.url, server.admin_token, work)
        fan = fan_figures(runner, cluster, work, args.repeat)
        overhead = overhead_figures(cluster, work, server.url, sha256, args.tasks)
        report(fan, overhead, args.tasks)
    finally:
        if cluster is not None:
            cluster.stop()
        stop_server(server.process)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
