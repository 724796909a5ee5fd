"""One execution per fingerprint across machines: two ``modreg run`` processes, each with its
own state folder (two "machines"), started at once on one pipeline with a slow step.

The step appends a line to ``starts`` when it begins and then waits for a ``go`` file, so
the test decides when it ends. The registry logs its requests (``--access-log``): once it
has answered two lease claims while the step is still running, the second engine has asked
and been told to wait — only then does the test let the step finish. Leases live three
heartbeats (``MODREG_RUN_HEARTBEAT`` = 1 s here: 3 s).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from engine_env import EngineEnv, Server, make_team
from registry_servers import ServerHandle, start_server, stop_server
from test_run_e2e import script

pytestmark = pytest.mark.slow

SLOW = """\
marker = Path(os.environ["TEST_STEP_COUNTER"])
with open(marker.with_name("starts"), "a") as starts:
    starts.write("started\\n")
while not marker.with_name("go").exists():
    time.sleep(0.05)
Path(args["out"]).write_text("done")
"""
USERS = ("alice", "bob")
LEASE_TTL = 3.0  # three heartbeats of MODREG_RUN_HEARTBEAT=1


@pytest.fixture
def two_machines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[EngineEnv, ServerHandle]]:
    for name in ("MODREG_URL", "MODREG_TOKEN", "MODREG_STORE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MODREG_RUN_HEARTBEAT", "1")
    handle = start_server(tmp_path / "registry", extra_args=("--access-log",))
    try:
        server = Server(handle.url, handle.admin_token)
        yield EngineEnv(server, *make_team(server), tmp_path / "env"), handle
    finally:
        stop_server(handle.process)


def _slow_pipeline(env: EngineEnv) -> Path:
    env.module("slow", inputs={"raw": "file"}, files=script(env, "slow", SLOW))
    (env.root / "work").mkdir(parents=True, exist_ok=True)
    (env.root / "work" / "raw.txt").write_text("raw")
    return env.pipeline("name: one\nsteps:\n  a:\n    uses: TEAM/slow@^1.0\n"
                        "    inputs: {raw: raw.txt}\n")  # fmt: skip


def _until(condition: Callable[[], bool], what: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"{what}: not within {seconds} s")


def _starts(env: EngineEnv) -> int:
    path = env.root / "starts"
    return len(path.read_text().splitlines()) if path.exists() else 0


def _claims(handle: ServerHandle) -> int:
    return sum(
        log.read_text(errors="replace").count("PUT /api/v1/leases/")
        for log in handle.data_dir.glob("server-*.log")
    )


def _holder(env: EngineEnv) -> str:
    """The user whose engine runs the step: the only one with a log of it."""
    (holder,) = [user for user in USERS if list(env.state(user).glob("logs/*/a.log"))]
    return holder


def _finish(process: subprocess.Popen[str]) -> dict:
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    return json.loads(out)


def _spawn_both(env: EngineEnv, pipeline: Path) -> dict[str, subprocess.Popen[str]]:
    return {user: env.spawn("run", pipeline, "--json", user=user) for user in USERS}


def test_two_machines_execute_a_step_once(two_machines: tuple[EngineEnv, ServerHandle]) -> None:
    env, handle = two_machines
    pipeline = _slow_pipeline(env)
    processes = _spawn_both(env, pipeline)
    try:
        _until(lambda: _starts(env) == 1 and _claims(handle) >= 2, "both engines claimed")
        time.sleep(LEASE_TTL + 1)  # longer than a lease lives: the holder's heartbeat renews it
        assert _starts(env) == 1, "the waiting engine did not take a live lease over"
        (env.root / "go").write_text("go")
        bodies = {user: _finish(process) for user, process in processes.items()}
    finally:
        for process in processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
    holder = _holder(env)
    waiter = next(user for user in USERS if user != holder)
    assert _starts(env) == 1 and env.executions() == ["slow"]
    assert bodies[holder]["steps"]["a"]["status"] == "executed"
    reused = bodies[waiter]["steps"]["a"]
    assert reused["status"] == "reused"
    assert reused["outputs"] == bodies[holder]["steps"]["a"]["outputs"]


def test_a_dead_holders_lease_expires_and_is_taken_over(
    two_machines: tuple[EngineEnv, ServerHandle],
) -> None:
    env, handle = two_machines
    pipeline = _slow_pipeline(env)
    processes = _spawn_both(env, pipeline)
    try:
        _until(lambda: _starts(env) == 1 and _claims(handle) >= 2, "both engines claimed")
        holder = _holder(env)
        os.killpg(processes[holder].pid, signal.SIGKILL)  # the machine dies mid-step
        processes[holder].communicate(timeout=30)
        _until(lambda: _starts(env) == 2, "the other engine took the step over")
        (env.root / "go").write_text("go")
        waiter = next(user for user in USERS if user != holder)
        body = _finish(processes[waiter])
    finally:
        for process in processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
    assert body["status"] == "succeeded"
    assert body["steps"]["a"]["status"] == "executed"
    with env.client(holder) as client:
        (entry,) = client.lookup_cache([body["steps"]["a"]["fingerprint"]]).values()
    assert entry.run_id == body["run"], "the cache entry is the survivor's"


def test_a_step_waiting_for_another_machine_holds_no_job_slot(
    two_machines: tuple[EngineEnv, ServerHandle],
) -> None:
    """Bob runs with one job slot: the slow step (first in the plan, so first in the pool)
    is parked on alice's lease, and his other step runs meanwhile, before alice finishes."""
    env, handle = two_machines
    env.module("slow", inputs={"raw": "file"}, files=script(env, "slow", SLOW))
    quick = 'Path(args["out"]).write_text(args["who"])'
    env.module("quick", params={"who": {"type": "str"}}, files=script(env, "quick", quick))
    (env.root / "work").mkdir(parents=True, exist_ok=True)
    (env.root / "work" / "raw.txt").write_text("raw")
    pipeline = env.pipeline("name: two\nsteps:\n  a:\n    uses: TEAM/slow@^1.0\n"
                            "    inputs: {raw: raw.txt}\n  q:\n    uses: TEAM/quick@^1.0\n"
                            "    params: {who: alice}\n")  # fmt: skip
    alice = env.spawn("run", pipeline, "--json", user="alice")
    bob = None
    try:
        _until(lambda: _starts(env) == 1 and env.executions() == ["quick"], "alice runs both")
        bob = env.spawn("run", pipeline, "--json", "--jobs", "1", "--set", "q.params.who=bob",
                        user="bob")  # fmt: skip
        _until(lambda: env.executions() == ["quick", "quick"], "bob ran q while a waited")
        assert _starts(env) == 1 and not (env.root / "go").exists()
        (env.root / "go").write_text("go")
        bodies = {"alice": _finish(alice), "bob": _finish(bob)}
    finally:
        for process in (alice, bob):
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
    assert bodies["alice"]["steps"]["a"]["status"] == "executed"
    assert bodies["bob"]["steps"]["a"]["status"] == "reused"
    assert _starts(env) == 1


def test_a_run_killed_mid_step_resumes_at_once_on_its_own_machine(
    two_machines: tuple[EngineEnv, ServerHandle],
) -> None:
    """The killed engine's lease would live an hour (heartbeat 20 min here): the next run of
    the same state folder holds the step lock, so that lease is a dead engine's of its own
    machine, and it takes the step over without waiting for the lease to expire."""
    env, _ = two_machines
    pipeline = _slow_pipeline(env)
    first = env.spawn("run", pipeline, "--json", MODREG_RUN_HEARTBEAT="1200")
    try:
        _until(lambda: _starts(env) == 1, "the step started")
        os.killpg(first.pid, signal.SIGKILL)
        first.communicate(timeout=30)
        (env.root / "go").write_text("go")
        again = env.spawn("run", pipeline, "--json", MODREG_RUN_HEARTBEAT="1200")
        body = _finish(again)  # without the takeover: parked until its 2-minute timeout
    finally:
        for process in (first, locals().get("again")):
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
    assert body["status"] == "succeeded" and body["steps"]["a"]["status"] == "executed"
    assert _starts(env) == 2, "executed again by the resumed run, once"
