"""Pulling sources from a real registry: verify, cache by digest, place, reject bad archives."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from factories import make_module_repo

from modreg.client import RegistryClient, publish, pull
from modreg.client.errors import PullError
from modreg.client.pulling import sources_dir
from modreg.engine.sources import SourceCache
from modreg.registry.errors import DigestMismatchError, UnknownBlobError, UnsafeArchiveError
from modreg.registry.schemas import Manifest, VersionCreate

PULL_KEYS = {"module", "version", "commit", "path"}


class CountingTransport(httpx.HTTPTransport):
    """The real HTTP transport, remembering every request it sends."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(f"{request.method} {request.url.path}")
        return super().handle_request(request)


def _published(shared: Any, tmp_path: Path, name: str, **options: Any) -> Path:
    folder = make_module_repo(tmp_path, name=name, **options)
    with RegistryClient(shared.url, shared.publish) as client:
        publish(client, folder)
    return folder


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_pull_verifies_caches_and_serves_the_second_pull_from_the_cache(
    shared: Any, tmp_path: Path, module_name: str
) -> None:
    _published(shared, tmp_path, module_name, files={"lib/x.py": "X = 1\n"})
    transport = CountingTransport()
    with RegistryClient(shared.url, shared.read, transport=transport) as client:
        first = pull(client, f"{module_name}@^1", tmp_path / "first")
        downloads = [r for r in transport.requests if r.startswith("GET /api/v1/blobs/")]
        second = pull(client, module_name, tmp_path / "second")
    assert (first.cached, second.cached) == (False, True)
    assert downloads == [f"GET /api/v1/blobs/{first.version.sha256}"]
    assert [r for r in transport.requests if r.startswith("GET /api/v1/blobs/")] == downloads
    assert transport.requests[-1] == "POST /api/v1/resolve"
    for placed in (first.path, second.path):
        assert sorted(p.relative_to(placed).as_posix() for p in placed.rglob("*.py")) == [
            "lib/x.py",
            "main.py",
        ]
    cached = sources_dir() / first.version.sha256
    sha = first.version.sha256  # the folder, its record and its archive (engine/sources.py)
    assert cached.is_dir() and _leftovers(sources_dir()) == [
        sha,
        f"{sha}.files.json",
        f"{sha}.tar.gz",
    ]


def test_cli_pull_json_and_cache_message(
    shared: Any, tmp_path: Path, run: Any, module_name: str
) -> None:
    _published(shared, tmp_path, module_name)
    result = run(
        *shared.options("read"),
        "pull",
        f"{module_name}@1.0.0",
        "--dest",
        tmp_path / "out",
        "--json",
    )
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert PULL_KEYS <= set(data) and data["path"] == str(tmp_path / "out")
    assert (data["module"], data["version"], data["cached"]) == (module_name, "1.0.0", False)
    again = run(*shared.options("read"), "pull", module_name)
    assert again.exit_code == 0 and "(from the cache)" in again.stdout


def test_pull_into_a_non_empty_destination_is_refused(
    shared: Any, tmp_path: Path, module_name: str
) -> None:
    _published(shared, tmp_path, module_name)
    dest = tmp_path / "busy"
    dest.mkdir()
    (dest / "keep.txt").write_text("mine")
    with (
        RegistryClient(shared.url, shared.read) as client,
        pytest.raises(PullError, match="not an empty"),
    ):
        pull(client, module_name, dest)
    assert _leftovers(dest) == ["keep.txt"]


def test_a_tampered_archive_leaves_nothing_behind(
    shared: Any, tmp_path: Path, run: Any, module_name: str
) -> None:
    _published(shared, tmp_path, module_name)
    with RegistryClient(shared.url, shared.read) as client:
        sha256 = client.get_version(module_name, "1.0.0").sha256
    [blob] = [p for p in shared.data_dir.rglob(sha256[2:]) if p.parent.name == sha256[:2]]
    blob.write_bytes(blob.read_bytes() + b"tampered")
    result = run(*shared.options("read"), "pull", module_name, "--dest", tmp_path / "out")
    assert result.exit_code == 1
    damaged = f"error: the archive of {module_name}@1.0.0 is damaged on the server (blob {sha256}"
    assert result.stderr.startswith(damaged)
    assert "repair it: run `modreg publish --skip-existing` from commit" in result.stderr
    assert result.stderr.count("\n") == 1
    assert [name for name in _leftovers(tmp_path) if "out" in name] == []  # no staging folder
    assert _leftovers(sources_dir()) == []


