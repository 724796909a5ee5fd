"""Tokens and permissions.

A token is ``mr_`` + 43 url-safe random characters, shown once; the database keeps only its
sha256. A request's ``Identity`` is looked up from the bearer token (anonymous without one;
401 for an unknown, expired or revoked one). The permission rules, in one place:

- admin may do everything;
- writing a module (publish, yank, deprecate, set-default) and managing a team's tokens
  needs a ``publish`` token of the owning team;
- recording blobs, cache entries, sweeps and runs needs a ``run`` or ``publish`` token of a
  team, and records for that team; a ``read`` token never writes;
- reading the step cache, sweeps and runs needs a token of a team (any scope) and shows that
  team's only;
- reading modules is open, unless the server is private: then any token of the owning team.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, select

from modreg.registry.errors import AuthenticationError, PermissionDeniedError
from modreg.registry.models import Team, Token, utcnow
from modreg.registry.schemas import Identity as IdentityPublic
from modreg.registry.schemas import Scope

TOKEN_PREFIX = "mr_"


def new_secret() -> str:
    """A fresh random token secret."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    """What the database stores instead of the secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class Identity:
    """The caller of one request."""

    token_id: int | None = None
    admin: bool = False
    team_id: int | None = None
    team: str | None = None
    scope: Scope | None = None

    @property
    def authenticated(self) -> bool:
        return self.token_id is not None

    @property
    def label(self) -> str:
        """How the audit log names this caller."""
        if self.admin:
            return f"admin#{self.token_id}"
        if self.authenticated:
            return f"{self.team}:{self.scope}#{self.token_id}"
        return "anonymous"

    def public(self) -> IdentityPublic:
        return IdentityPublic(
            authenticated=self.authenticated,
            admin=self.admin,
            team=self.team,
            scope=self.scope,
            token_id=self.token_id,
        )


ANONYMOUS = Identity()


def _check_usable(token: Token, now: datetime) -> None:
    if token.revoked_at is not None:
        raise AuthenticationError(f"token #{token.id} was revoked; ask for a new one")
    if token.expires_at is not None and token.expires_at <= now:
        raise AuthenticationError(
            f"token #{token.id} expired at {token.expires_at:%Y-%m-%d %H:%M} UTC"
        )


def identify(session: Session, secret: str | None) -> Identity:
    """The identity a bearer secret stands for (anonymous for None)."""
    if not secret:
        return ANONYMOUS
    row = session.exec(
        select(Token, Team).join(Team, isouter=True).where(Token.token_hash == hash_secret(secret))
    ).first()
    if row is None:
        raise AuthenticationError("unknown token: check --token, MODREG_TOKEN or `modreg login`")
    token, team = row
    _check_usable(token, utcnow())
    scope = Scope(token.scope) if token.scope else None
    return Identity(token.id, token.admin, token.team_id, team.name if team else None, scope)


def require_authenticated(identity: Identity) -> None:
    if not identity.authenticated:
        raise AuthenticationError("this needs a token: pass --token or set MODREG_TOKEN")


def require_admin(identity: Identity) -> None:
    require_authenticated(identity)
    if not identity.admin:
        raise PermissionDeniedError("this needs the admin token")


def require_publish(identity: Identity, team: str) -> None:
    """Admin, or a ``publish`` token of ``team``."""
    require_authenticated(identity)
    if identity.admin:
        return
    if identity.team != team:
        raise PermissionDeniedError(f"your token belongs to team {identity.team!r}, not {team!r}")
    if identity.scope != Scope.publish:
        raise PermissionDeniedError(
            f"this needs a publish token of team {team!r}, yours is a {identity.scope} token"
        )


def require_team_token(identity: Identity) -> int:
    """A token of some team (any scope); returns the team id."""
    require_authenticated(identity)
    if identity.team_id is None:
        raise PermissionDeniedError("this needs a team token; the admin token belongs to no team")
    return identity.team_id


def require_run(identity: Identity) -> int:
    """A ``run`` or ``publish`` token of some team; returns the team id."""
    team_id = require_team_token(identity)
    assert identity.scope is not None
    if not identity.scope.includes(Scope.run):
        raise PermissionDeniedError(
            f"recording runs, cache entries and blobs needs a run or publish token of team "
            f"{identity.team!r}; yours is a read token, which never writes"
        )
    return team_id


def require_read(identity: Identity, team: str, private: bool) -> None:
    """Open reading, or on a private server any token of ``team`` (or admin)."""
    if not private or identity.admin:
        return
    require_authenticated(identity)
    if identity.team != team:
        raise PermissionDeniedError(f"this registry is private: it needs a token of team {team!r}")
