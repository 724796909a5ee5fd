"""Routes for modules and their versions: search, show, publish, status, default, resolve."""

from __future__ import annotations

from contextlib import ExitStack
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel
from starlette.background import BackgroundTask

from modreg.registry import compatibility, dependents, modules
from modreg.registry.api.deps import (
    IdentityDep,
    ModuleReachDep,
    ModuleReaderDep,
    PublisherDep,
    SessionDep,
    StoreDep,
)
from modreg.registry.api.problems import GUARDED, problems
from modreg.registry.errors import ClientTooOldError, UnknownBlobError
from modreg.registry.schemas import (
    OFFSET_MAX,
    DefaultVersion,
    DependentPublic,
    ModulePublic,
    PublishResult,
    Resolution,
    ResolveRequest,
    ResolveResponse,
    StatusChange,
    VersionCreate,
    VersionPublic,
    VersionStatus,
)

router = APIRouter()
VERSION = "/modules/{team}/{name}/versions/{version}"


def _json(model: BaseModel) -> Response:
    """Serialise once, in pydantic's Rust core (the hot read paths skip FastAPI's re-dump)."""
    return Response(model.model_dump_json(), media_type="application/json")


@router.get("/modules", responses=problems(*GUARDED))
def search_modules(
    session: SessionDep,
    reach: ModuleReachDep,
    q: str | None = None,
    team: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=OFFSET_MAX)] = 0,
) -> list[ModulePublic]:
    return modules.search_modules(session, q, team, limit, offset, reach)


@router.get("/modules/{team}/{name}", responses=problems(*GUARDED, 404))
def show_module(team: str, name: str, session: SessionDep, _: ModuleReaderDep) -> ModulePublic:
    return modules.show_module(session, team, name)


@router.get("/modules/{team}/{name}/versions", responses=problems(*GUARDED, 404))
def list_versions(
    team: str, name: str, session: SessionDep, _: ModuleReaderDep
) -> list[VersionPublic]:
    return modules.list_versions(session, team, name)


@router.get(VERSION, response_model=VersionPublic, responses=problems(*GUARDED, 404))
def get_version(
    team: str, name: str, version: str, session: SessionDep, _: ModuleReaderDep
) -> Response:
    return _json(modules.get_version(session, team, name, version))


@router.post(
    "/modules/{team}/{name}/versions",
    status_code=201,
    responses={
        200: {"model": PublishResult, "description": "The identical publish, done before"},
        **problems(*GUARDED, 404, 409),
    },
)
def publish(
    team: str,
    name: str,
    body: VersionCreate,
    response: Response,
    session: SessionDep,
    store: StoreDep,
    identity: IdentityDep,
    reach: PublisherDep,
) -> PublishResult:
    result = modules.publish_version(session, store, team, name, body, identity, reach)
    if not result.created:
        response.status_code = 200
    return result


def _status_route(status: VersionStatus, path: str) -> None:
    def change(
        team: str,
        name: str,
        version: str,
        session: SessionDep,
        identity: IdentityDep,
        _: PublisherDep,
        body: StatusChange | None = None,
    ) -> VersionPublic:
        change = body or StatusChange()
        return modules.set_status(session, team, name, version, status, change, identity)

    router.post(f"{VERSION}/{path}", name=path, responses=problems(*GUARDED, 404))(change)


_status_route(VersionStatus.deprecated, "deprecate")
_status_route(VersionStatus.yanked, "yank")
_status_route(VersionStatus.active, "unyank")


@router.get("/modules/{team}/{name}/dependents", responses=problems(*GUARDED, 404))
def list_dependents(
    team: str,
    name: str,
    session: SessionDep,
    _: ModuleReaderDep,
    reach: ModuleReachDep,
    range_text: Annotated[str | None, Query(alias="range", max_length=200)] = None,
) -> list[DependentPublic]:
    """Which teams' pipelines use which versions (names and dates, never their runs), those
    whose version ``range`` allows; on a private registry only teams the caller may read."""
    module = modules.get_module(session, team, name)
    return dependents.list_dependents(session, module, range_text, reach)


@router.put("/modules/{team}/{name}/default", responses=problems(*GUARDED, 404))
def set_default(
    team: str,
    name: str,
    body: DefaultVersion,
    session: SessionDep,
    identity: IdentityDep,
    _: PublisherDep,
) -> ModulePublic:
    return modules.set_default(session, team, name, body.version, identity)


@router.get(f"{VERSION}/archive", response_class=FileResponse, responses=problems(*GUARDED, 404))
def download_archive(
    team: str, name: str, version: str, session: SessionDep, store: StoreDep, _: ModuleReaderDep
) -> FileResponse:
    sha256 = modules.archive_digest(session, team, name, version)
    stack = ExitStack()
    try:
        path = stack.enter_context(store.open_verified(sha256))
    except UnknownBlobError as exc:
        raise modules.damaged_archive(session, team, name, version, exc) from exc
    return FileResponse(
        path,
        media_type="application/gzip",
        headers={"X-Modreg-Sha256": sha256},
        filename=f"{name}-{version}.tar.gz",
        background=BackgroundTask(stack.close),
    )


@router.post("/resolve", response_model=ResolveResponse, responses=problems(*GUARDED))
def resolve(
    body: ResolveRequest, session: SessionDep, reach: ModuleReachDep, request: Request
) -> Response:
    results = modules.resolve(session, body.refs, reach)
    level = compatibility.client_level(request.headers)  # well-formed: the middleware checked
    if level is not None and level < compatibility.ENVIRONMENT_LEVEL:
        results = [_without_environment(result, level) for result in results]
    return _json(ResolveResponse(results=results))


def _without_environment(result: Resolution, level: int) -> Resolution:
    """``result`` for a client that would ignore a version's environment and run the module
    in its own interpreter: an error when the version has one."""
    version = result.version
    if version is None or version.environment is None:
        return result
    error = ClientTooOldError(
        f"{version.module}@{version.version} runs in its own environment, which clients of "
        f"API level {level} ignore: {compatibility.UPGRADE_CLIENT}"
    )
    return result.model_copy(update={"version": None, "error": error.to_problem()})