def test_a_download_that_does_not_match_its_digest_is_not_kept(
    shared: Any, tmp_path: Path, module_name: str
) -> None:
    _published(shared, tmp_path, module_name)
    dest = tmp_path / "dl" / "archive.tar.gz"
    with (
        RegistryClient(shared.url, shared.read) as client,
        pytest.raises(DigestMismatchError) as caught,
    ):
        client.download_archive(module_name, "1.0.0", dest, "0" * 64)
    assert "expected 0000" in str(caught.value)
    assert _leftovers(dest.parent) == []


def test_a_missing_blob_is_unknown(shared: Any, tmp_path: Path) -> None:
    with RegistryClient(shared.url, shared.read) as client, pytest.raises(UnknownBlobError):
        client.get_blob("f" * 64, tmp_path / "blob")
    assert not (tmp_path / "blob").exists()


# --- malicious archives -----------------------------------------------------------------


def _tar(add: Callable[[tarfile.TarFile], None]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("modreg.toml")
        info.size = 0
        tar.addfile(info, io.BytesIO(b""))
        add(tar)
    return buffer.getvalue()


def _member(
    name: str, kind: bytes = tarfile.REGTYPE, link: str = "", data: bytes = b"x"
) -> Callable[[tarfile.TarFile], None]:
    def add(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo(name)
        info.type, info.linkname = kind, link
        info.size = len(data) if kind == tarfile.REGTYPE else 0
        tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)

    return add


MALICIOUS = {
    "traversal": _member("../evil.txt"),
    "nested-traversal": _member("a/../../evil.txt"),
    "absolute": _member("/tmp/modreg-evil.txt"),
    "symlink-out": _member("link", tarfile.SYMTYPE, "../../outside"),
    "symlink-absolute": _member("link", tarfile.SYMTYPE, "/etc/passwd"),
    "hardlink-out": _member("hard", tarfile.LNKTYPE, "../outside"),
    "device": _member("dev", tarfile.CHRTYPE),
    "fifo": _member("pipe", tarfile.FIFOTYPE),
}


@pytest.mark.parametrize("kind", sorted(MALICIOUS))
def test_malicious_archives_are_rejected_whole(shared: Any, tmp_path: Path, kind: str) -> None:
    """The source cache pull and run share: a bad archive leaves nothing in the cache."""
    data = _tar(MALICIOUS[kind])
    sha256 = hashlib.sha256(data).hexdigest()
    (tmp_path / "evil.tar.gz").write_bytes(data)
    cache = tmp_path / "cache"
    with RegistryClient(shared.url, shared.publish) as client:
        client.put_blob(sha256, tmp_path / "evil.tar.gz")
    with RegistryClient(shared.url, shared.admin) as client, pytest.raises(UnsafeArchiveError):
        SourceCache(cache, client).ensure(sha256)
    assert _leftovers(cache) == []
    assert not Path("/tmp/modreg-evil.txt").exists() and not (tmp_path / "evil.txt").exists()


def test_the_registry_refuses_to_publish_a_malicious_archive(
    shared: Any, tmp_path: Path, module_name: str
) -> None:
    data = _tar(MALICIOUS["traversal"])
    sha256 = hashlib.sha256(data).hexdigest()
    (tmp_path / "evil.tar.gz").write_bytes(data)
    manifest = Manifest(name=module_name, version="1.0.0", command=["python", "main.py"])
    version = VersionCreate(
        version="1.0.0", commit="a" * 40, tree_sha="b" * 40, sha256=sha256, manifest=manifest
    )
    with RegistryClient(shared.url, shared.publish) as client:
        client.put_blob(sha256, tmp_path / "evil.tar.gz")
        with pytest.raises(UnsafeArchiveError):
            client.publish_version(module_name, version)
