"""Crash soak: kill -9 the registry at random instants while it publishes, caches and records.

Each round starts the server on the same data folder and PostgreSQL database, lets a client
work through a queue of operations (a publish, a cache write, a run record: each a few
requests), and kills the server at a random instant. The operation in flight is retried
against the next server. At the end every operation has been retried to completion, and the
registry holds exactly what was confirmed: every listed version's archive downloads and
verifies, every cache entry's outputs too, every stored blob row has its verified bytes, and
no reference names a blob that is not stored.
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import pytest
from registry_data import module_archive, publish_body
from registry_servers import ServerHandle, TeamTokens, bearer, create_team_tokens

ROUNDS = 8
OPERATIONS = 36


@dataclass
class Operation:
    """One unit of work: its requests are idempotent, so retrying it after a crash is safe."""

    kind: str
    index: int
    done: bool = False
    attempts: int = 0
    run_id: str | None = None  # a run record: the run, once the registry has created it
    answers: list[int] = field(default_factory=list)


def _blob(http: httpx.Client, data: bytes) -> str:
    sha = hashlib.sha256(data).hexdigest()
    answer = http.put(f"/blobs/{sha}", content=data)
    assert answer.status_code in (200, 201), answer.text
    return sha


def _publish(http: httpx.Client, op: Operation) -> None:
    sha = _blob(http, module_archive(f"1.0.{op.index}"))
    body = publish_body(sha, version=f"1.0.{op.index}")
    answer = http.post("/modules/vision/prep/versions", json=body)
    # 201 the first time; 200 "created: false" when an earlier attempt got through
    assert answer.status_code in (200, 201), answer.text
    op.answers.append(answer.status_code)


def _cache(http: httpx.Client, op: Operation) -> None:
    sha = _blob(http, f"output {op.index}".encode())
    outputs = {"out": {"type": "file", "digest": sha, "size": len(f"output {op.index}")}}
    answer = http.put(f"/cache/{'f' * 60}{op.index:04d}", json={"outputs": outputs})
    assert answer.status_code in (200, 201), answer.text
    assert answer.json()["outputs"]["out"]["digest"] == sha


def _record(http: httpx.Client, op: Operation) -> None:
    if op.run_id is None:
        answer = http.post("/runs", json={"pipeline": f"soak{op.index}"})
        assert answer.status_code == 201, answer.text
        op.run_id = answer.json()["id"]
    sha = _blob(http, f"step output {op.index}".encode())
    step = {
        "status": "executed",
        "module": "vision/prep",
        "version": "1.0.0",
        "fingerprint": f"{op.index:064d}",
        "outputs": {"out": {"type": "file", "digest": sha, "size": 1}},
    }
    body = {"steps": {"only": step}, "finish": {"status": "succeeded"}}
    answer = http.put(f"/runs/{op.run_id}/steps", json=body)
    assert answer.status_code == 204, answer.text


STEPS: dict[str, Callable[[httpx.Client, Operation], None]] = {
    "publish": _publish,
    "cache": _cache,
    "record": _record,
}


def _work(server: ServerHandle, token: str, queue: list[Operation], stop: threading.Event) -> None:
    """Do the queue's operations in order until the server dies (or all are done)."""
    with httpx.Client(base_url=server.api, headers=bearer(token), timeout=10) as http:
        for op in queue:
            if op.done:
                continue
            if stop.is_set():
                return
            op.attempts += 1
            try:
                STEPS[op.kind](http, op)
            except httpx.TransportError:
                return  # killed mid-operation: the next round retries it
            op.done = True


def _wait_until_done(queue: list[Operation], count: int, worker: threading.Thread) -> None:
    deadline = time.monotonic() + 60
    while sum(op.done for op in queue) < count and worker.is_alive():
        assert time.monotonic() < deadline, "the server made no progress"
        time.sleep(0.01)


