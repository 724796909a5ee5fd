"""Sweep benchmark: a 3 x 2 x 3 sweep of a 3-step pipeline of tiny steps, against bash floors.

Each step is bench_engine's tiny Python script (reads a 1 MiB input, writes a 1 MiB output);
the bash floors run it with bench_engine's ``PYTHON``, the interpreter modreg runs steps with.
The sweep varies ``prep.params.salt`` (3), ``aug.params.salt`` (2) and ``train.params.salt``
(3): 18 runs whose distinct steps are 3 + 6 + 18 = 27, where a naive product runs 54.
Figures, all whole commands against a real registry on loopback, measured in the same run:

- steps executed by the cold sweep (must be 27) and by the no-change re-run (must be 0);
- cold ``modreg run --jobs 2`` against a bash loop over the 27 distinct steps (aim < 0.8x);
- the no-change re-run against one process hashing the 28 files involved (aim <= 4x).

    .venv/bin/python benchmarks/bench_sweep.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from bench_engine import (
    MIB,
    MODREG,
    PYTHON,
    STEP,
    Runner,
    hash_floor,
    new_team,
    publish_modules,
    report,
    start_server,
    stop_server,
    timed,
)

AXES = {"prep": 3, "aug": 2, "train": 3}
DISTINCT = 3 + 3 * 2 + 3 * 2 * 3
NAIVE = 3 * 2 * 3 * len(AXES)


def sweep_pipeline(work: Path) -> Path:
    """prep -> aug -> train, each bench/step with its own idx; the salts are the axes."""
    lines = ["name: sweep", "steps:"]
    source = "raw.bin"
    for index, step in enumerate(AXES, start=1):
        lines += [
            f"  {step}:",
            "    uses: bench/step@^1",
            f"    inputs: {{data: {source}}}",
            f"    params: {{idx: {index}}}",
        ]
        source = f"{step}.outputs.out"
    lines.append("variants:")
    lines += [f"  {step}.params.salt: {list(range(1, n + 1))}" for step, n in AXES.items()]
    path = work / "sweep" / "pipeline.yaml"
    path.parent.mkdir(parents=True)
    path.write_text("\n".join(lines) + "\n")
    shutil.copy(work / "raw.bin", path.parent / "raw.bin")
    return path


def bash_sweep(work: Path, naive: bool) -> float:
    """The distinct steps (or every step of every run, ``naive``) one by one in bash."""
    folder = work / ("bash-naive" if naive else "bash-sweep")
    folder.mkdir(exist_ok=True)
    (folder / "step.py").write_text(STEP)
    step = PYTHON + " step.py --data {src} --out {out} --idx {idx} --salt {salt}"
    script = []
    for p in range(1, 4):
        prep = f"p{p}"
        script.append(step.format(src=work / "raw.bin", out=prep, idx=1, salt=p))
        for a in range(1, 3):
            aug = f"{prep}a{a}"
            script.append(step.format(src=prep, out=aug, idx=2, salt=a))
            for t in range(1, 4):
                if naive:
                    script.append(step.format(src=work / "raw.bin", out=prep, idx=1, salt=p))
                    script.append(step.format(src=prep, out=aug, idx=2, salt=a))
                script.append(step.format(src=aug, out=f"{aug}t{t}", idx=3, salt=t))
    return timed(["bash", "-c", "\n".join(script)], cwd=folder)


def run_sweep(env: dict[str, str], pipeline: Path) -> tuple[float, int]:
    """One ``modreg run --jobs 2 --json``: seconds, and the steps it executed."""
    start = time.perf_counter()
    done = subprocess.run(
        [MODREG, "run", str(pipeline), "--jobs", "2", "--json"],
        env=env,
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"modreg run failed:\n{done.stderr[-3000:]}")
    body = json.loads(done.stdout)
    executed = sum(
        step["status"] == "executed" for run in body["runs"] for step in run["steps"].values()
    )
    return elapsed, executed


def measure(runner: Runner, pipeline: Path, repeat: int) -> dict[str, list[float]]:
    figures: dict[str, list[float]] = {"cold": [], "nochange": [], "cold_n": [], "again_n": []}
    for _ in range(repeat):
        env = runner.fresh_user()
        seconds, executed = run_sweep(env, pipeline)
        figures["cold"].append(seconds)
        figures["cold_n"].append(executed)
        seconds, executed = run_sweep(env, pipeline)
        figures["nochange"].append(seconds)
        figures["again_n"].append(executed)
    return figures


def print_counts(cold: float, again: float) -> None:
    from rich.console import Console

    verdict = "ok" if cold == DISTINCT and again == 0 else "WRONG"
    Console(width=max(120, Console().width)).print(
        f"steps executed: cold sweep {cold:.0f} (must be {DISTINCT}; a naive product runs "
        f"{NAIVE}), no-change re-run {again:.0f} (must be 0) -> {verdict}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    repeat = parser.parse_args().repeat
    work = Path(tempfile.mkdtemp(prefix="modreg-bench-sweep-"))
    server = start_server(work / "registry")
    try:
        publish_modules(work, server.url, new_team(server.url, server.admin_token, "bench"))
        (work / "raw.bin").write_bytes(os.urandom(MIB))
        pipeline = sweep_pipeline(work)
        distinct = statistics.median(bash_sweep(work, naive=False) for _ in range(repeat))
        naive = statistics.median(bash_sweep(work, naive=True) for _ in range(repeat))
        hashing = statistics.median(hash_floor(DISTINCT + 1, work) for _ in range(repeat))
        runner = Runner(server.url, server.admin_token, work)
        figures = {k: statistics.median(v) for k, v in measure(runner, pipeline, repeat).items()}
        print_counts(figures["cold_n"], figures["again_n"])
        report(
            [
                ("sweep 3x2x3 -j2, cold", figures["cold"], "bash loop (27)", distinct, "< 0.8x"),
                ("sweep 3x2x3 -j2, cold", figures["cold"], "naive bash (54)", naive, "-"),
                ("sweep 3x2x3, no change", figures["nochange"], "hashing (28)", hashing, "<= 4x"),
            ]
        )
    finally:
        stop_server(server.process)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
