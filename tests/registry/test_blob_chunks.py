"""Blobs larger than the upload limit: sent as chunks and composed (``POST
/blobs/{sha256}/compose``), through a real server whose limit is cut to 1 MiB and the client
the engine uses (``RegistryClient.put_blob``). The server logs its requests
(``--access-log``), which is how the tests count the chunks sent.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import httpx
import pytest
from registry_servers import ServerHandle, bearer, create_team_tokens

from modreg.client import RegistryClient
from modreg.client.config import ClientConfig

MIB = 2**20


@pytest.fixture
def small_limit(db_url: str, server_factory: Any) -> ServerHandle:
    return server_factory(db_url=db_url, extra_args=("--max-upload", "1", "--access-log"))


def _client(server: ServerHandle, token: str) -> RegistryClient:
    return RegistryClient.from_config(ClientConfig(server.url, token))


def _blob_puts(server: ServerHandle) -> int:
    return sum(
        log.read_text(errors="replace").count("PUT /api/v1/blobs/")
        for log in server.data_dir.glob("server-*.log")
    )


def _file(tmp_path: Path, name: str, size: int) -> tuple[Path, bytes, str]:
    data = os.urandom(size)
    path = tmp_path / name
    path.write_bytes(data)
    return path, data, hashlib.sha256(data).hexdigest()


def test_a_blob_over_the_limit_goes_in_chunks_and_reads_back_whole(
    small_limit: ServerHandle, tmp_path: Path
) -> None:
    tokens = create_team_tokens(small_limit)
    path, data, sha = _file(tmp_path, "model.bin", 3 * MIB + 5)
    with httpx.Client(base_url=small_limit.api, headers=bearer(tokens.run)) as http:
        assert http.put(f"/blobs/{sha}", content=data).status_code == 413, "one PUT: refused"
    with _client(small_limit, tokens.run) as client:
        client.put_blob(sha, path)
        assert _blob_puts(small_limit) == 1 + 4, "the refused PUT, then four 1 MiB chunks"
        client.get_blob(sha, tmp_path / "back.bin")
    assert (tmp_path / "back.bin").read_bytes() == data
    with _client(small_limit, tokens.read) as reader:
        assert reader.has_blob(sha), "the team holds the composed blob"


def test_an_interrupted_chunked_upload_resumes_from_the_chunks_it_lost(
    small_limit: ServerHandle, tmp_path: Path
) -> None:
    """The first two chunks arrived before the connection broke: the next ``put_blob``
    sends only the other two, then composes."""
    tokens = create_team_tokens(small_limit)
    path, data, sha = _file(tmp_path, "weights.bin", 4 * MIB)
    headers = bearer(tokens.run)
    with httpx.Client(base_url=small_limit.api, headers=headers, timeout=60) as http:
        for start in (0, MIB):
            chunk = data[start : start + MIB]
            answer = http.put(f"/blobs/{hashlib.sha256(chunk).hexdigest()}", content=chunk)
            assert answer.status_code == 201, answer.text
    assert _blob_puts(small_limit) == 2
    with _client(small_limit, tokens.run) as client:
        client.put_blob(sha, path)
        client.get_blob(sha, tmp_path / "back.bin")
    assert _blob_puts(small_limit) == 4, "only the two chunks that were missing"
    assert (tmp_path / "back.bin").read_bytes() == data


def test_compose_verifies_the_whole_and_takes_only_the_teams_chunks(
    small_limit: ServerHandle, tmp_path: Path
) -> None:
    vision = create_team_tokens(small_limit, "vision")
    audio = create_team_tokens(small_limit, "audio")
    chunks = []
    for index in range(2):
        path, _, sha = _file(tmp_path, f"c{index}", 1000)
        with _client(small_limit, vision.run) as client:
            client.put_blob(sha, path)
        chunks.append(sha)
    body = {"chunks": chunks}
    whole = hashlib.sha256(b"".join((tmp_path / f"c{i}").read_bytes() for i in range(2)))
    with httpx.Client(base_url=small_limit.api, headers=bearer(vision.run)) as http:
        wrong = http.post(f"/blobs/{'ab' * 32}/compose", json=body)
        assert wrong.status_code == 422 and "digest-mismatch" in wrong.json()["type"]
        assert http.head(f"/blobs/{'ab' * 32}").status_code == 404, "nothing installed"
        assert http.post(f"/blobs/{whole.hexdigest()}/compose", json=body).status_code == 201
    with httpx.Client(base_url=small_limit.api, headers=bearer(audio.run)) as http:
        taken = http.post(f"/blobs/{whole.hexdigest()}/compose", json=body)
        assert taken.status_code == 404
        assert f"chunk {chunks[0]} is not uploaded" in taken.json()["detail"]
