"""Fixtures of the engine's end-to-end tests: one real server per test module (starting one
takes ~2 s) and, per test, an ``EngineEnv`` with its own team on it (see tests/engine_env.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from engine_env import EngineEnv, Server, make_team
from registry_servers import start_server, stop_server


@pytest.fixture(scope="module")
def engine_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    handle = start_server(tmp_path_factory.mktemp("engine-registry"))
    try:
        yield Server(handle.url, handle.admin_token)
    finally:
        stop_server(handle.process)


@pytest.fixture
def env(engine_server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> EngineEnv:
    for name in ("MODREG_URL", "MODREG_TOKEN", "MODREG_STORE", "MODREG_EXECUTOR"):
        monkeypatch.delenv(name, raising=False)
    team, tokens = make_team(engine_server)
    return EngineEnv(engine_server, team, tokens, tmp_path)
