"""Artifact stores, one suite for every implementation: a local folder, and fsspec on
``memory://``, ``file://`` and a real S3 API (moto's server on loopback, ``s3_server``)."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from s3_server import S3Server

from modreg.engine import (
    ArtifactStore,
    CorruptBlobError,
    FsspecArtifactStore,
    LocalArtifactStore,
    MissingBlobError,
)
from modreg.engine.digests import DigestCache
from modreg.registry.schemas import PortType


@pytest.fixture(params=["local", "memory", "file", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ArtifactStore]:
    yield from _store(request, tmp_path)


@pytest.fixture(params=["file", "s3"])
def shared_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ArtifactStore]:
    """The stores another engine or a worker opens by their URL."""
    yield from _store(request, tmp_path)


def _store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ArtifactStore]:
    if request.param == "local":
        yield LocalArtifactStore(tmp_path / "store")
    elif request.param == "memory":
        yield FsspecArtifactStore(f"memory://modreg-test-{uuid.uuid4().hex}")
    elif request.param == "file":
        yield FsspecArtifactStore(f"file://{tmp_path / 'fs-store'}")
    else:
        s3: S3Server = request.getfixturevalue("s3_server")
        yield FsspecArtifactStore(f"s3://{s3.bucket()}/team/artifacts")


def corrupt(store: ArtifactStore, digest: str) -> None:
    if isinstance(store, LocalArtifactStore):
        path = store.local_path(digest)
        assert path is not None
        os.chmod(path, 0o644)
        path.write_bytes(b"rotten")
    else:
        assert isinstance(store, FsspecArtifactStore)
        store.fs.pipe(store._path(digest), b"rotten")


def test_file_output_round_trip(store: ArtifactStore, tmp_path: Path) -> None:
    source = tmp_path / "out.bin"
    source.write_bytes(b"model weights")
    ref = store.put_output(source, PortType.file)
    assert ref.digest == DigestCache().digest(source)[1] and ref.size == 13
    store.materialize(ref, tmp_path / "back.bin")
    assert (tmp_path / "back.bin").read_bytes() == b"model weights"


def test_dir_output_digest_matches_a_dir_input_digest(store: ArtifactStore, tmp_path: Path) -> None:
    folder = tmp_path / "dataset"
    (folder / "split").mkdir(parents=True)
    (folder / "a.txt").write_text("a")
    (folder / "split" / "b.txt").write_text("b")
    ref = store.put_output(folder, PortType.dir)
    assert ref.digest == DigestCache().digest(folder)[1]
    assert len(store.blobs_of(ref)) == 3
    store.materialize(ref, tmp_path / "back")
    assert (tmp_path / "back" / "split" / "b.txt").read_text() == "b"


def test_corrupt_blob_is_reported_and_dropped(store: ArtifactStore, tmp_path: Path) -> None:
    source = tmp_path / "out.bin"
    source.write_bytes(b"good bytes")
    ref = store.put_output(source, PortType.file)
    corrupt(store, ref.digest)
    with pytest.raises(CorruptBlobError, match="was corrupt"):
        store.materialize(ref, tmp_path / "back.bin")
    assert not store.has_blob(ref.digest)
    assert not (tmp_path / "back.bin").exists()
    with pytest.raises(MissingBlobError):
        store.materialize(ref, tmp_path / "back.bin")
    # Putting the same content again heals the store.
    assert store.put_output(source, PortType.file) == ref
    store.materialize(ref, tmp_path / "back.bin")


def test_moved_outputs_leave_no_temporary_files(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "store")
    folder = tmp_path / "out"
    folder.mkdir()
    for index in range(5):
        (folder / f"{index}.txt").write_text(str(index))
    store.put_output(folder, PortType.dir, move=True)
    assert list((tmp_path / "store" / "tmp").iterdir()) == []


def test_a_missing_blob_is_reported_not_served(store: ArtifactStore, tmp_path: Path) -> None:
    source = tmp_path / "out.bin"
    source.write_bytes(b"gone soon")
    ref = store.put_output(source, PortType.file)
    store.drop(ref.digest)  # as a lifecycle rule or an operator would, behind our back
    assert not store.has_output(ref)
    with pytest.raises(MissingBlobError, match="is not in the store"):
        store.materialize(ref, tmp_path / "back.bin")
    assert not (tmp_path / "back.bin").exists()


def test_a_blob_another_engine_just_wrote_is_seen_at_once(
    shared_store: ArtifactStore, tmp_path: Path
) -> None:
    store = shared_store
    assert isinstance(store, FsspecArtifactStore)
    source = tmp_path / "out.bin"
    source.write_bytes(b"written elsewhere")
    digest = DigestCache().digest(source)[1]
    assert not store.has_blob(digest)  # a listing cache would now remember "absent"
    other = FsspecArtifactStore(store.url)
    other.put_output(source, PortType.file)
    assert store.has_blob(digest)


def test_s3_writes_leave_no_temporary_objects(s3_server: S3Server, tmp_path: Path) -> None:
    bucket = s3_server.bucket()
    store = FsspecArtifactStore(f"s3://{bucket}/p")
    folder = tmp_path / "out"
    folder.mkdir()
    for index in range(3):
        (folder / f"{index}.txt").write_text(str(index))
    ref = store.put_output(folder, PortType.dir, move=True)
    keys = s3_server.keys(bucket)
    assert keys == sorted(f"p/blobs/{d[:2]}/{d}" for d in store.blobs_of(ref))


UPLOADER = """
import sys
from pathlib import Path
from modreg.engine.store import FsspecArtifactStore
FsspecArtifactStore(sys.argv[1]).put_path(Path(sys.argv[2]))
"""


def _wait_for_request(s3: S3Server, fragment: str, uploader: subprocess.Popen[bytes]) -> None:
    """Until moto has answered a request naming ``fragment`` (the uploader still alive)."""
    while fragment not in s3.log.read_text(errors="replace"):
        assert uploader.poll() is None, "the uploader finished before it could be killed"
        time.sleep(0.02)


def test_an_interrupted_s3_upload_leaves_no_partial_blob(
    s3_server: S3Server, tmp_path: Path
) -> None:
    """An uploader killed once it has checked that the blob is absent — so in the middle of
    its PUT — leaves no object under the blob's name but a complete one, and no temporary
    object anywhere; the next upload of the same bytes completes and reads back verified."""
    bucket = s3_server.bucket()
    url = f"s3://{bucket}/p"
    big = tmp_path / "model.bin"
    with open(big, "wb") as out:
        for _ in range(24):  # 96 MiB: several seconds of PUT on loopback
            out.write(os.urandom(4 * 2**20))
    digest = DigestCache().digest(big)[1]
    uploader = subprocess.Popen([sys.executable, "-c", UPLOADER, url, str(big)])
    try:
        _wait_for_request(s3_server, f"HEAD /{bucket}/p/blobs/{digest[:2]}/{digest}", uploader)
    finally:
        uploader.kill()
        uploader.wait()
    store = FsspecArtifactStore(url)
    assert s3_server.keys(bucket) in ([], [f"p/blobs/{digest[:2]}/{digest}"])
    if store.has_blob(digest):  # the PUT had just completed: then it is whole
        store.read_to(digest, tmp_path / "whole.bin")
    assert store.put_path(big) == (digest, big.stat().st_size)
    store.read_to(digest, tmp_path / "back.bin")
    assert (tmp_path / "back.bin").stat().st_size == big.stat().st_size


def test_a_worker_reopens_a_pickled_store_by_its_url(
    shared_store: ArtifactStore, tmp_path: Path
) -> None:
    """A store handed to a worker process travels as its URL: the worker opens it with its
    own credentials (the ``AWS_*`` of its environment), not the sender's."""
    store = shared_store
    assert isinstance(store, FsspecArtifactStore)
    source = tmp_path / "out.bin"
    source.write_bytes(b"made on the engine's machine")
    ref = store.put_output(source, PortType.file)
    code = (
        "import pickle, sys; from pathlib import Path\n"
        "from modreg.registry.schemas import OutputRef\n"
        "store, ref = pickle.loads(sys.stdin.buffer.read())\n"
        "store.materialize(ref, Path(sys.argv[1]))\n"
    )
    payload = pickle.dumps((store, ref))
    assert b"modreg-test-secret" not in payload, "no credentials travel with it"
    worker = [sys.executable, "-c", code, str(tmp_path / "back.bin")]
    subprocess.run(worker, input=payload, check=True)
    assert (tmp_path / "back.bin").read_bytes() == b"made on the engine's machine"


