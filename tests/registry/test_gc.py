"""``modreg gc`` against real servers on SQLite and PostgreSQL: what it keeps, what it deletes,
and that it never loses a referenced byte while publishes and runs go on beside it.

Runs are recorded over HTTP as the engine records them (output blobs, then the cache entry,
then the step records); the engine's own end-to-end test of a collected cache entry is in
``tests/engine/test_gc_cache_miss.py``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from registry_data import module_archive, publish_body
from registry_servers import ServerHandle, TeamTokens, bearer, create_team_tokens

from modreg.registry.db import create_db_engine
from modreg.registry.schemas import DirManifest


@dataclass
class Registry:
    """A real server, team vision's tokens, and a way to make unique bytes."""

    server: ServerHandle
    tokens: TeamTokens
    http: httpx.Client
    counter: Iterator[int] = field(default_factory=itertools.count)

    def unique(self, what: str) -> bytes:
        return f"{what} #{next(self.counter)} {time.monotonic_ns()}".encode()

    def put(self, data: bytes, token: str | None = None) -> str:
        sha = hashlib.sha256(data).hexdigest()
        answer = self.http.put(
            f"/blobs/{sha}", content=data, headers=bearer(token or self.tokens.run)
        )
        assert answer.status_code in (200, 201), answer.text
        return sha

    def status(self, sha: str) -> int:
        return self.http.get(f"/blobs/{sha}", headers=bearer(self.server.admin_token)).status_code

    def gc(self, grace: int = 0, dry_run: bool = False) -> dict[str, Any]:
        body = {"grace_seconds": grace, "dry_run": dry_run}
        answer = self.http.post("/gc", json=body, headers=bearer(self.server.admin_token))
        assert answer.status_code == 200, answer.text
        return answer.json()  # type: ignore[no-any-return]

    def folder(self) -> tuple[dict[str, Any], str]:
        """A folder output (uploaded): its OutputRef and the one file in it."""
        member_bytes = self.unique("a file in a folder")
        member = self.put(member_bytes)
        manifest = DirManifest.of({"w.bin": (member, len(member_bytes))}).to_bytes()
        return {"type": "dir", "digest": self.put(manifest), "size": len(member_bytes)}, member

    def cache(self, fingerprint: str, outputs: dict[str, Any], run: str | None = None) -> None:
        body = {"outputs": outputs, "run_id": run, "step": "s"}
        answer = self.http.put(f"/cache/{fingerprint}", json=body, headers=bearer(self.tokens.run))
        assert answer.status_code == 200, answer.text

    def run(self, outputs: dict[str, Any], log: str) -> str:
        answer = self.http.post("/runs", json={"pipeline": "p"}, headers=bearer(self.tokens.run))
        run_id = str(answer.json()["id"])
        step = {"status": "executed", "module": "vision/prep", "version": "1.0.0",
                "outputs": outputs, "log_digest": log}  # fmt: skip
        answer = self.http.put(
            f"/runs/{run_id}/steps/s", json=step, headers=bearer(self.tokens.run)
        )
        assert answer.status_code == 204, answer.text
        return run_id

    def pin(self, run_id: str, pinned: bool = True) -> None:
        method = "PUT" if pinned else "DELETE"
        answer = self.http.request(method, f"/runs/{run_id}/pin", headers=bearer(self.tokens.run))
        assert answer.status_code == 200 and answer.json()["pinned"] is pinned, answer.text


def _registry(server: ServerHandle) -> Iterator[Registry]:
    tokens = create_team_tokens(server, "vision")
    with httpx.Client(base_url=server.api, timeout=60) as http:
        yield Registry(server, tokens, http)


@pytest.fixture
def registry(db_url: str, server_factory: Any) -> Iterator[Registry]:
    yield from _registry(server_factory(db_url=db_url))


def _file(sha: str) -> dict[str, Any]:
    return {"type": "file", "digest": sha}


