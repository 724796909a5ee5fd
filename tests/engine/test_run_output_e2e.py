"""What a person and a CI log read of a run: progress as it happens, and the run views after.

Real modules on a real registry, the real CLI: in-process (stderr is not a terminal there,
as in a pipe or CI) and as a real process where timing matters (a line must arrive while
its step still runs; Ctrl-C; a reader that goes away). Durations vary, so they read ``Ns``.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from pathlib import Path

from engine_env import MODREG, EngineEnv
from test_run_e2e import publish_chain, run_json

SCRIPT = """\
import json, os, sys, time
from pathlib import Path
args = {{k.lstrip("-"): v for k, v in zip(sys.argv[1::2], sys.argv[2::2])}}
{body}
with open(os.environ["TEST_STEP_COUNTER"], "a") as counter:
    counter.write("{name}\\n")
"""
PREP = 'Path(args["out"]).write_text(Path(args["raw"]).read_text() + "|prep")'
TRAIN = """\
Path(args["out"]).write_text(Path(args["data"]).read_text() + "|" + args["lr"])
Path(os.environ["MODREG_METRICS"]).write_text(json.dumps({"accuracy": 0.9}))
"""
SWEEP = """\
name: small
steps:
  prep:
    uses: TEAM/prep@^1.0
    inputs: {raw: raw.txt}
  train:
    uses: TEAM/train@^1.0
    inputs: {data: prep.outputs.out}
    params: {lr: 0.1}
"""
# the step waits, once started, until the test lets it go (a file named go)
WAIT = """\
print("halfway", flush=True)
Path(os.environ["TEST_STEP_COUNTER"]).with_name("started").write_text("")
while not Path(os.environ["TEST_STEP_COUNTER"]).with_name("go").exists():
    time.sleep(0.05)
