"""Who uses a module: dependents learned from run records, and listed for the module's readers.

Every run the engine records carries its lock (``RunCreate.lock``): for each step, each
reference written in the pipeline (``vision/prep@^1.2``) and the exact version it resolved
to (``vision/prep@1.2.0``). Creating a run upserts one ``Dependent`` row per such use —
(module, team, pipeline, step, range, version) with the last run's id and date — in the
run's own transaction, so the registry needs no scan of old runs to answer.

Listing shows names, ranges, versions and dates, never runs, params or outputs. A dependent
team is shown only within the caller's ``Reach`` for modules: every team on an open
registry (or for the admin), on a ``--private`` one only the caller's own team.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from modreg.registry.auth import Reach
from modreg.registry.errors import RegistryError
from modreg.registry.models import Dependent, Module, ModuleVersion, Team
from modreg.registry.schemas import SHORT_TEXT, DependentPublic, VersionStatus
from modreg.registry.versioning import canonical_version, parse_range, parse_ref, parse_version


@dataclass(frozen=True)
class Use:
    """One reference of one step of a lock, and the version it resolved to."""

    step: str
    module: str  # team/name
    range: str  # "" when the pipeline wrote none
    version: str


def _use(step: str, ref: str, resolved: Any) -> Use | None:
    try:
        module, range_text = parse_ref(ref)
        name, _, version = str(resolved).partition("@")
        if name != module or len(step) > SHORT_TEXT or len(range_text or "") > SHORT_TEXT:
            return None
        return Use(step, module, range_text or "", canonical_version(version))
    except RegistryError:
        return None


def uses_of(lock: Mapping[str, Any]) -> list[Use]:
    """The module uses a recorded lock names (``engine.lock`` format: ``steps`` -> step ->
    reference -> ``team/name@version``); entries it cannot read are no use of anything."""
    steps = lock.get("steps")
    if not isinstance(steps, dict):
        return []
    found = []
    for step, refs in steps.items():
        for ref, resolved in refs.items() if isinstance(refs, dict) else []:
            use = _use(str(step), str(ref), resolved)
            if use is not None:
                found.append(use)
    return found


def _module_ids(session: Session, names: set[str]) -> dict[str, int]:
    teams = {n.split("/", 1)[0] for n in names}
    stmt = select(Module.id, Module.name, Team.name).join(Team)
    stmt = stmt.where(col(Team.name).in_(teams))
    found = {f"{team}/{name}": id_ for id_, name, team in session.exec(stmt)}
    return {name: id_ for name, id_ in found.items() if name in names and id_ is not None}


def record(
    session: Session, team_id: int, pipeline: str, lock: Mapping[str, Any], run_id: str,
    at: datetime,
) -> None:  # fmt: skip
    """Upsert the dependents a new run shows (in the caller's transaction)."""
    uses = uses_of(lock)
    if not uses or len(pipeline) > SHORT_TEXT:
        return
    ids = _module_ids(session, {use.module for use in uses})
    # one row per key: ``a@^1`` and ``a@ ^1`` are one use, and one statement may not
    # upsert a row twice
    rows = list({
        (u.module, u.step, u.range, u.version): {
            "module_id": ids[u.module], "team_id": team_id, "pipeline": pipeline,
            "step": u.step, "range": u.range, "version": u.version, "last_run_id": run_id,
            "last_run_at": at,
        }
        for u in uses if u.module in ids
    }.values())  # fmt: skip
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(Dependent.__table__).values(rows)  # type: ignore[attr-defined]
    key = ["module_id", "team_id", "pipeline", "step", "range", "version"]
    later = {"last_run_id": stmt.excluded.last_run_id, "last_run_at": stmt.excluded.last_run_at}
    session.execute(stmt.on_conflict_do_update(index_elements=key, set_=later))


def list_dependents(
    session: Session, module: Module, range_text: str | None, reach: Reach
) -> list[DependentPublic]:
    """The module's dependents within ``reach`` whose version ``range_text`` allows (all
    without one), by team, pipeline, step and version."""
    stmt = (
        select(Dependent, Team.name, ModuleVersion.status, ModuleVersion.replaced_by)
        .join(Team, col(Team.id) == col(Dependent.team_id))
        .join(
            ModuleVersion,
            (col(ModuleVersion.module_id) == col(Dependent.module_id))
            & (col(ModuleVersion.version) == col(Dependent.version)),
            isouter=True,
        )
        .where(Dependent.module_id == module.id)
    )
    if not reach.every_team:
        stmt = stmt.where(col(Dependent.team_id) == reach.team_id)
    wanted = parse_range(range_text) if range_text else None
    found = [
        DependentPublic(
            team=team, pipeline=row.pipeline, step=row.step, range=row.range or None,
            version=row.version, status=VersionStatus(status or "active"),
            replaced_by=replaced_by, last_run_at=row.last_run_at,
        )
        for row, team, status, replaced_by in session.exec(stmt)
        if wanted is None or wanted.allows(parse_version(row.version))
    ]  # fmt: skip
    return sorted(found, key=lambda d: (d.team, d.pipeline, d.step, d.range or "", d.version))
