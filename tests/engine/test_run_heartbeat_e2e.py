"""Runs that never end: a run heartbeats while it runs; one whose heartbeat stopped reads
``abandoned``, and the next run of the same pipeline from that state folder closes it.

A real registry whose heartbeat timeout is cut to 2 s (``MODREG_RUN_HEARTBEAT_TIMEOUT``), a
real ``modreg run`` process heartbeating every 0.3 s (``MODREG_RUN_HEARTBEAT``), killed with
SIGKILL in the middle of a step.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from engine_env import EngineEnv, Server, make_team
from registry_servers import start_server, stop_server
from test_local_runs_e2e import WAIT_FOR_GO
from test_run_e2e import run_json, script

TIMEOUT = 2.0


@pytest.fixture
def short_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[EngineEnv]:
    for name in ("MODREG_URL", "MODREG_TOKEN", "MODREG_STORE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MODREG_RUN_HEARTBEAT_TIMEOUT", str(TIMEOUT))
    monkeypatch.setenv("MODREG_RUN_HEARTBEAT", "0.3")
    handle = start_server(tmp_path / "registry")
    try:
        server = Server(handle.url, handle.admin_token)
        yield EngineEnv(server, *make_team(server), tmp_path / "env")
    finally:
        stop_server(handle.process)


def _wait_for(path: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert path.exists(), f"{path.name} never appeared"


def _show(env: EngineEnv, run: str) -> dict:
    shown = env.run("runs", "show", run, "--json")
    assert shown.exit_code == 0, shown.stderr
    return json.loads(shown.stdout)


def _waiting_pipeline(env: EngineEnv) -> Path:
    env.module("a", inputs={"raw": "file"}, files=script(env, "a", WAIT_FOR_GO))
    (env.root / "work").mkdir(parents=True, exist_ok=True)
    (env.root / "work" / "raw.txt").write_text("raw")
    return env.pipeline("name: one\nsteps:\n  a:\n    uses: TEAM/a@^1.0\n"
                        "    inputs: {raw: raw.txt}\n")  # fmt: skip


def test_a_killed_run_reads_abandoned_and_the_next_run_closes_it(short_env: EngineEnv) -> None:
    env = short_env
    pipeline = _waiting_pipeline(env)
    process = env.spawn("run", pipeline, "--json")
    try:
        _wait_for(env.root / "started")
        (killed,) = json.loads(env.run("runs", "list", "--json").stdout)
        time.sleep(TIMEOUT + 1)  # longer than the timeout: the heartbeat keeps it running
        assert _show(env, killed["run"])["status"] == "running"
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate(timeout=30)
    time.sleep(TIMEOUT + 1)
    assert _show(env, killed["run"])["status"] == "abandoned"
    with env.client() as client:
        assert client.get_run(killed["run"]).ended_at is None, "abandoned as read, not stored"

    (env.root / "go").write_text("go")
    again = run_json(env, pipeline)
    assert again["status"] == "succeeded" and again["run"] != killed["run"]
    with env.client() as client:
        closed = client.get_run(killed["run"])
    assert closed.status == "abandoned" and closed.ended_at is not None
    assert closed.error == f"abandoned: the engine running it stopped; closed by run {again['run']}"
    assert _show(env, again["run"])["status"] == "succeeded"


def test_a_run_its_registry_could_not_record_is_recorded_by_the_next_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("MODREG_URL", "MODREG_TOKEN", "MODREG_STORE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MODREG_RUN_HEARTBEAT_TIMEOUT", str(TIMEOUT))
    handle = start_server(tmp_path / "registry")
    server = Server(handle.url, handle.admin_token)
    env = EngineEnv(server, *make_team(server), tmp_path / "env")
    pipeline = _waiting_pipeline(env)
    process = env.spawn("run", pipeline, "--json")
    try:
        _wait_for(env.root / "started")
    finally:
        stop_server(handle.process)  # the registry goes away while the step runs
        (env.root / "go").write_text("go")
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    lost = json.loads(out)
    assert lost["local"] is True

    again = start_server(tmp_path / "registry")  # back, on another port
    try:
        env.server = Server(again.url, again.admin_token)
        time.sleep(TIMEOUT + 0.5)
        assert _show(env, lost["run"])["status"] == "succeeded", "shown from this machine"
        with env.client() as client:
            assert client.get_run(lost["run"]).status == "abandoned"
        body = run_json(env, pipeline)
        assert body["steps"]["a"]["status"] == "reused"
        with env.client() as client:
            recorded = client.get_run(lost["run"])
        assert recorded.status == "succeeded" and recorded.steps["a"].status == "executed"
        assert recorded.ended_at is not None and recorded.error is None
    finally:
        stop_server(again.process)