def test_a_store_url_that_cannot_be_opened_is_one_error_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from modreg.client.cli import cli
    from modreg.engine import StoreURLError

    with pytest.raises(StoreURLError) as caught:
        FsspecArtifactStore("foo://bar")
    assert str(caught.value) == "artifact store 'foo://bar': Protocol not known: foo"
    import fsspec  # noqa: F401 - its registry module, below

    loaded = sys.modules["fsspec.registry"]._registry  # the classes imported so far
    monkeypatch.setitem(sys.modules, "s3fs", None)  # as where the s3 extra is not installed
    monkeypatch.delitem(loaded, "s3", raising=False)  # imported by the S3 tests before this
    with pytest.raises(StoreURLError) as caught:
        FsspecArtifactStore("s3://bucket/team")
    assert str(caught.value) == (
        "artifact store 's3://bucket/team': Install s3fs to access S3 (pip install 'modreg[s3]')"
    )
    pipeline = tmp_path / "pipeline.yaml"
    pipeline.write_text("name: p\nsteps:\n  a:\n    uses: t/m@^1\n")
    env = {"MODREG_URL": "http://127.0.0.1:1", "MODREG_TOKEN": "t", "MODREG_STORE": "foo://bar"}
    result = CliRunner().invoke(cli, ["run", str(pipeline)], env=env)
    assert (result.exit_code, result.stderr) == (
        1,
        "error: artifact store 'foo://bar': Protocol not known: foo\n",
    )
