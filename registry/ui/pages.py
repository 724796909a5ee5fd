"""The pages: search, a module, a version, runs, a run as a graph, a sweep's comparison.

Each page applies the ``auth`` rule of the API route that serves the same data, then calls
the same domain function, and draws the answer: ``/`` is ``GET /modules`` (and the recent
publishes and runs), a module page ``GET /modules/{team}/{name}[/versions]``, the run pages
``GET /runs[/{id}]`` and ``GET /sweeps/{id}``, a step's log the blob it names. Nothing here
writes; changes are made with the CLI and the API.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import PlainTextResponse
from sqlmodel import Session

from modreg.registry import accounts, auth, dependents, modules, references, runs
from modreg.registry.api.deps import SessionDep, StoreDep
from modreg.registry.archive_manifest import read_archive_files
from modreg.registry.auth import Identity, Reach
from modreg.registry.blobs import BlobStore
from modreg.registry.errors import (
    InvalidInputError,
    RegistryError,
    UnknownBlobError,
    UnknownVersionError,
)
from modreg.registry.schemas import RunPublic, RunStatus, VersionPublic
from modreg.registry.settings import Settings
from modreg.registry.ui.changes import changes_since
from modreg.registry.ui.rendering import PageIdentityDep, PageRoute, render, settings_of
from modreg.registry.ui.views import commit_url, run_graph, sweep_table, tail, uses_line

router = APIRouter(route_class=PageRoute)

RUNS_PAGE = 50  # runs per page of /runs
MODULES_PAGE = 60  # modules per page of / (a multiple of the 2, 3 and 4 cards a row)
RECENT = 10  # publishes and runs on the front page
LOG_TAIL_LINES = 40
README_NAMES = ("README.md", "README.rst", "README.txt", "README")
README_MAX_BYTES = 256 * 1024
SWEEP_RUNS_MAX = 10_000  # a sweep's runs, all on one page (SweepCreate's own limit)


def _timeout(settings: Settings) -> timedelta:
    return timedelta(seconds=settings.run_heartbeat_timeout)


def _optional(value: str | None) -> str | None:
    """A filter field left empty in a form means no filter."""
    return value.strip() or None if value else None


# --- the front page ----------------------------------------------------------------------


def _recent_runs(session: Session, identity: Identity, settings: Settings) -> list[RunPublic]:
    """The caller's team's latest runs; none for the anonymous, who may read no runs."""
    if not identity.authenticated:
        return []
    reach = auth.read_runs(identity)
    return runs.list_runs(session, reach, None, None, RECENT, _timeout(settings))


@router.get("/")
def index(
    request: Request,
    session: SessionDep,
    identity: PageIdentityDep,
    q: str | None = None,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> Response:
    settings = settings_of(request)
    reach = auth.module_reach(identity, settings.private)
    text = _optional(q)
    offset = (page - 1) * MODULES_PAGE
    found = modules.search_modules(session, text, None, MODULES_PAGE + 1, offset, reach)
    first = page == 1 and not text  # the recent publishes and runs: on the front page only
    context = {
        "q": text or "",
        "modules": found[:MODULES_PAGE],
        "page": page,
        "more": len(found) > MODULES_PAGE,
        "recent_versions": modules.recent_versions(session, reach, RECENT) if first else [],
        "recent_runs": _recent_runs(session, identity, settings) if first else [],
    }
    return render(request, "index.html", context, identity)


# --- modules -----------------------------------------------------------------------------


@functools.lru_cache(maxsize=512)
def _readme(store: BlobStore, sha256: str) -> str | None:
    """The README at the root of the archive ``sha256``; cached by digest, since an
    archive never changes."""
    try:
        with store.open_verified(sha256) as path:
            found = read_archive_files(
                path, README_NAMES, f"archive {sha256[:12]}", README_MAX_BYTES
            )
    except RegistryError:  # damaged, or a README too big to show: the page goes on without
        return None
    data = next((found[name] for name in README_NAMES if found[name] is not None), None)
    return data.decode("utf-8", "replace") if data is not None else None


def _previous(versions: list[VersionPublic], version: VersionPublic) -> VersionPublic | None:
    """The version before ``version`` in semver order (``versions`` is in that order)."""
    index = next(i for i, v in enumerate(versions) if v.version == version.version)
    return versions[index - 1] if index > 0 else None


def _selected(
    versions: list[VersionPublic], default: str | None, latest: str | None
) -> tuple[VersionPublic, str]:
    """The version a module page shows: the default, else the highest stable, else the
    highest (``versions`` is in semver order, and not empty); with the reason the page gives."""
    by_number = {v.version: v for v in versions}
    if default is not None and default in by_number:
        return by_number[default], "the module's default version"
    if latest is not None and latest in by_number:
        return by_number[latest], "the highest stable version (no default is set)"
    return versions[-1], "the highest version (none is stable)"


def _module_context(
    session: Session, store: BlobStore, team: str, name: str, version: str | None, reach: Reach
) -> dict[str, Any]:
    module = modules.show_module(session, team, name)
    versions = modules.list_versions(session, team, name)
    if not versions:  # a module row is only written with its first version
        raise UnknownVersionError(f"{team}/{name} has no published version")
    if version is None:
        shown, why = _selected(versions, module.default_version, module.latest_version)
    else:
        shown, why = modules.get_version(session, team, name, version), None
    labels = accounts.token_labels(session, [v.published_by for v in versions if v.published_by])
    return {
        "module": module,
        "versions": list(reversed(versions)),  # newest first
        "version": shown,
        "why": why,
        "changes": changes_since(_previous(versions, shown), shown) if version else None,
        "publishers": labels,
        "commit_url": commit_url(shown.remote, shown.commit),
        "commit_urls": {v.version: commit_url(v.remote, v.commit) for v in versions},
        "uses": uses_line(shown),
        "readme": _readme(store, shown.sha256),
        # "Used by": the API's dependents, with the API's reach (GET …/dependents)
        "dependents": dependents.list_dependents(
            session, modules.get_module(session, team, name), None, reach
        ),
    }


def _module_page(
    request: Request,
    session: Session,
    store: BlobStore,
    identity: Identity,
    path: tuple[str, str, str | None],
) -> Response:
    team, name, version = path
    private = settings_of(request).private
    auth.read_modules(identity, team, private)
    reach = auth.module_reach(identity, private)
    context = _module_context(session, store, team, name, version, reach)
    return render(request, "module.html", context, identity)


@router.get("/modules/{team}/{name}")
def module_page(
    request: Request,
    team: str,
    name: str,
    session: SessionDep,
    store: StoreDep,
    identity: PageIdentityDep,
) -> Response:
    return _module_page(request, session, store, identity, (team, name, None))


@router.get("/modules/{team}/{name}/{version}")
def version_page(
    request: Request,
    team: str,
    name: str,
    version: str,
    session: SessionDep,
    store: StoreDep,
    identity: PageIdentityDep,
) -> Response:
    return _module_page(request, session, store, identity, (team, name, version))


# --- runs --------------------------------------------------------------------------------


def _status(text: str | None) -> RunStatus | None:
    if not text:
        return None
    try:
        return RunStatus(text)
    except ValueError:
        known = ", ".join(status.value for status in RunStatus)
        raise InvalidInputError(f"status {text!r} is not one of {known}") from None


@router.get("/runs")
def runs_page(
    request: Request,
    session: SessionDep,
    identity: PageIdentityDep,
    pipeline: str | None = None,
    status: str | None = None,
    team: str | None = None,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> Response:
    reach = auth.read_runs(identity)
    filters = {
        "pipeline": _optional(pipeline),
        "status": _optional(status),
        "team": _optional(team),
    }
    found = runs.list_runs(
        session,
        reach,
        None,
        filters["pipeline"],
        RUNS_PAGE + 1,
        _timeout(settings_of(request)),
        status=_status(filters["status"]),
        team=filters["team"],
        offset=(page - 1) * RUNS_PAGE,
    )
    context = {
        "runs": found[:RUNS_PAGE],
        "filters": filters,
        "statuses": [s.value for s in RunStatus],
        "page": page,
        "more": len(found) > RUNS_PAGE,
    }
    return render(request, "runs.html", context, identity)


@dataclass(frozen=True)
class StepLog:
    text: str
    cut: bool


def _read_log(store: BlobStore, digest: str) -> str:
    with store.open_verified(digest) as path:
        return path.read_text("utf-8", "replace")


def _log_tails(
    session: Session, store: BlobStore, identity: Identity, run: RunPublic, private: bool
) -> dict[str, StepLog]:
    """The tail of each step's log the caller may read (the blob rule of the API)."""
    digests = {step: r.log_digest for step, r in run.steps.items() if r.log_digest}
    readable = references.readable_among(
        session, digests.values(), auth.blob_reach(identity, private)
    )
    tails = {}
    for step, digest in digests.items():
        if digest in readable:
            try:
                tails[step] = StepLog(*tail(_read_log(store, digest), LOG_TAIL_LINES))
            except UnknownBlobError:
                tails[step] = StepLog("(the log is no longer stored)", False)
    return tails


