"""Routes for leases (``registry/leases.py``): one execution per fingerprint across machines.

An engine of the team (a run or publish token: ``RecorderDep``) claims a fingerprint before
executing it, renews every lease it holds in one call per heartbeat, and releases each once
the step's cache entry is recorded.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from modreg.registry import leases
from modreg.registry.api.deps import RecorderDep, SessionDep
from modreg.registry.api.problems import GUARDED, problems
from modreg.registry.schemas import (
    SHORT_TEXT,
    LeaseClaim,
    LeaseGrant,
    LeaseRenewal,
    LeasesRenewed,
)

router = APIRouter()


@router.post("/leases/renew", responses=problems(*GUARDED))
def renew_leases(body: LeaseRenewal, session: SessionDep, reach: RecorderDep) -> LeasesRenewed:
    """The heartbeat of an engine's leases; those missing from the answer were lost."""
    return leases.renew(session, reach, body)


@router.put("/leases/{fingerprint}", responses=problems(*GUARDED))
def claim_lease(
    fingerprint: str, body: LeaseClaim, session: SessionDep, reach: RecorderDep
) -> LeaseGrant:
    """Claim the fingerprint's execution: granted, held by another engine, or already done."""
    return leases.claim(session, reach, fingerprint, body)


@router.delete("/leases/{fingerprint}", status_code=204, responses=problems(*GUARDED))
def release_lease(
    fingerprint: str,
    holder: Annotated[str, Query(min_length=1, max_length=SHORT_TEXT)],
    session: SessionDep,
    reach: RecorderDep,
) -> Response:
    leases.release(session, reach, fingerprint, holder)
    return Response(status_code=204)
