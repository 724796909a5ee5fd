"""The Dask executor on a real cluster: a ``dask scheduler`` and two ``dask worker`` processes
on loopback (tests/dask_cluster.py), one per test session, each worker with its own HOME,
state folder and registry token. The artifact store is a bucket on the session's moto S3
server (tests/s3_server.py), which the workers reach with their own ``AWS_*`` variables.

Steps write ``TEAM/NAME PPID HOME`` to the session's counter (the workers' own
``TEST_STEP_COUNTER``: a step's declared variables come from its worker), which shows how
often each ran and that it ran as a child of a worker process, in that worker's folder.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from dask_cluster import Cluster, start_cluster
from engine_env import EngineEnv, Server
from registry_servers import start_server, stop_server
from s3_server import S3Server

from modreg.engine import (
    FsspecArtifactStore,
    ModuleStep,
    Pipeline,
    RunOptions,
    StateDir,
    Workspace,
    run_pipeline,
)
from modreg.engine.executors.dask import DaskExecutor

pytestmark = pytest.mark.slow

STEP = """\
import os, sys, time
from pathlib import Path
args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
args = {{k.lstrip("-"): v for k, v in args.items()}}
if args.get("started"):
    Path(args["started"]).write_text(f"{{os.getpid()}} {{os.getppid()}}")
time.sleep(float(args.get("sleep") or 0))
text = "|".join(Path(args[n]).read_text() for n in sorted(args) if n.startswith("in"))
Path(args["out"]).write_text(text + "|" + args.get("tag", "") + "|{name}")
with open(os.environ["TEST_STEP_COUNTER"], "a") as counter:
    counter.write(f"{team}/{name} {{os.getppid()}} {{os.environ['HOME']}}\\n")
"""
PARAMS = {
    "tag": {"type": "str", "default": ""},
    "sleep": {"type": "float", "default": 0.0},
    "started": {"type": "str", "default": ""},
}


@pytest.fixture(scope="session")
def dask_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    handle = start_server(tmp_path_factory.mktemp("dask-registry"))
    try:
        yield Server(handle.url, handle.admin_token)
    finally:
        stop_server(handle.process)


@pytest.fixture(scope="session")
def cluster(
    dask_server: Server, s3_server: S3Server, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("dask-cluster")
    worker_env = {"MODREG_TOKEN": dask_server.admin, "TEST_STEP_COUNTER": str(root / "counter")}
    worker_env.update(s3_server.environ)  # the workers' own credentials for the store
    cluster = start_cluster(root, 2, worker_env, {"w1": "cpus=2,memory=4e9"})
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def engine_server(dask_server: Server) -> Server:
    """The workers' registry: their token reads every team's modules."""
    return dask_server


def executions(env: EngineEnv, cluster: Cluster) -> list[tuple[str, int, str]]:
    """(step, parent pid, HOME) of each step this test's team ran to its end."""
    counter = Path(cluster.worker_env["TEST_STEP_COUNTER"])
    lines = counter.read_text().splitlines() if counter.exists() else []
    found = [line.split(" ") for line in lines if line.startswith(f"{env.team}/")]
    return [(name.split("/", 1)[1], int(ppid), home) for name, ppid, home in found]


def module(env: EngineEnv, name: str, inputs: dict[str, str], **extra: object) -> None:
    body = STEP.format(name=name, team=env.team)
    env.module(name, inputs=inputs, params=PARAMS, files={"main.py": body}, module_extra=extra)


