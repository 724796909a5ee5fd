"""Domain operations on what pipeline runs leave behind: step cache, sweeps, runs, step runs.

Everything here belongs to one team and is invisible to others. Who may read or record it
was decided before (``auth``'s rules): each function takes the ``Reach`` a rule gave (one
team, or every team for the admin's reads) and keeps to it; a run or sweep out of reach is
answered as unknown. Cache entries and step runs refer to the blobs they name
(``references``), which is what lets their team read those blobs.

Cache entries are write-once: the first writer of a ``(team, fingerprint)`` wins and later
writers get the stored entry back, so two runs that computed the same step agree on one
result; recording it ends the fingerprint's lease (``leases``) in the same transaction. A
wrong (poisoned) one is removed by eviction — named fingerprints, or every entry
a step of a module version produced (found through the team's step records, which name the
module version and the fingerprint of each step) — with an audit event per entry; the next
writer of the fingerprint wins again.

A step record is an upsert keyed by ``(run, step)``, so the engine may report a step as often
as it likes. Every write to a run (its update, its steps) is a heartbeat: a run still
``running`` whose last heartbeat is older than the registry's ``run_heartbeat_timeout`` is
answered ``abandoned`` — computed on read, so no sweeper process is needed and every replica
agrees; the engine's next run from the same state folder then stores it (``RunUpdate``).
"""

from __future__ import annotations

import itertools
import re
import secrets
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, func, or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, delete, select

from modreg.registry import dependents, references
from modreg.registry.auth import Identity, Reach
from modreg.registry.blobs import BlobStore
from modreg.registry.db import audit, get_team, insert_ignore
from modreg.registry.errors import (
    ConflictError,
    InvalidInputError,
    UnknownBlobError,
    UnknownCacheEntryError,
    UnknownRunError,
    UnknownSweepError,
)
from modreg.registry.models import (
    CacheEntry,
    Lease,
    PipelineRun,
    RefKind,
    StepRun,
    Sweep,
    Team,
    utcnow,
)
from modreg.registry.names import check_module_name
from modreg.registry.schemas import (
    CacheEntryCreate,
    CacheEntryPublic,
    CacheEvicted,
    CacheEviction,
    CacheLookupResult,
    OutputRef,
    RunCreate,
    RunPublic,
    RunStatus,
    RunUpdate,
    StepRunRecord,
    SweepCreate,
    SweepPublic,
)
from modreg.registry.versioning import canonical_version

_FINGERPRINT = re.compile(r"^[0-9A-Za-z._:-]{1,128}$")
_STEP = re.compile(r"^[A-Za-z0-9._-]{1,200}$")


def _check(pattern: re.Pattern[str], value: str, what: str) -> str:
    if not pattern.match(value):
        raise InvalidInputError(f"invalid {what} {value!r}")
    return value


def check_fingerprint(fingerprint: str) -> str:
    """A fingerprint as a path segment may carry; InvalidInputError otherwise."""
    return _check(_FINGERPRINT, fingerprint, "fingerprint")


def _team_name(session: Session, team_id: int) -> str:
    team = session.get(Team, team_id)
    assert team is not None
    return team.name


# --- step cache ------------------------------------------------------------------------


def entry_public(entry: CacheEntry, team: str) -> CacheEntryPublic:
    return CacheEntryPublic(
        fingerprint=entry.fingerprint,
        team=team,
        outputs={k: OutputRef.model_validate(v) for k, v in entry.outputs.items()},
        run_id=entry.run_id,
        step=entry.step,
        created_at=entry.created_at,
        store=entry.store,
    )


def lookup_cache(session: Session, reach: Reach, fingerprints: list[str]) -> CacheLookupResult:
    """The team's entries among ``fingerprints`` (missing ones are simply absent)."""
    team_id = reach.own_team_id
    team = _team_name(session, team_id)
    entries: dict[str, CacheEntryPublic] = {}
    for start in range(0, len(fingerprints), 500):
        chunk = fingerprints[start : start + 500]
        stmt = select(CacheEntry).where(
            CacheEntry.team_id == team_id, col(CacheEntry.fingerprint).in_(chunk)
        )
        entries.update({e.fingerprint: entry_public(e, team) for e in session.exec(stmt)})
    return CacheLookupResult(entries=entries)


