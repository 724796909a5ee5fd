"""Crash soak of ``modreg run``: kill -9 a fan-out at random instants, resume, compare.

A split step feeds WIDTH parallel steps whose outputs one join step reads. Each round starts
the run and kills its whole process group at a random instant; the next round resumes from
what the state folder and the registry kept. At the end: no step whose result was stored
before a kill executed again afterwards, and the outputs equal those of a clean run made by
a teammate with ``--no-reuse``.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
from engine_env import EngineEnv

WIDTH = 6
ROUNDS = 4

STEP = """\
import os, sys, time
from pathlib import Path
args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
args = {{k.lstrip("-"): v for k, v in args.items()}}
time.sleep({sleep})
parts = [Path(args[k]).read_text() for k in sorted(args) if k.startswith("in")]
Path(args["out"]).write_text("+".join(parts) + "|" + args["tag"])
with open(os.environ["TEST_STEP_COUNTER"], "a") as counter:
    counter.write("{team}/" + args["tag"] + "\\n")
"""


def fan_out(env: EngineEnv, sleep: float) -> Path:
    """split -> w0..w{WIDTH-1} -> join; each step's tag is its name (the counter's line)."""
    script = {"main.py": STEP.format(sleep=sleep, team=env.team)}
    params = {"tag": "str"}
    env.module("split", inputs={"in0": "file"}, params=params, files=script)
    env.module("work", inputs={"in0": "file"}, params=params, files=script)
    joined = {f"in{i}": "file" for i in range(WIDTH)}
    env.module("join", inputs=joined, params=params, files=script)
    lines = ["name: fan", "steps:", "  split:", "    uses: TEAM/split@^1.0"]
    lines += ["    inputs: {in0: raw.txt}", "    params: {tag: split}"]
    for i in range(WIDTH):
        lines += [f"  w{i}:", "    uses: TEAM/work@^1.0", "    inputs: {in0: split.outputs.out}"]
        lines += [f"    params: {{tag: w{i}}}"]
    sources = ", ".join(f"in{i}: w{i}.outputs.out" for i in range(WIDTH))
    lines += ["  join:", "    uses: TEAM/join@^1.0", f"    inputs: {{{sources}}}"]
    lines += ["    params: {tag: join}"]
    (env.root / "work").mkdir(exist_ok=True)
    (env.root / "work" / "raw.txt").write_text("raw")
    return env.pipeline("\n".join(lines) + "\n")


def wait_for_executions(env: EngineEnv, count: int, process: subprocess.Popen[str]) -> None:
    """Until ``count`` steps have executed in all (or the run ended by itself)."""
    deadline = time.monotonic() + 60
    while len(env.executions()) < count and process.poll() is None:
        assert time.monotonic() < deadline, "the run made no progress"
        time.sleep(0.05)


def stored_fingerprints(env: EngineEnv) -> set[str]:
    return {path.stem for path in (env.state() / "cache").glob("*/*.json")}


@pytest.mark.slow
def test_fan_out_killed_at_random_resumes_without_redoing_and_matches_a_clean_run(
    env: EngineEnv,
) -> None:
    pipeline = fan_out(env, sleep=0.4)
    rng = random.Random(1202)
    snapshots: list[tuple[set[str], Counter[str]]] = []
    for _ in range(ROUNDS):
        process = env.spawn("run", pipeline, "--jobs", "2")
        wait_for_executions(env, len(env.executions()) + rng.randint(1, 3), process)
        time.sleep(rng.uniform(0.0, 0.5))  # mid-step, between steps, mid-recording
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate(timeout=30)
        snapshots.append((stored_fingerprints(env), Counter(env.executions())))
    final = env.run("run", pipeline, "--json")
    assert final.exit_code == 0, final.stderr
    body = json.loads(final.stdout)
    assert body["status"] == "succeeded"
    counts = Counter(env.executions())
    assert all(snapshot for snapshot, _ in snapshots), "a kill landed before any stored result"
    for stored, counts_then in snapshots:
        for name, step in body["steps"].items():
            if step["fingerprint"] in stored:
                assert counts[name] == counts_then[name], f"{name} executed again after a kill"
    clean = env.run("run", pipeline, "--no-reuse", "--json", user="bob")
    assert clean.exit_code == 0, clean.stderr
    clean_steps = json.loads(clean.stdout)["steps"]
    assert {name: step["outputs"] for name, step in body["steps"].items()} == {
        name: step["outputs"] for name, step in clean_steps.items()
    }