def fan_out(env: EngineEnv, branches: int, sleep: float = 0.0) -> Path:
    """src -> b (once per tag) -> join, reading every branch."""
    module(env, "src", {"in": "file"})
    module(env, "b", {"in": "file"})
    module(env, "join", {f"in{i}": "file" for i in range(branches)})
    (env.root / "work").mkdir(exist_ok=True)
    (env.root / "work" / "raw.txt").write_text("raw")
    lines = [
        "name: fan",
        "steps:",
        "  src:",
        "    uses: TEAM/src@^1.0",
        "    inputs: {in: raw.txt}",
    ]
    for i in range(branches):
        lines += [f"  b{i}:", "    uses: TEAM/b@^1.0", "    inputs: {in: src.outputs.out}"]
        lines += [f"    params: {{tag: t{i}, sleep: {sleep}}}"]
    joined = ", ".join(f"in{i}: b{i}.outputs.out" for i in range(branches))
    lines += ["  join:", "    uses: TEAM/join@^1.0", f"    inputs: {{{joined}}}"]
    return env.pipeline("\n".join(lines) + "\n")


def slow_one(env: EngineEnv, started: Path, sleep: float) -> Path:
    module(env, "slow", {"in": "file"})
    (env.root / "work").mkdir(exist_ok=True)
    (env.root / "work" / "raw.txt").write_text("raw")
    return env.pipeline(
        "name: slow\nsteps:\n  slow:\n    uses: TEAM/slow@^1.0\n    inputs: {in: raw.txt}\n"
        f"    params: {{sleep: {sleep}, started: {json.dumps(str(started))}}}\n"
    )


@pytest.fixture
def dask_args(cluster: Cluster, s3_server: S3Server) -> list[str]:
    """``modreg run``'s options for the cluster, with a fresh S3 bucket as the store."""
    return ["--executor", cluster.executor, "--store", f"s3://{s3_server.bucket()}/artifacts"]


