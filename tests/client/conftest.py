"""Fixtures of the client tests: an isolated home, one shared real server, the CLI runner.

Every test gets its own ``XDG_CONFIG_HOME`` / ``XDG_CACHE_HOME`` and no ``MODREG_*`` variables,
so nothing reads or writes the developer's real config. Starting a registry takes ~2 s, so
most tests share one real server (``shared``) and keep apart by using fresh
module names; tests that need a pristine registry use ``registry_server``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from registry_servers import create_team_tokens, start_server, stop_server

from modreg.client.cli import cli


@dataclass(frozen=True)
class Shared:
    """A running registry, team ``vision`` on it, and its tokens."""

    url: str
    admin: str
    publish: str
    read: str
    data_dir: Path

    def options(self, token: str | None = "publish") -> list[str]:
        """Global CLI options pointing at this registry with a token ("publish", "read",
        "admin", a literal token, or None for anonymous)."""
        named = {"publish": self.publish, "read": self.read, "admin": self.admin}
        chosen = named.get(token, token) if token else None
        return ["--registry", self.url, *(["--token", chosen] if chosen else [])]


@pytest.fixture(scope="session")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shared]:
    """One real registry server for all the client tests."""
    handle = start_server(tmp_path_factory.mktemp("shared-registry"))
    try:
        tokens = create_team_tokens(handle, "vision")
        yield Shared(handle.url, handle.admin_token, tokens.publish, tokens.read, handle.data_dir)
    finally:
        assert handle.process is not None
        stop_server(handle.process)


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private config and cache home; no MODREG_* variables from the outside."""
    for name in ("MODREG_URL", "MODREG_TOKEN", "MODREG_DEBUG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path


@pytest.fixture
def module_name() -> str:
    """A module name no other test uses."""
    return f"vision/m-{uuid.uuid4().hex[:10]}"


def _run_cli(*args: Any, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, [str(arg) for arg in args], env=env, catch_exceptions=False)


@pytest.fixture
def run() -> Any:
    """``run(*args)``: ``modreg ARGS`` in-process; ``result.stdout`` / ``.stderr`` apart."""
    return _run_cli