def put_cache(
    session: Session, store: BlobStore, reach: Reach, fingerprint: str, body: CacheEntryCreate
) -> CacheEntryPublic:
    """Record a result unless one exists; either way answer the stored entry."""
    team_id = reach.own_team_id
    check_fingerprint(fingerprint)
    digests = [] if body.store else _held_outputs(session, store, reach, body)
    outputs = {k: v.model_dump(mode="json") for k, v in body.outputs.items()}
    inserted = insert_ignore(
        session, CacheEntry, team_id=team_id, fingerprint=fingerprint, outputs=outputs,
        run_id=body.run_id, step=body.step, created_at=utcnow(), store=body.store,
    )  # fmt: skip
    stmt = select(CacheEntry).where(
        CacheEntry.team_id == team_id, CacheEntry.fingerprint == fingerprint
    )
    entry = session.exec(stmt).one()
    if inserted:
        assert entry.id is not None
        references.refer(session, team_id, RefKind.cache, entry.id, digests)
    # the result is recorded: whoever held the step's lease is done with it (leases.py)
    session.execute(
        delete(Lease).where(col(Lease.team_id) == team_id, col(Lease.fingerprint) == fingerprint)
    )
    session.commit()
    return entry_public(entry, _team_name(session, team_id))


def _held_outputs(
    session: Session, store: BlobStore, reach: Reach, body: CacheEntryCreate
) -> list[str]:
    """The registry blobs an entry names, checked readable and held against collection."""
    digests = references.check_outputs(session, store, body.outputs, reach)
    gone = references.hold_outputs(session, store, body.outputs.values())
    if gone:
        raise UnknownBlobError(f"blob {min(gone)} is not uploaded (or was collected): PUT it first")
    return digests


def _evicted_teams(session: Session, reach: Reach) -> int | None:
    """The one team whose cache an eviction may touch; None for every team's."""
    if reach.every_team:
        return None
    if reach.team_id is not None:
        return reach.team_id
    assert reach.team is not None, "evict_cache gave a reach of no team"
    team = get_team(session, reach.team)
    assert team.id is not None
    return team.id


def _entries_of_version(
    session: Session, team_id: int | None, module: str, version: str
) -> list[CacheEntry]:
    """Entries a step of ``module@version`` produced: the team's step records say which."""
    check_module_name(module)
    version = canonical_version(version)
    stmt = (
        select(CacheEntry, StepRun.record)
        .join(StepRun, col(StepRun.fingerprint) == col(CacheEntry.fingerprint))
        .join(PipelineRun, col(PipelineRun.id) == col(StepRun.run_id))
        .where(col(PipelineRun.team_id) == col(CacheEntry.team_id))
    )
    if team_id is not None:
        stmt = stmt.where(CacheEntry.team_id == team_id)
    found = {
        entry.id: entry
        for entry, record in session.exec(stmt)
        if record.get("module") == module and record.get("version") == version
    }
    return list(found.values())


def _entries_to_evict(
    session: Session, team_id: int | None, body: CacheEviction
) -> list[CacheEntry]:
    if bool(body.fingerprints) == (body.module is not None or body.version is not None):
        raise InvalidInputError("evict named fingerprints, or a module and version: one of them")
    if body.module is not None or body.version is not None:
        if body.module is None or body.version is None:
            raise InvalidInputError("evicting a module's entries needs its module and version")
        return _entries_of_version(session, team_id, body.module, body.version)
    for fingerprint in body.fingerprints:
        check_fingerprint(fingerprint)
    stmt = select(CacheEntry).where(col(CacheEntry.fingerprint).in_(body.fingerprints))
    if team_id is not None:
        stmt = stmt.where(CacheEntry.team_id == team_id)
    return list(session.exec(stmt))


