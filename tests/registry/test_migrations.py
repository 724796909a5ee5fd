"""Migrations that carry data: one head, and a populated registry of revision 0001 upgraded in
place, on SQLite and PostgreSQL, still usable afterwards under the new rules.

The 0001 database is written with plain SQL shapes of that revision (not the models, which
follow the head), holding what a registry of that time held: two teams, read and publish
tokens, a published module, a cache entry and a run whose step has a file output, a folder
output and a log, every blob in the blob store.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from fastapi.testclient import TestClient
from registry_data import env_lock, module_archive, publish_body

from modreg.registry.app import create_app
from modreg.registry.auth import hash_secret
from modreg.registry.blobs import LocalBlobStore
from modreg.registry.db import create_db_engine
from modreg.registry.migrations import alembic_config, downgrade, upgrade
from modreg.registry.schemas import DirManifest
from modreg.registry.server import prepare
from modreg.registry.settings import Settings

HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()
SECRETS = {"read": "mr_vision-read", "publish": "mr_vision-publish", "audio": "mr_audio-publish"}


def test_the_migrations_have_one_head() -> None:
    script = ScriptDirectory.from_config(alembic_config())
    assert len(script.get_heads()) == 1
    assert [r.revision for r in script.walk_revisions()][-1] == "0001"


@dataclass
class Old:
    """What the 0001 registry held, by name."""

    archive: str
    output: str
    log: str
    folder: str
    member: str
    run: str = "r-000000000001"
    killed_run: str = "r-000000000002"  # left running by an engine killed before 0003


def _t(name: str, *columns: str, json: tuple[str, ...] = ()) -> sa.TableClause:
    cols = [sa.column(c) for c in columns] + [sa.column(c, sa.JSON) for c in json]
    return sa.table(name, *cols)


def _blobs(store: LocalBlobStore, tmp_path: Path) -> Old:
    def put(data: bytes) -> str:
        sha = hashlib.sha256(data).hexdigest()
        (tmp_path / sha).write_bytes(data)
        store.put_file(tmp_path / sha, sha)
        return sha

    member = put(b"the weights, in a folder")
    folder = put(DirManifest.of({"w.bin": (member, 24)}).to_bytes())
    return Old(put(module_archive()), put(b"score 0.9"), put(b"a log"), folder, member)


def _seed_0001(engine: sa.Engine, old: Old) -> None:
    now = datetime.now(UTC)
    now = now.replace(tzinfo=None) if engine.dialect.name == "sqlite" else now
    outputs = {
        "score": {"type": "file", "digest": old.output, "size": 9},
        "model": {"type": "dir", "digest": old.folder, "size": 24},
    }
    step = {"status": "executed", "module": "vision/prep", "version": "1.0.0"}
    body = publish_body(old.archive)
    token = ("id", "token_hash", "team_id", "scope", "admin", "description", "created_at")

    def token_row(id_: int, secret: str, team: int, scope: str) -> dict[str, Any]:
        return dict(
            zip(token, (id_, hash_secret(secret), team, scope, False, "", now), strict=True)
        )

    rows: list[tuple[sa.TableClause, list[dict[str, Any]]]] = [
        (_t("team", "id", "name", "created_at"), [
            {"id": 1, "name": "vision", "created_at": now},
            {"id": 2, "name": "audio", "created_at": now},
        ]),
        (_t("token", *token), [
            token_row(1, SECRETS["read"], 1, "read"),
            token_row(2, SECRETS["publish"], 1, "publish"),
            token_row(3, SECRETS["audio"], 2, "publish"),
        ]),
        (_t("blob", "sha256", "size", "created_at"), [
            {"sha256": old.archive, "size": len(module_archive()), "created_at": now},
        ]),
        (_t("module", "id", "team_id", "name", "description", "created_at"), [
            {"id": 1, "team_id": 1, "name": "prep", "description": "", "created_at": now},
        ]),
        (_t("module_version", "id", "module_id", "version", "status", "commit", "tree_sha",
            "path", "sha256", "size", "published_at", json=("manifest",)), [
            {"id": 1, "module_id": 1, "version": "1.0.0", "status": "active",
             "commit": body["commit"], "tree_sha": body["tree_sha"], "path": "",
             "sha256": old.archive, "size": len(module_archive()), "published_at": now,
             "manifest": body["manifest"]},
        ]),
        (_t("cache_entry", "id", "team_id", "fingerprint", "created_at", json=("outputs",)), [
            {"id": 1, "team_id": 1, "fingerprint": "f" * 64, "created_at": now,
             "outputs": outputs},
        ]),
        (_t("pipeline_run", "id", "team_id", "pipeline", "status", "created_at",
            json=("variant", "spec", "lock")), [
            {"id": old.run, "team_id": 1, "pipeline": "digits", "status": "succeeded",
             "created_at": now, "variant": {}, "spec": {}, "lock": {}},
            {"id": old.killed_run, "team_id": 1, "pipeline": "digits", "status": "running",
             "created_at": now - timedelta(days=1), "variant": {}, "spec": {}, "lock": {}},
        ]),
        (_t("step_run", "id", "run_id", "step", "status", "updated_at", json=("record",)), [
            {"id": 1, "run_id": old.run, "step": "train", "status": "executed",
             "updated_at": now, "record": {**step, "outputs": outputs, "log_digest": old.log}},
        ]),
    ]  # fmt: skip
    with engine.begin() as conn:
        for table, values in rows:
            conn.execute(table.insert(), values)
            if (
                engine.dialect.name == "postgresql"
                and "id" in values[0]
                and table.name != "pipeline_run"
            ):
                # the ids were given, as a registry's own sequence would have: move it past them
                conn.execute(
                    sa.text(
                        f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                        f"(SELECT max(id) FROM {table.name}))"
                    )
                )


@pytest.fixture
def old_registry(db_url: str, tmp_path: Path) -> Iterator[tuple[Settings, sa.Engine, Old]]:
    """A registry at revision 0001, full of data."""
    settings = Settings(data_dir=tmp_path / "data", db_url=db_url)
    engine = create_db_engine(db_url)
    upgrade(engine, "0001")
    old = _blobs(LocalBlobStore(settings.data_dir / "blobs"), tmp_path)
    _seed_0001(engine, old)
    yield settings, engine, old
    engine.dispose()


def _revision(engine: sa.Engine) -> str:
    with engine.connect() as conn:
        return str(conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar())


def _get(client: TestClient, path: str, secret: str | None) -> int:
    headers = {"Authorization": f"Bearer {secret}"} if secret else {}
    return client.get(path, headers=headers).status_code


def test_a_populated_registry_upgrades_and_stays_usable(
    old_registry: tuple[Settings, sa.Engine, Old],
) -> None:
    settings, engine, old = old_registry
    prepare(settings, engine)  # what `modreg server` does on start: upgrade with its blob store
    assert _revision(engine) == HEAD
    read, publish, audio = (f"Bearer {SECRETS[k]}" for k in ("read", "publish", "audio"))
    with TestClient(create_app(settings, engine)) as client:
        me = client.get("/api/v1/whoami", headers={"Authorization": read}).json()
        assert (me["team"], me["scope"]) == ("vision", "read"), "a read token stays read"
        for sha in (old.output, old.log, old.folder, old.member):  # the member: via its folder
            assert _get(client, f"/api/v1/blobs/{sha}", SECRETS["read"]) == 200, sha
            assert _get(client, f"/api/v1/blobs/{sha}", SECRETS["audio"]) == 404, sha
        assert _get(client, f"/api/v1/blobs/{old.archive}", None) == 200
        member = client.get(f"/api/v1/blobs/{old.member}", headers={"Authorization": read})
        assert member.content == b"the weights, in a folder"
        run = client.get(f"/api/v1/runs/{old.run}", headers={"Authorization": read}).json()
        assert run["steps"]["train"]["log_digest"] == old.log
        lookup = {"fingerprints": ["f" * 64]}
        found = client.post("/api/v1/cache/lookup", json=lookup, headers={"Authorization": read})
        assert list(found.json()["entries"]) == ["f" * 64]
        refused = client.post(
            "/api/v1/runs", json={"pipeline": "p"}, headers={"Authorization": read}
        )
        assert refused.status_code == 403, "a read token no longer records"
        for headers in ({"Authorization": publish}, {"Authorization": audio}):
            assert (
                client.post("/api/v1/runs", json={"pipeline": "p"}, headers=headers).status_code
                == 201
            )
        (resolved,) = client.post("/api/v1/resolve", json={"refs": ["vision/prep"]}).json()[
            "results"
        ]
        assert resolved["version"]["version"] == "1.0.0"
        entry = {"outputs": {"model": {"type": "dir", "digest": old.folder}}}
        again = client.put(
            f"/api/v1/cache/{'e' * 64}", json=entry, headers={"Authorization": publish}
        )
        assert again.status_code == 200, "the folder and its files are vision's to name"
        stolen = client.put(
            f"/api/v1/cache/{'e' * 64}", json=entry, headers={"Authorization": audio}
        )
        assert stolen.status_code == 404


def test_runs_get_their_creation_as_last_heartbeat(
    old_registry: tuple[Settings, sa.Engine, Old],
) -> None:
    settings, engine, old = old_registry
    prepare(settings, engine)
    read = {"Authorization": f"Bearer {SECRETS['read']}"}
    with TestClient(create_app(settings, engine)) as client:
        done = client.get(f"/api/v1/runs/{old.run}", headers=read).json()
        killed = client.get(f"/api/v1/runs/{old.killed_run}", headers=read).json()
    assert (done["status"], done["heartbeat_at"]) == ("succeeded", done["created_at"])
    assert killed["status"] == "abandoned", "running a day without a heartbeat"
    assert killed["ended_at"] is None


def test_folder_outputs_are_not_followed_without_the_blob_store(
    old_registry: tuple[Settings, sa.Engine, Old],
) -> None:
    _, engine, _ = old_registry
    with pytest.raises(RuntimeError, match="starting `modreg server` on it"):
        upgrade(engine)
    assert _revision(engine) == "0001", "nothing was done halfway"


def test_downgrade_turns_run_tokens_into_read_tokens(
    old_registry: tuple[Settings, sa.Engine, Old],
) -> None:
    settings, engine, _ = old_registry
    prepare(settings, engine)
    with TestClient(create_app(settings, engine)) as client:
        answer = client.post(
            "/api/v1/tokens",
            json={"team": "vision", "scope": "run"},
            headers={"Authorization": f"Bearer {SECRETS['publish']}"},
        )
        assert answer.status_code == 201
    downgrade(engine, "0001")
    with engine.connect() as conn:
        scopes = conn.execute(sa.text("SELECT scope FROM token ORDER BY id")).scalars().all()
    assert scopes == ["read", "publish", "publish", None, "read"]  # None: the admin token


def test_0003_upgrades_a_populated_0002_registry_for_gc(
    old_registry: tuple[Settings, sa.Engine, Old],
) -> None:
    settings, engine, old = old_registry
    upgrade(engine, "0002", blob_store=LocalBlobStore(settings.data_dir / "blobs"))
    token_path = prepare(settings, engine)  # to the head, as `modreg server` does
    assert _revision(engine) == HEAD and token_path is not None
    with engine.connect() as conn:
        seen = conn.execute(sa.text("SELECT last_seen, created_at FROM blob")).all()
        pinned = conn.execute(sa.text("SELECT pinned FROM pipeline_run")).scalars().all()
    assert seen and all(last == created for last, created in seen), "last seen when created"
    assert pinned and not any(pinned), "no run is pinned"
    admin = {"Authorization": f"Bearer {token_path.read_text().strip()}"}
    with TestClient(create_app(settings, engine)) as client:
        report = client.post("/api/v1/gc", json={"grace_seconds": 0}, headers=admin).json()
        assert report["blobs"] == [], "the archive is a root; blobs without rows are not touched"
        assert _get(client, f"/api/v1/blobs/{old.archive}", None) == 200
        pin = client.put(
            f"/api/v1/runs/{old.run}/pin", headers={"Authorization": f"Bearer {SECRETS['publish']}"}
        )
        assert pin.json()["pinned"] is True
    downgrade(engine, "0002")
    assert _revision(engine) == "0002"


def test_0004_upgrades_a_populated_0003_registry_for_environments(
    old_registry: tuple[Settings, sa.Engine, Old],
) -> None:
    settings, engine, old = old_registry
    upgrade(engine, "0003", blob_store=LocalBlobStore(settings.data_dir / "blobs"))
    prepare(settings, engine)
    assert _revision(engine) == HEAD
    publish = {"Authorization": f"Bearer {SECRETS['publish']}"}
    with TestClient(create_app(settings, engine)) as client:
        before = client.get("/api/v1/modules/vision/prep/versions/1.0.0").json()
        assert before["environment"] is None, "a version of before runs as it did"
        lock = env_lock("six==1.16.0").encode()
        environment = {"requirements": ["six==1.16.0"]}
        archive = module_archive("1.1.0", environment=environment)
        for data in (archive, lock):
            sha = hashlib.sha256(data).hexdigest()
            client.put(f"/api/v1/blobs/{sha}", content=data, headers=publish)
        body = publish_body(hashlib.sha256(archive).hexdigest(), "1.1.0", environment=environment)
        body["environment_sha256"] = hashlib.sha256(lock).hexdigest()
        answer = client.post("/api/v1/modules/vision/prep/versions", json=body, headers=publish)
        assert answer.status_code == 201, answer.text
        assert answer.json()["version"]["environment"]["packages"] == {"six": "1.16.0"}
    downgrade(engine, "0003")
    with engine.connect() as conn:
        kinds = conn.execute(sa.text("SELECT DISTINCT kind FROM blob_ref")).scalars().all()
    assert "environment" not in kinds and _revision(engine) == "0003"
