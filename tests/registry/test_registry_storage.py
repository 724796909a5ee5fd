"""Storage: migrations on every database, blob stores, settings, and cheap imports."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from s3_server import S3Server
from sqlalchemy import inspect, text
from sqlmodel import Session, SQLModel, select

from modreg.registry.blobs import BlobStore, FsspecBlobStore, LocalBlobStore
from modreg.registry.db import create_db_engine
from modreg.registry.errors import DigestMismatchError, PayloadTooLargeError, UnknownBlobError
from modreg.registry.migrations import alembic_config, downgrade, upgrade
from modreg.registry.models import Team, Token
from modreg.registry.server import prepare
from modreg.registry.settings import Settings

TABLES = {t.name for t in SQLModel.metadata.sorted_tables}


def _revisions() -> list[str]:
    script = ScriptDirectory.from_config(alembic_config())
    return [r.revision for r in reversed(list(script.walk_revisions()))]


def test_migrate_empty_database_and_no_drift(db_url: str) -> None:
    engine = create_db_engine(db_url)
    upgrade(engine)
    assert TABLES <= set(inspect(engine).get_table_names())
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, SQLModel.metadata) == []
        assert (
            conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
            == _revisions()[-1]
        )
    engine.dispose()


@pytest.mark.parametrize("start", ["base", *_revisions()[:-1]])
def test_upgrade_from_an_earlier_head_keeps_data(db_url: str, start: str, tmp_path: Path) -> None:
    engine = create_db_engine(db_url)
    upgrade(engine)
    downgrade(engine, "base")
    assert not TABLES & set(inspect(engine).get_table_names())
    if start != "base":
        upgrade(engine, start)
    token_path = prepare(Settings(data_dir=tmp_path, db_url=db_url), engine)  # upgrades to head
    assert token_path is not None and oct(stat.S_IMODE(token_path.stat().st_mode)) == "0o600"
    with Session(engine) as session:
        session.add(Team(name="vision"))
        session.commit()
    upgrade(engine)  # a second start: nothing to do, nothing lost
    assert prepare(Settings(data_dir=tmp_path, db_url=db_url), engine) is None
    with Session(engine) as session:
        assert session.exec(select(Team.name)).all() == ["vision"]
        assert len(session.exec(select(Token)).all()) == 1
    engine.dispose()


def test_sqlite_pragmas(tmp_path: Path) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path}/r.db")
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 30_000
    engine.dispose()


@pytest.fixture(params=["local", "fsspec-file", "fsspec-memory", "fsspec-s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "local":
        return LocalBlobStore(tmp_path / "blobs")
    if request.param == "fsspec-file":
        return FsspecBlobStore(f"file://{tmp_path}/remote", tmp_path / "tmp")
    if request.param == "fsspec-s3":  # a real S3 API: moto's server on loopback
        s3: S3Server = request.getfixturevalue("s3_server")
        return FsspecBlobStore(f"s3://{s3.bucket()}/modreg/blobs", tmp_path / "tmp")
    return FsspecBlobStore(f"memory://modreg-{tmp_path.name}", tmp_path / "tmp")


def test_blob_store_round_trip(store: BlobStore, tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 7)
    sha = hashlib.sha256(data).hexdigest()
    source = tmp_path / "source"
    source.write_bytes(data)
    assert not store.exists(sha)
    assert store.put_file(source, sha) == len(data)
    assert store.size(sha) == len(data)
    with store.open_verified(sha) as path:
        assert path.read_bytes() == data
    assert not any(store.tmp_dir.glob("*.part"))


def test_blob_store_rejects_and_leaves_nothing(store: BlobStore, tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.write_bytes(b"abc" * 1000)
    sha = hashlib.sha256(source.read_bytes()).hexdigest()
    with pytest.raises(DigestMismatchError):
        store.put_file(source, "0" * 64)
    with pytest.raises(PayloadTooLargeError):
        store.put_file(source, sha, max_bytes=100)
    assert not store.exists(sha) and not store.exists("0" * 64)
    assert not any(store.tmp_dir.glob("*.part"))
    with pytest.raises(UnknownBlobError):
        with store.open_verified(sha):
            pass


def test_corrupt_local_blob_is_dropped(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    source = tmp_path / "source"
    source.write_bytes(b"good bytes")
    sha = hashlib.sha256(b"good bytes").hexdigest()
    store.put_file(source, sha)
    store.path_of(sha).write_bytes(b"bad bytes!")
    with pytest.raises(UnknownBlobError, match="corrupt"):
        with store.open_verified(sha):
            pass
    assert not store.exists(sha)


def test_settings_from_env(tmp_path: Path) -> None:
    env = {"MODREG_PORT": "9000", "MODREG_PRIVATE": "true", "MODREG_DATA_DIR": str(tmp_path)}
    settings = Settings.from_env(env, host="0.0.0.0", port=None)
    assert (settings.host, settings.port, settings.private) == ("0.0.0.0", 9000, True)
    assert settings.database_url == f"sqlite:///{tmp_path}/registry.db"
    assert settings.max_upload_bytes == 100 * 1024 * 1024


def test_importing_the_package_stays_light() -> None:
    code = (
        "import sys, modreg.registry, modreg.registry.schemas, modreg.registry.errors;"
        "heavy = [m for m in ('fastapi', 'sqlmodel', 'sqlalchemy', 'uvicorn') if m in sys.modules];"
        "assert not heavy, heavy;"
        "assert callable(modreg.registry.create_app) and 'fastapi' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_all_is_complete() -> None:
    import modreg.registry as package

    for name in package.__all__:
        assert getattr(package, name) is not None
