"""Routes for what runs leave behind: the step cache, sweeps, runs and step records.

All of it belongs to a team: any token of the team reads it (``CacheReaderDep``,
``RunReaderDep``; the admin reads every team's runs), a run or publish token records it
(``RecorderDep``), a publish token (or the admin) evicts cache entries (``CacheEvictorDep``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Response

from modreg.registry import runs
from modreg.registry.api.deps import (
    CacheEvictorDep,
    CacheReaderDep,
    IdentityDep,
    RecorderDep,
    RunReaderDep,
    SessionDep,
    SettingsDep,
    StoreDep,
)
from modreg.registry.api.problems import GUARDED, problems
from modreg.registry.schemas import (
    CacheEntryCreate,
    CacheEntryPublic,
    CacheEvicted,
    CacheLookup,
    CacheLookupResult,
    RunCreate,
    RunPublic,
    RunUpdate,
    StepRunBatch,
    StepRunRecord,
    SweepCreate,
    SweepPublic,
)
from modreg.registry.settings import Settings

router = APIRouter()


@router.post("/cache/lookup", responses=problems(*GUARDED))
def lookup_cache(
    body: CacheLookup, session: SessionDep, reach: CacheReaderDep
) -> CacheLookupResult:
    return runs.lookup_cache(session, reach, body.fingerprints)


@router.post("/cache/evict", responses=problems(*GUARDED, 404))
def evict_cache(
    eviction: CacheEvictorDep, session: SessionDep, identity: IdentityDep
) -> CacheEvicted:
    """Drop cache entries (a poisoned result); the next run of those steps executes them."""
    reach, body = eviction
    return runs.evict_cache(session, identity, reach, body)


@router.put("/cache/{fingerprint}", responses=problems(*GUARDED, 404))
def put_cache(
    fingerprint: str,
    body: CacheEntryCreate,
    session: SessionDep,
    store: StoreDep,
    reach: RecorderDep,
) -> CacheEntryPublic:
    return runs.put_cache(session, store, reach, fingerprint, body)


def _heartbeat_timeout(settings: Settings) -> timedelta:
    return timedelta(seconds=settings.run_heartbeat_timeout)


@router.post("/sweeps", status_code=201, responses=problems(*GUARDED, 404))
def create_sweep(
    body: SweepCreate, session: SessionDep, identity: IdentityDep, reach: RecorderDep
) -> SweepPublic:
    return runs.create_sweep(session, identity, reach, body)


@router.get("/sweeps/{sweep_id}", responses=problems(*GUARDED, 404))
def get_sweep(sweep_id: str, session: SessionDep, reach: RunReaderDep) -> SweepPublic:
    return runs.get_sweep(session, sweep_id, reach)


@router.post("/runs", status_code=201, responses=problems(*GUARDED, 404))
def create_run(
    body: RunCreate, session: SessionDep, identity: IdentityDep, reach: RecorderDep
) -> RunPublic:
    return runs.create_run(session, identity, reach, body)


@router.get("/runs", responses=problems(*GUARDED))
def list_runs(
    session: SessionDep,
    reach: RunReaderDep,
    settings: SettingsDep,
    sweep: str | None = None,
    pipeline: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> list[RunPublic]:
    return runs.list_runs(session, reach, sweep, pipeline, limit, _heartbeat_timeout(settings))


@router.get("/runs/{run_id}", responses=problems(*GUARDED, 404))
def get_run(
    run_id: str, session: SessionDep, reach: RunReaderDep, settings: SettingsDep
) -> RunPublic:
    """The run; a running one whose engine stopped heartbeating reads ``abandoned``."""
    return runs.get_run(session, run_id, reach, _heartbeat_timeout(settings))


@router.patch("/runs/{run_id}", responses=problems(*GUARDED, 404))
def update_run(run_id: str, body: RunUpdate, session: SessionDep, reach: RecorderDep) -> RunPublic:
    return runs.update_run(session, run_id, reach, body)


@router.put("/runs/{run_id}/pin", responses=problems(*GUARDED, 404))
def pin_run(
    run_id: str,
    session: SessionDep,
    identity: IdentityDep,
    reach: RecorderDep,
    settings: SettingsDep,
) -> RunPublic:
    """Keep the run's step outputs, logs and cache entries through garbage collection."""
    return runs.set_pinned(session, run_id, reach, True, identity, _heartbeat_timeout(settings))


@router.delete("/runs/{run_id}/pin", responses=problems(*GUARDED, 404))
def unpin_run(
    run_id: str,
    session: SessionDep,
    identity: IdentityDep,
    reach: RecorderDep,
    settings: SettingsDep,
) -> RunPublic:
    return runs.set_pinned(session, run_id, reach, False, identity, _heartbeat_timeout(settings))


@router.put("/runs/{run_id}/steps/{step}", status_code=204, responses=problems(*GUARDED, 404))
def put_step(
    run_id: str,
    step: str,
    body: StepRunRecord,
    session: SessionDep,
    store: StoreDep,
    reach: RecorderDep,
) -> Response:
    runs.put_steps(session, store, run_id, reach, {step: body})
    return Response(status_code=204)


@router.put("/runs/{run_id}/steps", status_code=204, responses=problems(*GUARDED, 404))
def put_steps(
    run_id: str, body: StepRunBatch, session: SessionDep, store: StoreDep, reach: RecorderDep
) -> Response:
    """Every step of a run at once: the engine records a whole run in one round trip."""
    runs.put_steps(session, store, run_id, reach, body.steps, body.finish)
    return Response(status_code=204)
