"""Migration 0005 on a populated registry: the dependents of runs recorded before it are
read from their locks, the newest run of each use winning; deprecations gain a successor;
the downgrade drops both."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient
from test_migrations import SECRETS, Old
from test_migrations import old_registry as registry_0001  # noqa: F401 (a fixture)

from modreg.registry.app import create_app
from modreg.registry.blobs import LocalBlobStore
from modreg.registry.migrations import downgrade, upgrade
from modreg.registry.server import prepare
from modreg.registry.settings import Settings


def _lock(ref: str, version: str) -> dict[str, Any]:
    return {"lock-version": 2, "pipeline": "digits", "steps": {"prep": {ref: version}}}


def _seed_runs(engine: sa.Engine) -> datetime:
    """Runs of 0004's shape: vision ran vision/prep twice, audio once; one lock is junk."""
    now = datetime.now(UTC).replace(microsecond=0)
    naive = engine.dialect.name == "sqlite"
    runs = sa.table(
        "pipeline_run", *(sa.column(c) for c in ("id", "team_id", "pipeline", "status")),
        sa.column("created_at"), sa.column("variant", sa.JSON), sa.column("spec", sa.JSON),
        sa.column("lock", sa.JSON),
    )  # fmt: skip
    caret = _lock("vision/prep@^1.0", "vision/prep@1.0.0")
    rows = [
        ("r-a1", 1, "digits", now - timedelta(days=2), caret),
        ("r-a2", 1, "digits", now - timedelta(days=1), caret),
        ("r-b1", 2, "speech", now, _lock("vision/prep", "vision/prep@1.0.0")),
        ("r-c1", 2, "junk", now, {"steps": {"x": {"not a ref!": 3}}}),
    ]  # fmt: skip
    with engine.begin() as conn:
        for run_id, team, pipeline, at, lock in rows:
            conn.execute(
                runs.insert(),
                {"id": run_id, "team_id": team, "pipeline": pipeline, "status": "succeeded",
                 "created_at": at.replace(tzinfo=None) if naive else at, "variant": {},
                 "spec": {}, "lock": lock},
            )  # fmt: skip
    return now


def test_0005_learns_dependents_from_recorded_runs(
    registry_0001: tuple[Settings, sa.Engine, Old],  # noqa: F811 (the fixture)
) -> None:
    settings, engine, _ = registry_0001
    upgrade(engine, "0004", blob_store=LocalBlobStore(settings.data_dir / "blobs"))
    now = _seed_runs(engine)
    prepare(settings, engine)
    admin = {"Authorization": f"Bearer {SECRETS['publish']}"}
    with TestClient(create_app(settings, engine)) as client:
        found = client.get("/api/v1/modules/vision/prep/dependents", headers=admin).json()
        summary = [(d["team"], d["pipeline"], d["step"], d["range"], d["version"]) for d in found]
        assert summary == [
            ("audio", "speech", "prep", None, "1.0.0"),
            ("vision", "digits", "prep", "^1.0", "1.0.0"),
        ]
        last = datetime.fromisoformat(found[1]["last_run_at"])
        assert last == now - timedelta(days=1), "the newest run of a use wins"
        deprecated = client.post(
            "/api/v1/modules/vision/prep/versions/1.0.0/deprecate",
            json={"message": "slow", "replaced_by": "vision/prep@^1"},
            headers=admin,
        ).json()
        assert deprecated["replaced_by"] == "vision/prep@^1"
    downgrade(engine, "0004")
    tables = sa.inspect(engine).get_table_names()
    columns = {c["name"] for c in sa.inspect(engine).get_columns("module_version")}
    assert "dependent" not in tables and "replaced_by" not in columns
