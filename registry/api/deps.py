"""FastAPI dependencies: the session, the blob store, the caller, and who may do what.

Routes name what they need (``SessionDep``, ``PublisherDep``, …); the permission rules live
in ``modreg.registry.auth`` and are applied here once, not repeated in each route.
The dependencies are ``async`` because they do no blocking work (a ``Session`` connects
lazily; a token lookup goes to the thread pool): FastAPI runs sync dependencies in the
thread pool, one hop each, which cost more than the work here on a busy server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from modreg.registry import auth
from modreg.registry.auth import Identity
from modreg.registry.blobs import BlobStore
from modreg.registry.errors import AuthenticationError
from modreg.registry.settings import Settings


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


async def get_store(request: Request) -> BlobStore:
    return request.app.state.blobs  # type: ignore[no-any-return]


async def get_session(request: Request) -> AsyncIterator[Session]:
    session = Session(request.app.state.engine, expire_on_commit=False)
    try:
        yield session
    finally:
        session.close()


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[BlobStore, Depends(get_store)]
SessionDep = Annotated[Session, Depends(get_session)]


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise AuthenticationError("malformed Authorization header: expected 'Bearer <token>'")
    return secret.strip()


async def get_identity(request: Request, session: SessionDep) -> Identity:
    secret = _bearer(request)
    if secret is None:
        return auth.ANONYMOUS
    return await run_in_threadpool(auth.identify, session, secret)


IdentityDep = Annotated[Identity, Depends(get_identity)]


async def admin_identity(identity: IdentityDep) -> Identity:
    auth.require_admin(identity)
    return identity


async def publisher_identity(team: str, identity: IdentityDep) -> Identity:
    """Admin, or a publish token of the team named in the path."""
    auth.require_publish(identity, team)
    return identity


async def reader_identity(team: str, identity: IdentityDep, settings: SettingsDep) -> Identity:
    """Anyone, or on a private registry a token of the team named in the path."""
    auth.require_read(identity, team, settings.private)
    return identity


async def team_identity(identity: IdentityDep) -> Identity:
    """A token of some team (any scope): reading its runs and cache."""
    auth.require_team_token(identity)
    return identity


async def recorder_identity(identity: IdentityDep) -> Identity:
    """A run or publish token of some team: recording its runs, cache entries and blobs."""
    auth.require_run(identity)
    return identity


async def listing_identity(identity: IdentityDep, settings: SettingsDep) -> Identity:
    """Anyone may list, except on a private registry: then a token is needed."""
    if settings.private:
        auth.require_authenticated(identity)
    return identity


AdminDep = Annotated[Identity, Depends(admin_identity)]
PublisherDep = Annotated[Identity, Depends(publisher_identity)]
ReaderDep = Annotated[Identity, Depends(reader_identity)]
TeamDep = Annotated[Identity, Depends(team_identity)]
RecorderDep = Annotated[Identity, Depends(recorder_identity)]
ListerDep = Annotated[Identity, Depends(listing_identity)]
