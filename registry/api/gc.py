"""Routes for garbage collection: ``POST /gc`` (the admin only, ``CollectorDep``), and
``GET /gc/store-roots`` (any token of a team: what its shared artifact store must keep)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request

from modreg.registry import gc
from modreg.registry.api.deps import (
    CacheReaderDep,
    CollectorDep,
    IdentityDep,
    SessionDep,
    SettingsDep,
    StoreDep,
)
from modreg.registry.api.problems import GUARDED, problems
from modreg.registry.db import audit
from modreg.registry.schemas import PATH_TEXT, GcReport, GcRequest, StoreRoots

router = APIRouter()


@router.post("/gc", responses=problems(*GUARDED))
def collect_garbage(
    body: GcRequest,
    request: Request,
    session: SessionDep,
    store: StoreDep,
    settings: SettingsDep,
    identity: IdentityDep,
    _: CollectorDep,
) -> GcReport:
    """Delete the blobs nothing refers to and unseen for ``grace_seconds`` (``dry_run``: only
    report them), and the cache entries past the registry's retention."""
    grace = timedelta(seconds=body.grace_seconds)
    engine = request.app.state.engine
    report = gc.collect(engine, store, grace, settings.cache_retention, body.dry_run)
    if not body.dry_run:
        audit(session, identity, "gc", "blobs", blobs=len(report.blobs), bytes=report.bytes,
              expired_cache_entries=report.expired_cache_entries)  # fmt: skip
        session.commit()
    return report


@router.get("/gc/store-roots", responses=problems(*GUARDED))
def store_roots(
    store: Annotated[str, Query(min_length=1, max_length=PATH_TEXT)],
    session: SessionDep,
    settings: SettingsDep,
    reach: CacheReaderDep,
) -> StoreRoots:
    """The outputs the team's shared artifact store at ``store`` must keep (its collection
    runs in the engine, with the team's own credentials for the store)."""
    return gc.store_roots(session, reach.own_team_id, store, settings.cache_retention)
