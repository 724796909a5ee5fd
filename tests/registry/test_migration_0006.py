"""Migration 0006 (leases, store-side cache entries) on a populated registry, on SQLite and
PostgreSQL: the registry of ``test_migrations`` (at 0001, full of data) is brought to 0005,
then to the head; its cache entry still answers (naming registry blobs: no store), a lease
is claimed, held against another engine, and answered with the entry once recorded; a
store-side entry is recorded without registry blobs; and the way down drops it all.
"""

from __future__ import annotations

import sqlalchemy as sa
from fastapi.testclient import TestClient
from test_migrations import HEAD, SECRETS, Old, _revision, old_registry

from modreg.registry.app import create_app
from modreg.registry.blobs import LocalBlobStore
from modreg.registry.migrations import downgrade, upgrade
from modreg.registry.server import prepare
from modreg.registry.settings import Settings

__all__ = ["old_registry"]  # the fixture, shared with test_migrations

RUN = {"Authorization": f"Bearer {SECRETS['publish']}"}
FP = "9" * 64


def _claim(client: TestClient, holder: str) -> dict[str, object]:
    answer = client.put(f"/api/v1/leases/{FP}", json={"holder": holder, "ttl": 60}, headers=RUN)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_0006_upgrades_a_populated_0005_registry_for_leases(
    old_registry: tuple[Settings, sa.Engine, Old],
) -> None:
    settings, engine, old = old_registry
    upgrade(engine, "0005", blob_store=LocalBlobStore(settings.data_dir / "blobs"))
    prepare(settings, engine)
    assert _revision(engine) == HEAD
    with TestClient(create_app(settings, engine)) as client:
        lookup = client.post("/api/v1/cache/lookup", json={"fingerprints": ["f" * 64]}, headers=RUN)
        assert lookup.json()["entries"]["f" * 64]["store"] is None, "registry blobs, as before"
        assert _claim(client, "engine-a")["granted"] is True
        held = _claim(client, "engine-b")
        assert (held["granted"], held["holder"]) == (False, "engine-a")
        entry = {"outputs": {"score": {"type": "file", "digest": "ab" * 32}}, "store": "s3://b/p"}
        recorded = client.put(f"/api/v1/cache/{FP}", json=entry, headers=RUN)
        assert recorded.status_code == 200, "a store-side output is not a registry blob"
        client.delete(f"/api/v1/leases/{FP}", params={"holder": "engine-a"}, headers=RUN)
        done = _claim(client, "engine-b")
        assert done["granted"] is False and done["entry"]["store"] == "s3://b/p"  # type: ignore[index]
    downgrade(engine, "0005")
    with engine.connect() as conn:
        tables = sa.inspect(conn).get_table_names()
        columns = {c["name"] for c in sa.inspect(conn).get_columns("cache_entry")}
    assert "lease" not in tables and "store" not in columns and _revision(engine) == "0005"
    assert old.archive
