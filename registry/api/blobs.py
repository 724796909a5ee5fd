"""Routes for content-addressed blobs: ``HEAD`` / ``GET`` / ``PUT /blobs/{sha256}``.

An upload streams into the store's temp file, counted against the size limit (413) and
hashed on the way (422 when the bytes do not match the name); only then does it become
visible, and only then is its ``Blob`` row written.
"""

from __future__ import annotations

from contextlib import ExitStack

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse
from sqlmodel import Session
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from modreg.registry import auth, modules
from modreg.registry.api.deps import IdentityDep, RecorderDep, SessionDep, SettingsDep, StoreDep
from modreg.registry.auth import Identity
from modreg.registry.blobs import check_digest
from modreg.registry.errors import PayloadTooLargeError, PermissionDeniedError
from modreg.registry.settings import Settings

router = APIRouter()


def _may_read(session: Session, sha256: str, identity: Identity, settings: Settings) -> None:
    """Who reads a blob: a module archive as its module is read (open, or on a private
    registry a token of an owning team); any other blob (step outputs, logs) any token.
    """
    check_digest(sha256)
    teams = modules.archive_teams(session, sha256)
    if not teams or settings.private:
        auth.require_authenticated(identity)
    if teams and settings.private and not identity.admin and identity.team not in teams:
        raise PermissionDeniedError(
            f"this registry is private: blob {sha256[:12]} is a module archive of team "
            f"{sorted(teams)[0]!r}"
        )


@router.head("/blobs/{sha256}")
def head_blob(
    sha256: str, session: SessionDep, store: StoreDep, identity: IdentityDep, settings: SettingsDep
) -> Response:
    _may_read(session, sha256, identity, settings)
    size = store.size(sha256)
    if size is None:
        return Response(status_code=404)
    return Response(status_code=200, headers={"Content-Length": str(size)})


@router.get("/blobs/{sha256}", response_class=FileResponse)
def get_blob(
    sha256: str, session: SessionDep, store: StoreDep, identity: IdentityDep, settings: SettingsDep
) -> FileResponse:
    _may_read(session, sha256, identity, settings)
    stack = ExitStack()
    path = stack.enter_context(store.open_verified(sha256))
    return FileResponse(
        path,
        media_type="application/octet-stream",
        headers={"X-Modreg-Sha256": sha256},
        background=BackgroundTask(stack.close),
    )


def _declared_length(request: Request, limit: int) -> None:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(
            f"upload of {declared} bytes is over the limit of {limit} bytes (--max-upload)"
        )


@router.put("/blobs/{sha256}")
async def put_blob(
    sha256: str,
    request: Request,
    session: SessionDep,
    store: StoreDep,
    settings: SettingsDep,
    _: RecorderDep,
) -> Response:
    check_digest(sha256)
    _declared_length(request, settings.max_upload_bytes)
    existed = await run_in_threadpool(store.exists, sha256)
    with store.writer(sha256, settings.max_upload_bytes) as writer:
        async for chunk in request.stream():
            writer.write(chunk)
        size = await run_in_threadpool(writer.commit)
    await run_in_threadpool(modules.record_blob, session, sha256, size)
    return Response(status_code=200 if existed else 201, headers={"X-Modreg-Sha256": sha256})