def _nothing_to_evict(session: Session, team_id: int | None, body: CacheEviction) -> str:
    whose = f"team {_team_name(session, team_id)!r}" if team_id is not None else "no team"
    if body.module is not None:
        return f"{whose} has no cache entry of {body.module}@{body.version}"
    return f"{whose} has no cache entry {', '.join(body.fingerprints)}"


def evict_cache(session: Session, who: Identity, reach: Reach, body: CacheEviction) -> CacheEvicted:
    """Delete the matching entries of the teams in reach (and their blob references)."""
    team_id = _evicted_teams(session, reach)
    entries = _entries_to_evict(session, team_id, body)
    if not entries:
        raise UnknownCacheEntryError(_nothing_to_evict(session, team_id, body))
    evicted = [entry_public(entry, _team_name(session, entry.team_id)) for entry in entries]
    ids = [entry.id for entry in entries if entry.id is not None]
    references.forget(session, RefKind.cache, ids)
    for start in range(0, len(ids), 500):
        session.execute(delete(CacheEntry).where(col(CacheEntry.id).in_(ids[start : start + 500])))
    for entry in evicted:
        detail = {"run_id": entry.run_id, "step": entry.step}
        if body.module is not None:
            detail["module"] = f"{body.module}@{canonical_version(body.version or '')}"
        audit(session, who, "cache.evict", f"cache {entry.team}/{entry.fingerprint}", **detail)
    session.commit()
    return CacheEvicted(evicted=evicted)


# --- sweeps ----------------------------------------------------------------------------


def _sweep_public(session: Session, sweep: Sweep) -> SweepPublic:
    stmt = (
        select(PipelineRun.id)
        .where(PipelineRun.sweep_id == sweep.id)
        .order_by(col(PipelineRun.created_at), col(PipelineRun.id))
    )
    return SweepPublic(
        id=sweep.id,
        team=_team_name(session, sweep.team_id),
        pipeline=sweep.pipeline,
        axes=sweep.axes,
        created_at=sweep.created_at,
        run_ids=list(session.exec(stmt)),
    )


def create_sweep(session: Session, who: Identity, reach: Reach, body: SweepCreate) -> SweepPublic:
    """The sweep and its runs in one transaction; ``run_ids`` keep the order of ``runs``."""
    team_id = reach.own_team_id
    sweep = Sweep(
        id=f"s-{secrets.token_hex(6)}", team_id=team_id, pipeline=body.pipeline, axes=body.axes
    )
    session.add(sweep)
    session.flush()
    start = utcnow()
    for index, run in enumerate(body.runs):
        # runs list in creation order: a microsecond apart, so the order cannot tie
        created = start + timedelta(microseconds=index)
        row = _new_run(who, team_id, run.model_copy(update={"sweep_id": sweep.id}), created)
        session.add(row)
        dependents.record(session, team_id, row.pipeline, row.lock, row.id, created)
    session.commit()
    session.refresh(sweep)
    return _sweep_public(session, sweep)


def _get_sweep(session: Session, sweep_id: str, reach: Reach) -> Sweep:
    sweep = session.get(Sweep, sweep_id)
    if sweep is None or not reach.includes(sweep.team_id):
        raise UnknownSweepError(f"no sweep {sweep_id!r} for your team")
    return sweep


def get_sweep(session: Session, sweep_id: str, reach: Reach) -> SweepPublic:
    return _sweep_public(session, _get_sweep(session, sweep_id, reach))


# --- runs ------------------------------------------------------------------------------


def _steps_of(session: Session, run_ids: Iterable[str]) -> dict[str, dict[str, StepRunRecord]]:
    steps: dict[str, dict[str, StepRunRecord]] = defaultdict(dict)
    stmt = select(StepRun).where(col(StepRun.run_id).in_(list(run_ids))).order_by(col(StepRun.id))
    for row in session.exec(stmt):
        steps[row.run_id][row.step] = StepRunRecord.model_validate(row.record)
    return steps


def _shown_status(run: PipelineRun, timeout: timedelta | None) -> RunStatus:
    """The run's status, ``abandoned`` for a running one whose heartbeat is older than
    ``timeout`` (None: a run just written to, which cannot be)."""
    status = RunStatus(run.status)
    last = run.heartbeat_at or run.created_at
    if status == RunStatus.running and timeout is not None and last < utcnow() - timeout:
        return RunStatus.abandoned
    return status


