"""A blob whose bytes rotted on the server's disk: logged, counted, named, and repairable.

It used to vanish silently: the server dropped it without a log line, the version stayed
listed with an archive that could not be served, and the client said only "unknown blob".
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import pytest
from registry_data import COMMIT_A, module_archive, publish_body
from registry_servers import ServerHandle, bearer, create_team_tokens

from modreg.client.http import RegistryClient
from modreg.registry.errors import DamagedArchiveError

ARCHIVE = module_archive()
SHA = hashlib.sha256(ARCHIVE).hexdigest()


def _publish(server: ServerHandle, token: str) -> None:
    with httpx.Client(base_url=server.api, headers=bearer(token)) as http:
        assert http.put(f"/blobs/{SHA}", content=ARCHIVE).status_code in (200, 201)
        assert http.post("/modules/vision/prep/versions", json=publish_body(SHA)).is_success


def _rot(server: ServerHandle) -> None:
    path = server.data_dir / "blobs" / SHA[:2] / SHA[2:]
    path.write_bytes(path.read_bytes()[:-1] + b"!")


def _server_log(server: ServerHandle) -> str:
    return "".join(log.read_text() for log in Path(server.data_dir).glob("server-*.log"))


def test_a_corrupt_archive_is_logged_counted_named_and_repaired(
    registry_server: ServerHandle, tmp_path: Path
) -> None:
    publish = create_team_tokens(registry_server, "vision").publish
    _publish(registry_server, publish)
    _rot(registry_server)
    with RegistryClient(registry_server.url, publish) as client:
        with pytest.raises(DamagedArchiveError) as caught:
            client.download_archive("vision/prep", "1.0.0", tmp_path / "a.tar.gz", SHA)
        assert "vision/prep@1.0.0 is damaged on the server" in caught.value.detail
        assert f"modreg publish --skip-existing` from commit {COMMIT_A}" in caught.value.detail
        with pytest.raises(DamagedArchiveError):  # gone now, and still named as damaged
            client.download_archive("vision/prep", "1.0.0", tmp_path / "a.tar.gz", SHA)
    assert any(
        "ERROR" in line and SHA in line for line in _server_log(registry_server).splitlines()
    )
    health = httpx.get(f"{registry_server.api}/health").json()
    assert health["corrupt_blobs"] == 1
    _publish(registry_server, publish)  # the repair: the same publish again
    with RegistryClient(registry_server.url, publish) as client:
        client.download_archive("vision/prep", "1.0.0", tmp_path / "a.tar.gz", SHA)
    assert (tmp_path / "a.tar.gz").read_bytes() == ARCHIVE
