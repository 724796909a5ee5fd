"""The hostile-archive probe: every family sent straight to a real server's HTTP API.

Each case of ``hostile_archives.HOSTILE`` is uploaded (blob PUT) and published (version
POST) with plain httpx, as an attacker would, and must be refused with a 4xx, never a 201 or
a 5xx. The reader — the engine's ``SourceCache``, which ``modreg pull`` and ``modreg run``
share — must then give the same verdict for the same bytes and leave nothing behind. The
module's benign twin (the same archive without the hostile part) is then published under
the same name and version and must be accepted: the refusal came from the hostile part.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hostile_archives import ABSOLUTE_ESCAPE, ESCAPE, HOSTILE, HostileArchive, benign
from hostile_archives import module_members as members
from registry_servers import (
    ServerHandle,
    TeamTokens,
    bearer,
    create_team_tokens,
    start_server,
    stop_server,
)

from modreg.client import RegistryClient
from modreg.engine.sources import SourceCache
from modreg.registry.errors import UnsafeArchiveError

VERSION = "1.0.0"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerHandle, TeamTokens]]:
    """One real server for the whole probe (each case has its own module)."""
    handle = start_server(tmp_path_factory.mktemp("hostile-registry"))
    assert handle.process is not None
    try:
        yield handle, create_team_tokens(handle, "vision")
    finally:
        stop_server(handle.process)


def _send(http: httpx.Client, module: str, data: bytes) -> tuple[httpx.Response, str]:
    """Blob PUT, then (when the blob is taken) the version POST; the last answer and sha."""
    sha256 = hashlib.sha256(data).hexdigest()
    put = http.put(f"/blobs/{sha256}", content=data)
    if put.status_code not in (200, 201):
        return put, sha256
    manifest = {"name": module, "version": VERSION, "command": ["python", "main.py"]}
    manifest["description"] = "hostile archive probe"  # as the archive's modreg.toml says
    body: dict[str, Any] = {"version": VERSION, "commit": "a" * 40, "tree_sha": "b" * 40}
    body |= {"path": "", "sha256": sha256, "manifest": manifest}
    return http.post(f"/modules/{module}/versions", json=body), sha256


def _leftovers(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


@pytest.mark.parametrize("hostile", HOSTILE, ids=[h.id for h in HOSTILE])
def test_hostile_archives_are_refused_by_the_server_and_the_reader(
    server: tuple[ServerHandle, TeamTokens], hostile: HostileArchive, tmp_path: Path
) -> None:
    handle, tokens = server
    module = f"vision/{hostile.id}"
    with httpx.Client(base_url=handle.api, headers=bearer(tokens.publish), timeout=60) as http:
        answer, sha256 = _send(http, module, hostile.build(members(module, VERSION)))
        assert 400 <= answer.status_code < 500, f"{answer.status_code} {answer.text}"
        assert answer.headers["content-type"] == "application/problem+json"
        verdict = answer.json()
        if answer.request.method == "POST":
            _the_reader_agrees(handle, tokens, sha256, verdict, tmp_path)
        twin, _ = _send(http, module, benign(members(module, VERSION)))
        assert twin.status_code == 201, twin.text


def _the_reader_agrees(
    handle: ServerHandle, tokens: TeamTokens, sha256: str, verdict: dict[str, str], work: Path
) -> None:
    """SourceCache refuses the same bytes with the server's own words, writing nothing."""
    assert verdict["type"] == UnsafeArchiveError.type, verdict
    sources = work / "engine" / "sources"
    with RegistryClient(handle.url, tokens.publish) as client:
        with pytest.raises(UnsafeArchiveError) as refused:
            SourceCache(sources, client).ensure(sha256, "vision/probe@1.0.0")
    assert str(refused.value) == f"the sources of vision/probe@1.0.0: {verdict['detail']}"
    assert str(work) not in str(refused.value)  # no internal path in the line users read
    assert _leftovers(work) in ([], ["engine"], ["engine", "engine/sources"])
    assert not Path(ABSOLUTE_ESCAPE).exists() and not (work / "engine" / ESCAPE).exists()