def _run_public(
    run: PipelineRun,
    team: str,
    steps: dict[str, StepRunRecord],
    timeout: timedelta | None,
    full: bool = True,
) -> RunPublic:
    return RunPublic(
        id=run.id,
        team=team,
        pipeline=run.pipeline,
        sweep_id=run.sweep_id,
        variant=run.variant,
        status=_shown_status(run, timeout),
        error=run.error,
        spec=run.spec if full else {},
        lock=run.lock if full else {},
        created_at=run.created_at,
        ended_at=run.ended_at,
        heartbeat_at=run.heartbeat_at or run.created_at,
        steps=steps,
        pinned=run.pinned,
    )


def _get_run(session: Session, run_id: str, reach: Reach) -> PipelineRun:
    run = session.get(PipelineRun, run_id)
    if run is None or not reach.includes(run.team_id):
        raise UnknownRunError(f"no run {run_id!r} for your team")
    return run


def _new_run(who: Identity, team_id: int, body: RunCreate, created: datetime) -> PipelineRun:
    return PipelineRun(
        id=f"r-{secrets.token_hex(6)}", team_id=team_id, pipeline=body.pipeline,
        sweep_id=body.sweep_id, variant=body.variant, spec=body.spec, lock=body.lock,
        status=RunStatus.running.value, created_by=who.token_id, created_at=created,
        heartbeat_at=created,
    )  # fmt: skip


def create_run(session: Session, who: Identity, reach: Reach, body: RunCreate) -> RunPublic:
    team_id = reach.own_team_id
    if body.sweep_id is not None:
        _get_sweep(session, body.sweep_id, reach)
    run = _new_run(who, team_id, body, utcnow())
    session.add(run)
    dependents.record(session, team_id, run.pipeline, run.lock, run.id, run.created_at)
    session.commit()
    session.refresh(run)
    return _run_public(run, _team_name(session, team_id), {}, None)


def get_run(
    session: Session, run_id: str, reach: Reach, timeout: timedelta | None = None
) -> RunPublic:
    """The run with its steps; ``timeout``: the registry's heartbeat timeout."""
    run = _get_run(session, run_id, reach)
    steps = _steps_of(session, [run.id]).get(run.id, {})
    return _run_public(run, _team_name(session, run.team_id), steps, timeout)


def list_runs(
    session: Session,
    reach: Reach,
    sweep: str | None,
    pipeline: str | None,
    limit: int,
    timeout: timedelta | None = None,
    *,
    status: RunStatus | None = None,
    team: str | None = None,
    offset: int = 0,
) -> list[RunPublic]:
    """Newest first, with steps, without the spec and lock bodies; ``status`` as shown
    (``abandoned`` included), ``team`` among those within reach, ``offset`` for paging."""
    stmt = select(PipelineRun, Team.name).join(Team)
    if not reach.every_team:
        stmt = stmt.where(PipelineRun.team_id == reach.team_id)
    if sweep is not None:
        stmt = stmt.where(PipelineRun.sweep_id == sweep)
    if pipeline is not None:
        stmt = stmt.where(PipelineRun.pipeline == pipeline)
    if team is not None:
        stmt = stmt.where(Team.name == team)
    if status is not None:
        stmt = stmt.where(_shown_status_is(status, timeout))
    stmt = stmt.order_by(col(PipelineRun.created_at).desc(), col(PipelineRun.id))
    rows = list(session.exec(stmt.limit(limit).offset(offset)))
    steps = _steps_of(session, [run.id for run, _ in rows])
    return [
        _run_public(run, team, steps.get(run.id, {}), timeout, full=False) for run, team in rows
    ]