def _publish(reg: Registry, version: str) -> str:
    data = module_archive(version, salt=str(next(reg.counter)))
    sha = reg.put(data, reg.tokens.publish)
    answer = reg.http.post(
        "/modules/vision/prep/versions",
        json=publish_body(sha, version),
        headers=bearer(reg.tokens.publish),
    )
    assert answer.status_code == 201, answer.text
    return sha


def _deleted(report: dict[str, Any]) -> set[str]:
    return {blob["sha256"] for blob in report["blobs"]}


def test_gc_keeps_every_root_and_deletes_exactly_what_the_dry_run_listed(
    registry: Registry,
) -> None:
    reg = registry
    archive = _publish(reg, "1.0.0")
    orphan = reg.put(reg.unique("uploaded, never named"))
    cached = reg.put(reg.unique("a cached output"))
    folder, member = reg.folder()
    reg.cache("f" * 64, {"out": _file(cached), "model": folder})
    pinned_out, pinned_log = reg.put(reg.unique("pinned out")), reg.put(reg.unique("pinned log"))
    pinned = reg.run({"out": _file(pinned_out)}, pinned_log)
    reg.pin(pinned)
    loose_out, loose_log = reg.put(reg.unique("loose out")), reg.put(reg.unique("loose log"))
    reg.run({"out": _file(loose_out)}, loose_log)

    dry = reg.gc(dry_run=True)
    assert _deleted(dry) == {orphan, loose_out, loose_log}
    assert all(reg.status(sha) == 200 for sha in _deleted(dry)), "a dry run deletes nothing"
    real = reg.gc()
    assert real["blobs"] == dry["blobs"], "the dry run listed exactly what the real run deleted"
    for sha in (orphan, loose_out, loose_log):
        assert reg.status(sha) == 404
    for sha in (archive, cached, folder["digest"], member, pinned_out, pinned_log):
        answer = reg.http.get(f"/blobs/{sha}", headers=bearer(reg.tokens.read))
        assert answer.status_code == 200 and hashlib.sha256(answer.content).hexdigest() == sha
    assert reg.gc()["blobs"] == [], "a second run finds nothing more"

    reg.pin(pinned, False)
    assert _deleted(reg.gc()) == {pinned_out, pinned_log}, "unpinned: its outputs go too"


def test_gc_spares_blobs_seen_within_the_grace_period(registry: Registry) -> None:
    reg = registry
    old = reg.put(reg.unique("old"))
    time.sleep(1.1)
    young = reg.put(reg.unique("young"))
    assert _deleted(reg.gc(grace=1, dry_run=True)) == {old}
    reg.put(reg.http.get(f"/blobs/{old}", headers=bearer(reg.tokens.run)).content)  # uploaded again
    assert reg.gc(grace=1)["blobs"] == [], "a new upload refreshes the last-seen time"
    time.sleep(1.1)
    found = reg.http.head(f"/blobs/{old}", headers=bearer(reg.tokens.run))
    assert found.status_code == 200, "a HEAD that finds the blob (an upload's first step) ..."
    assert _deleted(reg.gc(grace=1)) == {young}, "... refreshes it too"


def test_expired_cache_entries_release_their_blobs_except_pinned_runs(
    db_url: str, server_factory: Any
) -> None:
    server = server_factory(db_url=db_url, extra_args=("--cache-retention", "1s"))
    for reg in _registry(server):
        kept_run = reg.run({}, reg.put(reg.unique("a log")))
        reg.pin(kept_run)
        kept, expired = reg.put(reg.unique("kept")), reg.put(reg.unique("expired"))
        folder, member = reg.folder()
        reg.cache("a" * 64, {"out": _file(kept)}, run=kept_run)
        reg.cache("b" * 64, {"out": _file(expired), "model": folder})
        time.sleep(1.5)
        report = reg.gc()
        assert report["expired_cache_entries"] == 1
        assert _deleted(report) == {expired, folder["digest"], member}
        assert reg.status(kept) == 200
        lookup = reg.http.post(
            "/cache/lookup",
            json={"fingerprints": ["a" * 64, "b" * 64]},
            headers=bearer(reg.tokens.read),
        )
        assert sorted(lookup.json()["entries"]) == ["a" * 64], "the expired entry is gone"