"""


def publish_small_sweep(env: EngineEnv, train: str = TRAIN) -> Path:
    """prep (raw -> out) and train (data -> out, param lr) in a two-step pipeline."""
    for name, body, inputs, params in (
        ("prep", PREP, {"raw": "file"}, {}),
        ("train", train, {"data": "file"}, {"lr": {"type": "float"}}),
    ):
        files = {"main.py": SCRIPT.format(body=body, name=f"{env.team}/{name}")}
        env.module(name, inputs=inputs, params=params, files=files)
    (env.root / "work").mkdir(exist_ok=True)
    (env.root / "work" / "raw.txt").write_text("raw")
    return env.pipeline(SWEEP)


def seconds_read_n(text: str) -> list[str]:
    """The lines of ``text``, each duration (``0.3s``) read as ``Ns``."""
    return re.sub(r"\b\d+(\.\d)?s\b", "Ns", text).splitlines()


def test_a_piped_run_prints_each_step_event_the_moment_it_happens(env: EngineEnv) -> None:
    pipeline = publish_chain(env)
    first = env.run("run", pipeline, "--jobs", "1")
    assert first.exit_code == 0, first.stderr
    run_id = first.stdout.split()[1].rstrip(":")
    assert seconds_read_n(first.stderr) == [
        "a: started",
        "a: executed in Ns",
        "b: started",
        "b: executed in Ns",
        "c: started",
        "c: executed in Ns",
        "d: started",
        "d: executed in Ns",
    ]
    again = env.run("run", pipeline)
    assert again.stderr.splitlines() == [f"{step}: reused from {run_id}" for step in "adbc"]


def test_a_step_s_started_line_arrives_while_the_step_still_runs(env: EngineEnv) -> None:
    pipeline = publish_chain(env, a_body=WAIT + 'Path(args["out"]).write_text("a")')
    process = env.spawn("run", pipeline, "--jobs", "1")
    try:
        assert process.stderr is not None
        assert process.stderr.readline() == "a: started\n"
        assert not (env.root / "go").exists() and env.executions() == []
    finally:
        (env.root / "go").write_text("")
    _, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    assert seconds_read_n(err)[0] == "a: executed in Ns"


def test_a_sweep_names_its_steps_by_the_choices_that_set_them_apart(env: EngineEnv) -> None:
    pipeline = publish_small_sweep(env)
    result = env.run("run", pipeline, "--vary", "train.params.lr=0.1,0.01", "--jobs", "1")
    assert result.exit_code == 0, result.stderr
    first_run = next(word for word in result.stdout.split() if word.startswith("r-"))
    assert seconds_read_n(result.stderr) == [
        "prep: started",
        "prep: executed in Ns",
        "train (lr=0.1): started",
        "train (lr=0.1): executed in Ns",
        "train (lr=0.01): started",
        "train (lr=0.01): executed in Ns",
    ]
    files = {
        "main.py": SCRIPT.format(body=PREP.replace("|prep", "|prep2"), name=f"{env.team}/prep@2")
    }
    env.module("prep", "2.0.0", inputs={"raw": "file"}, files=files)
    vary = ["--vary", f"prep.uses={env.team}/prep@^1.0,{env.team}/prep@^2.0"]
    both = env.run("run", pipeline, *vary, "--vary", "train.params.lr=0.1", "-j1")
    assert both.exit_code == 0, both.stderr
    assert seconds_read_n(both.stderr) == [
        f"prep (prep={env.team}/prep@^1.0): reused from {first_run}",
        f"train (prep={env.team}/prep@^1.0, lr=0.1): reused from {first_run}",
        f"prep (prep={env.team}/prep@^2.0): started",
        f"prep (prep={env.team}/prep@^2.0): executed in Ns",
        f"train (prep={env.team}/prep@^2.0, lr=0.1): started",
        f"train (prep={env.team}/prep@^2.0, lr=0.1): executed in Ns",
    ]


def test_a_failed_step_is_said_as_it_fails_and_its_error_names_the_logs_command(
    env: EngineEnv,
) -> None:
    pipeline = publish_chain(env, b_body='print("boom: bad data"); sys.exit(3)')
    result = env.run("run", pipeline, "--jobs", "1", "--json")
    assert result.exit_code == 1
    run_id = json.loads(result.stdout)["run"]
    lines = seconds_read_n(result.stderr)
    assert lines[:6] == [
        "a: started",
        "a: executed in Ns",
        "b: started",
        "b: failed in Ns: exited with code 3",
        "c: skipped: step 'b' failed",
        "d: started",
    ]
    assert f"error: run {run_id} failed:" in lines
    assert f"step 'b' exited with code 3 (full log: modreg runs logs {run_id} b)" in lines


def test_runs_show_says_what_each_step_ran_with_took_measured_and_came_from(
    env: EngineEnv,
) -> None:
    pipeline = publish_small_sweep(env)
    first = run_json(env, pipeline)
    second = run_json(env, pipeline, "--set", "train.params.lr=0.5")
    shown = env.run("runs", "show", second["run"])
    assert shown.exit_code == 0, shown.stderr
    rows = [re.split(r"\s*[│┃]\s*", line.strip("│┃ ")) for line in shown.stdout.splitlines()]
    assert shown.stdout.splitlines()[0] == f"run {second['run']}: succeeded"
    assert ["step", "status", "module", "took", "params", "metrics", "reused from"] in rows
    assert ["prep", "reused", f"{env.team}/prep@1.0.0", "-", "-", "-", first["run"]] in rows
    train = next(row for row in rows if row[0] == "train")
    assert re.fullmatch(r"\d+\.\ds", train[3]), train
    assert train[:3] + train[4:] == [
        "train",
        "executed",
        f"{env.team}/train@1.0.0",
        "lr=0.5",
        "accuracy=0.9",
        "-",
    ]
    body = json.loads(env.run("runs", "show", second["run"], "--json").stdout)
    assert body["steps"]["prep"]["reused_from"] == first["run"]
    assert body["steps"]["prep"]["logs"] is None
    step = body["steps"]["train"]
    assert body["steps"]["prep"]["seconds"] is None
    assert (step["params"], step["metrics"]) == ({"lr": 0.5}, {"accuracy": 0.9})
    assert step["error"] is None
    assert step["seconds"] > 0
    assert step["logs"] == f"modreg runs logs {second['run']} train"


def test_runs_show_of_a_failed_run_gives_the_error_and_the_logs_command(env: EngineEnv) -> None:
    pipeline = publish_chain(env, b_body='print("boom: bad data"); sys.exit(3)')
    run_id = json.loads(env.run("run", pipeline, "--json").stdout)["run"]
    shown = env.run("runs", "show", run_id)
    assert shown.exit_code == 0, shown.stderr
    assert shown.stdout.splitlines()[-2:] == [
        "step 'b' failed: exited with code 3",
        f"  its log: modreg runs logs {run_id} b",
    ]
    step = json.loads(env.run("runs", "show", run_id, "--json").stdout)["steps"]["b"]
    assert (step["status"], step["error"]) == ("failed", "exited with code 3")
    assert step["logs"] == f"modreg runs logs {run_id} b"
    assert "boom: bad data" in env.run(*step["logs"].split()[1:]).stdout


def test_runs_show_of_a_sweep_id_shows_the_sweep(env: EngineEnv) -> None:
    pipeline = publish_small_sweep(env)
    body = run_json(env, pipeline, "--vary", "train.params.lr=0.1,0.01")
    shown = env.run("runs", "show", body["sweep"])
    assert shown.exit_code == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0] == f"sweep {body['sweep']}: succeeded (2 runs)"
    first, second = (run["run"] for run in body["runs"])
    assert any(re.match(rf"│ {first} +│ succeeded │ 0\.1 +│ 2 +│ 0 +│", line) for line in lines)
    assert any(re.match(rf"│ {second} +│ succeeded │ 0\.01 +│ 1 +│ 1 +│", line) for line in lines)
    as_json = json.loads(env.run("runs", "show", body["sweep"], "--json").stdout)
    assert (as_json["sweep"], as_json["status"]) == (body["sweep"], "succeeded")
    assert [run["run"] for run in as_json["runs"]] == [first, second]


def test_unreadable_metrics_are_a_warning_on_the_run_not_only_a_log_line(env: EngineEnv) -> None:
    bad = TRAIN.replace('json.dumps({"accuracy": 0.9})', '"accuracy: 0.9"')
    pipeline = publish_small_sweep(env, train=bad)
    result = env.run("run", pipeline, "--json")
    assert result.exit_code == 0, result.stderr
    warning = "ignored $MODREG_METRICS: not JSON (Expecting value: line 1 column 1 (char 0))"
    assert f"warning: step 'train': {warning}" in result.stderr.splitlines()
    run_id = json.loads(result.stdout)["run"]
    shown = env.run("runs", "show", run_id)
    assert shown.stdout.splitlines()[-1] == f"step 'train': warning: {warning}"
    body = json.loads(env.run("runs", "show", run_id, "--json").stdout)
    assert body["steps"]["train"]["warnings"] == [warning]


def test_an_offline_run_is_shown_logged_and_downloaded_with_no_registry_configured(
    env: EngineEnv, tmp_path: Path
) -> None:
    pipeline = publish_small_sweep(env)
    run_json(env, pipeline, "--set", "train.params.lr=0.2")  # the lock and sources, online
    none = {"MODREG_URL": "", "MODREG_TOKEN": ""}
    result = env.run("run", pipeline, "--offline", "--json", **none)
    assert result.exit_code == 0, result.stderr
    run_id = json.loads(result.stdout)["run"]
    shown = env.run("runs", "show", run_id, **none)
    assert shown.exit_code == 0, shown.stderr
    assert shown.stdout.splitlines()[0] == f"run {run_id}: succeeded (local: not in the registry)"
    logs = env.run("runs", "logs", run_id, "train", **none)
    assert (logs.exit_code, logs.stderr) == (0, "")
    download = env.run("runs", "download", run_id, "--to", tmp_path / "out", **none)
    assert download.exit_code == 0, download.stderr
    assert (tmp_path / "out" / "train" / "out").read_text() == "raw|prep|0.1"
    reused = env.run("runs", "logs", run_id, "prep", **none)
    source = json.loads(result.stdout)["steps"]["prep"]["reused_from"]
    assert reused.stderr == (
        f"error: step 'prep' of run {run_id} was reused from run {source}: "
        f"modreg runs logs {source} prep\n"
    )

    swept = env.run("run", pipeline, "--offline", "--vary", "train.params.lr=0.3,0.4", **none)
    assert swept.exit_code == 0, swept.stderr
    sweep = next(word for word in swept.stdout.split() if word.startswith("local-s-"))
    shown = env.run("runs", "show", sweep.rstrip(":"), **none)
    assert shown.exit_code == 0, shown.stderr
    assert shown.stdout.splitlines()[0] == f"sweep {sweep} succeeded (2 runs)"


def test_an_interrupted_sweep_is_cancelled_and_keeps_its_partial_log(env: EngineEnv) -> None:
    pipeline = publish_small_sweep(env, train=WAIT + TRAIN)
    process = env.spawn("run", pipeline, "--vary", "train.params.lr=0.1,0.01", "-j1", "--json")
    try:
        assert process.stderr is not None
        lines = [process.stderr.readline() for _ in range(3)]
        assert lines[2] == "train (lr=0.1): started\n", lines
        deadline = time.monotonic() + 60
        while not (env.root / "started").exists() and time.monotonic() < deadline:
            time.sleep(0.05)  # the step has printed its first line
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        (env.root / "go").write_text("")
    assert process.returncode == 130, err
    body = json.loads(out)
    assert body["status"] == "cancelled"
    assert [run["status"] for run in body["runs"]] == ["cancelled", "cancelled"]
    first = body["runs"][0]["run"]
    partial, never = (run["steps"]["train"] for run in body["runs"])
    assert (partial["logs"], never["logs"]) == (f"modreg runs logs {first} train", None)
    assert "train (lr=0.1): cancelled" in err.splitlines()
    shown = json.loads(env.run("runs", "show", body["sweep"], "--json").stdout)
    assert shown["status"] == "cancelled"
    logs = env.run("runs", "logs", first, "train", XDG_CACHE_HOME=str(env.root / "elsewhere"))
    assert (logs.exit_code, logs.stdout) == (0, "halfway\n"), logs.stderr


def test_output_whose_reader_went_away_ends_quietly(env: EngineEnv) -> None:
    pipeline = publish_chain(env)
    run_id = run_json(env, pipeline)["run"]
    for command in (["runs", "list"], ["runs", "show", run_id], ["runs", "logs", run_id, "a"]):
        process = subprocess.Popen(
            [str(MODREG), *command],
            env={**env.env(), "PATH": "/usr/bin:/bin"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert process.stdout is not None and process.stderr is not None
        process.stdout.close()  # like `| head` that has read what it wanted
        err = process.stderr.read()
        process.wait(timeout=60)
        assert err == "", command
