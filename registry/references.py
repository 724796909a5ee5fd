"""What refers to each blob, and so who may read it (no HTTP here).

A blob holds bytes; whose they are is said by the things that refer to it, one
``BlobRef`` row each, for the team the thing belongs to:

- ``archive``, ``environment``: a module version's source archive and environment lock (the
  module's team);
- ``cache``: an output of a step-cache entry; ``step``: an output or the log of a step run;
- ``upload``: the team uploaded the bytes (``PUT /blobs``), so it holds them already.

A folder output is referred to by its manifest blob (``schemas.DirManifest``); its files are
``DirMember`` rows, read from the manifest once, when a cache entry or step run first names
the folder. A blob is readable within a ``Reach`` (``auth.blob_reach``) when a reference of
a team in reach names it, or names (as a cache entry's or step run's output) a folder that
holds it; and, where ``open_archives``, when any module version's archive or environment
reference names it. That is
one indexed query. An upload reference does not open a folder's files: uploading a manifest
that names another team's blobs gains nothing, since recording a cache entry or step run
only refers to blobs its team may already read, folder members included.

Garbage collection (``modreg gc``, ``gc.py``) keeps what a reference names, following folders
the same way; upload references are the weak ones it may expire. So that it never deletes a
blob something is coming to refer to, every new reference first ``hold``s its blobs: their
``Blob`` rows are locked for the rest of the transaction and their ``last_seen`` refreshed,
and a blob whose row is gone (collected meanwhile) is no longer there to refer to.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Collection, Iterable, Mapping

from pydantic import ValidationError
from sqlalchemy import ColumnElement, delete, false, or_, true, union_all, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from modreg.registry.auth import Reach
from modreg.registry.blobs import BlobStore, BlobWriter
from modreg.registry.db import insert_ignore_many
from modreg.registry.errors import InvalidInputError, UnknownBlobError
from modreg.registry.models import Blob, BlobRef, DirMember, RefKind, utcnow
from modreg.registry.schemas import DirManifest, OutputRef, PortType

CHUNK = 500  # digests per IN (...) list: well under every database's parameter limit
_FOLDER_KINDS = (RefKind.cache.value, RefKind.step.value)
# what a version refers to: readable by whoever may read the version's module
VERSION_KINDS = (RefKind.archive.value, RefKind.environment.value)


def _in_reach(reach: Reach) -> ColumnElement[bool]:
    """The references that make a blob readable within ``reach``."""
    if reach.every_team:
        return true()
    clauses: list[ColumnElement[bool]] = []
    if reach.team_id is not None:
        clauses.append(col(BlobRef.team_id) == reach.team_id)
    if reach.open_archives:
        clauses.append(col(BlobRef.kind).in_(VERSION_KINDS))
    return or_(*clauses) if clauses else false()


def readable_among(session: Session, digests: Iterable[str], reach: Reach) -> set[str]:
    """The digests among ``digests`` that are readable within ``reach``."""
    wanted = sorted(set(digests))
    if reach.every_team:
        return set(wanted)
    found: set[str] = set()
    for start in range(0, len(wanted), CHUNK):
        chunk = wanted[start : start + CHUNK]
        direct = select(BlobRef.sha256).where(col(BlobRef.sha256).in_(chunk), _in_reach(reach))
        in_folder = (
            select(DirMember.member)
            .join(BlobRef, col(BlobRef.sha256) == col(DirMember.manifest))
            .where(
                col(DirMember.member).in_(chunk),
                col(BlobRef.kind).in_(_FOLDER_KINDS),
                _in_reach(reach),
            )
        )
        found.update(session.execute(union_all(direct, in_folder)).scalars())
    return found


def readable(session: Session, sha256: str, reach: Reach) -> bool:
    """Whether one blob is readable within ``reach``."""
    return sha256 in readable_among(session, [sha256], reach)


def record_upload(session: Session, writer: BlobWriter, reach: Reach) -> None:
    """Install a blob the caller's team uploaded (it proved it holds the bytes), with its row
    and the team's upload reference: the row is written and locked first, so a garbage
    collection cannot delete the bytes between their install and the commit."""
    upsert_seen(session, writer.sha256, writer.size)
    writer.commit()
    refer(session, reach.own_team_id, RefKind.upload, 0, [writer.sha256])
    session.commit()


def upsert_seen(session: Session, sha256: str, size: int) -> None:
    """The blob's row, inserted or its ``last_seen`` refreshed (and so locked), in one step."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    now = utcnow()
    stmt = insert(Blob.__table__).values(  # type: ignore[attr-defined]
        sha256=sha256, size=size, created_at=now, last_seen=now
    )
    session.execute(stmt.on_conflict_do_update(index_elements=["sha256"], set_={"last_seen": now}))


