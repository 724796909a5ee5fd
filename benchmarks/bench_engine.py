"""Engine benchmark: `modreg run` against a bash loop and a hashing floor.

Workloads (each step is a tiny Python script that reads a 1 MiB input and writes a 1 MiB
output): a chain of 20 steps, and a fan-out 1 -> 50 -> 1. Floors measured in the same run:
a bash loop running the same scripts one by one (process-per-step floor) and one process
hashing every file involved (floor for a fully reused run). The floors run each script with
``PYTHON``, the very interpreter modreg runs the steps with (see there). Every figure is the whole
`modreg run` command, process start-up included, against a real registry on loopback.

    .venv/bin/python benchmarks/bench_engine.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from registry_servers import start_server, stop_server  # noqa: E402

MODREG = str(Path(sys.executable).with_name("modreg"))
# modreg runs a step's leading ``python`` as its own sys.executable (executors.base.
# fill_command): the interpreter of this venv, on the #! line of the ``modreg`` script beside
# it. The floors use exactly that. Not ``python3`` from PATH: on pyenv or asdf that is a shell
# shim (0.20 s a start here, against 0.05 s), which made modreg look faster than its floor.
# Nor its realpath: in a venv that is the base interpreter, a different start (0.09 s here).
# Read off that #! line, so the floors match the steps whichever Python runs this script.
PYTHON = Path(MODREG).read_text().splitlines()[0].removeprefix("#!").strip()
MIB = 1 << 20
FAN = 50
CHAIN = 20

STEP = """\
import sys
args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
data = open(args["--data"], "rb").read()
salt = (args["--idx"] + ":" + args["--salt"] + ":").encode()
open(args["--out"], "wb").write(salt + data[: len(data) - len(salt)])
"""

JOIN = """\
import sys
args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
parts = [open(v, "rb").read() for k, v in sorted(args.items()) if k.startswith("--in")]
open(args["--out"], "wb").write(bytes(x for x in parts[0][:64]) + parts[-1][64:])
"""


def manifest(name: str, inputs: list[str], script: str, params: bool) -> str:
    command = ["python", script]
    for port in inputs:
        command += [f"--{port}", f"{{inputs.{port}}}"]
    command += ["--out", "{outputs.out}"]
    if params:
        command += ["--idx", "{params.idx}", "--salt", "{params.salt}"]
    lines = [
        "[module]",
        f'name = "{name}"',
        'version = "1.0.0"',
        f"command = {command!r}".replace("'", '"'),
    ]
    lines += [line for port in inputs for line in (f"[inputs.{port}]", 'type = "file"')]
    lines += ["[outputs.out]", 'type = "file"']
    if params:
        lines += ["[params.idx]", 'type = "int"', "[params.salt]", 'type = "int"', "default = 0"]
    return "\n".join(lines) + "\n"


def make_repo(root: Path, name: str, files: dict[str, str]) -> Path:
    folder = root / name.replace("/", "__")
    folder.mkdir(parents=True)
    for rel, text in files.items():
        (folder / rel).write_text(text)
    git = ["git", "-C", str(folder), "-c", "user.name=bench", "-c", "user.email=b@b"]
    subprocess.run([*git[:3], "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "v1"], check=True)
    return folder


def new_team(url: str, admin: str, name: str) -> str:
    headers = {"Authorization": f"Bearer {admin}"}
    with httpx.Client(base_url=f"{url}/api/v1", headers=headers, timeout=30) as http:
        http.post("/teams", json={"name": name}).raise_for_status()
        answer = http.post("/tokens", json={"team": name, "scope": "publish"})
        answer.raise_for_status()
        return str(answer.json()["token"])


def publish_modules(root: Path, url: str, token: str) -> None:
    from modreg.client.config import ClientConfig
    from modreg.client.http import RegistryClient
    from modreg.client.publishing import publish

    joins = [f"in{i:02d}" for i in range(FAN)]
    modules = {
        "bench/step": {
            "step.py": STEP,
            "modreg.toml": manifest("bench/step", ["data"], "step.py", True),
        },
        "bench/join": {
            "join.py": JOIN,
            "modreg.toml": manifest("bench/join", joins, "join.py", False),
        },
    }
    with RegistryClient.from_config(ClientConfig(url, token)) as client:
        for name, files in modules.items():
            publish(client, make_repo(root / "repos", name, files))


def chain_pipeline(work: Path) -> Path:
    lines = ["name: chain", "steps:"]
    for i in range(CHAIN):
        source = "raw.bin" if i == 0 else f"s{i - 1}.outputs.out"
        lines += [
            f"  s{i}:",
            "    uses: bench/step@^1",
            f"    inputs: {{data: {source}}}",
            f"    params: {{idx: {i}}}",
        ]
    path = work / "chain" / "pipeline.yaml"
    path.parent.mkdir(parents=True)
    path.write_text("\n".join(lines) + "\n")
    shutil.copy(work / "raw.bin", path.parent / "raw.bin")
    return path


def fan_pipeline(work: Path) -> Path:
    lines = [
        "name: fan",
        "steps:",
        "  split:",
        "    uses: bench/step@^1",
        "    inputs: {data: raw.bin}",
        "    params: {idx: 999}",
    ]
    for i in range(FAN):
        lines += [
            f"  w{i}:",
            "    uses: bench/step@^1",
            "    inputs: {data: split.outputs.out}",
            f"    params: {{idx: {i}}}",
        ]
    lines += ["  join:", "    uses: bench/join@^1", "    inputs:"]
    lines += [f"      in{i:02d}: w{i}.outputs.out" for i in range(FAN)]
    path = work / "fan" / "pipeline.yaml"
    path.parent.mkdir(parents=True)
    path.write_text("\n".join(lines) + "\n")
    shutil.copy(work / "raw.bin", path.parent / "raw.bin")
    return path


def bash_chain(work: Path, steps: int) -> float:
    folder = work / "bash-chain"
    folder.mkdir(exist_ok=True)
    (folder / "step.py").write_text(STEP)
    script = [f"cp {work / 'raw.bin'} f0"]
    script += [
        f"{PYTHON} step.py --data f{i} --out f{i + 1} --idx {i} --salt 0" for i in range(steps)
    ]
    return timed(["bash", "-c", "\n".join(script)], cwd=folder)


def bash_fan(work: Path) -> float:
    folder = work / "bash-fan"
    folder.mkdir(exist_ok=True)
    (folder / "step.py").write_text(STEP)
    (folder / "join.py").write_text(JOIN)
    script = [f"{PYTHON} step.py --data {work / 'raw.bin'} --out split --idx 999 --salt 0"]
    script += [f"{PYTHON} step.py --data split --out w{i} --idx {i} --salt 0" for i in range(FAN)]
    script += [
        f"{PYTHON} join.py " + " ".join(f"--in{i:02d} w{i}" for i in range(FAN)) + " --out joined"
    ]
    return timed(["bash", "-c", "\n".join(script)], cwd=folder)


def hash_floor(files: int, work: Path) -> float:
    folder = work / f"hash-{files}"
    folder.mkdir(exist_ok=True)
    for i in range(files):
        (folder / f"f{i}").write_bytes(os.urandom(MIB))
    code = (
        "import hashlib,os,sys\nfor n in os.listdir(sys.argv[1]):\n    "
        "hashlib.file_digest(open(os.path.join(sys.argv[1], n), 'rb'), 'sha256')"
    )
    return timed([PYTHON, "-c", code, str(folder)])


def timed(argv: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(
            f"{' '.join(argv[:3])} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        )
    return elapsed


class Runner:
    """`modreg run` in a given state folder with a given team token."""

    def __init__(self, url: str, admin: str, work: Path) -> None:
        self.url, self.admin, self.work = url, admin, work

    def fresh_user(self) -> dict[str, str]:
        token = new_team(self.url, self.admin, f"u{uuid.uuid4().hex[:8]}")
        home = self.work / "users" / uuid.uuid4().hex[:8]
        env = {
            **os.environ,
            "MODREG_URL": self.url,
            "MODREG_TOKEN": token,
            "XDG_CACHE_HOME": str(home),
        }
        env["XDG_CONFIG_HOME"] = str(home / "config")
        return env

    def run(self, env: dict[str, str], pipeline: Path, *args: str) -> float:
        return timed([MODREG, "run", str(pipeline), *args], env=env)


def measure(runner: Runner, pipeline: Path, jobs: str, repeat: int) -> dict[str, list[float]]:
    figures: dict[str, list[float]] = {"cold": [], "nochange": [], "param": []}
    for rep in range(repeat):
        env = runner.fresh_user()
        figures["cold"].append(runner.run(env, pipeline, "--jobs", jobs))
        figures["nochange"].append(runner.run(env, pipeline, "--jobs", jobs))
        first = "s0" if "chain" in str(pipeline) else "split"
        figures["param"].append(
            runner.run(env, pipeline, "--jobs", jobs, "--set", f"{first}.params.salt={rep + 1}")
        )
    return figures


def report(rows: list[tuple[str, float, str, float, str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title="modreg engine benchmark (median seconds; whole commands)", header_style="bold"
    )
    for column in ("workload", "modreg", "floor", "floor s", "ratio", "aim"):
        table.add_column(column)
    for name, value, floor_name, floor, aim in rows:
        table.add_row(
            name, f"{value:.3f}", floor_name, f"{floor:.3f}", f"{value / floor:.2f}x", aim
        )
    Console(width=max(120, Console().width)).print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    repeat = parser.parse_args().repeat
    work = Path(tempfile.mkdtemp(prefix="modreg-bench-"))
    server = start_server(work / "registry")
    try:
        token = new_team(server.url, server.admin_token, "bench")
        publish_modules(work, server.url, token)
        (work / "raw.bin").write_bytes(os.urandom(MIB))
        runner = Runner(server.url, server.admin_token, work)
        chain, fan = chain_pipeline(work), fan_pipeline(work)
        bash20 = statistics.median(bash_chain(work, CHAIN) for _ in range(repeat))
        bash_f = statistics.median(bash_fan(work) for _ in range(repeat))
        hash21 = statistics.median(hash_floor(CHAIN + 1, work) for _ in range(repeat))
        hash53 = statistics.median(hash_floor(FAN + 3, work) for _ in range(repeat))
        c = {k: statistics.median(v) for k, v in measure(runner, chain, "2", repeat).items()}
        f = {k: statistics.median(v) for k, v in measure(runner, fan, "2", repeat).items()}
        report(
            [
                ("chain 20, cold", c["cold"], "bash loop", bash20, "<= 1.3x"),
                ("chain 20, no change", c["nochange"], "hashing", hash21, "<= 4x"),
                ("chain 20, param of s0", c["param"], "bash loop (20 re-run)", bash20, "<= 1.3x"),
                ("fan 1->50->1 -j2, cold", f["cold"], "bash loop", bash_f, "< 0.75x"),
                ("fan 1->50->1, no change", f["nochange"], "hashing", hash53, "<= 4x"),
                (
                    "fan 1->50->1, param of split",
                    f["param"],
                    "bash loop (52 re-run)",
                    bash_f,
                    "< 0.75x",
                ),
            ]
        )
    finally:
        stop_server(server.process)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