# --- gc during publishes and runs ------------------------------------------------------------

WORKERS = 3
ROUNDS = 6
GRACE = 1  # seconds: a blob uploaded a moment before it is named may be collected


@dataclass
class Recorded:
    versions: dict[str, str] = field(default_factory=dict)  # version -> archive sha256
    entries: list[str] = field(default_factory=list)  # fingerprints
    lock: threading.Lock = field(default_factory=threading.Lock)


def _publish_retrying(reg: Registry, version: str) -> str:
    """Upload then publish; a 404 (the archive collected between the two) re-uploads."""
    data = module_archive(version, salt=version)
    for _ in range(20):
        sha = reg.put(data, reg.tokens.publish)
        answer = reg.http.post(
            "/modules/vision/prep/versions",
            json=publish_body(sha, version),
            headers=bearer(reg.tokens.publish),
        )
        if answer.status_code == 201:
            return sha
        assert answer.status_code == 404, answer.text
    raise AssertionError(f"publish of {version} kept losing its archive")


def _record_run(reg: Registry, fingerprint: str) -> None:
    """What the engine does for an executed step: blobs, cache entry, step record (retried
    from the blobs when one was collected before the entry named it)."""
    for _ in range(20):
        out = reg.put(reg.unique("an output"))
        folder, _member = reg.folder()
        outputs = {"out": _file(out), "model": folder}
        body = {"outputs": outputs, "run_id": None, "step": "s"}
        answer = reg.http.put(f"/cache/{fingerprint}", json=body, headers=bearer(reg.tokens.run))
        if answer.status_code == 200:
            reg.run(outputs, reg.put(reg.unique("a log")))
            return
        assert answer.status_code == 404, answer.text
    raise AssertionError(f"cache entry {fingerprint} kept losing its blobs")


def _worker(reg: Registry, index: int, recorded: Recorded) -> None:
    with httpx.Client(base_url=reg.server.api, timeout=60) as http:
        mine = Registry(reg.server, reg.tokens, http)
        for round_ in range(ROUNDS):
            version = f"{index + 1}.{round_}.0"
            sha = _publish_retrying(mine, version)
            fingerprint = hashlib.sha256(f"{index}-{round_}".encode()).hexdigest()
            _record_run(mine, fingerprint)
            with recorded.lock:
                recorded.versions[version] = sha
                recorded.entries.append(fingerprint)


def _collector(reg: Registry, stop: threading.Event) -> tuple[int, int]:
    """Collect until stopped; how many runs, and how many blobs they deleted."""
    runs = deleted = 0
    with httpx.Client(base_url=reg.server.api, timeout=60) as http:
        collector = Registry(reg.server, reg.tokens, http)
        while not stop.is_set():
            deleted += len(collector.gc(grace=GRACE)["blobs"])  # about as eager as can be
            runs += 1
            stop.wait(0.05)
    return runs, deleted


def _download(reg: Registry, sha: str) -> bytes:
    answer = reg.http.get(f"/blobs/{sha}", headers=bearer(reg.tokens.read))
    assert answer.status_code == 200, f"blob {sha} lost: {answer.status_code}"
    assert hashlib.sha256(answer.content).hexdigest() == sha
    return answer.content


