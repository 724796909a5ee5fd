"""Routes for the server itself and its accounts: health, whoami, teams, tokens."""

from __future__ import annotations

from fastapi import APIRouter, Response
from sqlalchemy import text

from modreg.registry import accounts
from modreg.registry.api.deps import (
    AdminDep,
    IdentityDep,
    ModuleReachDep,
    SessionDep,
    SettingsDep,
    StoreDep,
    TokenGrantDep,
    TokenListDep,
    TokenRevokeDep,
)
from modreg.registry.api.problems import GUARDED, problems
from modreg.registry.compatibility import VERSION
from modreg.registry.db import backend_name
from modreg.registry.schemas import (
    Health,
    Identity,
    TeamCreate,
    TeamPublic,
    TokenCreated,
    TokenPublic,
)

router = APIRouter()


@router.get("/health", responses=problems(400))
def health(session: SessionDep, store: StoreDep, settings: SettingsDep) -> Health:
    session.execute(text("SELECT 1"))
    database = backend_name(session.get_bind())
    return Health(
        status="ok",
        version=VERSION,
        database=database,
        corrupt_blobs=store.corrupt_found,
        max_upload_bytes=settings.max_upload_bytes,
    )


@router.get("/whoami", responses=problems(400, 401))
def whoami(identity: IdentityDep) -> Identity:
    return identity.public()


@router.post("/teams", status_code=201, responses=problems(*GUARDED, 409))
def create_team(
    body: TeamCreate, session: SessionDep, identity: IdentityDep, _: AdminDep
) -> TeamPublic:
    return accounts.create_team(session, body.name, identity)


@router.get("/teams", responses=problems(400, 401, 403))
def list_teams(session: SessionDep, reach: ModuleReachDep) -> list[TeamPublic]:
    return accounts.list_teams(session, reach)


@router.post("/tokens", status_code=201, responses=problems(*GUARDED, 404))
def create_token(body: TokenGrantDep, session: SessionDep, identity: IdentityDep) -> TokenCreated:
    return accounts.create_token(session, body, identity)


@router.get("/tokens", responses=problems(*GUARDED, 404))
def list_tokens(session: SessionDep, reach: TokenListDep) -> list[TokenPublic]:
    return accounts.list_tokens(session, reach)


@router.delete("/tokens/{token_id}", status_code=204, responses=problems(*GUARDED, 404))
def revoke_token(token_id: TokenRevokeDep, session: SessionDep, identity: IdentityDep) -> Response:
    accounts.revoke_token(session, token_id, identity)
    return Response(status_code=204)
