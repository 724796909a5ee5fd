"""Routes for what runs leave behind: the step cache, sweeps, runs and step records.

All of it belongs to the caller's team: any token of the team reads it (``TeamDep``), a run or
publish token records it (``RecorderDep``); the admin may read, not write.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from modreg.registry import runs
from modreg.registry.api.deps import IdentityDep, RecorderDep, SessionDep, StoreDep, TeamDep
from modreg.registry.auth import Identity, require_authenticated
from modreg.registry.schemas import (
    CacheEntryCreate,
    CacheEntryPublic,
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

router = APIRouter()


def _team_id(identity: Identity) -> int:
    assert identity.team_id is not None  # TeamDep and RecorderDep guarantee it
    return identity.team_id


@router.post("/cache/lookup")
def lookup_cache(body: CacheLookup, session: SessionDep, identity: TeamDep) -> CacheLookupResult:
    return runs.lookup_cache(session, _team_id(identity), body.fingerprints)


@router.put("/cache/{fingerprint}")
def put_cache(
    fingerprint: str,
    body: CacheEntryCreate,
    session: SessionDep,
    store: StoreDep,
    identity: RecorderDep,
) -> CacheEntryPublic:
    return runs.put_cache(session, store, _team_id(identity), fingerprint, body)


@router.post("/sweeps", status_code=201)
def create_sweep(body: SweepCreate, session: SessionDep, identity: RecorderDep) -> SweepPublic:
    return runs.create_sweep(session, identity, _team_id(identity), body)


@router.get("/sweeps/{sweep_id}")
def get_sweep(sweep_id: str, session: SessionDep, identity: IdentityDep) -> SweepPublic:
    require_authenticated(identity)
    return runs.get_sweep(session, sweep_id, identity)


@router.post("/runs", status_code=201)
def create_run(body: RunCreate, session: SessionDep, identity: RecorderDep) -> RunPublic:
    return runs.create_run(session, identity, _team_id(identity), body)


@router.get("/runs")
def list_runs(
    session: SessionDep,
    identity: IdentityDep,
    sweep: str | None = None,
    pipeline: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> list[RunPublic]:
    require_authenticated(identity)
    return runs.list_runs(session, identity, sweep, pipeline, limit)


@router.get("/runs/{run_id}")
def get_run(run_id: str, session: SessionDep, identity: IdentityDep) -> RunPublic:
    require_authenticated(identity)
    return runs.get_run(session, run_id, identity)


@router.patch("/runs/{run_id}")
def update_run(
    run_id: str, body: RunUpdate, session: SessionDep, identity: RecorderDep
) -> RunPublic:
    return runs.update_run(session, run_id, identity, body)


@router.put("/runs/{run_id}/steps/{step}", status_code=204)
def put_step(
    run_id: str, step: str, body: StepRunRecord, session: SessionDep, identity: RecorderDep
) -> Response:
    runs.put_steps(session, run_id, identity, {step: body})
    return Response(status_code=204)


@router.put("/runs/{run_id}/steps", status_code=204)
def put_steps(
    run_id: str, body: StepRunBatch, session: SessionDep, identity: RecorderDep
) -> Response:
    """Every step of a run at once: the engine records a whole run in one round trip."""
    runs.put_steps(session, run_id, identity, body.steps, body.finish)
    return Response(status_code=204)
