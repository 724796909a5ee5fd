"""The database: engines (SQLite or PostgreSQL), and the few session helpers every domain
module uses (an idempotent insert, the audit log, a team by name).

SQLite connections get their pragmas on every connect, so each pooled connection behaves the
same (WAL, foreign keys, busy timeout). PostgreSQL URLs are written ``postgresql+psycopg://``;
a bare ``postgresql://`` is taken to mean the same driver.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlmodel import Session, SQLModel, select

from modreg.registry.errors import UnknownTeamError
from modreg.registry.models import AuditEvent, Team

if TYPE_CHECKING:
    from modreg.registry.auth import Identity

SQLITE_BUSY_TIMEOUT_MS = 30_000


def normalise_url(url: str) -> str:
    """``postgresql://`` and ``postgres://`` mean psycopg 3 here."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def create_db_engine(url: str) -> Engine:
    """An engine for ``url`` with the settings modreg relies on."""
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            pool_size=20,
            max_overflow=20,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def backend_name(bind: Engine | Connection) -> str:
    """``sqlite`` or ``postgresql``."""
    return bind.engine.url.get_backend_name()


# --- session helpers shared by the domain modules ----------------------------------------


def insert_ignore(session: Session, model: type[SQLModel], **values: Any) -> bool:
    """INSERT … ON CONFLICT DO NOTHING: the row exists afterwards, whoever wrote it.

    True when this call inserted it: told by RETURNING, since psycopg answers a rowcount of
    -1 (true) for an insert that did nothing.
    """
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = model.__table__  # type: ignore[attr-defined]
    statement = insert(table).values(**values).on_conflict_do_nothing()
    result = session.execute(statement.returning(*table.primary_key.columns))
    return result.first() is not None


def insert_ignore_many(
    session: Session, model: type[SQLModel], rows: list[dict[str, Any]], batch: int = 1000
) -> None:
    """``insert_ignore`` of many rows, a multi-row statement per ``batch``."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = model.__table__  # type: ignore[attr-defined]
    for start in range(0, len(rows), batch):
        chunk = rows[start : start + batch]
        session.execute(insert(table).values(chunk).on_conflict_do_nothing())


def audit(session: Session, who: Identity, action: str, target: str, **detail: Any) -> None:
    """Add an audit event to the session's transaction."""
    session.add(
        AuditEvent(
            token_id=who.token_id, actor=who.label, action=action, target=target, detail=detail
        )
    )


def get_team(session: Session, name: str) -> Team:
    """The team called ``name``; UnknownTeamError when there is none."""
    team = session.exec(select(Team).where(Team.name == name)).first()
    if team is None:
        raise UnknownTeamError(f"no team named {name!r}")
    return team
