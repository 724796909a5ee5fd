"""Registry speed: bulk resolve and version metadata under load, on a real server process.

Seeds 1,000 modules x 50 versions into a fresh SQLite registry (bulk inserts through the
models, one shared archive blob), starts ``python -m modreg.registry`` on a loopback port,
then measures from the client side (so the figures include loopback HTTP):

- bulk resolve of 50 references (mixed ranges), p50 and p99 over 200 requests;
- ``GET`` of one version's metadata from 16 concurrent clients, requests per second;
- the web UI's pages, p50 at the server: a module page (of 50 versions), the run page of a
  50-step run (each step with a 200-line log) and the sweep page of an 18-run sweep.

Client-side figures (``modreg --help``, ``modreg versions X``) belong to ``client_figures``.
Run: ``.venv/bin/python benchmarks/bench_registry.py``.
"""

from __future__ import annotations

import hashlib
import io
import os
import random
import statistics
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table
from sqlalchemy import insert
from sqlmodel import Session, select

from modreg.registry.blobs import LocalBlobStore
from modreg.registry.db import create_db_engine
from modreg.registry.models import Blob, Module, ModuleVersion, Team, utcnow
from modreg.registry.server import prepare
from modreg.registry.settings import Settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from registry_servers import ServerHandle, start_server, stop_server  # noqa: E402

MODULES, VERSIONS = 1_000, 50
RESOLVE_REFS, RESOLVE_REQUESTS = 50, 200
CLIENTS, GET_SECONDS = 16, 5.0
PAGE_REQUESTS, RUN_STEPS, SWEEP_RUNS = 50, 50, 18
RANGES = ["^{major}", "~{major}.{minor}", ">={major}.0.0, <{next}", "*", "{major}.{minor}.0", ""]


@dataclass(frozen=True)
class Figure:
    name: str
    value: float
    unit: str
    aim: float
    lower_is_better: bool = True

    @property
    def ratio(self) -> float:
        """Above 1 means the aim is met with room; below 1 means it is missed."""
        return self.aim / self.value if self.lower_is_better else self.value / self.aim


def _archive() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        data = b"print('hello')\n"
        info = tarfile.TarInfo("main.py")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _version_rows(module_id: int, name: str, sha: str, size: int) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for index in range(VERSIONS):
        version = f"{1 + index // 10}.{index % 10}.0"
        manifest = {"name": name, "version": version, "command": ["python", "main.py"]}
        rows.append(
            dict(
                module_id=module_id, version=version, status="active", commit="a" * 40,
                tree_sha="b" * 40, path="", sha256=sha, size=size, manifest=manifest,
                published_at=utcnow(),
            )
        )  # fmt: skip
    return rows


def seed(data_dir: Path) -> None:
    """A registry with MODULES x VERSIONS versions, all sharing one archive."""
    settings = Settings(data_dir=data_dir)
    engine = create_db_engine(settings.database_url)
    prepare(settings, engine)
    archive = _archive()
    sha = hashlib.sha256(archive).hexdigest()
    (data_dir / "archive.tar.gz").write_bytes(archive)
    LocalBlobStore(data_dir / "blobs").put_file(data_dir / "archive.tar.gz", sha)
    with Session(engine) as session:
        team = Team(name="bench")
        session.add(team)
        session.add(Blob(sha256=sha, size=len(archive)))
        session.flush()
        modules = [
            {"team_id": team.id, "name": f"m{i:04d}", "description": f"module {i}"}
            for i in range(MODULES)
        ]
        session.execute(insert(Module), modules)
        for module in session.exec(select(Module)).all():
            assert module.id is not None
            rows = _version_rows(module.id, f"bench/{module.name}", sha, len(archive))
            session.execute(insert(ModuleVersion), rows)
        session.commit()
    engine.dispose()


def _refs(rng: random.Random) -> list[str]:
    refs = []
    for _ in range(RESOLVE_REFS):
        major, minor = rng.randint(1, 5), rng.randint(0, 9)
        pattern = rng.choice(RANGES).format(major=major, minor=minor, next=major + 1)
        name = f"bench/m{rng.randrange(MODULES):04d}"
        refs.append(f"{name}@{pattern}" if pattern else name)
    return refs


