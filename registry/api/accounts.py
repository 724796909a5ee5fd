"""Routes for the server itself and its accounts: health, whoami, teams, tokens."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from fastapi import APIRouter, Response
from sqlalchemy import text

from modreg.registry import accounts, auth
from modreg.registry.api.deps import AdminDep, IdentityDep, ListerDep, SessionDep, SettingsDep
from modreg.registry.db import backend_name
from modreg.registry.schemas import (
    Health,
    Identity,
    TeamCreate,
    TeamPublic,
    TokenCreate,
    TokenCreated,
    TokenPublic,
)

router = APIRouter()


def _modreg_version() -> str:
    try:
        return version("modreg")
    except PackageNotFoundError:
        return "unknown"


@router.get("/health")
def health(session: SessionDep) -> Health:
    session.execute(text("SELECT 1"))
    return Health(status="ok", version=_modreg_version(), database=backend_name(session.get_bind()))


@router.get("/whoami")
def whoami(identity: IdentityDep) -> Identity:
    return identity.public()


@router.post("/teams", status_code=201)
def create_team(body: TeamCreate, session: SessionDep, identity: AdminDep) -> TeamPublic:
    return accounts.create_team(session, body.name, identity)


@router.get("/teams")
def list_teams(session: SessionDep, identity: ListerDep, settings: SettingsDep) -> list[TeamPublic]:
    return accounts.list_teams(session, identity, settings.private)


@router.post("/tokens", status_code=201)
def create_token(body: TokenCreate, session: SessionDep, identity: IdentityDep) -> TokenCreated:
    auth.require_publish(identity, body.team)
    return accounts.create_token(session, body, identity)


@router.get("/tokens")
def list_tokens(
    session: SessionDep, identity: IdentityDep, team: str | None = None
) -> list[TokenPublic]:
    if team is None and identity.admin:
        return accounts.list_tokens(session, None)
    auth.require_authenticated(identity)
    team = team or identity.team or ""
    auth.require_publish(identity, team)
    return accounts.list_tokens(session, team)


@router.delete("/tokens/{token_id}", status_code=204)
def revoke_token(token_id: int, session: SessionDep, identity: IdentityDep) -> Response:
    auth.require_authenticated(identity)
    team = accounts.get_token_team(session, token_id)
    if team is None:
        auth.require_admin(identity)
    else:
        auth.require_publish(identity, team)
    accounts.revoke_token(session, token_id, identity)
    return Response(status_code=204)