def _step_inputs(run: RunPublic) -> dict[str, list[tuple[str, str, str | None]]]:
    """Per step: each input's name, where it comes from, and its digest when it is another
    step's output (a path's digest is in the fingerprint, not in the records)."""
    spec = run.spec.get("steps") or {}
    found: dict[str, list[tuple[str, str, str | None]]] = {}
    for step, body in spec.items():
        rows = []
        for name, source in (body.get("inputs") or {}).items():
            upstream, _, output = str(source).partition(".outputs.")
            record = run.steps.get(upstream)
            ref = record.outputs.get(output) if record and output else None
            rows.append((name, str(source), ref.digest if ref else None))
        found[step] = rows
    return found


@router.get("/runs/{run_id}")
def run_page(
    request: Request,
    run_id: str,
    session: SessionDep,
    store: StoreDep,
    identity: PageIdentityDep,
) -> Response:
    settings = settings_of(request)
    run = runs.get_run(session, run_id, auth.read_runs(identity), _timeout(settings))
    context = {
        "run": run,
        "graph": run_graph(run).as_json(),
        "inputs": _step_inputs(run),
        "logs": _log_tails(session, store, identity, run, settings.private),
    }
    return render(request, "run.html", context, identity)


@router.get("/runs/{run_id}/steps/{step}/log")
def step_log(
    request: Request,
    run_id: str,
    step: str,
    session: SessionDep,
    store: StoreDep,
    identity: PageIdentityDep,
) -> Response:
    """A step's whole log, as text: what ``modreg runs logs RUN STEP`` prints."""
    run = runs.get_run(session, run_id, auth.read_runs(identity))
    record = run.steps.get(step)
    if record is None or record.log_digest is None:
        raise UnknownBlobError(f"run {run_id} has no log of a step {step!r}")
    reach = auth.blob_reach(identity, settings_of(request).private)
    if not references.readable(session, record.log_digest, reach):
        raise auth.hidden_blob(reach, record.log_digest)
    return PlainTextResponse(_read_log(store, record.log_digest))


@router.get("/sweeps/{sweep_id}")
def sweep_page(
    request: Request,
    sweep_id: str,
    session: SessionDep,
    identity: PageIdentityDep,
    sort: str | None = None,
    order: str = "desc",
    metric: str | None = None,
) -> Response:
    reach = auth.read_runs(identity)
    sweep = runs.get_sweep(session, sweep_id, reach)
    found = runs.list_runs(
        session, reach, sweep_id, None, SWEEP_RUNS_MAX, _timeout(settings_of(request))
    )
    table = sweep_table(list(reversed(found)), sort, order != "asc")  # in the sweep's order
    chosen = (
        metric
        if metric in table.metric_columns
        else (
            table.sort
            if table.sort in table.metric_columns
            else next(iter(table.metric_columns), "")
        )
    )
    context = {"sweep": sweep, "table": table, "metric": chosen}
    return render(request, "sweep.html", context, identity)
