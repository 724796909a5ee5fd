"""Routes for content-addressed blobs: ``HEAD`` / ``GET`` / ``PUT /blobs/{sha256}``.

An upload streams into the store's temp file, counted against the size limit (413) and
hashed on the way (422 when the bytes do not match the name); only then does it become
visible, and only then are its ``Blob`` row and the team's upload reference written (the
row first, locked until the bytes are installed: see ``references.record_upload``): the
whole bytes are always received and checked, even for a blob stored before, because sending
them is what proves the team holds them. A blob larger than the upload limit (a step
output of gigabytes) is sent as chunks, each an upload of its own — so a broken connection
costs one chunk: the client asks which chunks are here (``HEAD``) and sends the rest — and
then composed (``POST /blobs/{sha256}/compose``): the registry streams the chunks, in order,
into the blob, verifies it like an upload and records it for the team; the chunks are left
to garbage collection (an ``upload`` reference is weak). The limit stays whole for module
archives, which ``archive.ArchiveLimits`` bound again when published.
Who may read a blob is decided by ``BlobReaderDep``
(``auth.blob_reach`` and ``references.readable``): one it may not read answers 404 on GET
and HEAD, like a blob that was never stored.
"""

from __future__ import annotations

from contextlib import ExitStack

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse
from sqlmodel import Session
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from modreg.registry import references
from modreg.registry.api.deps import (
    BlobReaderDep,
    RecorderDep,
    SessionDep,
    SettingsDep,
    StoreDep,
)
from modreg.registry.api.problems import GUARDED, problems
from modreg.registry.auth import Reach
from modreg.registry.blobs import BlobStore, BlobWriter, check_digest
from modreg.registry.errors import PayloadTooLargeError, UnknownBlobError
from modreg.registry.schemas import BlobCompose

router = APIRouter()


@router.head("/blobs/{sha256}", responses=problems(*GUARDED, 404))
def head_blob(sha256: BlobReaderDep, session: SessionDep, store: StoreDep) -> Response:
    """200 with the size when stored. Finding a blob is an upload's first step (the client
    skips the PUT): it refreshes the blob's last-seen time, so garbage collection spares it."""
    gone = references.hold(session, store, [sha256])
    session.commit()
    size = None if gone else store.size(sha256)
    if size is None:
        return Response(status_code=404)
    return Response(status_code=200, headers={"Content-Length": str(size)})


@router.get("/blobs/{sha256}", response_class=FileResponse, responses=problems(*GUARDED, 404))
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


@router.put(
    "/blobs/{sha256}",
    status_code=201,
    responses={200: {"description": "The team held the blob already"}, **problems(*GUARDED, 413)},
)
async def put_blob(
    sha256: str,
    request: Request,
    session: SessionDep,
    store: StoreDep,
    settings: SettingsDep,
    reach: RecorderDep,
) -> Response:
    """201 when the caller's team did not hold the blob yet (200 when it did): whether anyone
    else stored the same bytes before is not told."""
    check_digest(sha256)
    _declared_length(request, settings.max_upload_bytes)
    held = await run_in_threadpool(references.readable, session, sha256, reach)
    held = held and await run_in_threadpool(store.exists, sha256)
    with store.writer(sha256, settings.max_upload_bytes) as writer:
        async for chunk in request.stream():
            writer.write(chunk)
        await run_in_threadpool(references.record_upload, session, writer, reach)
    return Response(status_code=200 if held else 201, headers={"X-Modreg-Sha256": sha256})


COMPOSED_MAX_BYTES = 2**50  # a PiB: the chunk count times the upload limit bounds it anyway


def _join(
    session: Session, store: BlobStore, body: BlobCompose, reach: Reach, writer: BlobWriter
) -> None:
    """Stream every chunk, verified, into ``writer``; a chunk the team did not upload is 404."""
    for chunk in body.chunks:
        check_digest(chunk)
        if not references.readable(session, chunk, reach) or not store.exists(chunk):
            raise UnknownBlobError(f"chunk {chunk} is not uploaded: PUT /blobs/{chunk} first")
        with store.open_verified(chunk) as path, open(path, "rb") as part:
            while data := part.read(1 << 20):
                writer.write(data)


@router.post(
    "/blobs/{sha256}/compose",
    status_code=201,
    responses={200: {"description": "The team held the blob already"}, **problems(*GUARDED, 404)},
)
def compose_blob(
    sha256: str, body: BlobCompose, session: SessionDep, store: StoreDep, reach: RecorderDep
) -> Response:
    """Join uploaded chunks into the blob ``sha256`` (422 ``digest-mismatch`` if the whole
    does not hash to it); 201, or 200 when the team held the blob already."""
    check_digest(sha256)
    held = references.readable(session, sha256, reach) and store.exists(sha256)
    with store.writer(sha256, COMPOSED_MAX_BYTES) as writer:
        _join(session, store, body, reach, writer)
        references.record_upload(session, writer, reach)
    return Response(status_code=200 if held else 201, headers={"X-Modreg-Sha256": sha256})
