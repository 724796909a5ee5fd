"""Shared fixtures: databases, real registry servers on loopback, team tokens.

- ``db_url``: parametrized ``sqlite`` / ``postgresql``; PostgreSQL gets a fresh database
  per test, created and dropped here.
- ``server_factory``: starts real ``python -m modreg.registry`` processes (as many as a test
  needs, e.g. two replicas on one PostgreSQL) and stops them all at teardown.
- ``registry_server``: one such server; it uses ``db_url`` when the test asks for it too.
- ``team_tokens``: team ``vision`` on ``registry_server`` with a publish, a run and a read token.
- ``s3_server``: one moto S3 server process for the session (``s3_server.py``), its
  ``AWS_*`` variables set while it runs; each test makes its own bucket.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from registry_servers import (
    ServerHandle,
    TeamTokens,
    bearer,
    create_team_tokens,
    start_server,
    stop_server,
)
from s3_server import S3Server, start_s3

__all__ = [
    "S3Server",
    "ServerFactory",
    "ServerHandle",
    "TeamTokens",
    "bearer",
    "create_team_tokens",
]

PG_ADMIN_DSN = os.environ.get("MODREG_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


# --- databases -------------------------------------------------------------------------


def _pg_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def db_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A database URL for a fresh, empty database of each supported kind."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('sqlite')}/registry.db"
        return
    name = f"modreg_test_{uuid.uuid4().hex[:12]}"
    _pg_admin(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


ServerFactory = Callable[..., ServerHandle]


@pytest.fixture
def server_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerFactory]:
    """Start registry servers: ``factory(data_dir=None, db_url=None, extra_args=())``."""
    started: list[ServerHandle] = []

    def factory(
        data_dir: Path | None = None, db_url: str | None = None, extra_args: tuple[str, ...] = ()
    ) -> ServerHandle:
        handle = start_server(data_dir or tmp_path_factory.mktemp("registry"), db_url, extra_args)
        started.append(handle)
        return handle

    yield factory
    for handle in started:
        if handle.process is not None:
            stop_server(handle.process)


@pytest.fixture
def registry_server(request: pytest.FixtureRequest, server_factory: ServerFactory) -> ServerHandle:
    """A real registry on a loopback port (on ``db_url`` when the test uses it)."""
    url = request.getfixturevalue("db_url") if "db_url" in request.fixturenames else None
    return server_factory(db_url=url)


@pytest.fixture
def team_tokens(registry_server: ServerHandle) -> TeamTokens:
    """Team ``vision`` on ``registry_server`` with a publish, a run and a read token."""
    return create_team_tokens(registry_server, "vision")


# --- S3 ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """One moto S3 server for the session; its ``AWS_*`` variables are set in this process
    (and so in every process a test starts) while it runs."""
    server = start_s3(tmp_path_factory.mktemp("s3"))
    saved = {key: os.environ.get(key) for key in server.environ}
    os.environ.update(server.environ)
    try:
        yield server
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        stop_server(server.process)
