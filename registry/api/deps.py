"""FastAPI dependencies: the session, the blob store, the caller, and one per permission rule.

A route names what it needs (``SessionDep``, ``PublisherDep``, …). Every permission rule is a
function of ``modreg.registry.auth``; each dependency here applies one of them to the request
(the team in its path, the body, the settings) and hands the route what that rule decided,
usually a ``Reach``: whose things the request may touch. Routes and domain functions check
nothing themselves; ``tests/registry/test_permissions.py`` walks every route to hold that.

The dependencies are ``async`` because they do no blocking work of their own (a ``Session``
connects lazily; a database lookup goes to the thread pool): FastAPI runs sync dependencies
in the thread pool, one hop each, which cost more than the work here on a busy server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Path, Request
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from modreg.registry import accounts, auth, references
from modreg.registry.auth import Identity, Reach
from modreg.registry.blobs import BlobStore, check_digest
from modreg.registry.errors import AuthenticationError, InvalidInputError
from modreg.registry.schemas import ROW_ID_MAX, CacheEviction, TokenCreate
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


async def refusing_nul(request: Request) -> None:
    """Every route's guard: a NUL in a path or query value is a 422 (``schemas.refuse_nul``
    says why; request bodies are checked by their ``Wire`` models)."""
    values = [*request.path_params.items(), *request.query_params.multi_items()]
    for name, value in values:
        if "\x00" in name or "\x00" in str(value):
            raise InvalidInputError(f"{name!r} in the URL: text may not contain NUL (\\u0000)")


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


# --- one dependency per rule of auth.py ----------------------------------------------------


async def administering(identity: IdentityDep) -> Reach:
    return auth.administer(identity)


async def collecting_garbage(identity: IdentityDep) -> Reach:
    return auth.collect_garbage(identity)


async def publishing(team: str, identity: IdentityDep, settings: SettingsDep) -> Reach:
    """The team named in the path."""
    return auth.publish(identity, team, settings.private)


async def reading_modules(team: str, identity: IdentityDep, settings: SettingsDep) -> None:
    """The team named in the path."""
    auth.read_modules(identity, team, settings.private)


async def reaching_modules(identity: IdentityDep, settings: SettingsDep) -> Reach:
    return auth.module_reach(identity, settings.private)


async def granting_token(body: TokenCreate, identity: IdentityDep) -> TokenCreate:
    """The team named in the body; the route gets the body from here, checked."""
    auth.manage_tokens(identity, body.team)
    return body


async def listing_tokens(identity: IdentityDep, team: str | None = None) -> Reach:
    """``?team=T``; without it every team's for the admin, the caller's own for a token."""
    return auth.manage_tokens(identity, team if team or identity.admin else identity.team)


async def revoking_token(
    token_id: Annotated[int, Path(ge=1, le=ROW_ID_MAX)], identity: IdentityDep, session: SessionDep
) -> int:
    """The team of the token in the path (None for an admin token); looked up only for a
    caller with a token, so the anonymous learn nothing about token ids."""
    team = None
    if identity.authenticated:
        team = await run_in_threadpool(accounts.get_token_team, session, token_id)
    auth.manage_tokens(identity, team)
    return token_id


async def recording(identity: IdentityDep, settings: SettingsDep) -> Reach:
    return auth.record(identity, settings.private)


async def reading_cache(identity: IdentityDep) -> Reach:
    return auth.read_cache(identity)


async def evicting_cache(body: CacheEviction, identity: IdentityDep) -> tuple[Reach, CacheEviction]:
    """The team named in the body (else the token's); the route gets the body from here."""
    return auth.evict_cache(identity, body.team), body


async def reading_runs(identity: IdentityDep) -> Reach:
    return auth.read_runs(identity)


async def reading_blob(
    sha256: str, identity: IdentityDep, settings: SettingsDep, session: SessionDep
) -> str:
    """The blob named in the path, if the caller may read it (else it answers as absent)."""
    reach = auth.blob_reach(identity, settings.private)
    check_digest(sha256)
    if not await run_in_threadpool(references.readable, session, sha256, reach):
        raise auth.hidden_blob(reach, sha256)
    return sha256


AdminDep = Annotated[Reach, Depends(administering)]
CollectorDep = Annotated[Reach, Depends(collecting_garbage)]
PublisherDep = Annotated[Reach, Depends(publishing)]
ModuleReaderDep = Annotated[None, Depends(reading_modules)]
ModuleReachDep = Annotated[Reach, Depends(reaching_modules)]
TokenGrantDep = Annotated[TokenCreate, Depends(granting_token)]
TokenListDep = Annotated[Reach, Depends(listing_tokens)]
TokenRevokeDep = Annotated[int, Depends(revoking_token)]
RecorderDep = Annotated[Reach, Depends(recording)]
CacheReaderDep = Annotated[Reach, Depends(reading_cache)]
RunReaderDep = Annotated[Reach, Depends(reading_runs)]
CacheEvictorDep = Annotated[tuple[Reach, CacheEviction], Depends(evicting_cache)]
BlobReaderDep = Annotated[str, Depends(reading_blob)]
