"""Runs the registry does not hold — made ``--offline``, or not recorded because the registry
went away — are read back from this machine by ``modreg runs``, marked local.

Through the real CLI against a real registry (and, for the registry going away, one this
test starts and stops itself).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from engine_env import EngineEnv, Server, make_team
from registry_servers import start_server, stop_server
from test_run_e2e import publish_chain, run_json, script, statuses

DEAD = {"MODREG_URL": "http://127.0.0.1:9"}


def offline_json(env: EngineEnv, pipeline: Path, *args: str) -> dict:
    result = env.run("run", pipeline, "--offline", *args, "--json", **DEAD)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_an_offline_run_is_listed_shown_logged_and_compared_from_this_machine(
    env: EngineEnv,
) -> None:
    pipeline = publish_chain(env)
    online = run_json(env, pipeline)
    body = offline_json(env, pipeline, "--set", "a.params.k=3")
    assert body["run"].startswith("local-") and body["local"] is True
    assert online["local"] is False

    listed = env.run("runs", "list", "--json", **DEAD)
    assert listed.exit_code == 0, listed.stderr
    assert listed.stderr.startswith("warning: cannot reach the registry at http://127.0.0.1:9")
    assert listed.stderr.endswith("; listing the runs of this machine only\n")
    assert listed.stderr.count("\n") == 1
    assert [(r["run"], r["local"]) for r in json.loads(listed.stdout)] == [(body["run"], True)]
    both = json.loads(env.run("runs", "list", "--json").stdout)
    newest = [(r["run"], r["local"]) for r in both[:2]]
    assert newest == [(body["run"], True), (online["run"], False)]

    shown = env.run("runs", "show", body["run"], "--json", **DEAD)
    assert shown.exit_code == 0, shown.stderr
    assert json.loads(shown.stdout) == body
    table = env.run("runs", "show", body["run"], **DEAD, COLUMNS="200")
    assert f"run {body['run']}: succeeded (local: not in the registry)" in table.stdout
    log_file = env.state() / "logs" / body["run"] / "a.log"
    log_file.write_text("the log of a\n")
    log = env.run("runs", "logs", body["run"], "a", **DEAD)
    assert log.exit_code == 0 and log.stdout == "the log of a\n"

    compared = env.run("runs", "compare", body["run"], online["run"], "--json")
    assert compared.exit_code == 0, compared.stderr
    rows = json.loads(compared.stdout)
    assert [(row["run"], row["local"]) for row in rows] == [
        (body["run"], True),
        (online["run"], False),
    ]
    assert rows[0]["variant"] == {"a.params.k": 3} and rows[1]["variant"] == {"a.params.k": 1}
    csv = env.run("runs", "compare", body["run"], online["run"], "--csv").stdout.splitlines()
    assert csv[0] == "run,status,local,a.params.k" and csv[1].startswith(f"{body['run']},")


def test_an_offline_sweep_is_compared_and_listed_from_this_machine(env: EngineEnv) -> None:
    pipeline = publish_chain(env)
    run_json(env, pipeline)
    body = offline_json(env, pipeline, "--vary", "a.params.k=1,2")
    sweep = body["sweep"]
    assert sweep.startswith("local-s-")
    compared = env.run("runs", "compare", sweep, "--json", **DEAD)
    assert compared.exit_code == 0, compared.stderr
    rows = json.loads(compared.stdout)
    assert [row["run"] for row in rows] == [run["run"] for run in body["runs"]]
    assert [(row["variant"], row["local"]) for row in rows] == [
        ({"a.params.k": 1}, True),
        ({"a.params.k": 2}, True),
    ]
    listed = env.run("runs", "list", "--sweep", sweep, "--json", **DEAD)
    assert listed.exit_code == 0 and listed.stderr == "", listed.stderr
    assert [r["run"] for r in json.loads(listed.stdout)] == [run["run"] for run in body["runs"]]


WAIT_FOR_GO = """\
marker = Path(os.environ["TEST_STEP_COUNTER"]).with_name("started")
marker.write_text("started")
while not marker.with_name("go").exists():
    time.sleep(0.05)
Path(args["out"]).write_text("done")
"""


def test_a_run_the_registry_could_not_record_is_kept_and_shown_as_local(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MODREG_STORE", raising=False)
    handle = start_server(tmp_path / "registry")
    assert handle.process is not None
    server = Server(handle.url, handle.admin_token)
    env = EngineEnv(server, *make_team(server), tmp_path / "env")
    env.module("a", inputs={"raw": "file"}, files=script(env, "a", WAIT_FOR_GO))
    (env.root / "work").mkdir(parents=True)
    (env.root / "work" / "raw.txt").write_text("raw")
    pipeline = env.pipeline("name: one\nsteps:\n  a:\n    uses: TEAM/a@^1.0\n"
                            "    inputs: {raw: raw.txt}\n")  # fmt: skip
    process = env.spawn("run", pipeline, "--json")
    try:
        started = env.root / "started"
        deadline = time.monotonic() + 60
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert started.exists(), "the step started"
    finally:
        stop_server(handle.process)  # the registry goes away while the step runs
        (env.root / "go").write_text("go")
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    body = json.loads(out)
    assert statuses(body) == {"a": "executed"} and body["local"] is True
    assert f"warning: run {body['run']} could not be recorded: cannot reach the registry" in err

    shown = env.run("runs", "show", body["run"], "--json")
    assert shown.exit_code == 0, shown.stderr
    assert json.loads(shown.stdout) == body
    listed = env.run("runs", "list", "--json")
    assert [(r["run"], r["local"]) for r in json.loads(listed.stdout)] == [(body["run"], True)]
    assert listed.stderr.endswith("listing the runs of this machine only\n")
    download = env.run("runs", "download", body["run"], "--to", tmp_path / "out")
    assert download.exit_code == 0, download.stderr
    assert (tmp_path / "out" / "a" / "out").read_text() == "done"
