"""Routes for content-addressed blobs: ``HEAD`` / ``GET`` / ``PUT /blobs/{sha256}``.

An upload streams into the store's temp file, counted against the size limit (413) and
hashed on the way (422 when the bytes do not match the name); only then does it become
visible, and only then is its ``Blob`` row written. Who may read which blob is
``BlobReaderDep``'s to decide (``auth.blob_reach``).
"""

from __future__ import annotations

from contextlib import ExitStack

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from modreg.registry import modules
from modreg.registry.api.deps import (
    BlobReaderDep,
    RecorderDep,
    SessionDep,
    SettingsDep,
    StoreDep,
)
from modreg.registry.blobs import check_digest
from modreg.registry.errors import PayloadTooLargeError

router = APIRouter()


@router.head("/blobs/{sha256}")
def head_blob(sha256: BlobReaderDep, store: StoreDep) -> Response:
    size = store.size(sha256)
    if size is None:
        return Response(status_code=404)
    return Response(status_code=200, headers={"Content-Length": str(size)})


@router.get("/blobs/{sha256}", response_class=FileResponse)
def get_blob(sha256: BlobReaderDep, store: StoreDep) -> FileResponse:
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
