"""The README's backup and restore drill, with the very commands it gives.

A real registry (SQLite or PostgreSQL) is filled with versions, runs and cache entries
(folder outputs included); it is backed up while it serves (``sqlite3 .backup`` or
``pg_dump``, then ``cp -a`` of the blobs and the admin token), restored into a new data
folder and a new database, and a server started on the copy must answer every version, run
and cache entry, each blob verified against its sha256, to the old tokens.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from registry_data import module_archive, publish_body
from registry_servers import ServerHandle, TeamTokens, bearer, create_team_tokens

from modreg.registry.schemas import DirManifest

PG_ADMIN_DSN = os.environ.get("MODREG_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def _pg_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


@dataclass
class Contents:
    """What the registry held, to be found again after the restore."""

    versions: dict[str, str] = field(default_factory=dict)  # version -> archive sha256
    runs: dict[str, str] = field(default_factory=dict)  # run id -> its step's log sha256
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)  # fingerprint -> outputs


def _put(http: httpx.Client, token: str, data: bytes) -> str:
    sha = hashlib.sha256(data).hexdigest()
    answer = http.put(f"/blobs/{sha}", content=data, headers=bearer(token))
    assert answer.status_code in (200, 201), answer.text
    return sha


def _populate(server: ServerHandle, tokens: TeamTokens) -> Contents:
    held = Contents()
    with httpx.Client(base_url=server.api, timeout=60) as http:
        for version in ("1.0.0", "1.1.0", "2.0.0"):
            sha = _put(http, tokens.publish, module_archive(version))
            answer = http.post(
                "/modules/vision/prep/versions",
                json=publish_body(sha, version),
                headers=bearer(tokens.publish),
            )
            assert answer.status_code == 201, answer.text
            held.versions[version] = sha
        for index in range(3):
            member_bytes = f"weights {index}".encode()
            member = _put(http, tokens.run, member_bytes)
            manifest = DirManifest.of({"w.bin": (member, len(member_bytes))}).to_bytes()
            outputs = {
                "score": {"type": "file", "digest": _put(http, tokens.run, f"{index}".encode())},
                "model": {"type": "dir", "digest": _put(http, tokens.run, manifest)},
            }
            run = http.post("/runs", json={"pipeline": "p"}, headers=bearer(tokens.run)).json()
            fingerprint = hashlib.sha256(f"fp {index}".encode()).hexdigest()
            entry = {"outputs": outputs, "run_id": run["id"], "step": "train"}
            answer = http.put(f"/cache/{fingerprint}", json=entry, headers=bearer(tokens.run))
            assert answer.status_code == 200, answer.text
            log = _put(http, tokens.run, f"log of run {index}".encode())
            step = {"status": "executed", "module": "vision/prep", "version": "1.0.0",
                    "outputs": outputs, "log_digest": log, "fingerprint": fingerprint}  # fmt: skip
            batch = {"steps": {"train": step}, "finish": {"status": "succeeded"}}
            answer = http.put(f"/runs/{run['id']}/steps", json=batch, headers=bearer(tokens.run))
            assert answer.status_code == 204, answer.text
            held.runs[run["id"]] = log
            held.entries[fingerprint] = outputs
    return held


def _back_up(server: ServerHandle, backup: Path) -> None:
    """The README's backup commands, in their order, while the server runs."""
    backup.mkdir()
    data = server.data_dir
    if server.db_url is None:
        db, target = data / "registry.db", backup / "registry.db"
        subprocess.run(["sqlite3", str(db), f".backup '{target}'"], check=True)
    else:
        pg_url = server.db_url.replace("postgresql+psycopg://", "postgresql://")
        dump = ["pg_dump", "--format=custom", f"--file={backup / 'registry.dump'}", pg_url]
        subprocess.run(dump, check=True)
    subprocess.run(["cp", "-a", str(data / "blobs"), str(backup / "blobs")], check=True)
    subprocess.run(["cp", "-p", str(data / "admin.token"), str(backup)], check=True)


def _restore(backup: Path, new: Path, new_db: str | None) -> None:
    """The README's restore commands (the empty database is made by the caller)."""
    new.mkdir()
    if new_db is None:
        subprocess.run(["cp", str(backup / "registry.db"), str(new)], check=True)
    else:
        pg_url = new_db.replace("postgresql+psycopg://", "postgresql://")
        restore = ["pg_restore", "--no-owner", f"--dbname={pg_url}", str(backup / "registry.dump")]
        subprocess.run(restore, check=True)
    subprocess.run(["cp", "-a", str(backup / "blobs"), str(new / "blobs")], check=True)
    subprocess.run(["cp", "-p", str(backup / "admin.token"), str(new)], check=True)


def _verified(http: httpx.Client, token: str, sha: str) -> bytes:
    answer = http.get(f"/blobs/{sha}", headers=bearer(token))
    assert answer.status_code == 200, f"blob {sha}: {answer.status_code}"
    assert hashlib.sha256(answer.content).hexdigest() == sha
    return answer.content


def _check(server: ServerHandle, tokens: TeamTokens, held: Contents) -> None:
    with httpx.Client(base_url=server.api, timeout=60) as http:
        listed = http.get("/modules/vision/prep/versions").json()
        assert {v["version"]: v["sha256"] for v in listed} == held.versions
        for version, sha in held.versions.items():
            archive = http.get(f"/modules/vision/prep/versions/{version}/archive")
            assert hashlib.sha256(archive.content).hexdigest() == sha
        for run_id, log in held.runs.items():
            run = http.get(f"/runs/{run_id}", headers=bearer(tokens.read)).json()
            assert run["status"] == "succeeded" and run["steps"]["train"]["log_digest"] == log
            _verified(http, tokens.read, log)
        lookup = http.post(
            "/cache/lookup", json={"fingerprints": list(held.entries)}, headers=bearer(tokens.read)
        ).json()["entries"]
        digests = {
            fp: {k: r["digest"] for k, r in e["outputs"].items()} for fp, e in lookup.items()
        }
        assert digests == {
            fp: {k: r["digest"] for k, r in outputs.items()} for fp, outputs in held.entries.items()
        }
        for outputs in held.entries.values():
            _verified(http, tokens.read, outputs["score"]["digest"])
            manifest = _verified(http, tokens.read, outputs["model"]["digest"])
            for member, _size in DirManifest.from_bytes(manifest).members().values():
                _verified(http, tokens.read, member)
        me = http.get("/whoami", headers=bearer(server.admin_token)).json()
        assert me["admin"] is True, "the admin token works on the restored registry"


@pytest.fixture
def new_database(db_url: str) -> Iterator[str | None]:
    """An empty PostgreSQL database to restore into (None on SQLite: a new file)."""
    if db_url.startswith("sqlite"):
        yield None
        return
    name = f"modreg_restored_{uuid.uuid4().hex[:12]}"
    _pg_admin(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + (
            f"/{name}"
        )
    finally:
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.slow
def test_backup_then_restore_elsewhere_reads_everything_back(
    db_url: str, new_database: str | None, server_factory: Any, tmp_path: Path
) -> None:
    url = None if db_url.startswith("sqlite") else db_url
    server = server_factory(data_dir=tmp_path / "data", db_url=url)
    tokens = create_team_tokens(server, "vision")
    held = _populate(server, tokens)
    _back_up(server, tmp_path / "backup")
    _restore(tmp_path / "backup", tmp_path / "new", new_database)
    restored = server_factory(data_dir=tmp_path / "new", db_url=new_database)
    assert restored.admin_token == server.admin_token
    _check(restored, tokens, held)