def wait_for(path: Path, timeout: float = 120) -> str:
    """The text a step wrote to ``path`` once it started."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text():
            return path.read_text()
        time.sleep(0.1)
    raise TimeoutError(f"{path} never appeared")


def test_fan_out_runs_on_the_workers_with_the_local_executors_digests(
    env: EngineEnv, cluster: Cluster, dask_args: list[str]
) -> None:
    pipeline = fan_out(env, 3)
    result = env.run("run", pipeline, "--json", *dask_args)
    assert result.exit_code == 0, result.output
    remote = json.loads(result.stdout)
    ran = executions(env, cluster)
    assert Counter(name for name, _, _ in ran) == {"src": 1, "b": 3, "join": 1}
    folders = dict(cluster.folders)
    for _, ppid, home in ran:  # a child of a worker process, at home in that worker's folder
        assert ppid in folders and ppid != os.getpid()
        assert Path(home).is_relative_to(folders[ppid] / "cache" / "modreg" / "engine")
    assert not list((env.state() / "sources").glob("*.tar.gz")), "the workers pull sources"
    local = env.run("run", pipeline, "--json", "--no-reuse", user="bob")
    assert local.exit_code == 0, local.output
    steps = json.loads(local.stdout)["steps"]
    assert {name: step["outputs"] for name, step in steps.items()} == {
        name: step["outputs"] for name, step in remote["steps"].items()
    }
    logs = env.run("runs", "logs", remote["run"], "b1")
    assert logs.exit_code == 0 and "running on" in logs.stdout and "dask worker" in logs.stdout


def test_a_step_whose_worker_is_killed_runs_again_and_is_recorded_once(
    env: EngineEnv, cluster: Cluster, dask_args: list[str]
) -> None:
    started = env.root / "started"
    pipeline = slow_one(env, started, 4)
    process = env.spawn("run", pipeline, "--json", *dask_args)
    _, worker = map(int, wait_for(started).split())
    started.unlink()
    cluster.replace(worker)
    out, err = process.communicate(timeout=180)
    assert process.returncode == 0, err
    body = json.loads(out)
    assert body["steps"]["slow"]["status"] == "executed"
    assert [name for name, _, _ in executions(env, cluster)] == ["slow"]
    logs = env.run("runs", "logs", body["run"], "slow")
    assert "its worker was lost" in logs.stdout
    cluster.wait_for_workers(2)


def test_ctrl_c_kills_the_step_processes_on_the_workers(
    env: EngineEnv, cluster: Cluster, dask_args: list[str]
) -> None:
    started = env.root / "started"
    pipeline = slow_one(env, started, 600)
    process = env.spawn("run", pipeline, *dask_args)
    pid, _ = map(int, wait_for(started).split())
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    with pytest.raises(ProcessLookupError):  # killed and reaped by its worker
        os.kill(pid, 0)
    assert executions(env, cluster) == []


def test_the_dask_executor_needs_a_shared_store(env: EngineEnv, cluster: Cluster) -> None:
    pipeline = fan_out(env, 1)
    result = env.run("run", pipeline, MODREG_EXECUTOR=cluster.executor)
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        f"error: --executor {cluster.executor} needs an artifact store every worker reaches: "
        "--store URL (or MODREG_STORE)"
    ]
    wrong = env.run("run", pipeline, "--executor", "dask:/nowhere")
    assert wrong.exit_code == 2 and "expected 'local' or dask://HOST:PORT" in wrong.stderr


def test_resources_place_a_step_on_a_worker_that_declares_them(
    env: EngineEnv, cluster: Cluster, dask_args: list[str]
) -> None:
    module(env, "big", {"in": "file"}, resources={"cpus": 2, "memory": "1GiB"})
    module(env, "gpu", {"in": "file"}, resources={"GPU": 1})
    (env.root / "work").mkdir(exist_ok=True)
    (env.root / "work" / "raw.txt").write_text("raw")
    steps = ["name: res", "steps:"]
    for index in range(3):  # the manifest's resources, and a pipeline step's override
        steps += [f"  big{index}:", "    uses: TEAM/big@^1.0", "    inputs: {in: raw.txt}"]
        steps += [f"    params: {{tag: t{index}}}"]
    steps += ["  gpu:", "    uses: TEAM/gpu@^1.0", "    inputs: {in: raw.txt}"]
    steps += ["  fits:", "    uses: TEAM/gpu@^1.0", "    inputs: {in: raw.txt}"]
    steps += ["    params: {tag: fits}", "    resources: {GPU: 1, cpus: 1}"]
    pipeline = env.pipeline("\n".join(steps) + "\n")
    result = env.run("run", pipeline, "--json", *dask_args)
    assert result.exit_code == 1
    body = json.loads(result.stdout)["steps"]
    assert body["gpu"]["status"] == "failed"
    assert body["gpu"]["error"] == (
        "needs resources GPU=1 and no worker of the Dask cluster declares them "
        "(dask worker --resources 'cpus=N,memory=BYTES,GPU=N')"
    )
    assert body["fits"]["status"] == "failed" and "GPU=1, cpus=1" in body["fits"]["error"]
    ran = executions(env, cluster)
    assert [name for name, _, _ in ran] == ["big"] * 3
    declaring = {pid for pid, folder in cluster.folders.items() if folder.name == "w1"}
    assert {ppid for _, ppid, _ in ran} == declaring


def test_the_python_api_hands_the_workspace_a_dask_executor(
    env: EngineEnv, cluster: Cluster, tmp_path: Path
) -> None:
    """``DaskExecutor(address)`` alone: the workers reach the registry the workspace's client
    names (``worker_access``), with their own token."""
    module(env, "src", {"in": "file"})
    (tmp_path / "raw.txt").write_text("raw")
    step = ModuleStep(f"{env.team}/src@^1", inputs={"in": "raw.txt"}, params={"tag": "api"})
    pipeline = Pipeline("api", {"src": step}, base_dir=tmp_path)
    state = StateDir(tmp_path / "state")
    store = FsspecArtifactStore(f"file://{tmp_path / 'shared'}")
    executor = DaskExecutor(cluster.address)
    try:
        with env.client() as client:
            workspace = Workspace(state, store, executor, client)
            result = run_pipeline(pipeline, workspace, RunOptions())
    finally:
        executor.close()
    assert result.status == "succeeded", result.error
    assert [name for name, _, _ in executions(env, cluster)] == ["src"]
    [path] = result.step("src").download(tmp_path / "out").values()
    assert path.read_text() == "raw|api|src"
