"""End to end against real server processes on loopback: first start, limits, races, crashes.

Races use several client processes that fire at the same instant; the database constraint
alone must decide the winner, also with two server processes sharing one PostgreSQL.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from registry_data import COMMIT_A, module_archive, publish_body, tar_gz
from registry_servers import ServerHandle, TeamTokens, bearer, create_team_tokens, free_port

RACERS = 6
FORK = multiprocessing.get_context("fork")


def _put(server: ServerHandle, token: str, data: bytes, **kwargs: Any) -> httpx.Response:
    sha = kwargs.pop("sha", hashlib.sha256(data).hexdigest())
    return httpx.put(
        f"{server.api}/blobs/{sha}", content=data, headers=bearer(token), timeout=30, **kwargs
    )


def _publish(api: str, token: str, body: dict[str, Any], start_at: float = 0.0) -> int:
    """Runs in a racer process: wait for the common instant, publish, return the status."""
    time.sleep(max(0.0, start_at - time.time()))
    module = body["manifest"]["name"]
    answer = httpx.post(
        f"{api}/modules/{module}/versions", json=body, headers=bearer(token), timeout=60
    )
    return answer.status_code


def _race(jobs: list[tuple[str, dict[str, Any]]], token: str) -> Counter[int]:
    start_at = time.time() + 1.0
    with ProcessPoolExecutor(len(jobs), mp_context=FORK) as pool:
        futures = [pool.submit(_publish, api, token, body, start_at) for api, body in jobs]
        return Counter(f.result() for f in futures)


def _versions(server: ServerHandle, module: str = "vision/prep") -> list[str]:
    answer = httpx.get(f"{server.api}/modules/{module}/versions", timeout=10)
    return [v["version"] for v in answer.json()] if answer.status_code == 200 else []


def test_first_start_writes_admin_token_file_only(
    server_factory: Callable[..., ServerHandle], tmp_path: Path
) -> None:
    server = server_factory(data_dir=tmp_path / "data")
    token_file = server.data_dir / "admin.token"
    assert oct(stat.S_IMODE(token_file.stat().st_mode)) == "0o600"
    log = next(server.data_dir.glob("server-*.log")).read_text()
    assert str(token_file) in log and server.admin_token not in log
    me = httpx.get(f"{server.api}/whoami", headers=server.admin_headers()).json()
    assert me["admin"] is True
    assert server.process is not None
    server.process.send_signal(signal.SIGTERM)
    server.process.wait(10)
    again = server_factory(data_dir=tmp_path / "data")
    assert again.admin_token == server.admin_token  # a second start keeps the token


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_upload_limit_is_413(server_factory: Callable[..., ServerHandle], chunked: bool) -> None:
    server = server_factory(extra_args=("--max-upload", "1"))
    tokens = create_team_tokens(server)
    data = os.urandom(1024 * 1024 + 1)

    def stream() -> Iterator[bytes]:
        yield data[:600_000]
        yield data[600_000:]

    sha = hashlib.sha256(data).hexdigest()
    answer = httpx.put(
        f"{server.api}/blobs/{sha}",
        content=stream() if chunked else data,
        headers=bearer(tokens.run),
        timeout=30,
    )
    assert answer.status_code == 413, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["type"] == "payload-too-large"
    assert httpx.head(f"{server.api}/blobs/{sha}", headers=bearer(tokens.read)).status_code == 404


def test_tampered_digest_and_unsafe_archive_over_http(
    registry_server: ServerHandle, team_tokens: TeamTokens
) -> None:
    data = module_archive()
    wrong = hashlib.sha256(data + b"x").hexdigest()
    answer = _put(registry_server, team_tokens.publish, data, sha=wrong)
    assert (answer.status_code, answer.json()["type"]) == (422, "digest-mismatch")
    evil = tar_gz({"../../outside.py": "print('gotcha')"})
    assert _put(registry_server, team_tokens.publish, evil).status_code == 201
    body = publish_body(hashlib.sha256(evil).hexdigest())
    status = _publish(registry_server.api, team_tokens.publish, body)
    assert status == 422 and _versions(registry_server) == []
    assert not (registry_server.data_dir.parent / "outside.py").exists()


def test_racing_identical_publishes_one_creates(
    db_url: str, registry_server: ServerHandle, team_tokens: TeamTokens
) -> None:
    data = module_archive()
    assert _put(registry_server, team_tokens.publish, data).status_code == 201
    body = publish_body(hashlib.sha256(data).hexdigest())
    statuses = _race([(registry_server.api, body)] * RACERS, team_tokens.publish)
    assert statuses == Counter({201: 1, 200: RACERS - 1})
    assert _versions(registry_server) == ["1.0.0"]


def test_racing_different_content_one_wins_rest_conflict(
    db_url: str, registry_server: ServerHandle, team_tokens: TeamTokens
) -> None:
    jobs = []
    for index in range(RACERS):
        data = module_archive(salt=str(index))
        _put(registry_server, team_tokens.publish, data)
        jobs.append((registry_server.api, publish_body(hashlib.sha256(data).hexdigest())))
    statuses = _race(jobs, team_tokens.publish)
    assert statuses == Counter({201: 1, 409: RACERS - 1})
    assert _versions(registry_server) == ["1.0.0"]


def test_racing_different_versions_all_listed(
    db_url: str, registry_server: ServerHandle, team_tokens: TeamTokens
) -> None:
    jobs = []
    for index in range(RACERS):
        version = f"1.{index}.0"
        data = module_archive(version)
        _put(registry_server, team_tokens.publish, data)
        jobs.append((registry_server.api, publish_body(hashlib.sha256(data).hexdigest(), version)))
    assert _race(jobs, team_tokens.publish) == Counter({201: RACERS})
    assert _versions(registry_server) == [f"1.{i}.0" for i in range(RACERS)]


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_two_servers_on_one_postgresql(
    db_url: str, server_factory: Callable[..., ServerHandle], tmp_path: Path
) -> None:
    shared = tmp_path / "shared-data"  # both replicas see the same blob folder
    first = server_factory(data_dir=shared, db_url=db_url)
    second = server_factory(data_dir=shared, db_url=db_url)
    assert first.admin_token == second.admin_token
    tokens = create_team_tokens(first)
    same = module_archive()
    _put(second, tokens.publish, same)
    body = publish_body(hashlib.sha256(same).hexdigest())
    statuses = _race([(s.api, body) for s in (first, second) * (RACERS // 2)], tokens.publish)
    assert statuses == Counter({201: 1, 200: RACERS - 1})
    jobs = []
    for index, server in enumerate((first, second) * (RACERS // 2)):
        data = module_archive("2.0.0", salt=str(index))
        _put(server, tokens.publish, data)
        jobs.append((server.api, publish_body(hashlib.sha256(data).hexdigest(), "2.0.0")))
    assert _race(jobs, tokens.publish) == Counter({201: 1, 409: RACERS - 1})
    assert _versions(first) == _versions(second) == ["1.0.0", "2.0.0"]


def _upload_then_hang(api: str, token: str, data: bytes, ready: Path) -> None:
    """A publisher that dies after its blob upload, before its version row."""
    sha = hashlib.sha256(data).hexdigest()
    httpx.put(
        f"{api}/blobs/{sha}", content=data, headers=bearer(token), timeout=30
    ).raise_for_status()
    ready.write_text("uploaded")
    time.sleep(600)


def test_publish_killed_between_blob_and_row(
    db_url: str, server_factory: Callable[..., ServerHandle], tmp_path: Path
) -> None:
    server = server_factory(data_dir=tmp_path / "data", db_url=db_url)
    tokens = create_team_tokens(server)
    data, ready = module_archive(), tmp_path / "ready"
    publisher = FORK.Process(
        target=_upload_then_hang, args=(server.api, tokens.publish, data, ready)
    )
    publisher.start()
    deadline = time.monotonic() + 30
    while not ready.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    publisher.kill()
    publisher.join()
    assert ready.exists() and _versions(server) == []
    assert server.process is not None
    server.process.kill()  # and the server crashes too, before anyone publishes the row
    server.process.wait(10)
    restarted = server_factory(data_dir=tmp_path / "data", db_url=db_url)
    assert _versions(restarted) == []
    body = publish_body(hashlib.sha256(data).hexdigest(), commit=COMMIT_A)
    assert _publish(restarted.api, tokens.publish, body) == 201
    assert _versions(restarted) == ["1.0.0"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--db", "postgresql+psycopg://postgres@127.0.0.1:1/none"], "Connection refused"),
        (["--data", "/proc/modreg-cannot-be-here"], "No such file or directory"),
        (["--blob-url", "nosuchproto://x"], "Protocol not known: nosuchproto"),
    ],
)
def test_a_server_that_cannot_start_says_why_in_one_line(
    tmp_path: Path, args: list[str], message: str
) -> None:
    argv = [sys.executable, "-m", "modreg.registry", "--port", str(free_port()), *args]
    if "--data" not in args:
        argv += ["--data", str(tmp_path / "data")]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert done.stderr.startswith("error: cannot start the registry: ")
    assert message in done.stderr and done.stderr.count("\n") == 1


@pytest.mark.parametrize(
    "command",
    [
        [sys.executable, "-m", "modreg.registry"],
        [str(Path(sys.executable).with_name("modreg")), "server"],
    ],
    ids=["python-m", "modreg-server"],
)
def test_a_port_in_use_fails_the_start_before_anything_is_written(
    tmp_path: Path, command: list[str]
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        argv = [
            *command,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--data",
            str(tmp_path / "data"),
        ]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (
        f"error: cannot start the registry: port {port} on 127.0.0.1 is already in use "
        "(pick another with --port)\n"
    )
    assert not (tmp_path / "data").exists(), "no database, no admin token"
