"""``resources``: the local executor counts a step's ``cpus`` against ``--jobs``."""

from __future__ import annotations

import pytest
from engine_env import EngineEnv

MARKED = """\
import os, sys, time
from pathlib import Path
args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
args = {{k.lstrip("-"): v for k, v in args.items()}}
with open(os.environ["TEST_STEP_COUNTER"], "a") as counter:
    counter.write(f"{team}/start {{args['tag']}}\\n")
time.sleep(0.5)
Path(args["out"]).write_text(args["tag"])
with open(os.environ["TEST_STEP_COUNTER"], "a") as counter:
    counter.write(f"{team}/end {{args['tag']}}\\n")
"""


@pytest.mark.slow
def test_steps_needing_all_cpus_of_jobs_run_one_at_a_time(env: EngineEnv) -> None:
    """Two independent steps of 2 cpus each under --jobs 2: never side by side; a third of
    3 cpus (more than --jobs) still runs, alone. The pipeline's override counts too."""
    body = MARKED.format(team=env.team)
    env.module(
        "wide",
        params={"tag": "str"},
        files={"main.py": body},
        module_extra={"resources": {"cpus": 2}},
    )
    steps = ["name: wide", "steps:"]
    for tag in ("a", "b"):
        steps += [f"  {tag}:", "    uses: TEAM/wide@^1.0", f"    params: {{tag: {tag}}}"]
    steps += [
        "  c:",
        "    uses: TEAM/wide@^1.0",
        "    params: {tag: c}",
        "    resources: {cpus: 3}",
    ]
    result = env.run("run", env.pipeline("\n".join(steps) + "\n"), "--jobs", "2")
    assert result.exit_code == 0, result.output
    marks = env.executions()
    assert len(marks) == 6
    assert all(marks[i].split()[1] == marks[i + 1].split()[1] for i in range(0, 6, 2)), marks
    assert [mark.split()[0] for mark in marks] == ["start", "end"] * 3
