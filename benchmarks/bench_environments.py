"""Module environments: what one costs a step when it is built (warm), and building it (cold).

- warm: the engine's per-step work for a step with an environment that is already built
  (``Environments.activate``: the digest's flock, the marker check, the last-use touch), the
  median over 200 steps; a step without environment does none of it. Aim: under 5 ms a step.
- warm, end to end: a chain of 20 tiny steps run with ``modreg run --no-reuse`` against a real
  registry, the module with an environment (built) against the same module without one; the
  difference per step is everything an environment costs a step, process start included.
- cold: building an environment through the engine (``activate`` on a fresh state folder)
  against ``uv venv`` + ``uv pip sync --require-hashes`` of the same lock by hand, uv's cache
  warm for both, the median of ``--repeat``; for a small environment (one pure-Python wheel,
  built here) and, with ``--digits``, the digits example's (scikit-learn and numpy, resolved
  from PyPI once). Aim: within 1.2x.

    .venv/bin/python benchmarks/bench_environments.py [--repeat 5] [--digits]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import uv
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from tiny_wheels import build_wheel, compile_lock, uv_settings  # noqa: E402

from modreg.client.environments import compile_requirements  # noqa: E402
from modreg.engine.environments import (  # noqa: E402
    Environments,
    Interpreter,
    step_environment,
    uv_environment,
)
from modreg.engine.state import StateDir  # noqa: E402

WARM_STEPS = 200
CHAIN = 20
DIGITS = ["scikit-learn>=1.4,<2", "numpy>=1.26"]  # examples/digits' prep and train


def _engine(state: StateDir, settings: dict[str, str]) -> Environments:
    caller = {**settings, "PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "")}
    return Environments(state, uv_environment(caller), registry=None)


def _kept(state: StateDir, lock: str) -> str:
    sha256 = hashlib.sha256(lock.encode()).hexdigest()
    path = state.root / "env-locks" / f"{sha256}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(lock)
    return sha256


def engine_build(root: Path, lock: str, settings: dict[str, str]) -> float:
    """Seconds to build the environment through the engine, in a fresh state folder."""
    state = StateDir(root / "state")
    environments = _engine(state, settings)
    env = step_environment("bench/m@1.0.0", _kept(state, lock), None, Interpreter.current())
    started = time.perf_counter()
    with environments.activate(env, None):
        elapsed = time.perf_counter() - started
    shutil.rmtree(state.root)
    return elapsed


def uv_alone(root: Path, lock: str, settings: dict[str, str]) -> float:
    """Seconds for ``uv venv`` + ``uv pip sync`` of the same lock, by hand."""
    lock_file = root / "alone.lock"
    lock_file.write_text(lock)
    venv = root / "alone-venv"
    env = {**os.environ, **settings, "UV_PYTHON_DOWNLOADS": "never"}
    python = getattr(sys, "_base_executable", sys.executable)
    started = time.perf_counter()
    for args in (
        ["venv", "-q", "--python", python, str(venv)],
        [
            "pip",
            "sync",
            "-q",
            "--require-hashes",
            "--python",
            str(venv / "bin/python"),
            str(lock_file),
        ],  # fmt: skip
    ):
        subprocess.run([uv.find_uv_bin(), *args], env=env, cwd=root, check=True)
    elapsed = time.perf_counter() - started
    shutil.rmtree(venv)
    return elapsed


def warm_step_ms(root: Path, lock: str, settings: dict[str, str]) -> float:
    """Median milliseconds of the engine's work for one step in a built environment."""
    state = StateDir(root / "warm-state")
    environments = _engine(state, settings)
    env = step_environment("bench/m@1.0.0", _kept(state, lock), None, Interpreter.current())
    with environments.activate(env, None):
        pass
    times = []
    for _ in range(WARM_STEPS):
        started = time.perf_counter()
        with environments.activate(env, None):
            pass
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def warm_chain_ms(
    root: Path, lock: str, settings: dict[str, str], repeat: int
) -> tuple[float, float]:
    """Seconds of ``modreg run --no-reuse`` of a 20-step chain whose module has the
    environment ``lock`` (already built), and of the same chain of a module without one."""
    from bench_engine import MIB, STEP, Runner, make_repo, new_team
    from registry_servers import start_server, stop_server

    from modreg.client.config import ClientConfig
    from modreg.client.http import RegistryClient
    from modreg.client.publishing import publish

    server = start_server(root / "registry")
    try:
        token = new_team(server.url, server.admin_token, "bench")
        with RegistryClient.from_config(ClientConfig(server.url, token)) as client:
            for name, environment in (("plain", ""), ("env", '[environment]\npython = ">=3.11"\n')):
                files = {"step.py": STEP, "modreg.toml": _chain_manifest(name) + environment}
                if environment:
                    files["requirements.lock"] = lock
                publish(client, make_repo(root / "repos", f"bench/{name}", files))
        (root / "raw.bin").write_bytes(os.urandom(MIB))
        runner = Runner(server.url, server.admin_token, root)
        user = {**runner.fresh_user(), **settings}
        timings = []
        for name in ("env", "plain"):
            pipeline = _chain(root, f"bench/{name}")
            runner.run(user, pipeline)  # builds the environment, fills the caches
            runs = [runner.run(user, pipeline, "--no-reuse") for _ in range(repeat)]
            timings.append(statistics.median(runs))
        return timings[0], timings[1]
    finally:
        stop_server(server.process)