@pytest.mark.slow
def test_gc_during_concurrent_publishes_and_runs_loses_nothing_referenced(
    registry: Registry,
) -> None:
    reg, recorded, stop = registry, Recorded(), threading.Event()
    orphan = reg.put(reg.unique("uploaded, never named"))  # so the collector has work however fast
    with ThreadPoolExecutor(WORKERS + 1) as pool:
        gc_runs = pool.submit(_collector, reg, stop)
        workers = [pool.submit(_worker, reg, i, recorded) for i in range(WORKERS)]
        for future in workers:
            future.result()
        deadline = time.monotonic() + 30
        while reg.status(orphan) == 200 and time.monotonic() < deadline:
            time.sleep(0.05)  # until the collector, on its own, takes the orphan past its grace
        stop.set()
        runs, deleted = gc_runs.result()
        assert runs >= 3 and deleted > 0, "the collector ran beside the writers, and deleted"
    time.sleep(GRACE)
    reg.gc(grace=0)
    listed = reg.http.get("/modules/vision/prep/versions").json()
    assert {v["version"]: v["sha256"] for v in listed} == recorded.versions
    for sha in recorded.versions.values():
        _download(reg, sha)
    lookup = reg.http.post(
        "/cache/lookup", json={"fingerprints": recorded.entries}, headers=bearer(reg.tokens.read)
    ).json()["entries"]
    assert sorted(lookup) == sorted(recorded.entries)
    for entry in lookup.values():
        for ref in entry["outputs"].values():
            data = _download(reg, ref["digest"])
            if ref["type"] == "dir":
                for member, _size in DirManifest.from_bytes(data).members().values():
                    _download(reg, member)


def test_the_gc_and_pin_commands(registry: Registry) -> None:
    from click.testing import CliRunner

    from modreg.client.cli import cli

    reg = registry
    orphan = reg.put(reg.unique("orphan"))
    run_id = reg.run({}, reg.put(reg.unique("a log")))
    env = {"MODREG_URL": reg.server.url, "XDG_CONFIG_HOME": "/nonexistent"}

    def modreg(token: str, *args: str) -> Any:
        return CliRunner().invoke(cli, ["--token", token, *args], env=env)

    pinned = modreg(reg.tokens.run, "runs", "pin", run_id, "--json")
    assert pinned.exit_code == 0, pinned.stderr
    assert json.loads(pinned.stdout) == {"run": run_id, "pinned": True}
    refused = modreg(reg.tokens.publish, "gc")
    assert refused.exit_code == 1
    assert refused.stderr == "error: garbage collection needs the admin token\n"
    bad = modreg(reg.server.admin_token, "gc", "--grace", "forever")
    assert bad.exit_code == 2 and "invalid duration 'forever'" in bad.stderr
    dry = modreg(reg.server.admin_token, "gc", "--grace", "0s", "--dry-run", "--json")
    assert dry.exit_code == 0, dry.stderr
    report = json.loads(dry.stdout)
    assert (report["dry_run"], report["deleted"]) == (True, 1)
    assert [b["sha256"] for b in report["blobs"]] == [orphan]
    done = modreg(reg.server.admin_token, "gc", "--grace", "0s")
    assert done.exit_code == 0, done.stderr
    assert done.stdout.startswith("gc deleted 1 blobs")


def test_gc_drops_the_leases_of_dead_engines(registry: Registry) -> None:
    reg = registry
    for fingerprint, ttl in (("dead", 0.1), ("alive", 3600)):
        claim = {"holder": f"engine-{fingerprint}", "ttl": ttl}
        answer = reg.http.put(f"/leases/{fingerprint}", json=claim, headers=bearer(reg.tokens.run))
        assert answer.json()["granted"] is True
    time.sleep(0.2)
    assert reg.gc(dry_run=True)["blobs"] == []
    engine = create_db_engine(reg.server.db_url or f"sqlite:///{reg.server.data_dir}/registry.db")
    try:
        with engine.connect() as conn:
            before = conn.execute(sa.text("SELECT fingerprint FROM lease")).scalars().all()
            assert sorted(before) == ["alive", "dead"], "a dry run drops nothing"
        reg.gc()
        with engine.connect() as conn:
            after = conn.execute(sa.text("SELECT fingerprint FROM lease")).scalars().all()
    finally:
        engine.dispose()
    assert after == ["alive"]
