"""Cache eviction in the registry: what it removes, what it leaves, and its audit trail.

On SQLite and PostgreSQL (the ``api`` fixture). Who may call the route is in
test_permissions.py; the CLI and the engine's reaction in tests/engine/test_cache_evict_e2e.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from registry_data import Api
from sqlmodel import Session, select

from modreg.registry.models import AuditEvent, BlobRef, CacheEntry

STEP = {"status": "executed", "module": "vision/prep", "version": "1.0.0"}


def _entry(api: Api, fingerprint: str, token: str, data: bytes) -> None:
    digest = api.put_blob(data, token=token)
    body = {"outputs": {"out": {"type": "file", "digest": digest}}}
    answer = api.client.put(f"/api/v1/cache/{fingerprint}", json=body, headers=api.as_(token))
    assert answer.status_code == 200, answer.text


def _step(api: Api, fingerprint: str, version: str) -> None:
    run = api.client.post("/api/v1/runs", json={"pipeline": "p"}, headers=api.as_(api.run))
    step = {**STEP, "version": version, "fingerprint": fingerprint}
    url = f"/api/v1/runs/{run.json()['id']}/steps/s"
    assert api.client.put(url, json=step, headers=api.as_(api.run)).status_code == 204


def _evict(api: Api, token: str, **body: Any) -> Any:
    return api.client.post("/api/v1/cache/evict", json=body, headers=api.as_(token))


def _fingerprints(api: Api) -> set[tuple[int, str]]:
    with Session(api.client.app.state.engine) as session:  # type: ignore[attr-defined]
        return {(e.team_id, e.fingerprint) for e in session.exec(select(CacheEntry))}


def test_evicting_a_fingerprint_leaves_other_teams_and_entries_and_is_audited(api: Api) -> None:
    _entry(api, "fp1", api.run, b"poisoned")
    _entry(api, "fp2", api.run, b"good")
    _entry(api, "fp1", api.other, b"audio's own")
    before = _fingerprints(api)
    answer = _evict(api, api.publish, fingerprints=["fp1"])
    assert answer.status_code == 200, answer.text
    assert [(e["team"], e["fingerprint"]) for e in answer.json()["evicted"]] == [("vision", "fp1")]
    assert len(_fingerprints(api)) == len(before) - 1
    with Session(api.client.app.state.engine) as session:  # type: ignore[attr-defined]
        events = session.exec(select(AuditEvent).where(AuditEvent.action == "cache.evict")).all()
        assert [(e.target, e.actor.split("#")[0]) for e in events] == [
            ("cache vision/fp1", "vision:publish")
        ]
        refs = session.exec(select(BlobRef).where(BlobRef.kind == "cache")).all()
        assert len(refs) == 2  # vision's fp2 and audio's fp1 still refer to their blobs
    # the next writer of the fingerprint wins again
    _entry(api, "fp1", api.run, b"recomputed")
    assert len(_fingerprints(api)) == len(before)


def test_evicting_a_module_version_takes_the_entries_its_steps_produced(api: Api) -> None:
    for fingerprint, version in (("fa", "1.0.0"), ("fb", "1.0.0"), ("fc", "1.1.0")):
        _entry(api, fingerprint, api.run, fingerprint.encode())
        _step(api, fingerprint, version)
    answer = _evict(api, api.publish, module="vision/prep", version="1.0.0")
    assert answer.status_code == 200, answer.text
    assert sorted(e["fingerprint"] for e in answer.json()["evicted"]) == ["fa", "fb"]
    assert _evict(api, api.publish, module="vision/prep", version="1.0.0").status_code == 404


def test_the_admin_evicts_in_every_team_or_the_one_named(api: Api) -> None:
    _entry(api, "shared", api.run, b"v")
    _entry(api, "shared", api.other, b"a")
    named = _evict(api, api.admin, fingerprints=["shared"], team="audio")
    assert [e["team"] for e in named.json()["evicted"]] == ["audio"]
    _entry(api, "shared", api.other, b"a")
    every = _evict(api, api.admin, fingerprints=["shared"])
    assert sorted(e["team"] for e in every.json()["evicted"]) == ["audio", "vision"]
    assert _evict(api, api.admin, fingerprints=["x"], team="nobody").status_code == 404


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({}, "evict named fingerprints, or a module and version: one of them"),
        (
            {"fingerprints": ["fp"], "module": "vision/prep", "version": "1.0.0"},
            "evict named fingerprints, or a module and version: one of them",
        ),
        ({"module": "vision/prep"}, "evicting a module's entries needs its module and version"),
        ({"fingerprints": ["a b"]}, "invalid fingerprint 'a b'"),
        ({"module": "vision/prep", "version": "1.0"}, "invalid version '1.0'"),
        ({"fingerprints": ["nope"]}, "team 'vision' has no cache entry nope"),
    ],
)
def test_a_bad_eviction_says_what_is_wrong(api: Api, body: dict[str, Any], detail: str) -> None:
    answer = _evict(api, api.publish, **body)
    assert 400 <= answer.status_code < 500
    assert answer.json()["detail"].startswith(detail)
