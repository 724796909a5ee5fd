"""CLI start-up speed: wall time of the real ``modreg`` executable, as a user runs it.

Starts a real registry on loopback, publishes one module with 50 versions (real git repo,
real publishes), then times, as separate processes, the median of 10 runs (after one warm-up):

- ``modreg --help``                      aim: under 0.15 s (click alone is imported);
- ``modreg versions vision/bench``       aim: under 0.35 s (httpx + pydantic + rich, 2 requests);
- ``modreg versions vision/bench --json`` (no aim; shows what the rich table costs).

``cli_figures(url, token, module)`` returns the same rows for another benchmark to include.
Run: ``.venv/bin/python benchmarks/bench_cli.py``.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from factories import make_module_repo  # noqa: E402
from registry_servers import create_team_tokens, start_server, stop_server  # noqa: E402

from modreg.client import RegistryClient, publish  # noqa: E402

RUNS = 10
VERSIONS = 50
MODULE = "vision/bench"
MODREG = str(Path(sys.executable).parent / "modreg")


@dataclass(frozen=True)
class CliFigure:
    """One command's median wall (and CPU) time against its aim (None: shown, not judged)."""

    command: str
    median_s: float
    best_s: float
    cpu_s: float  # median user+sys CPU of the process: what a busy machine cannot inflate
    aim_s: float | None


def _timed_run(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([MODREG, *args], env=env, capture_output=True, check=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def measure(args: list[str], env: dict[str, str], aim: float | None, runs: int = RUNS) -> CliFigure:
    """``modreg ARGS`` as fresh processes, ``runs`` times after one untimed warm-up."""
    _timed_run(args, env)
    walls, cpus = zip(*(_timed_run(args, env) for _ in range(runs)), strict=True)
    command = f"modreg {' '.join(args)}"
    return CliFigure(command, statistics.median(walls), min(walls), statistics.median(cpus), aim)


def cli_figures(url: str, token: str | None, module: str) -> list[CliFigure]:
    """Time ``--help`` and ``versions MODULE`` against the registry at ``url``."""
    with tempfile.TemporaryDirectory(prefix="modreg-bench-home-") as home:
        env = {**os.environ, "MODREG_URL": url, "XDG_CONFIG_HOME": home, "XDG_CACHE_HOME": home}
        if token:
            env["MODREG_TOKEN"] = token
        cases = [
            (["--help"], 0.15),
            (["versions", module], 0.35),
            (["versions", module, "--json"], None),
        ]
        return [measure(args, env, aim) for args, aim in cases]


def seed(url: str, token: str, workdir: Path) -> None:
    """Publish ``VERSIONS`` versions of ``MODULE`` from successive commits of one repo."""
    with RegistryClient(url, token) as client:
        for minor in range(VERSIONS):
            folder = make_module_repo(workdir, name=MODULE, version=f"1.{minor}.0")
            publish(client, folder)


def report(figures: list[CliFigure]) -> None:
    load = os.getloadavg()[0]
    table = Table(title=f"modreg CLI wall time (median of {RUNS} runs; load average {load:.1f})")
    for column in ("command", "median", "best", "cpu", "aim", "ratio"):
        table.add_column(column, justify="left" if column == "command" else "right", no_wrap=True)
    for f in figures:
        times = [f.command, f"{f.median_s:.3f} s", f"{f.best_s:.3f} s", f"{f.cpu_s:.3f} s"]
        if f.aim_s is None:
            table.add_row(*times, "-", "-")
            continue
        ratio = f.aim_s / f.median_s
        style = "green" if ratio >= 1 else "red"
        table.add_row(*times, f"< {f.aim_s:g} s", f"[{style}]{ratio:.2f}x[/{style}]")
    Console(width=max(120, Console().width)).print(table)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="modreg-bench-cli-") as tmp:
        server = start_server(Path(tmp) / "data")
        try:
            tokens = create_team_tokens(server, "vision")
            started = time.perf_counter()
            seed(server.url, tokens.publish, Path(tmp))
            print(f"published {VERSIONS} versions in {time.perf_counter() - started:.1f} s")
            figures = cli_figures(server.url, tokens.read, MODULE)
        finally:
            assert server.process is not None
            stop_server(server.process)
    report(figures)


if __name__ == "__main__":
    main()