def _start(factory: Callable[..., ServerHandle], data: Path, db_url: str) -> ServerHandle:
    return factory(data_dir=data, db_url=db_url)


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_killed_server_loses_nothing_confirmed_and_keeps_nothing_half_done(
    db_url: str, server_factory: Callable[..., ServerHandle], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    server = _start(server_factory, data, db_url)
    tokens = create_team_tokens(server)
    kinds = list(STEPS)
    queue = [Operation(kinds[index % 3], index) for index in range(OPERATIONS)]
    rng = random.Random(20261202)
    for _ in range(ROUNDS):
        stop = threading.Event()
        # a publish needs the publish token; it serves every kind (publish includes run)
        worker = threading.Thread(target=_work, args=(server, tokens.publish, queue, stop))
        worker.start()
        # kill once the server has done some work this round, at a random instant after:
        # mid-request, mid-transaction, or between two requests of one operation
        _wait_until_done(queue, sum(op.done for op in queue) + rng.randint(1, 4), worker)
        time.sleep(rng.uniform(0.0, 0.08))
        assert server.process is not None
        server.process.kill()
        server.process.wait(10)
        stop.set()
        worker.join(30)
        server = _start(server_factory, data, db_url)
    _work(server, tokens.publish, queue, threading.Event())
    assert all(op.done for op in queue), [op for op in queue if not op.done]
    interrupted = [op.kind for op in queue if op.attempts > 1]
    assert len(interrupted) >= ROUNDS // 2, f"too few kills landed mid-operation: {interrupted}"
    _check_everything_reads_back(server, tokens, queue)
    _check_no_dangling_rows(db_url)


def _check_everything_reads_back(
    server: ServerHandle, tokens: TeamTokens, queue: list[Operation]
) -> None:
    with httpx.Client(base_url=server.api, headers=bearer(tokens.publish), timeout=30) as http:
        listed = http.get("/modules/vision/prep/versions").json()
        published = {f"1.0.{op.index}" for op in queue if op.kind == "publish"}
        assert {row["version"] for row in listed} == published
        for row in listed:
            archive = http.get(f"/blobs/{row['sha256']}")
            assert archive.status_code == 200, row
            assert hashlib.sha256(archive.content).hexdigest() == row["sha256"]
        fingerprints = [f"{'f' * 60}{op.index:04d}" for op in queue if op.kind == "cache"]
        entries = http.post("/cache/lookup", json={"fingerprints": fingerprints}).json()["entries"]
        assert sorted(entries) == sorted(fingerprints)
        for entry in entries.values():
            output = http.get(f"/blobs/{entry['outputs']['out']['digest']}")
            assert hashlib.sha256(output.content).hexdigest() == entry["outputs"]["out"]["digest"]
        for op in queue:
            if op.kind == "record":
                run = http.get(f"/runs/{op.run_id}").json()
                assert run["status"] == "succeeded" and run["steps"]["only"]["status"] == "executed"
    with httpx.Client(base_url=server.api, headers=server.admin_headers(), timeout=30) as admin:
        for sha in _stored_blobs(server.db_url):
            stored = admin.get(f"/blobs/{sha}")
            assert stored.status_code == 200, f"blob row {sha} has no readable bytes"
            assert hashlib.sha256(stored.content).hexdigest() == sha


def _sql(db_url: str | None) -> str:
    assert db_url is not None
    return db_url.replace("postgresql+psycopg://", "postgresql://")


def _stored_blobs(db_url: str | None) -> list[str]:
    with psycopg.connect(_sql(db_url)) as conn:
        return [row[0] for row in conn.execute("SELECT sha256 FROM blob")]


def _check_no_dangling_rows(db_url: str) -> None:
    queries = {
        "reference to a blob not stored": (
            "SELECT count(*) FROM blob_ref r LEFT JOIN blob b ON b.sha256 = r.sha256 "
            "WHERE b.sha256 IS NULL"
        ),
        "version without its archive": (
            "SELECT count(*) FROM module_version v LEFT JOIN blob b ON b.sha256 = v.sha256 "
            "WHERE b.sha256 IS NULL"
        ),
        "module without a version": (
            "SELECT count(*) FROM module m WHERE NOT EXISTS "
            "(SELECT 1 FROM module_version v WHERE v.module_id = m.id)"
        ),
        "step of no run": (
            "SELECT count(*) FROM step_run s LEFT JOIN pipeline_run r ON r.id = s.run_id "
            "WHERE r.id IS NULL"
        ),
    }
    with psycopg.connect(_sql(db_url)) as conn:
        found = {what: conn.execute(sql).fetchone()[0] for what, sql in queries.items()}  # type: ignore[index]
    assert found == dict.fromkeys(queries, 0)