def _shown_status_is(status: RunStatus, timeout: timedelta | None) -> ColumnElement[bool]:
    """The SQL twin of ``_shown_status(run) == status``: a running run past its heartbeat
    timeout is shown, and so filtered, as abandoned."""
    stored = col(PipelineRun.status) == status.value
    if timeout is None or status not in (RunStatus.running, RunStatus.abandoned):
        return stored
    last = func.coalesce(col(PipelineRun.heartbeat_at), col(PipelineRun.created_at))
    running = col(PipelineRun.status) == RunStatus.running.value
    if status == RunStatus.running:
        return and_(running, last >= utcnow() - timeout)
    return or_(stored, and_(running, last < utcnow() - timeout))


def set_pinned(
    session: Session,
    run_id: str,
    reach: Reach,
    pinned: bool,
    who: Identity,
    timeout: timedelta | None = None,
) -> RunPublic:
    """Pin a run (garbage collection keeps its step outputs, logs and cache entries) or
    unpin it."""
    run = _get_run(session, run_id, reach)
    run.pinned = pinned
    session.add(run)
    audit(session, who, "pin" if pinned else "unpin", f"run {run_id}")
    session.commit()
    return get_run(session, run_id, reach, timeout)


def _apply_update(run: PipelineRun, body: RunUpdate) -> None:
    run.status = body.status.value
    run.error = body.error
    finished = body.status not in (RunStatus.pending, RunStatus.running)
    run.ended_at = body.ended_at or (utcnow() if finished else None)
    run.heartbeat_at = utcnow()


def update_run(session: Session, run_id: str, reach: Reach, body: RunUpdate) -> RunPublic:
    """Set the run's status (``running`` again is the engine's heartbeat)."""
    run = _get_run(session, run_id, reach)
    _apply_update(run, body)
    session.add(run)
    session.commit()
    return get_run(session, run_id, reach)


def put_steps(
    session: Session,
    store: BlobStore,
    run_id: str,
    reach: Reach,
    records: dict[str, StepRunRecord],
    finish: RunUpdate | None = None,
) -> None:
    """Insert or replace the records of some steps of a run (and finish it), in one transaction.

    Each step run refers to the blobs of its outputs and log that its team may read; others
    (an output that could not be shared) stay named in the record, unreadable by digest.
    """
    for step in records:
        _check(_STEP, step, "step name")
    run = _get_run(session, run_id, reach)
    for _attempt in range(3):
        if finish is not None:
            _apply_update(run, finish)
        run.heartbeat_at = utcnow()
        session.add(run)
        rows = _upsert_steps(session, run_id, records)
        try:
            session.flush()
            _refer_steps(session, store, reach, rows, records)
            session.commit()
            return
        except IntegrityError:
            session.rollback()  # another writer inserted one first: update theirs
    raise ConflictError(f"steps of run {run_id!r} are being written concurrently; retry")


def _upsert_steps(
    session: Session, run_id: str, records: dict[str, StepRunRecord]
) -> dict[str, StepRun]:
    stmt = select(StepRun).where(StepRun.run_id == run_id, col(StepRun.step).in_(list(records)))
    existing = {row.step: row for row in session.exec(stmt)}
    for step, record in records.items():
        row = existing.get(step) or StepRun(run_id=run_id, step=step, status="", record={})
        row.status = record.status.value
        row.fingerprint = record.fingerprint
        row.record = record.model_dump(mode="json")
        row.updated_at = utcnow()
        session.add(row)
        existing[step] = row
    return existing


def _refer_steps(
    session: Session,
    store: BlobStore,
    reach: Reach,
    rows: dict[str, StepRun],
    records: dict[str, StepRunRecord],
) -> None:
    """Each step run refers to what it names now (and no longer to what it named before)."""
    ids = {step: row.id for step, row in rows.items() if row.id is not None}
    references.forget(session, RefKind.step, list(ids.values()))
    named = {
        ids[step]: (record.outputs, [record.log_digest] if record.log_digest else [])
        for step, record in records.items()
    }
    readable = references.readable_outputs(session, store, named, reach)
    gone = references.hold_outputs(
        session,
        store,
        [ref for record in records.values() for ref in record.outputs.values()],
        itertools.chain(*readable.values()),
    )
    kept = {owner: [d for d in digests if d not in gone] for owner, digests in readable.items()}
    references.refer_many(session, reach.own_team_id, RefKind.step, kept)
