"""Route for garbage collection: ``POST /gc`` (the admin only, ``CollectorDep``)."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request

from modreg.registry import gc
from modreg.registry.api.deps import (
    CollectorDep,
    IdentityDep,
    SessionDep,
    SettingsDep,
    StoreDep,
)
from modreg.registry.api.problems import GUARDED, problems
from modreg.registry.db import audit
from modreg.registry.schemas import GcReport, GcRequest

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