def _chain_manifest(name: str) -> str:
    return (
        f'[module]\nname = "bench/{name}"\nversion = "1.0.0"\n'
        'command = ["python", "step.py", "--data", "{inputs.data}", "--out", "{outputs.out}", '
        '"--idx", "{params.idx}", "--salt", "{params.salt}"]\n'
        '[inputs.data]\ntype = "file"\n[outputs.out]\ntype = "file"\n'
        '[params.idx]\ntype = "int"\n[params.salt]\ntype = "int"\ndefault = 0\n'
    )


def _chain(root: Path, module: str) -> Path:
    lines = ["name: chain", "steps:"]
    for i in range(CHAIN):
        source = "raw.bin" if i == 0 else f"s{i - 1}.outputs.out"
        lines += [f"  s{i}:", f"    uses: {module}@^1", f"    inputs: {{data: {source}}}",
                  f"    params: {{idx: {i}}}"]  # fmt: skip
    path = root / module.replace("/", "-") / "pipeline.yaml"
    path.parent.mkdir(parents=True)
    path.write_text("\n".join(lines) + "\n")
    shutil.copy(root / "raw.bin", path.parent / "raw.bin")
    return path


def cold_row(name: str, root: Path, lock: str, settings: dict[str, str], repeat: int) -> list[str]:
    uv_alone(root, lock, settings)  # fills uv's cache: both sides then install from it
    engine = statistics.median(engine_build(root, lock, settings) for _ in range(repeat))
    alone = statistics.median(uv_alone(root, lock, settings) for _ in range(repeat))
    ratio = engine / alone
    verdict = "ok" if ratio <= 1.2 else "over"
    return [f"cold build: {name}", f"{engine:.3f} s", f"{alone:.3f} s", f"{ratio:.2f}x ({verdict})"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--digits", action="store_true", help="also the digits environment")
    args = parser.parse_args()
    table = Table(title="module environments", header_style="bold")
    for column in ("what", "modreg", "floor", "against the floor"):
        table.add_column(column)
    with tempfile.TemporaryDirectory(prefix="modreg-bench-env-") as temp:
        root = Path(temp)
        wheels = root / "wheels"
        build_wheel(wheels, "tinypkg", "1.0")
        small = compile_lock("tinypkg==1.0", wheels, root / "compile")
        local = uv_settings(wheels, root / "uv-cache")
        warm = warm_step_ms(root, small, local)
        verdict = "ok" if warm < 5 else "over"
        table.add_row("warm step overhead", f"{warm:.3f} ms", "0 ms", f"aim < 5 ms ({verdict})")
        with_env, without = warm_chain_ms(root, small, local, args.repeat)
        per_step = (with_env - without) / CHAIN * 1000
        verdict = "ok" if per_step < 5 else "over"
        table.add_row(
            f"chain of {CHAIN}, --no-reuse: with env / without",
            f"{with_env:.3f} s",
            f"{without:.3f} s",
            f"{per_step:+.1f} ms a step (aim < 5 ms, {verdict})",
        )
        table.add_row(*cold_row("one pure-Python package", root, small, local, args.repeat))
        if args.digits:
            # resolved as `modreg publish` resolves the digits modules' [environment]
            work = root / "digits"
            work.mkdir()
            digits = compile_requirements(DIGITS, "3.11", work, "bench").decode()
            index = {k: v for k, v in os.environ.items() if k.startswith(("UV_", "SSL_"))}
            index["UV_CACHE_DIR"] = str(root / "uv-cache-digits")
            table.add_row(
                *cold_row("digits (scikit-learn, numpy)", root, digits, index, args.repeat)
            )
    Console(width=max(120, Console().width)).print(table)


if __name__ == "__main__":
    main()
