"""Garbage collection of registry blobs (``modreg gc``): delete what nothing refers to.

Roots — what keeps a blob (the ``BlobRef`` rows of ``references``, by kind):

- ``archive``: every module version's archive, whatever its status (and the version row's
  foreign key on ``blob`` refuses the delete regardless);
- ``environment``: every module version's environment lock, whatever its status;
- ``cache``: the outputs of every *live* cache entry: one younger than the registry's
  ``cache_retention`` (``MODREG_CACHE_RETENTION``; default: never expires), or one written
  by a pinned run; an expired entry roots nothing and is deleted here;
- ``step``: the outputs and log of every step of a pinned run (``modreg runs pin``);
- the files (``DirMember``) of every folder output that a live cache entry or a pinned step
  names, through the folder's manifest blob.

Outputs kept in a team's shared artifact store (cache entries with a ``store``) are no
registry blobs: nothing here deletes them, and an expired entry of that kind is deleted like
any other. Their store is collected by the engine (``modreg gc --store URL``, with the
team's own credentials), whose roots ``store_roots`` lists: the outputs of the team's live
entries naming that store, and of the steps of its pinned runs.

``upload`` references are weak, as are the ``step`` references of unpinned runs: a blob
that only they name is kept while it was seen (uploaded, found by ``HEAD``, or newly
referred to: ``Blob.last_seen``) within the grace period, and collected after that.

Algorithm:

1. *Mark*: one query lists the candidates: ``Blob`` rows unseen for the grace period that
   no root reaches. A dry run stops here and reports them; expired cache entries are counted.
2. *Expire*: expired cache entries are deleted with their references, and the leases
   (``leases``) whose holder stopped renewing them before the grace period.
3. *Sweep*, a batch at a time, each in one transaction: lock the candidates' rows
   (``SELECT … FOR UPDATE`` on PostgreSQL; on SQLite the first write takes the database's
   one write lock), then ask the mark query again for just those rows. Whatever came to
   refer to a blob meanwhile ``hold``\\ s its row first (``references.hold``) and refreshes
   ``last_seen``, so it is either committed and seen now, or waits for this transaction and
   then finds the blob gone (and says so: "not uploaded"). The survivors' rows go (with
   their weak references and folder member rows), then their files, then the commit. A crash
   after the files went leaves rows without bytes, which read as absent and are collected
   by the next run; never the reverse, a reference to bytes that are gone.

So a publish or upload in flight never loses a byte, and a dry run reports exactly the
blobs a real run started at the same instant deletes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Engine, and_, delete, exists, not_, or_, true, update
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from modreg.registry.blobs import BlobStore
from modreg.registry.models import (
    Blob,
    BlobRef,
    CacheEntry,
    DirMember,
    Lease,
    ModuleVersion,
    PipelineRun,
    RefKind,
    StepRun,
    utcnow,
)
from modreg.registry.references import VERSION_KINDS
from modreg.registry.schemas import GcBlob, GcReport, OutputRef, StoreRoots

BATCH = 200  # blobs locked and deleted per transaction: short locks, few round trips


def _pinned_runs() -> ColumnElement[bool]:
    return col(PipelineRun.pinned) == true()


def _live_entries(retention: timedelta | None, now: datetime) -> ColumnElement[bool]:
    """The cache entries that still root their outputs."""
    if retention is None:
        return true()
    pinned = select(PipelineRun.id).where(_pinned_runs())
    of_pinned = and_(col(CacheEntry.run_id).is_not(None), col(CacheEntry.run_id).in_(pinned))
    return or_(col(CacheEntry.created_at) >= now - retention, of_pinned)  # never NULL


def _strong(retention: timedelta | None, now: datetime) -> ColumnElement[bool]:
    """The references that are roots."""
    live = select(CacheEntry.id).where(_live_entries(retention, now))
    pinned_steps = select(StepRun.id).join(PipelineRun).where(_pinned_runs())
    return or_(
        col(BlobRef.kind).in_(VERSION_KINDS),
        and_(col(BlobRef.kind) == RefKind.cache.value, col(BlobRef.owner_id).in_(live)),
        and_(col(BlobRef.kind) == RefKind.step.value, col(BlobRef.owner_id).in_(pinned_steps)),
    )


def _collectable(
    grace: timedelta, retention: timedelta | None, now: datetime
) -> ColumnElement[bool]:
    """The mark predicate on a ``Blob`` row: unseen for the grace period, reached by no root."""
    strong = _strong(retention, now)
    direct = exists(
        sa_select(col(BlobRef.sha256)).where(col(BlobRef.sha256) == col(Blob.sha256), strong)
    )
    in_folder = exists(
        sa_select(col(DirMember.member))
        .join(BlobRef, col(BlobRef.sha256) == col(DirMember.manifest))
        .where(col(DirMember.member) == col(Blob.sha256), strong)
    )
    archive = exists(
        sa_select(col(ModuleVersion.id)).where(col(ModuleVersion.sha256) == col(Blob.sha256))
    )
    return and_(col(Blob.last_seen) < now - grace, not_(direct), not_(in_folder), not_(archive))


def _candidates(
    session: Session, grace: timedelta, retention: timedelta | None, now: datetime,
    among: Sequence[str] | None = None,
) -> list[GcBlob]:  # fmt: skip
    stmt = select(Blob.sha256, Blob.size).where(_collectable(grace, retention, now))
    if among is not None:
        stmt = stmt.where(col(Blob.sha256).in_(among))
    rows = session.exec(stmt.order_by(col(Blob.sha256)))
    return [GcBlob(sha256=sha256, size=size) for sha256, size in rows]


def _expired_entries(session: Session, retention: timedelta | None, now: datetime) -> list[int]:
    if retention is None:
        return []
    stmt = select(CacheEntry.id).where(not_(_live_entries(retention, now)))
    return [entry_id for entry_id in session.exec(stmt) if entry_id is not None]


def collect(
    engine: Engine,
    store: BlobStore,
    grace: timedelta,
    retention: timedelta | None,
    dry_run: bool = False,
) -> GcReport:
    """Run one collection (see the module docstring); what it deleted, or would delete."""
    now = utcnow()
    with Session(engine) as session:
        candidates = _candidates(session, grace, retention, now)
        expired = _expired_entries(session, retention, now)
    report = GcReport(
        dry_run=dry_run,
        grace_seconds=int(grace.total_seconds()),
        retention_seconds=int(retention.total_seconds()) if retention is not None else None,
        expired_cache_entries=len(expired),
        blobs=candidates,
    )
    if dry_run:
        return report
    _expire(engine, expired)
    _drop_dead_leases(engine, now - grace)
    deleted: list[GcBlob] = []
    for start in range(0, len(candidates), BATCH):
        batch = [blob.sha256 for blob in candidates[start : start + BATCH]]
        deleted += _sweep(engine, store, batch, grace, retention, now)
    return report.model_copy(update={"blobs": deleted})


def _expire(engine: Engine, entry_ids: list[int]) -> None:
    with Session(engine) as session:
        for start in range(0, len(entry_ids), BATCH):
            chunk = entry_ids[start : start + BATCH]
            session.execute(
                delete(BlobRef).where(
                    col(BlobRef.kind) == RefKind.cache.value, col(BlobRef.owner_id).in_(chunk)
                )
            )
            session.execute(delete(CacheEntry).where(col(CacheEntry.id).in_(chunk)))
        session.commit()


def _drop_dead_leases(engine: Engine, before: datetime) -> None:
    """A dead engine's lease is taken over by the next claim of its step; one whose step
    nobody claims again would stay for ever."""
    with Session(engine) as session:
        session.execute(delete(Lease).where(col(Lease.expires_at) < before))
        session.commit()


def _lock(session: Session, batch: list[str]) -> None:
    """Lock the rows of ``batch`` for this transaction (PostgreSQL: row locks, in order;
    SQLite: a first write takes the write lock, so the re-check sees the latest commits)."""
    if session.get_bind().dialect.name == "postgresql":
        stmt = select(Blob.sha256).where(col(Blob.sha256).in_(batch)).order_by(col(Blob.sha256))
        session.exec(stmt.with_for_update()).all()
        return
    session.execute(update(Blob).where(col(Blob.sha256).in_(batch)).values(size=Blob.size))


def _sweep(
    engine: Engine, store: BlobStore, batch: list[str], grace: timedelta,
    retention: timedelta | None, now: datetime,
) -> list[GcBlob]:  # fmt: skip
    """Delete the blobs of ``batch`` still collectable once their rows are locked."""
    with Session(engine) as session:
        _lock(session, batch)
        doomed = _candidates(session, grace, retention, now, among=batch)
        digests = [blob.sha256 for blob in doomed]
        if digests:
            session.execute(delete(BlobRef).where(col(BlobRef.sha256).in_(digests)))
            session.execute(delete(DirMember).where(col(DirMember.manifest).in_(digests)))
            session.execute(delete(Blob).where(col(Blob.sha256).in_(digests)))
            session.flush()
            for sha256 in digests:
                store.delete(sha256)
        session.commit()
    return doomed


def store_roots(
    session: Session, team_id: int, store_url: str, retention: timedelta | None
) -> StoreRoots:
    """The outputs a collection of the team's store at ``store_url`` must keep."""
    now = utcnow()
    entries = select(CacheEntry.outputs).where(
        col(CacheEntry.team_id) == team_id,
        col(CacheEntry.store) == store_url,
        _live_entries(retention, now),
    )
    pinned = (
        select(StepRun.record)
        .join(PipelineRun)
        .where(col(PipelineRun.team_id) == team_id, _pinned_runs())
    )
    named = [*session.exec(entries)]
    named += [record.get("outputs") or {} for record in session.exec(pinned)]
    refs = {
        OutputRef.model_validate(ref).digest: OutputRef.model_validate(ref)
        for outputs in named
        for ref in outputs.values()
    }
    return StoreRoots(outputs=[refs[digest] for digest in sorted(refs)])
