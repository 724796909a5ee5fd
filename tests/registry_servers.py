"""Real registry servers for tests: start one as a subprocess, and talk to it.

``start_server`` runs ``python -m modreg.registry`` on a free loopback port and waits for
/health; ``ServerHandle`` describes it; ``create_team_tokens`` makes a team and a token of
each scope through the HTTP API. The fixtures in ``conftest.py`` use these; tests may import them
(``from registry_servers import ServerHandle``).
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

SERVER_START_TIMEOUT = 60.0


@dataclass(frozen=True)
class ServerHandle:
    """A running registry server: base URL (without /api/v1), its admin token and storage."""

    url: str
    admin_token: str
    data_dir: Path
    db_url: str | None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False, compare=False)

    @property
    def api(self) -> str:
        return f"{self.url}/api/v1"

    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}


@dataclass(frozen=True)
class TeamTokens:
    """A team and a token (secret) of each scope."""

    team: str
    publish: str
    read: str
    run: str


def bearer(token: str | None) -> dict[str, str]:
    """Authorization headers for ``token`` (none for None)."""
    return {"Authorization": f"Bearer {token}"} if token else {}


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"registry server exited early:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/api/v1/health", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"registry server did not become healthy:\n{log.read_text()}")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def start_server(
    data_dir: Path,
    db_url: str | None = None,
    extra_args: tuple[str, ...] = (),
    python: str = sys.executable,
) -> ServerHandle:
    """Start a real registry process and wait until it answers /health; ``python``: the
    interpreter of another install of modreg (a wheel's, say) to start it from."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    cmd = [python, "-m", "modreg.registry", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--data", str(data_dir), *(["--db", db_url] if db_url else []), *extra_args]
    log = data_dir / f"server-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, process, log)
    except BaseException:
        stop_server(process)
        raise
    token = (data_dir / "admin.token").read_text().strip()
    return ServerHandle(url, token, data_dir, db_url, process)


def create_team_tokens(server: ServerHandle, team: str = "vision") -> TeamTokens:
    """Create ``team`` with a token of each scope, through the HTTP API."""
    with httpx.Client(base_url=server.api, headers=server.admin_headers(), timeout=30) as http:
        http.post("/teams", json={"name": team}).raise_for_status()
        secrets = {}
        for scope in ("publish", "read", "run"):
            answer = http.post("/tokens", json={"team": team, "scope": scope})
            answer.raise_for_status()
            secrets[scope] = answer.json()["token"]
    return TeamTokens(**secrets, team=team)
