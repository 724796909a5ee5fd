"""Artifact stores, one suite for every implementation: local folder and fsspec (memory://)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from modreg.engine import (
    ArtifactStore,
    CorruptBlobError,
    FsspecArtifactStore,
    LocalArtifactStore,
    MissingBlobError,
)
from modreg.engine.digests import DigestCache
from modreg.registry.schemas import PortType


@pytest.fixture(params=["local", "memory", "file"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ArtifactStore]:
    if request.param == "local":
        yield LocalArtifactStore(tmp_path / "store")
    elif request.param == "memory":
        yield FsspecArtifactStore(f"memory://modreg-test-{uuid.uuid4().hex}")
    else:
        yield FsspecArtifactStore(f"file://{tmp_path / 'fs-store'}")


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
