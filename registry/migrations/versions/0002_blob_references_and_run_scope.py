"""Blob references and folder members (who may read a blob), and the run scope.

Revision ID: 0002
Revises: 0001
Create Date: 2027-01-12 10:00:00

Schema: ``blob_ref`` (one row per thing of a team that refers to a blob) and ``dir_member``
(the files of a folder output, read from its manifest blob). See ``registry/references.py``.

Data: references are filled in from what already exists, so everything each team could
read through its module versions, cache entries and step runs stays readable by digest:
the archive of every module version, the outputs of every cache entry, the outputs and log
of every step run, and the files of every folder output among them, read from its manifest
in the blob store (which ``modreg server`` hands to this migration; upgrading a database
that has folder outputs without it is refused rather than done halfway). Uploads made
before this revision are not known by team: a blob uploaded and not yet referred to reads
as absent, and the client sends it again when it needs it.

Token scopes: ``run`` is a new value of ``token.scope`` (a short string column, unchanged).
Existing tokens keep their scope: a ``read`` token stays ``read`` (under the new rules it no
longer records runs, cache entries or blobs), a ``publish`` token keeps all it could do.
Downgrading turns ``run`` tokens into ``read`` ones, the nearest scope revision 0001 knows
(which, under 0001's rules, records as a run token does).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BATCH = 1000

_module_version = sa.table(
    "module_version",
    sa.column("id", sa.Integer),
    sa.column("module_id", sa.Integer),
    sa.column("sha256", sa.String),
)
_module = sa.table("module", sa.column("id", sa.Integer), sa.column("team_id", sa.Integer))
_cache_entry = sa.table(
    "cache_entry",
    sa.column("id", sa.Integer),
    sa.column("team_id", sa.Integer),
    sa.column("outputs", sa.JSON),
)
_step_run = sa.table(
    "step_run",
    sa.column("id", sa.Integer),
    sa.column("run_id", sa.String),
    sa.column("record", sa.JSON),
)
_pipeline_run = sa.table(
    "pipeline_run", sa.column("id", sa.String), sa.column("team_id", sa.Integer)
)
_token = sa.table("token", sa.column("scope", sa.String))


def upgrade() -> None:
    blob_ref = op.create_table(
        "blob_ref",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["team_id"], ["team.id"], name=op.f("fk_blob_ref_team_id_team")),
        sa.PrimaryKeyConstraint("sha256", "team_id", "kind", "owner_id", name=op.f("pk_blob_ref")),
    )
    op.create_index("ix_blob_ref_kind_owner_id", "blob_ref", ["kind", "owner_id"], unique=False)
    dir_member = op.create_table(
        "dir_member",
        sa.Column("manifest", sa.String(length=64), nullable=False),
        sa.Column("member", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("manifest", "member", name=op.f("pk_dir_member")),
    )
    op.create_index(op.f("ix_dir_member_member"), "dir_member", ["member"], unique=False)
    folders: set[str] = set()
    _insert(blob_ref, _references(folders))
    _insert(dir_member, _members(folders))


def downgrade() -> None:
    op.execute(_token.update().where(_token.c.scope == "run").values(scope="read"))
    op.drop_index(op.f("ix_dir_member_member"), table_name="dir_member")
    op.drop_table("dir_member")
    op.drop_index("ix_blob_ref_kind_owner_id", table_name="blob_ref")
    op.drop_table("blob_ref")


# --- backfill ------------------------------------------------------------------------------


def _now() -> datetime:
    now = datetime.now(UTC)
    return now.replace(tzinfo=None) if op.get_bind().dialect.name == "sqlite" else now


def _insert(table: sa.Table, rows: Iterable[dict[str, Any]]) -> None:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= BATCH:
            op.bulk_insert(table, batch)
            batch = []
    if batch:
        op.bulk_insert(table, batch)


def _outputs(outputs: Any, folders: set[str]) -> list[str]:
    """The top blobs of an outputs mapping as stored (``OutputRef`` dumps); notes folders."""
    digests = []
    for ref in (outputs or {}).values():
        if isinstance(ref, dict) and isinstance(ref.get("digest"), str):
            digests.append(ref["digest"])
            if ref.get("type") == "dir":
                folders.add(ref["digest"])
    return digests


def _references(folders: set[str]) -> Iterator[dict[str, Any]]:
    """One row per (blob, team, kind, owner) of every version, cache entry and step run."""
    bind, now = op.get_bind(), _now()
    versions = sa.select(_module_version.c.id, _module.c.team_id, _module_version.c.sha256).join(
        _module, _module.c.id == _module_version.c.module_id
    )
    for owner, team, sha256 in bind.execute(versions).all():
        yield _row(sha256, team, "archive", owner, now)
    entries = sa.select(_cache_entry.c.id, _cache_entry.c.team_id, _cache_entry.c.outputs)
    for owner, team, outputs in bind.execute(entries).all():
        for sha256 in sorted(set(_outputs(outputs, folders))):
            yield _row(sha256, team, "cache", owner, now)
    steps = sa.select(_step_run.c.id, _pipeline_run.c.team_id, _step_run.c.record).join(
        _pipeline_run, _pipeline_run.c.id == _step_run.c.run_id
    )
    for owner, team, record in bind.execute(steps).all():
        record = record or {}
        digests = _outputs(record.get("outputs"), folders)
        if isinstance(record.get("log_digest"), str):
            digests.append(record["log_digest"])
        for sha256 in sorted(set(digests)):
            yield _row(sha256, team, "step", owner, now)


def _row(sha256: str, team: int, kind: str, owner: int, now: datetime) -> dict[str, Any]:
    return {"sha256": sha256, "team_id": team, "kind": kind, "owner_id": owner, "created_at": now}


def _members(folders: set[str]) -> Iterator[dict[str, Any]]:
    """The files of every folder output, from its manifest in the blob store."""
    if not folders:
        return
    config = op.get_context().config
    store = config.attributes.get("blob_store") if config is not None else None
    if store is None:
        raise RuntimeError(
            f"{len(folders)} folder outputs need their manifests read from the blob store: "
            "upgrade this registry by starting `modreg server` on it"
        )
    from modreg.registry.errors import UnknownBlobError
    from modreg.registry.schemas import DirManifest

    for manifest in sorted(folders):
        try:
            with store.open_verified(manifest) as path:
                files = DirManifest.from_bytes(path.read_bytes()).members()
        except (UnknownBlobError, ValueError):  # gone, corrupt or not a manifest: nothing to follow
            continue
        for member in sorted({digest for digest, _ in files.values()}):
            yield {"manifest": manifest, "member": member}
