"""Tokens, and the rules of who may do what to which team's things: decided here, only here.

Tokens. A token is ``mr_`` + 43 url-safe random characters, shown once; the database keeps
only its sha256. A request's ``Identity`` is looked up from its bearer token (anonymous
without one; 401 for an unknown, expired or revoked one). A team token has a scope, each
including the one before: ``read`` (read the team's things; never writes), ``run`` (also
record runs, sweeps, cache entries and blobs of the team), ``publish`` (also publish and
change the team's modules, and manage its tokens). The admin token belongs to no team: it
reads everything, manages teams and tokens, changes any module, and records nothing (runs
and cache entries belong to a team).

Rules. Each rule is one function below, applied to routes by one FastAPI dependency of
``api/deps.py``. A rule refuses (401 without a usable token, 403 with the wrong one) or
answers the request's ``Reach``: whose things it may touch. Domain functions (``modules``,
``accounts``, ``runs``, ``references``) receive that reach and filter by it; they never look
at ``admin``, scopes or ``private`` themselves.

    rule               who passes                                  reach
    administer         admin                                       every team
    collect_garbage    admin                                       every team
    publish(T)         admin; a publish token of T                 T*; admin: every team
    manage_tokens(T)   admin; a publish token of T                 T; admin, no T: every team
    read_modules(T)    anyone; if private: admin, any token of T   -
    module_reach       anyone; if private: a token                 every team; if private and
                                                                   not admin: the token's team
    record             a run or publish token                      its team* (also pinning
                                                                   its team's runs)
    read_cache         a token of a team (any scope)               its team
    evict_cache(T)     admin; a publish token of T (T: the         T; admin, no T: every team
                       token's own team by default)
    read_runs          a token of a team (any scope); admin        its team; admin: every team
    blob_reach         anyone; if private: a token                 its team* (the anonymous:
                                                                   none*); admin: every team

    (*) and, unless the registry is private, every team's module archives: anyone may read
    those, so a publish or a record may refer to them too.

Blobs (``blob_reach``, then ``references.readable``): a blob is readable when something the
caller may read refers to it: the version of a module it may read, or a cache entry, step
run or upload of its own team, the files of a folder output included; the admin reads any
stored blob. One it may not read answers as if it had never been stored (``hidden_blob``:
404, and 401 to the anonymous, who may read archives only), so its existence does not leak.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, select

from modreg.registry.errors import (
    AuthenticationError,
    PermissionDeniedError,
    RegistryError,
    UnknownBlobError,
)
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


@dataclass(frozen=True)
class Reach:
    """Whose things one request may touch, as decided by a rule of this module.

    ``every_team``: every team's (the admin; anyone reading an open registry's modules).
    Otherwise the one team named by ``team`` (and ``team_id`` when the caller's token is that
    team's), or nobody's (the anonymous reading blobs). ``open_archives``: the module archives
    of every team are readable too (an open registry).
    """

    team_id: int | None = None
    team: str | None = None
    every_team: bool = False
    open_archives: bool = False

    def includes(self, team_id: int) -> bool:
        """Whether the team with this id is within reach."""
        return self.every_team or (self.team_id is not None and team_id == self.team_id)

    def require_team(self, team: str) -> None:
        """Refuse ``team``'s modules when they are out of reach (resolving many refs at once)."""
        if not (self.every_team or team == self.team):
            raise PermissionDeniedError(
                f"this registry is private: it needs a token of team {team!r}"
            )

    @property
    def own_team_id(self) -> int:
        """The one team a recording or a per-team read is for."""
        assert self.team_id is not None, "a rule that reaches one team gave none"
        return self.team_id


EVERY_TEAM = Reach(every_team=True, open_archives=True)


def _own_team(identity: Identity, open_archives: bool = False) -> Reach:
    return Reach(identity.team_id, identity.team, open_archives=open_archives)


def _require_token(identity: Identity) -> None:
    if not identity.authenticated:
        raise AuthenticationError("this needs a token: pass --token or set MODREG_TOKEN")


def _require_team_token(identity: Identity) -> None:
    _require_token(identity)
    if identity.team_id is None:
        raise PermissionDeniedError("this needs a team token; the admin token belongs to no team")


def _require_scope(identity: Identity, team: str, scope: Scope, what: str) -> None:
    if identity.team != team:
        raise PermissionDeniedError(f"your token belongs to team {identity.team!r}, not {team!r}")
    assert identity.scope is not None
    if not identity.scope.includes(scope):
        raise PermissionDeniedError(
            f"{what} needs a {scope} token of team {team!r}, yours is a {identity.scope} token"
        )


# --- the rules ---------------------------------------------------------------------------


def administer(identity: Identity) -> Reach:
    """Creating teams, listing every token: the admin only."""
    _require_token(identity)
    if not identity.admin:
        raise PermissionDeniedError("this needs the admin token")
    return EVERY_TEAM


def collect_garbage(identity: Identity) -> Reach:
    """Deleting blobs nothing refers to (``modreg gc``): the admin only, since it sees every
    team's references and acts on the whole store."""
    _require_token(identity)
    if not identity.admin:
        raise PermissionDeniedError("garbage collection needs the admin token")
    return EVERY_TEAM


def publish(identity: Identity, team: str, private: bool) -> Reach:
    """Publishing and changing ``team``'s modules: admin, or a publish token of ``team``.

    The reach is what an archive may be taken from: blobs the team may read.
    """
    _require_token(identity)
    if identity.admin:
        return EVERY_TEAM
    _require_scope(identity, team, Scope.publish, "this")
    return _own_team(identity, open_archives=not private)


def manage_tokens(identity: Identity, team: str | None) -> Reach:
    """Creating, listing and revoking ``team``'s tokens (None: the admin's own)."""
    _require_token(identity)
    if identity.admin:
        return Reach(team=team) if team is not None else EVERY_TEAM
    if team is None:
        raise PermissionDeniedError("this needs the admin token")
    _require_scope(identity, team, Scope.publish, "managing tokens")
    return _own_team(identity)


def read_modules(identity: Identity, team: str, private: bool) -> None:
    """Reading ``team``'s modules: anyone, or on a private registry admin or a token of it."""
    if not private or identity.admin:
        return
    _require_token(identity)
    _own_team(identity).require_team(team)


def module_reach(identity: Identity, private: bool) -> Reach:
    """Listing and resolving modules and teams: every team's, or on a private registry the
    caller's own (a token is needed there)."""
    if not private or identity.admin:
        return EVERY_TEAM
    _require_token(identity)
    return _own_team(identity)


def record(identity: Identity, private: bool) -> Reach:
    """Recording runs, sweeps, cache entries and blobs: a run or publish token, for its team.

    The reach is also what a record may refer to: blobs the team may read.
    """
    _require_team_token(identity)
    assert identity.scope is not None and identity.team is not None
    if not identity.scope.includes(Scope.run):
        raise PermissionDeniedError(
            f"recording runs, cache entries and blobs needs a run or publish token of team "
            f"{identity.team!r}; yours is a read token, which never writes"
        )
    return _own_team(identity, open_archives=not private)


def read_cache(identity: Identity) -> Reach:
    """Looking up the step cache: a token of a team (any scope), in its team's entries."""
    _require_team_token(identity)
    return _own_team(identity)


def evict_cache(identity: Identity, team: str | None) -> Reach:
    """Evicting step cache entries (a poisoned result): a publish token of the team, for its
    own cache, or the admin (the team named, else every team's)."""
    _require_token(identity)
    if identity.admin:
        return Reach(team=team) if team is not None else EVERY_TEAM
    _require_team_token(identity)
    assert identity.team is not None
    _require_scope(identity, team or identity.team, Scope.publish, "evicting cache entries")
    return _own_team(identity)


def read_runs(identity: Identity) -> Reach:
    """Reading runs and sweeps: a token of a team (its team's), or the admin (every team's)."""
    _require_token(identity)
    return EVERY_TEAM if identity.admin else _own_team(identity)


def blob_reach(identity: Identity, private: bool) -> Reach:
    """Reading blobs: the caller's team's, plus every archive on an open registry (see
    ``references.readable``); on a private registry a token is needed."""
    if identity.admin:
        return EVERY_TEAM
    if private:
        _require_token(identity)
    return _own_team(identity, open_archives=not private)


def hidden_blob(reach: Reach, sha256: str) -> RegistryError:
    """What a blob out of reach answers: 404 as if absent (401 to the anonymous, who may
    read no blob but archives), so whether it exists does not leak."""
    if reach.team_id is None and not reach.every_team:
        return AuthenticationError(
            f"blob {sha256[:12]} is not a module archive anyone may read: this needs a token"
        )
    return UnknownBlobError(f"blob {sha256} is not stored here")
