"""Domain operations on teams and tokens (no HTTP here).

Token secrets exist only in the answer to their creation; the database keeps their sha256.
Who may do these is decided before they are called (``auth``'s rules); listings take the
``Reach`` a rule gave, and ``who`` is only named in the audit log.
The first admin token is made by ``create_admin_token`` when a registry starts for the
first time. Every change is written to the audit log in the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from modreg.registry.auth import Identity, Reach, hash_secret, new_secret
from modreg.registry.db import audit, get_team
from modreg.registry.errors import TeamExistsError, UnknownTokenError
from modreg.registry.models import Team, Token, utcnow
from modreg.registry.names import check_team_name
from modreg.registry.schemas import Scope, TeamPublic, TokenCreate, TokenCreated, TokenPublic

# --- teams -----------------------------------------------------------------------------


def _team_public(team: Team) -> TeamPublic:
    return TeamPublic(name=team.name, created_at=team.created_at)


def create_team(session: Session, name: str, who: Identity) -> TeamPublic:
    check_team_name(name)
    team = Team(name=name)
    session.add(team)
    audit(session, who, "team.create", f"team {name}")
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise TeamExistsError(f"team {name!r} already exists") from exc
    session.refresh(team)
    return _team_public(team)


def list_teams(session: Session, reach: Reach) -> list[TeamPublic]:
    """The teams within reach, by name."""
    stmt = select(Team).order_by(col(Team.name))
    if not reach.every_team:
        stmt = stmt.where(Team.id == reach.team_id)
    return [_team_public(team) for team in session.exec(stmt)]


# --- tokens ----------------------------------------------------------------------------


def _token_public(token: Token, team: str | None) -> dict[str, Any]:
    return {
        "id": token.id,
        "team": team,
        "scope": Scope(token.scope) if token.scope else None,
        "admin": token.admin,
        "description": token.description,
        "created_at": token.created_at,
        "expires_at": token.expires_at,
        "revoked_at": token.revoked_at,
    }


def create_token(session: Session, body: TokenCreate, who: Identity) -> TokenCreated:
    team = get_team(session, body.team)
    secret = new_secret()
    expires = utcnow() + timedelta(days=body.expires_in_days) if body.expires_in_days else None
    token = Token(
        token_hash=hash_secret(secret),
        team_id=team.id,
        scope=body.scope.value,
        description=body.description,
        expires_at=expires,
    )
    session.add(token)
    session.flush()
    audit(session, who, "token.create", f"token#{token.id}", team=team.name, scope=token.scope)
    session.commit()
    session.refresh(token)
    return TokenCreated(token=secret, **_token_public(token, team.name))


def create_admin_token(session: Session, description: str = "first start") -> str | None:
    """A new admin token's secret, unless an admin token already exists."""
    if session.exec(select(Token.id).where(col(Token.admin).is_(True))).first() is not None:
        return None
    secret = new_secret()
    session.add(Token(token_hash=hash_secret(secret), admin=True, description=description))
    session.commit()
    return secret


def list_tokens(session: Session, reach: Reach) -> list[TokenPublic]:
    """The tokens of the team within reach (of every team, and the admin's, for every team)."""
    stmt = select(Token, Team.name).join(Team, isouter=True).order_by(col(Token.id))
    if not reach.every_team:
        assert reach.team is not None
        stmt = stmt.where(Token.team_id == get_team(session, reach.team).id)
    return [TokenPublic(**_token_public(token, name)) for token, name in session.exec(stmt)]


def get_token_team(session: Session, token_id: int) -> str | None:
    """The team a token belongs to (None for admin tokens)."""
    row = session.exec(
        select(Token, Team.name).join(Team, isouter=True).where(Token.id == token_id)
    ).first()
    if row is None:
        raise UnknownTokenError(f"no token #{token_id}")
    return row[1]


def token_labels(session: Session, token_ids: Iterable[int]) -> dict[int, str]:
    """How pages name the publisher of a version: its token's team and description
    ("vision: CI on main"), or "admin"; tokens are the only identities a registry has."""
    stmt = select(Token, Team.name).join(Team, isouter=True)
    stmt = stmt.where(col(Token.id).in_(sorted(set(token_ids))))
    labels: dict[int, str] = {}
    for token, team in session.exec(stmt):
        assert token.id is not None  # a stored row
        owner = "admin" if token.admin else team or "?"
        labels[token.id] = f"{owner}: {token.description}" if token.description else owner
    return labels


def revoke_token(session: Session, token_id: int, who: Identity) -> None:
    token = session.get(Token, token_id)
    if token is None:
        raise UnknownTokenError(f"no token #{token_id}")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        session.add(token)
        audit(session, who, "token.revoke", f"token#{token_id}")
        session.commit()
