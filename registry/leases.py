"""Leases: one execution per fingerprint across machines.

Before executing a step, an engine claims the step's fingerprint for its team. The claim is
answered at once, never held open:

- the team's cache already has the fingerprint: not granted, the entry is returned (reuse);
- no live lease, or one the caller holds already, or one whose holder stopped renewing it
  (``expires_at`` passed), or one of the holder the claim ``replaces`` (an engine of the
  claimant's own machine that it knows is dead: ``engine/leases.py``): granted, until now +
  ``ttl``;
- otherwise: not granted, with the holder and its expiry (the engine asks again later).

Atomicity, on SQLite and PostgreSQL alike, comes from the ``(team, fingerprint)`` primary
key: an ``INSERT … ON CONFLICT DO NOTHING`` creates the row for exactly one claimant, and
taking a row over is one ``UPDATE … WHERE holder = me OR expires_at < now`` whose row count
says who won. The holder renews all its leases in one call per heartbeat
(``renew``); recording the step's cache entry deletes the lease in the same transaction
(``runs.put_cache``), so a waiting engine finds the entry on its next claim, and a holder
whose step failed deletes it itself (``release``). Expiry uses the replica's
clock: replicas of one registry are assumed to agree within a fraction of a ``ttl``.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, or_, update
from sqlmodel import Session, col, select

from modreg.registry.auth import Reach
from modreg.registry.db import insert_ignore
from modreg.registry.models import CacheEntry, Lease, utcnow
from modreg.registry.runs import check_fingerprint, entry_public
from modreg.registry.schemas import LeaseClaim, LeaseGrant, LeaseRenewal, LeasesRenewed


def _stored_entry(session: Session, team_id: int, fingerprint: str) -> CacheEntry | None:
    stmt = select(CacheEntry).where(
        CacheEntry.team_id == team_id, CacheEntry.fingerprint == fingerprint
    )
    return session.exec(stmt).first()


def _take(session: Session, team_id: int, fingerprint: str, claim: LeaseClaim) -> bool:
    """Create the lease, or take it over when it is ours or expired; True if we hold it."""
    now = utcnow()
    expires = now + timedelta(seconds=claim.ttl)
    values = {"holder": claim.holder, "expires_at": expires}
    if insert_ignore(session, Lease, team_id=team_id, fingerprint=fingerprint, claimed_at=now,
                     **values):  # fmt: skip
        return True
    stmt = (
        update(Lease)
        .where(
            col(Lease.team_id) == team_id,
            col(Lease.fingerprint) == fingerprint,
            or_(
                col(Lease.holder).in_([claim.holder, claim.replaces or claim.holder]),
                col(Lease.expires_at) < now,
            ),
        )
        .values(claimed_at=now, **values)
    )
    return bool(session.execute(stmt).rowcount)  # type: ignore[attr-defined]


def claim(session: Session, reach: Reach, fingerprint: str, body: LeaseClaim) -> LeaseGrant:
    """Claim ``fingerprint`` for the caller's team; see the module docstring."""
    team_id = reach.own_team_id
    check_fingerprint(fingerprint)
    entry = _stored_entry(session, team_id, fingerprint)
    if entry is not None:
        assert reach.team is not None
        return LeaseGrant(
            fingerprint=fingerprint, granted=False, entry=entry_public(entry, reach.team)
        )
    granted = _take(session, team_id, fingerprint, body)
    session.commit()
    lease = session.get(Lease, (team_id, fingerprint))
    return LeaseGrant(
        fingerprint=fingerprint,
        granted=granted,
        holder=lease.holder if lease else None,
        expires_at=lease.expires_at if lease else None,
    )


def renew(session: Session, reach: Reach, body: LeaseRenewal) -> LeasesRenewed:
    """Extend every lease of ``body.fingerprints`` the holder still holds, by ``ttl``."""
    team_id = reach.own_team_id
    held: list[str] = []
    expires = utcnow() + timedelta(seconds=body.ttl)
    for start in range(0, len(body.fingerprints), 500):
        chunk = body.fingerprints[start : start + 500]
        mine = (
            col(Lease.team_id) == team_id,
            col(Lease.holder) == body.holder,
            col(Lease.fingerprint).in_(chunk),
        )
        session.execute(update(Lease).where(*mine).values(expires_at=expires))
        held += session.exec(select(Lease.fingerprint).where(*mine)).all()
    session.commit()
    return LeasesRenewed(held=sorted(held))


def release(session: Session, reach: Reach, fingerprint: str, holder: str) -> None:
    """Drop the lease if ``holder`` holds it (a lease taken over is not the caller's)."""
    check_fingerprint(fingerprint)
    stmt = delete(Lease).where(
        col(Lease.team_id) == reach.own_team_id,
        col(Lease.fingerprint) == fingerprint,
        col(Lease.holder) == holder,
    )
    session.execute(stmt)
    session.commit()