def hold(session: Session, store: BlobStore, digests: Iterable[str]) -> set[str]:
    """Lock the rows of these blobs until the transaction ends and refresh their
    ``last_seen``: garbage collection then cannot delete them before what is about to refer
    to them is committed. Answers the digests that are gone (no row and no bytes); a stored
    blob without a row (uploaded before rows were kept) gets one."""
    wanted = sorted(set(digests))
    found: set[str] = set()
    now = utcnow()
    postgres = session.get_bind().dialect.name == "postgresql"
    for start in range(0, len(wanted), CHUNK):
        chunk = wanted[start : start + CHUNK]
        rows = select(Blob.sha256).where(col(Blob.sha256).in_(chunk)).order_by(col(Blob.sha256))
        refresh = update(Blob).where(col(Blob.sha256).in_(chunk)).values(last_seen=now)
        if postgres:  # row locks, taken in the order garbage collection takes them
            found.update(session.exec(rows.with_for_update()))
            session.execute(refresh)
        else:  # the write takes SQLite's write lock: only then is the read current
            session.execute(refresh)
            found.update(session.exec(rows))
    gone = set()
    for sha256 in sorted(set(wanted) - found):
        size = store.size(sha256)
        if size is None:
            gone.add(sha256)
        else:
            upsert_seen(session, sha256, size)
    return gone


def refer(
    session: Session, team_id: int, kind: RefKind, owner_id: int, digests: Iterable[str]
) -> None:
    """Add the references of one thing to blobs, in the session's transaction (idempotent)."""
    refer_many(session, team_id, kind, {owner_id: digests})


def refer_many(
    session: Session, team_id: int, kind: RefKind, digests: Mapping[int, Iterable[str]]
) -> None:
    """Add the references of many things (owner id -> digests), in few statements."""
    now = utcnow()
    rows = [
        {"sha256": sha256, "team_id": team_id, "kind": kind.value, "owner_id": owner,
         "created_at": now}
        for owner, owned in digests.items()
        for sha256 in sorted(set(owned))
    ]  # fmt: skip
    insert_ignore_many(session, BlobRef, rows)


def forget(session: Session, kind: RefKind, owner_ids: Collection[int]) -> None:
    """Drop every reference of these things (before referring again to what they hold now)."""
    owners = sorted(owner_ids)
    for start in range(0, len(owners), CHUNK):
        chunk = owners[start : start + CHUNK]
        stmt = delete(BlobRef).where(
            col(BlobRef.kind) == kind.value, col(BlobRef.owner_id).in_(chunk)
        )
        session.execute(stmt)


# --- folder outputs -----------------------------------------------------------------------


def folder_members(session: Session, store: BlobStore, manifest: str) -> list[str]:
    """The member blobs of a folder output, read from its manifest blob the first time."""
    stmt = select(DirMember.member).where(DirMember.manifest == manifest)
    members = list(session.exec(stmt))
    if members:
        return members
    with store.open_verified(manifest) as path:
        data = path.read_bytes()
    try:
        files = DirManifest.from_bytes(data).members()
    except ValidationError as exc:
        raise InvalidInputError(f"blob {manifest} is not a folder manifest") from exc
    members = sorted({digest for digest, _ in files.values()})
    rows = [{"manifest": manifest, "member": member} for member in members]
    insert_ignore_many(session, DirMember, rows)
    return members


def check_outputs(
    session: Session, store: BlobStore, outputs: Mapping[str, OutputRef], reach: Reach
) -> list[str]:
    """The blobs to refer to for these outputs, each stored and readable within ``reach`` (a
    folder's files too); else UnknownBlobError, as if the blob had never been uploaded."""
    for name, ref in outputs.items():
        if not store.exists(ref.digest) or not readable(session, ref.digest, reach):
            raise UnknownBlobError(
                f"output {name!r} names blob {ref.digest}, which is not uploaded: PUT it first"
            )
        if ref.type == PortType.dir:
            members = folder_members(session, store, ref.digest)
            missing = sorted(set(members) - readable_among(session, members, reach))
            if missing:
                raise UnknownBlobError(
                    f"output {name!r} is a folder whose file blob {missing[0]} is not uploaded: "
                    "PUT it first"
                )
    return [ref.digest for ref in outputs.values()]


def hold_outputs(
    session: Session, store: BlobStore, outputs: Iterable[OutputRef], others: Iterable[str] = ()
) -> set[str]:
    """``hold`` every blob of these outputs (a folder's files too) and of ``others``; the
    digests that are gone."""
    digests = set(others)
    for ref in outputs:
        digests.add(ref.digest)
        if ref.type == PortType.dir:
            with contextlib.suppress(UnknownBlobError, InvalidInputError):
                digests.update(folder_members(session, store, ref.digest))
    return hold(session, store, digests)


def readable_outputs(
    session: Session,
    store: BlobStore,
    named: Mapping[int, tuple[Mapping[str, OutputRef], Iterable[str]]],
    reach: Reach,
) -> dict[int, list[str]]:
    """For each thing (owner id -> its outputs and other blobs, e.g. a log), the blobs readable
    within ``reach`` (a folder only when its files are too): what step runs may refer to.
    The rest are not refused (a run is recorded even when an output could not be shared),
    just not referred to."""
    wanted = {
        owner: [*(r.digest for r in outs.values()), *others]
        for owner, (outs, others) in named.items()
    }
    ok = readable_among(session, itertools.chain(*wanted.values()), reach)
    folders = {
        r.digest for outs, _ in named.values() for r in outs.values() if r.type == PortType.dir
    }
    ok -= {f for f in folders & ok if not _whole_folder(session, store, f, reach)}
    return {owner: sorted(set(digests) & ok) for owner, digests in wanted.items()}


def _whole_folder(session: Session, store: BlobStore, folder: str, reach: Reach) -> bool:
    try:
        members = folder_members(session, store, folder)
    except (UnknownBlobError, InvalidInputError):  # missing, corrupt, or not a manifest
        return False
    return set(members) <= readable_among(session, members, reach)
