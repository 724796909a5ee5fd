"""What the engine's end-to-end tests share: a real registry, real module repos, the real CLI.

Each test gets its own team on its module's server (tests/engine/conftest.py), so step
caches never leak between tests. ``EngineEnv`` publishes modules made by
``make_module_repo`` through the real ``RegistryClient``, writes pipelines, and runs
``modreg`` in-process (``run``) or as a real process (``spawn``, for SIGKILL and
concurrency), each "user" with their own state folder (``XDG_CACHE_HOME``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from click.testing import CliRunner, Result
from factories import make_module_repo

from modreg.client.cli import cli
from modreg.client.config import ClientConfig
from modreg.client.http import RegistryClient
from modreg.client.publishing import publish

MODREG = Path(sys.executable).with_name("modreg")


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@dataclass
class Server:
    url: str
    admin: str


def make_team(server: Server) -> tuple[str, dict[str, str]]:
    team = f"t{uuid.uuid4().hex[:10]}"
    headers = {"Authorization": f"Bearer {server.admin}"}
    with httpx.Client(base_url=f"{server.url}/api/v1", headers=headers, timeout=30) as http:
        http.post("/teams", json={"name": team}).raise_for_status()
        tokens = {}
        for label, scope in (("alice", "publish"), ("bob", "publish"), ("reader", "read")):
            answer = http.post("/tokens", json={"team": team, "scope": scope})
            answer.raise_for_status()
            tokens[label] = answer.json()["token"]
    return team, tokens


@dataclass
class EngineEnv:
    """One test's team, folder and helpers."""

    server: Server
    team: str
    tokens: dict[str, str]
    root: Path
    published: list[str] = field(default_factory=list)

    @property
    def counter(self) -> Path:
        return self.root / "executions.log"

    def client(self, user: str = "alice") -> RegistryClient:
        return RegistryClient.from_config(ClientConfig(self.server.url, self.tokens[user]))

    def module(self, name: str, version: str = "1.0.0", **kwargs: Any) -> str:
        """Make and publish ``TEAM/name@version``; returns the full module name."""
        full = f"{self.team}/{name}"
        # steps get only the variables they declare: the counter is one of them
        extra = dict(kwargs.pop("module_extra", {}))
        extra["env"] = ["TEST_STEP_COUNTER", *extra.get("env", [])]
        folder = make_module_repo(self.root, full, version, module_extra=extra, **kwargs)
        with self.client() as client:
            publish(client, folder)
        return full

    def pipeline(self, text: str, name: str = "pipeline.yaml") -> Path:
        path = self.root / "work" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.replace("TEAM/", f"{self.team}/"))
        return path

    def env(self, user: str = "alice", **extra: str) -> dict[str, str]:
        return {
            "MODREG_URL": self.server.url,
            "MODREG_TOKEN": self.tokens[user],
            "XDG_CACHE_HOME": str(self.root / "users" / user / "cache"),
            "XDG_CONFIG_HOME": str(self.root / "users" / user / "config"),
            "TEST_STEP_COUNTER": str(self.counter),
            **extra,
        }

    def run(self, *args: Any, user: str = "alice", **extra: str) -> Result:
        """``modreg ARGS`` in-process, as ``user``."""
        runner = CliRunner()
        return runner.invoke(
            cli, [str(a) for a in args], env=self.env(user, **extra), catch_exceptions=False
        )

    def spawn(self, *args: Any, user: str = "alice", **extra: str) -> subprocess.Popen[str]:
        """``modreg ARGS`` as a real process."""
        env = {**os.environ, **self.env(user, **extra)}
        return subprocess.Popen(
            [str(MODREG), *map(str, args)],
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            # A shell without job control starts background jobs with SIGINT ignored, and
            # Python keeps an inherited SIG_IGN: the Ctrl-C tests would then test nothing.
            preexec_fn=_default_sigint,
        )

    def executions(self) -> list[str]:
        """The modules that really executed, one line each (written by the steps)."""
        if not self.counter.exists():
            return []
        return [line.split("/", 1)[1] for line in self.counter.read_text().splitlines() if line]

    def state(self, user: str = "alice") -> Path:
        return self.root / "users" / user / "cache" / "modreg" / "engine"
