"""The database's tables (SQLModel), one declaration per column.

These rows are the registry's own shape — ids, foreign keys, token hashes — and are turned
into the wire shapes of ``schemas.py`` at the edge (the domain modules ``modules``,
``accounts`` and ``runs``). Invariants the database enforces rather than the code: one
``(module, version)``, one ``(team, fingerprint)`` cache entry, one step record per
``(run, step)``, unique token hashes and team names.
Timestamps are stored and returned as timezone-aware UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, DateTime, Dialect, Index, UniqueConstraint
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

from modreg.registry.schemas import (
    ERROR_TEXT,
    FINGERPRINT_TEXT,
    LONG_TEXT,
    PATH_TEXT,
    RUN_ID_TEXT,
    SHORT_TEXT,
    VERSION_TEXT,
)

# Stable constraint names, so migrations can name what they create and drop.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
SQLModel.metadata.naming_convention = NAMING_CONVENTION


def utcnow() -> datetime:
    """Now, timezone-aware UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware (SQLite drops zones)."""

    impl = DateTime
    cache_ok = True

    def __init__(self) -> None:
        super().__init__(timezone=True)

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None or value.tzinfo is None:
            return value
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _when(**kwargs: Any) -> Any:
    return Field(sa_type=UTCDateTime, **kwargs)


def _json(**kwargs: Any) -> Any:
    return Field(sa_type=JSON, **kwargs)


class Team(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64, unique=True)
    created_at: datetime = _when(default_factory=utcnow)


class Token(SQLModel, table=True):
    """An API token: only the sha256 of its secret is stored."""

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True)
    team_id: int | None = Field(default=None, foreign_key="team.id", index=True)
    scope: str | None = Field(default=None, max_length=16)
    admin: bool = False
    description: str = Field(default="", max_length=SHORT_TEXT)
    created_at: datetime = _when(default_factory=utcnow)
    expires_at: datetime | None = _when(default=None)
    revoked_at: datetime | None = _when(default=None)


class Module(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("team_id", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    team_id: int = Field(foreign_key="team.id")
    name: str = Field(max_length=100)  # the part after "team/"
    description: str = Field(default="", max_length=LONG_TEXT)
    default_version: str | None = Field(default=None, max_length=VERSION_TEXT)
    created_at: datetime = _when(default_factory=utcnow)


class Blob(SQLModel, table=True):
    """A content-addressed blob known to be stored (and verified) in the blob store.

    ``last_seen``: when an upload last sent or found it (``PUT``, ``HEAD``) or something
    last came to refer to it; garbage collection spares a blob seen within its grace period.
    """

    sha256: str = Field(primary_key=True, max_length=64)
    size: int
    created_at: datetime = _when(default_factory=utcnow)
    last_seen: datetime | None = _when(default_factory=utcnow, index=True)


class RefKind(StrEnum):
    """What refers to a blob: the table of the referring row (``BlobRef.owner_id``)."""

    archive = "archive"  # module_version: the version's source archive
    environment = "environment"  # module_version: the version's environment lock
    cache = "cache"  # cache_entry: an output of a cached step result
    step = "step"  # step_run: an output or the log of a step of a run
    upload = "upload"  # none (owner 0): the team uploaded the bytes, so it holds them


class BlobRef(SQLModel, table=True):
    """One thing of one team that refers to a blob.

    A blob is readable by whoever may read something that refers to it (``references``), and
    garbage collection keeps what is referred to. A folder output is referred to by its
    manifest blob; its member blobs are reached through ``DirMember``.
    """

    __tablename__ = "blob_ref"
    __table_args__ = (Index("ix_blob_ref_kind_owner_id", "kind", "owner_id"),)

    sha256: str = Field(primary_key=True, max_length=64)
    team_id: int = Field(primary_key=True, foreign_key="team.id")
    kind: str = Field(primary_key=True, max_length=16)
    owner_id: int = Field(primary_key=True)  # the referring row's id; 0 for an upload
    created_at: datetime = _when(default_factory=utcnow)


class DirMember(SQLModel, table=True):
    """A file of a folder output: the folder's manifest blob names this member blob.

    Read once from the manifest (``schemas.DirManifest``) when a cache entry or step run
    names the folder, so who may read a member is one indexed query, not a manifest read.
    """

    __tablename__ = "dir_member"

    manifest: str = Field(primary_key=True, max_length=64)
    member: str = Field(primary_key=True, max_length=64, index=True)


class ModuleVersion(SQLModel, table=True):
    """One immutable published version; ``version`` is canonical (no ``+build``)."""

    __tablename__ = "module_version"
    __table_args__ = (UniqueConstraint("module_id", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    module_id: int = Field(foreign_key="module.id")
    version: str = Field(max_length=VERSION_TEXT)
    status: str = Field(default="active", max_length=16)
    status_message: str | None = Field(default=None, max_length=LONG_TEXT)
    commit: str = Field(max_length=40)
    tree_sha: str = Field(max_length=40)
    path: str = Field(default="", max_length=PATH_TEXT)
    remote: str | None = Field(default=None, max_length=LONG_TEXT)
    sha256: str = Field(foreign_key="blob.sha256", max_length=64, index=True)
    size: int
    manifest: dict[str, Any] = _json()
    published_at: datetime = _when(default_factory=utcnow)
    published_by: int | None = Field(default=None, foreign_key="token.id")
    # EnvironmentPublic as JSON; None for a module without [environment]
    environment: dict[str, Any] | None = _json(default=None, nullable=True)
    # a deprecated version's successor, ``team/name@RANGE`` (``modreg deprecate --replaced-by``)
    replaced_by: str | None = Field(default=None, max_length=SHORT_TEXT)


class Dependent(SQLModel, table=True):
    """A pipeline of a team that ran a module version, learned from its run records.

    One row per (module, team, pipeline, step, range as written, version resolved);
    ``range`` is "" for a reference without one. Holds names and dates only: what the
    module's owner may see of who uses it (``dependents``), never the runs themselves.
    """

    __table_args__ = (
        UniqueConstraint("module_id", "team_id", "pipeline", "step", "range", "version"),
    )

    id: int | None = Field(default=None, primary_key=True)
    module_id: int = Field(foreign_key="module.id", index=True)
    team_id: int = Field(foreign_key="team.id")
    pipeline: str = Field(max_length=SHORT_TEXT)
    step: str = Field(max_length=SHORT_TEXT)
    range: str = Field(default="", max_length=SHORT_TEXT)
    version: str = Field(max_length=VERSION_TEXT)
    last_run_id: str = Field(max_length=RUN_ID_TEXT)
    last_run_at: datetime = _when(default_factory=utcnow)


class AuditEvent(SQLModel, table=True):
    """Who did what to which object, and when."""

    __tablename__ = "audit_event"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _when(default_factory=utcnow, index=True)
    token_id: int | None = Field(default=None, foreign_key="token.id")
    actor: str = Field(max_length=200)  # "admin#1", "vision:publish#3"
    action: str = Field(max_length=40)  # "publish", "yank", "token.create", …
    target: str = Field(max_length=300)  # "vision/prep@1.2.0", "team vision", "token#4"
    detail: dict[str, Any] = _json(default_factory=dict)


class CacheEntry(SQLModel, table=True):
    """A step result: fingerprint -> output digests, per team; the first write wins."""

    __tablename__ = "cache_entry"
    __table_args__ = (UniqueConstraint("team_id", "fingerprint"),)

    id: int | None = Field(default=None, primary_key=True)
    team_id: int = Field(foreign_key="team.id")
    fingerprint: str = Field(max_length=FINGERPRINT_TEXT)
    outputs: dict[str, Any] = _json()
    run_id: str | None = Field(default=None, max_length=RUN_ID_TEXT)
    step: str | None = Field(default=None, max_length=SHORT_TEXT)
    created_at: datetime = _when(default_factory=utcnow)
    # the shared artifact store holding the outputs (they are not registry blobs); None: ours
    store: str | None = Field(default=None, max_length=PATH_TEXT)


class Sweep(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=32)
    team_id: int = Field(foreign_key="team.id", index=True)
    pipeline: str = Field(max_length=SHORT_TEXT)
    axes: dict[str, Any] = _json(default_factory=dict)
    created_at: datetime = _when(default_factory=utcnow)


class PipelineRun(SQLModel, table=True):
    __tablename__ = "pipeline_run"

    id: str = Field(primary_key=True, max_length=32)
    team_id: int = Field(foreign_key="team.id", index=True)
    pipeline: str = Field(max_length=SHORT_TEXT)
    sweep_id: str | None = Field(default=None, foreign_key="sweep.id", max_length=32, index=True)
    variant: dict[str, Any] = _json(default_factory=dict)
    status: str = Field(default="running", max_length=16)
    error: str | None = Field(default=None, max_length=ERROR_TEXT)
    spec: dict[str, Any] = _json(default_factory=dict)
    lock: dict[str, Any] = _json(default_factory=dict)
    created_by: int | None = Field(default=None, foreign_key="token.id")
    created_at: datetime = _when(default_factory=utcnow, index=True)
    ended_at: datetime | None = _when(default=None)
    pinned: bool = False  # garbage collection keeps its step outputs, logs and cache entries
    heartbeat_at: datetime | None = _when(default=None)  # the engine's last word; None: created_at


class StepRun(SQLModel, table=True):
    """One step of a run; ``record`` holds the engine's ``StepRunRecord`` as sent."""

    __tablename__ = "step_run"
    __table_args__ = (UniqueConstraint("run_id", "step"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(foreign_key="pipeline_run.id", max_length=32)
    step: str = Field(max_length=200)
    status: str = Field(max_length=16)
    fingerprint: str | None = Field(default=None, max_length=FINGERPRINT_TEXT, index=True)
    record: dict[str, Any] = _json()
    updated_at: datetime = _when(default_factory=utcnow)


class Lease(SQLModel, table=True):
    """Who executes a fingerprint for a team right now, until ``expires_at``.

    One row per ``(team, fingerprint)`` (the primary key), so a claim is one INSERT … ON
    CONFLICT DO NOTHING or one conditional UPDATE: atomic on SQLite and PostgreSQL alike.
    A holder deletes its row once the step's cache entry is recorded (or the step failed);
    a dead holder's row expires, and the next claim takes it over.
    """

    team_id: int = Field(primary_key=True, foreign_key="team.id")
    fingerprint: str = Field(primary_key=True, max_length=FINGERPRINT_TEXT)
    holder: str = Field(max_length=SHORT_TEXT)
    expires_at: datetime = _when(index=True)
    claimed_at: datetime = _when(default_factory=utcnow)
