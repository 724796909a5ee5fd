"""Domain operations on modules and their versions: search, show, publish, status, default,
resolve (no HTTP here; teams and tokens are in ``accounts``, runs and the step cache in
``runs``).

Each function takes a ``Session`` and raises errors from ``modreg.registry.errors``; routes
call one function and return its wire-shaped answer. Who may call them was decided before
(``auth``'s rules); listings and resolution take the ``Reach`` a rule gave, and ``who`` is
only named in the audit log. Uniqueness is left to the database:
a publish inserts its version row and, on an ``IntegrityError``, re-reads the winner to
decide between an identical replay (``created: false``) and a conflict (409). The version
row references a ``Blob`` row that exists only once the bytes are durable in the store, so
a version never points at a missing archive, and with it a reference to that blob for the
module's team (``references``), which is what makes the archive readable by its digest.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Select, bindparam, or_
from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from modreg.registry import references
from modreg.registry.archive import check_archive
from modreg.registry.archive_manifest import check_archive_manifest, read_archive_files
from modreg.registry.auth import Identity, Reach
from modreg.registry.blobs import BlobStore
from modreg.registry.db import audit, get_team, insert_ignore
from modreg.registry.environment_lock import (
    LOCK_FILE,
    MAX_LOCK_BYTES,
    lowest_python,
    parse_lock,
)
from modreg.registry.errors import (
    DamagedArchiveError,
    InvalidInputError,
    ManifestError,
    RegistryError,
    UnknownBlobError,
    UnknownModuleError,
    UnknownVersionError,
    VersionExistsError,
)
from modreg.registry.manifest import environment_source, validate_manifest
from modreg.registry.models import Module, ModuleVersion, RefKind, Team, utcnow
from modreg.registry.names import check_module_name
from modreg.registry.schemas import (
    EnvironmentPublic,
    Manifest,
    ModulePublic,
    PublishResult,
    Resolution,
    StatusChange,
    VersionCreate,
    VersionPublic,
    VersionStatus,
)
from modreg.registry.semver_check import Published, check
from modreg.registry.versioning import (
    Candidate,
    canonical_version,
    highest_stable,
    parse_ref,
    select_version,
    version_sort_key,
)

# --- modules ---------------------------------------------------------------------------


def _module_stmt() -> Select[tuple[Module, str]]:
    return select(Module, Team.name).join(Team)  # type: ignore[return-value]


def get_module(session: Session, team: str, name: str) -> Module:
    row = session.exec(
        _module_stmt().where(col(Team.name) == team, col(Module.name) == name)  # type: ignore[call-overload]
    ).first()
    if row is None:
        raise UnknownModuleError(f"no module {team}/{name}")
    return row[0]  # type: ignore[no-any-return]


_STATUSES = {status.value: status for status in VersionStatus}


def _version_index(
    session: Session, module_ids: Iterable[int | None]
) -> tuple[dict[int, list[Candidate]], dict[tuple[int, str], int]]:
    """Version and status of every version of these modules (the candidates a range picks
    from), and the row id of each, in one Core query: the one read of versions that show,
    search and resolve share."""
    candidates: dict[int, list[Candidate]] = defaultdict(list)
    ids: dict[tuple[int, str], int] = {}
    table = ModuleVersion.__table__  # type: ignore[attr-defined]
    columns = (table.c.id, table.c.module_id, table.c.version, table.c.status)
    notes = (table.c.status_message, table.c.replaced_by)
    stmt = sa_select(*columns, *notes).where(
        table.c.module_id.in_([i for i in module_ids if i is not None])
    )
    for row_id, module_id, version, status, message, successor in (
        session.connection().execute(stmt).all()
    ):
        candidates[module_id].append(Candidate(version, _STATUSES[status], message, successor))
        ids[(module_id, version)] = row_id
    return candidates, ids


def _module_public(module: Module, team: str, candidates: Sequence[Candidate]) -> ModulePublic:
    return ModulePublic(
        name=f"{team}/{module.name}",
        team=team,
        description=module.description,
        default_version=module.default_version,
        latest_version=highest_stable(candidates),
        created_at=module.created_at,
    )


def show_module(session: Session, team: str, name: str) -> ModulePublic:
    module = get_module(session, team, name)
    assert module.id is not None
    candidates, _ = _version_index(session, [module.id])
    return _module_public(module, team, candidates[module.id])


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search_modules(
    session: Session,
    text: str | None,
    team: str | None,
    limit: int,
    offset: int,
    reach: Reach,
) -> list[ModulePublic]:
    """Modules within reach whose name or description contains ``text``, by name."""
    stmt = _module_stmt()
    if text:
        pattern = _like(text.lower())
        full_name = col(Team.name) + "/" + col(Module.name)
        stmt = stmt.where(
            or_(
                full_name.ilike(pattern, escape="\\"),
                col(Module.description).ilike(pattern, escape="\\"),
            )
        )
    if team:
        stmt = stmt.where(col(Team.name) == team)
    if not reach.every_team:
        stmt = stmt.where(col(Team.id) == reach.team_id)
    stmt = stmt.order_by(Team.name, Module.name).limit(limit).offset(offset)
    rows = list(session.exec(stmt))  # type: ignore[call-overload]
    candidates, _ = _version_index(session, [module.id for module, _ in rows])
    return [_module_public(m, t, candidates[m.id]) for m, t in rows]


# --- versions --------------------------------------------------------------------------


def _version_public(row: ModuleVersion, module: str) -> VersionPublic:
    return VersionPublic(
        module=module,
        version=row.version,
        status=VersionStatus(row.status),
        status_message=row.status_message,
        commit=row.commit,
        tree_sha=row.tree_sha,
        path=row.path,
        remote=row.remote,
        sha256=row.sha256,
        size=row.size,
        manifest=Manifest.model_validate(row.manifest),
        published_at=row.published_at,
        published_by=row.published_by,
        environment=EnvironmentPublic.model_validate(row.environment) if row.environment else None,
        replaced_by=row.replaced_by,
    )


def _find_version(session: Session, module_id: int | None, version: str) -> ModuleVersion | None:
    stmt = select(ModuleVersion).where(
        ModuleVersion.module_id == module_id, ModuleVersion.version == version
    )
    return session.exec(stmt).first()


@functools.cache
def _version_lookup() -> SelectOfScalar[ModuleVersion]:
    """``team/name@version`` in one query, built once (the hottest read of the API)."""
    return (
        select(ModuleVersion)
        .join(Module)
        .join(Team)
        .where(
            Team.name == bindparam("team"),
            Module.name == bindparam("name"),
            ModuleVersion.version == bindparam("version"),
        )
    )


def _get_version_row(session: Session, team: str, name: str, version: str) -> ModuleVersion:
    """The row of ``team/name@version``; says which part is unknown if any."""
    params = {"team": team, "name": name, "version": canonical_version(version)}
    row = session.exec(_version_lookup(), params=params).first()
    if row is None:
        get_module(session, team, name)  # raises UnknownModuleError when that is what is wrong
        raise UnknownVersionError(f"{team}/{name}@{version} is not published")
    return row


def list_versions(session: Session, team: str, name: str) -> list[VersionPublic]:
    module = get_module(session, team, name)
    rows = session.exec(select(ModuleVersion).where(ModuleVersion.module_id == module.id))
    ordered = sorted(rows, key=lambda row: version_sort_key(row.version))
    return [_version_public(row, f"{team}/{name}") for row in ordered]


def get_version(session: Session, team: str, name: str, version: str) -> VersionPublic:
    return _version_public(_get_version_row(session, team, name, version), f"{team}/{name}")


def recent_versions(session: Session, reach: Reach, limit: int) -> list[VersionPublic]:
    """The latest publishes of modules within reach, newest first (the UI's front page)."""
    stmt = (
        select(ModuleVersion, Module.name, Team.name)
        .join(Module, col(Module.id) == col(ModuleVersion.module_id))
        .join(Team, col(Team.id) == col(Module.team_id))
    )
    if not reach.every_team:
        stmt = stmt.where(col(Team.id) == reach.team_id)
    stmt = stmt.order_by(col(ModuleVersion.published_at).desc(), col(ModuleVersion.id).desc())
    rows = session.exec(stmt.limit(limit))
    return [_version_public(row, f"{team}/{name}") for row, name, team in rows]


def archive_digest(session: Session, team: str, name: str, version: str) -> str:
    return _get_version_row(session, team, name, version).sha256


def damaged_archive(
    session: Session, team: str, name: str, version: str, cause: UnknownBlobError
) -> DamagedArchiveError:
    """The error for a listed version whose archive the store no longer holds intact, with
    the repair: publishing the same commit again re-uploads the bytes (an identical
    publish is answered as done, so only the blob changes)."""
    row = _get_version_row(session, team, name, version)
    return DamagedArchiveError(
        f"the archive of {team}/{name}@{row.version} is damaged on the server ({cause.detail}); "
        f"repair it: run `modreg publish --skip-existing` from commit {row.commit}",
        commit=row.commit,
        sha256=row.sha256,
    )


# --- publish ---------------------------------------------------------------------------


def _check_manifest(manifest: Manifest, full_name: str, version: str) -> None:
    source = f"modreg.toml of {full_name}@{version}"
    validate_manifest(manifest, source)
    if manifest.name != full_name:
        raise ManifestError(
            f"{source}: [module] name is {manifest.name!r} but it is published as {full_name!r}"
        )
    if canonical_version(manifest.version) != version:
        raise ManifestError(
            f"{source}: [module] version is {manifest.version!r} but the publish says {version!r}"
        )


def _uploaded(session: Session, store: BlobStore, sha256: str, reach: Reach, what: str) -> int:
    """The size of a stored blob the publisher may read. A blob out of reach is as good as
    absent: publishing it would hand another team's bytes to every reader of the module."""
    size = store.size(sha256)
    if size is None or not references.readable(session, sha256, reach):
        raise UnknownBlobError(f"{what} blob {sha256} is not uploaded: PUT /blobs/{sha256} first")
    return size


def _checked_archive(
    session: Session, store: BlobStore, body: VersionCreate, reach: Reach, source: str
) -> tuple[int, EnvironmentPublic | None]:
    """Size of a stored, verified, safe archive blob the publisher may read, holding the
    manifest the publish sends, and the environment lock it names (both blobs' rows held,
    so a collector cannot take them before the version refers to them)."""
    sha256 = body.sha256
    size = _uploaded(session, store, sha256, reach, "archive")
    with store.open_verified(sha256) as path:
        check_archive(path)
        check_archive_manifest(path, body.manifest, source)
        environment = _checked_environment(session, store, body, reach, source, path)
    held = [sha256] + ([environment.sha256] if environment else [])
    if gone := references.hold(session, store, held):  # collected meanwhile
        first = min(gone)
        raise UnknownBlobError(f"blob {first} is not uploaded: PUT /blobs/{first} first")
    return size, environment


def _checked_environment(
    session: Session, store: BlobStore, body: VersionCreate, reach: Reach, source: str,
    archive: Path,
) -> EnvironmentPublic | None:  # fmt: skip
    """The version's environment lock: sent exactly when the manifest declares
    ``[environment]``, hash-pinned, and — for a module that commits its own
    ``requirements.lock`` — those very bytes."""
    spec, sha256 = body.manifest.environment, body.environment_sha256
    if spec is None or sha256 is None:
        if spec is None and sha256 is None:
            return None
        problem = "has no [environment]" if spec is None else "declares [environment]"
        missing = "but an environment lock was sent" if spec is None else "but no lock was sent"
        raise ManifestError(f"{source}: the module {problem} {missing} (environment_sha256)")
    wanted = (LOCK_FILE, spec.requirements_file) if spec.requirements_file else (LOCK_FILE,)
    files = read_archive_files(archive, wanted, source, MAX_LOCK_BYTES)
    origin = environment_source(spec, lambda name: files.get(name) is not None, source)
    if _uploaded(session, store, sha256, reach, "environment lock") > MAX_LOCK_BYTES:
        raise ManifestError(f"{source}: the environment lock is over {MAX_LOCK_BYTES} bytes")
    with store.open_verified(sha256) as path:
        data = path.read_bytes()
    if origin == LOCK_FILE and data != files[LOCK_FILE]:
        raise ManifestError(
            f"{source}: the environment lock sent is not the module's own {LOCK_FILE}"
        )
    try:
        packages = parse_lock(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ManifestError(f"{source}: environment lock: {exc}") from exc
    return EnvironmentPublic(
        sha256=sha256, python=lowest_python(spec.python), python_range=spec.python,
        packages=packages,
    )  # fmt: skip


def _module_for_publish(session: Session, team: str, name: str, description: str) -> Module:
    team_row = get_team(session, team)
    insert_ignore(session, Module, team_id=team_row.id, name=name, created_at=utcnow())
    module = get_module(session, team, name)
    if description and module.description != description:
        module.description = description
        session.add(module)
    return module


def _replay(existing: ModuleVersion, body: VersionCreate, full_name: str) -> PublishResult:
    lock = existing.environment["sha256"] if existing.environment else None
    if (existing.commit, existing.sha256, lock) == (
        body.commit,
        body.sha256,
        body.environment_sha256,
    ):
        return PublishResult(created=False, version=_version_public(existing, full_name))
    raise VersionExistsError(
        f"{full_name}@{existing.version} is already published (commit {existing.commit[:12]}, "
        f"sha256 {existing.sha256[:12]}); versions are immutable: publish a new version",
        commit=existing.commit,
        sha256=existing.sha256,
    )


def _lock_module(session: Session, module_id: int) -> None:
    """Hold the module until the transaction ends, so two publishes of it check and insert
    one after the other: on PostgreSQL a row lock; on SQLite the write lock the publish
    already holds (``references.hold`` wrote first), under which every read is current."""
    if session.get_bind().dialect.name == "postgresql":
        stmt = sa_select(Module.__table__.c.id).where(Module.__table__.c.id == module_id)  # type: ignore[attr-defined]
        session.connection().execute(stmt.with_for_update())


def published_versions(session: Session, module_id: int) -> list[Published]:
    """Every published version of a module, as the semver check reads them."""
    rows = session.exec(select(ModuleVersion).where(ModuleVersion.module_id == module_id))
    return [
        Published(
            row.version, VersionStatus(row.status), Manifest.model_validate(row.manifest),
            EnvironmentPublic.model_validate(row.environment) if row.environment else None,
        )
        for row in rows
    ]  # fmt: skip


def _check_semver(
    session: Session, module: Module, full_name: str, manifest: Manifest,
    environment: EnvironmentPublic | None,
) -> None:  # fmt: skip
    """Refuse an under-bumped version, under the module's lock: the versions read here are
    all there are until this publish commits, so two racing publishes cannot both pass."""
    assert module.id is not None
    _lock_module(session, module.id)
    verdict = check(full_name, manifest, published_versions(session, module.id), environment)
    if not verdict.ok:
        raise verdict.error()


def publish_version(
    session: Session,
    store: BlobStore,
    team: str,
    name: str,
    body: VersionCreate,
    who: Identity,
    reach: Reach,
) -> PublishResult:
    """Publish once: 201-worthy ``created=True``, an identical replay, or VersionExistsError.

    ``reach`` is what the archive may be taken from (``auth.publish``).
    """
    full_name = f"{team}/{name}"
    check_module_name(full_name)
    version = canonical_version(body.version)
    module = get_or_none(session, team, name)
    existing = _find_version(session, module.id, version) if module else None
    if existing is not None:
        return _replay(existing, body, full_name)
    _check_manifest(body.manifest, full_name, version)
    source = f"modreg.toml of {full_name}@{version}"
    size, environment = _checked_archive(session, store, body, reach, source)
    module = _module_for_publish(session, team, name, body.manifest.description)
    assert module.id is not None  # a row read back from the database
    _check_semver(session, module, full_name, body.manifest, environment)
    row = ModuleVersion(
        module_id=module.id, version=version, commit=body.commit, tree_sha=body.tree_sha,
        path=body.path, remote=body.remote, sha256=body.sha256, size=size,
        manifest=body.manifest.model_dump(mode="json"), published_by=who.token_id,
        environment=environment.model_dump(mode="json") if environment else None,
    )  # fmt: skip
    session.add(row)
    audit(session, who, "publish", f"{full_name}@{version}", commit=body.commit, sha256=body.sha256)
    try:
        session.flush()
        assert row.id is not None
        references.refer(session, module.team_id, RefKind.archive, row.id, [body.sha256])
        if environment is not None:
            references.refer(
                session, module.team_id, RefKind.environment, row.id, [environment.sha256]
            )
        session.commit()
    except IntegrityError:
        session.rollback()
        winner = _find_version(session, get_module(session, team, name).id, version)
        if winner is None:
            raise
        return _replay(winner, body, full_name)
    session.refresh(row)
    return PublishResult(created=True, version=_version_public(row, full_name))


def get_or_none(session: Session, team: str, name: str) -> Module | None:
    try:
        return get_module(session, team, name)
    except UnknownModuleError:
        return None


# --- status and default ----------------------------------------------------------------


def _successor(session: Session, status: VersionStatus, replaced_by: str | None) -> str | None:
    """A deprecated version's successor, checked: a valid reference to a module that
    exists (``team/other@^2``), or None."""
    if replaced_by is None:
        return None
    if status != VersionStatus.deprecated:
        raise InvalidInputError("only a deprecation names a successor (replaced_by)")
    name, range_text = parse_ref(replaced_by)
    get_module(session, *name.split("/", 1))
    return f"{name}@{range_text}" if range_text else name


def set_status(
    session: Session,
    team: str,
    name: str,
    version: str,
    status: VersionStatus,
    change: StatusChange,
    who: Identity,
) -> VersionPublic:
    """Deprecate (optionally naming a successor), yank (a reason is required) or unyank
    one version."""
    message = change.message
    if status == VersionStatus.yanked and not (message and message.strip()):
        raise InvalidInputError("yanking needs a reason: pass message (--reason)")
    successor = _successor(session, status, change.replaced_by)
    row = _get_version_row(session, team, name, version)
    action = {"active": "unyank", "deprecated": "deprecate", "yanked": "yank"}[status.value]
    row.status = status.value
    row.status_message = message if status != VersionStatus.active else None
    row.replaced_by = successor
    session.add(row)
    audit(
        session, who, action, f"{team}/{name}@{row.version}", message=message,
        replaced_by=successor,
    )  # fmt: skip
    session.commit()
    session.refresh(row)
    return _version_public(row, f"{team}/{name}")


def set_default(
    session: Session, team: str, name: str, version: str | None, who: Identity
) -> ModulePublic:
    module = get_module(session, team, name)
    if version is not None:
        row = _get_version_row(session, team, name, version)
        version = _default_candidate(row, f"{team}/{name}")
    module.default_version = version
    session.add(module)
    audit(session, who, "set-default", f"{team}/{name}", version=version)
    session.commit()
    return show_module(session, team, name)


def _default_candidate(row: ModuleVersion, full_name: str) -> str:
    """The version a default may be: not a yanked one, which no range would choose either."""
    if row.status == VersionStatus.yanked.value:
        ref = f"{full_name}@{row.version}"
        why = f" ({row.status_message})" if row.status_message else ""
        raise InvalidInputError(
            f"{ref} is yanked{why}: a yanked version cannot be the default; "
            f"pick another, or `modreg unyank {ref}` first"
        )
    return row.version


# --- resolve ---------------------------------------------------------------------------


def _modules_named(session: Session, names: set[str]) -> dict[str, Module]:
    """The modules among ``team/name`` strings, in one query."""
    if not names:
        return {}
    teams = {n.split("/", 1)[0] for n in names}
    shorts = {n.split("/", 1)[1] for n in names}
    stmt = _module_stmt().where(col(Team.name).in_(teams), col(Module.name).in_(shorts))
    rows = session.exec(stmt)  # type: ignore[call-overload]
    found = {f"{team}/{module.name}": module for module, team in rows}
    return {name: module for name, module in found.items() if name in names}


@dataclass
class _Pick:
    """One reference while resolving: the answer so far, and the row still to load."""

    resolution: Resolution
    module_id: int | None = None
    version: str | None = None


def _choose(
    ref: str, modules: dict[str, Module], candidates: dict[int, list[Candidate]], reach: Reach
) -> _Pick:
    try:
        name, range_text = parse_ref(ref)
        reach.require_team(name.split("/", 1)[0])
        module = modules.get(name)
        if module is None or module.id is None:
            raise UnknownModuleError(f"no module {name}")
        choice = select_version(candidates[module.id], range_text, module.default_version, name)
    except RegistryError as exc:
        return _Pick(Resolution(ref=ref, error=exc.to_problem()))
    resolution = Resolution(
        ref=ref, module=name, range=range_text, reason=choice.reason, warnings=choice.warnings
    )
    return _Pick(resolution, module.id, choice.version)


def resolve(session: Session, refs: list[str], reach: Reach) -> list[Resolution]:
    """Resolve many refs with three queries: modules, their versions' index, the chosen rows.

    A ref to a team out of ``reach`` gets its own permission error, like any other per-ref
    error, so one unreadable ref does not fail the others.
    """
    names = {ref.strip().partition("@")[0] for ref in refs}
    modules = _modules_named(session, {n for n in names if n.count("/") == 1})
    candidates, ids = _version_index(session, [m.id for m in modules.values() if m.id])
    picks = [_choose(ref, modules, candidates, reach) for ref in refs]
    wanted = {ids[(p.module_id, p.version)] for p in picks if p.module_id and p.version}
    rows = {}
    if wanted:
        stmt = select(ModuleVersion).where(col(ModuleVersion.id).in_(wanted))
        rows = {(row.module_id, row.version): row for row in session.exec(stmt)}
    for pick in picks:
        if pick.module_id and pick.version:
            row = rows[(pick.module_id, pick.version)]
            pick.resolution.version = _version_public(row, pick.resolution.module or "")
    return [pick.resolution for pick in picks]
