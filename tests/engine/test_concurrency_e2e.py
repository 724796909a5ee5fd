"""Two runs at once, SIGKILL at random instants, and the Python API, against a real registry."""

from __future__ import annotations

import json
import os
import random
import signal
import time
from collections import Counter
from pathlib import Path

import pytest
from engine_env import EngineEnv

from modreg.engine import (
    LocalArtifactStore,
    LocalExecutor,
    ModuleStep,
    Pipeline,
    RunOptions,
    StateDir,
    Workspace,
    run_pipeline,
)

SLOW_COPY = """\
import os, sys, time
from pathlib import Path
args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
args = {{k.lstrip("-"): v for k, v in args.items()}}
time.sleep({sleep})
Path(args["out"]).write_text(Path(args["data"]).read_text() + "|{name}")
with open(os.environ["TEST_STEP_COUNTER"], "a") as counter:
    counter.write("{team}/{name}\\n")
"""


def slow_chain(env: EngineEnv, length: int, sleep: float) -> Path:
    """Steps s0 -> s1 -> … each sleeping ``sleep`` seconds, and a side step z off s0."""
    lines = ["name: slow", "steps:"]
    for index in range(length):
        name = f"s{index}"
        body = SLOW_COPY.format(sleep=sleep, name=name, team=env.team)
        env.module(name, inputs={"data": "file"}, files={"main.py": body})
        source = "raw.txt" if index == 0 else f"s{index - 1}.outputs.out"
        lines += [f"  {name}:", f"    uses: TEAM/{name}@^1.0", f"    inputs: {{data: {source}}}"]
    (env.root / "work").mkdir(exist_ok=True)
    (env.root / "work" / "raw.txt").write_text("raw")
    return env.pipeline("\n".join(lines) + "\n")


def cached_fingerprints(env: EngineEnv) -> set[str]:
    return {path.stem for path in (env.state() / "cache").glob("*/*.json")}


@pytest.mark.slow
def test_two_concurrent_runs_execute_each_step_once(env: EngineEnv) -> None:
    pipeline = slow_chain(env, 4, 0.3)
    first, second = env.spawn("run", pipeline, "--json"), env.spawn("run", pipeline, "--json")
    outputs = [process.communicate(timeout=120) for process in (first, second)]
    assert first.returncode == 0 and second.returncode == 0, outputs
    assert Counter(env.executions()) == {f"s{i}": 1 for i in range(4)}
    bodies = [json.loads(out) for out, _ in outputs]
    assert bodies[0]["steps"]["s3"]["outputs"] == bodies[1]["steps"]["s3"]["outputs"]


@pytest.mark.slow
def test_kill_at_random_instants_then_resume(env: EngineEnv) -> None:
    pipeline = slow_chain(env, 6, 0.4)
    rng = random.Random(7)
    for _ in range(3):
        process = env.spawn("run", pipeline)
        time.sleep(rng.uniform(0.8, 2.5))
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate(timeout=30)
        time.sleep(0.3)
        done_before = cached_fingerprints(env)
        counts_before = Counter(env.executions())
        final = env.run("run", pipeline, "--json")
        assert final.exit_code == 0, final.stderr
        body = json.loads(final.stdout)
        for name, step in body["steps"].items():
            if step["fingerprint"] in done_before:
                assert Counter(env.executions())[name] == counts_before[name], f"{name} re-executed"
        assert body["status"] == "succeeded"
        # Start over from nothing stored for the next round, so kills land mid-run again.
        for path in (env.state() / "cache").glob("*/*.json"):
            path.unlink()
        pipeline.write_text(pipeline.read_text().replace("name: slow", f"name: slow{rng.random()}"))
        (env.root / "work" / "raw.txt").write_text(f"raw{rng.random()}")


def test_python_api_runs_and_downloads(env: EngineEnv, tmp_path: Path) -> None:
    team = env.team
    body = 'Path(args["out"]).write_text(Path(args["data"]).read_text() + "|" + args["tag"])'
    script = (
        "import sys\nfrom pathlib import Path\n"
        "args = dict(zip(sys.argv[1::2], sys.argv[2::2]))\n"
        'args = {k.lstrip("-"): v for k, v in args.items()}\n' + body + "\n"
    )
    env.module("tagger", inputs={"data": "file"}, params={"tag": "str"}, files={"main.py": script})
    (tmp_path / "raw.txt").write_text("raw")
    first = ModuleStep(f"{team}/tagger@^1", inputs={"data": "raw.txt"}, params={"tag": "x"})
    second = ModuleStep(
        f"{team}/tagger@^1", inputs={"data": first.outputs["out"]}, params={"tag": "y"}
    )
    pipeline = Pipeline("api", {"first": first, "second": second}, base_dir=tmp_path)
    state = StateDir(tmp_path / "state")
    with env.client() as client:
        workspace = Workspace(state, LocalArtifactStore(state.store), LocalExecutor(2), client)
        result = run_pipeline(pipeline, workspace, RunOptions())
        assert result.status == "succeeded"
        written = result.step("second").download(tmp_path / "out")
        assert written["out"].read_text() == "raw|x|y"


@pytest.mark.slow
def test_ctrl_c_cancels_running_steps_and_records_the_run(env: EngineEnv) -> None:
    pipeline = slow_chain(env, 3, 5.0)
    process = env.spawn("run", pipeline, "--json")
    time.sleep(2.0)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    body = json.loads(out)
    assert body["status"] == "cancelled"
    assert body["steps"]["s0"]["status"] == "cancelled"
    assert body["steps"]["s2"]["status"] in {"cancelled", "skipped"}
    shown = json.loads(env.run("runs", "show", body["run"], "--json").stdout)
    assert shown["status"] == "cancelled"
    assert env.executions() == []