def _server_ms(answer: httpx.Response) -> float:
    """The app's own time for a request, from its ``Server-Timing: app;dur=MS`` header."""
    return float(answer.headers["server-timing"].split("dur=")[1])


def _percentiles(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def bench_resolve(server: ServerHandle) -> list[Figure]:
    rng = random.Random(7)
    client_ms, server_ms = [], []
    with httpx.Client(base_url=server.api, timeout=30) as http:
        http.post("/resolve", json={"refs": _refs(rng)}).raise_for_status()  # warm up
        for _ in range(RESOLVE_REQUESTS):
            refs = _refs(rng)
            start = time.perf_counter()
            answer = http.post("/resolve", json={"refs": refs})
            client_ms.append((time.perf_counter() - start) * 1000)
            answer.raise_for_status()
            assert all(r["version"] for r in answer.json()["results"]), (
                "a reference did not resolve"
            )
            server_ms.append(_server_ms(answer))
    (s50, s99), (c50, c99) = _percentiles(server_ms), _percentiles(client_ms)
    label = f"resolve {RESOLVE_REFS} refs"
    return [
        Figure(f"{label}, p50 at the server", s50, "ms", 20.0),
        Figure(f"{label}, p99 at the server", s99, "ms", 60.0),
        Figure(f"{label}, p50 at the client", c50, "ms", 20.0),
        Figure(f"{label}, p99 at the client", c99, "ms", 60.0),
    ]


def bench_get_version(server: ServerHandle) -> list[Figure]:
    counts = [0] * CLIENTS
    stop_at = time.perf_counter() + GET_SECONDS
    path = "/modules/bench/m0500/versions/3.4.0"

    def client(slot: int) -> None:
        with httpx.Client(base_url=server.api, timeout=30) as http:
            while time.perf_counter() < stop_at:
                http.get(path).raise_for_status()
                counts[slot] += 1

    start = time.perf_counter()
    threads = [threading.Thread(target=client, args=(slot,)) for slot in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    rate = sum(counts) / (time.perf_counter() - start)
    return [Figure(f"GET version, {CLIENTS} clients", rate, "req/s", 500.0, lower_is_better=False)]


# --- the web UI's pages ----------------------------------------------------------------------


def _put_log(http: httpx.Client, step: int) -> str:
    data = "".join(f"step {step} line {line}: loss {1 / (line + 1):.5f}\n" for line in range(200))
    sha = hashlib.sha256(data.encode()).hexdigest()
    http.put(f"/blobs/{sha}", content=data.encode()).raise_for_status()
    return sha


def _step_record(step: str, log: str, metrics: dict[str, float]) -> dict[str, object]:
    output = {"type": "file", "digest": log, "size": 1}
    return {"status": "executed", "module": "bench/m0001", "version": "1.0.0", "fingerprint": step,
            "params": {"lr": 0.1}, "outputs": {"out": output}, "metrics": metrics,
            "log_digest": log}  # fmt: skip


def _chain_run(http: httpx.Client) -> str:
    """A recorded RUN_STEPS-step chain, every step with its own log."""
    names = [f"s{i:02d}" for i in range(RUN_STEPS)]
    spec = {"steps": {name: {"uses": "bench/m0001@^1", "inputs": {"data": f"{prev}.outputs.out"}}
                      for prev, name in zip(["raw", *names], names, strict=False)}}  # fmt: skip
    run = http.post("/runs", json={"pipeline": "chain", "spec": spec}).json()["id"]
    steps = {name: _step_record(name, _put_log(http, i), {"loss": i / 100})
             for i, name in enumerate(names)}  # fmt: skip
    finish = {"status": "succeeded"}
    http.put(f"/runs/{run}/steps", json={"steps": steps, "finish": finish}).raise_for_status()
    return str(run)


def _sweep(http: httpx.Client) -> str:
    """A recorded SWEEP_RUNS-run sweep of a 3-step pipeline, with metrics."""
    log = _put_log(http, 0)
    spec = {"steps": {"prep": {"uses": "bench/m0001"}, "aug": {"uses": "bench/m0002"},
                      "train": {"uses": "bench/m0003"}}}  # fmt: skip
    variants = [{"prep.uses": f"bench/m000{p}", "aug.params.noise": n, "train.params.arch": a}
                for p in (1, 2, 3) for n in (0, 1) for a in (1, 2, 3)]  # fmt: skip
    runs = [{"pipeline": "sweep", "variant": v, "spec": spec} for v in variants]
    sweep = http.post("/sweeps", json={"pipeline": "sweep", "runs": runs}).json()
    for index, run in enumerate(sweep["run_ids"]):
        steps = {step: _step_record(step, log, {"accuracy": 0.8 + index / 100, "loss": 0.1})
                 for step in ("prep", "aug", "train")}  # fmt: skip
        body = {"steps": steps, "finish": {"status": "succeeded"}}
        http.put(f"/runs/{run}/steps", json=body).raise_for_status()
    return str(sweep["id"])


def _page_ms(http: httpx.Client, path: str) -> float:
    """p50 at the server of ``PAGE_REQUESTS`` gets of a page (after one to warm it)."""
    http.get(path).raise_for_status()
    times = []
    for _ in range(PAGE_REQUESTS):
        answer = http.get(path)
        answer.raise_for_status()
        times.append(_server_ms(answer))
    return statistics.median(times)


def bench_pages(server: ServerHandle) -> list[Figure]:
    with httpx.Client(base_url=server.api, headers=server.admin_headers(), timeout=30) as admin:
        answer = admin.post("/tokens", json={"team": "bench", "scope": "run"})
        token = answer.raise_for_status().json()["token"]
    with httpx.Client(
        base_url=server.api, timeout=60, headers={"Authorization": f"Bearer {token}"}
    ) as http:
        run, sweep = _chain_run(http), _sweep(http)
    cookies = {"modreg_token": token}
    with httpx.Client(base_url=server.url, timeout=30, cookies=cookies) as page:
        return [
            Figure(f"module page ({VERSIONS} versions), p50 at the server",
                   _page_ms(page, "/modules/bench/m0500"), "ms", 50.0),
            Figure(f"run page ({RUN_STEPS} steps with logs), p50 at the server",
                   _page_ms(page, f"/runs/{run}"), "ms", 100.0),
            Figure(f"sweep page ({SWEEP_RUNS} runs), p50 at the server",
                   _page_ms(page, f"/sweeps/{sweep}"), "ms", 100.0),
        ]  # fmt: skip


# --- client figures ------------------------------------------------------------------------
# The client helper adds `modreg --help` and `modreg versions X` wall times here.
CLIENT_BENCHES: list[Callable[[ServerHandle], list[Figure]]] = []


def client_figures(server: ServerHandle) -> list[Figure]:
    return [figure for bench in CLIENT_BENCHES for figure in bench(server)]


# -------------------------------------------------------------------------------------------


def report(figures: list[Figure]) -> None:
    table = Table(title=f"modreg registry: {MODULES:,} modules x {VERSIONS} versions (SQLite)")
    for column in ("figure", "value", "aim", "ratio"):
        table.add_column(column, justify="left" if column == "figure" else "right")
    for f in figures:
        aim = f"{'<=' if f.lower_is_better else '>='} {f.aim:g} {f.unit}"
        style = "green" if f.ratio >= 1 else "red"
        table.add_row(f.name, f"{f.value:.1f} {f.unit}", aim, f"[{style}]{f.ratio:.2f}x[/{style}]")
    Console(width=max(120, Console().width)).print(table)
    load = os.getloadavg()[0]
    print(f"load average {load:.1f} on {os.cpu_count()} CPUs (shared by client and server)")


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="modreg-bench-") as tmp:
        data_dir = Path(tmp) / "data"
        started = time.perf_counter()
        seed(data_dir)
        print(f"seeded {MODULES * VERSIONS:,} versions in {time.perf_counter() - started:.1f} s")
        server = start_server(data_dir)
        try:
            figures = bench_resolve(server) + bench_get_version(server) + bench_pages(server)
            figures += client_figures(server)
        finally:
            assert server.process is not None
            stop_server(server.process)
        report(figures)


if __name__ == "__main__":
    main()
