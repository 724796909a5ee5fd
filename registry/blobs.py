"""Content-addressed blob storage: module archives and step outputs, named by sha256.

A blob is written through a ``BlobWriter``: bytes stream into a temp file while their sha256
and size are computed; on ``commit`` the digest is checked against the name the caller gave,
the file is fsynced and renamed into place, so a blob is either absent or complete and
correct. Reads verify again (``open_verified``): a blob whose bytes no longer match its
name is deleted, logged at error level, counted (``corrupt_found``, which ``/health``
shows as ``corrupt_blobs``: since this server started) and reported as unknown, so it is
never served.

``LocalBlobStore`` keeps ``ROOT/ab/cdef…`` files; ``FsspecBlobStore`` does the same on any
fsspec URL (``s3://bucket/blobs``, ``memory://…``), staging through a local temp file.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

from modreg.registry.archive import CHUNK
from modreg.registry.errors import (
    DigestMismatchError,
    InvalidInputError,
    PayloadTooLargeError,
    UnknownBlobError,
)
from modreg.registry.hashing import sha256_file
from modreg.registry.schemas import SHA256_PATTERN

_SHA256 = re.compile(SHA256_PATTERN)
log = logging.getLogger(__name__)


def check_digest(sha256: str) -> str:
    """Reject anything but 64 lowercase hex digits."""
    if not _SHA256.match(sha256):
        raise InvalidInputError(f"invalid sha256 {sha256!r}: expected 64 lowercase hex digits")
    return sha256


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class BlobWriter:
    """Streams one upload into a temp file, then verifies and installs it (or discards it)."""

    def __init__(self, store: BlobStore, sha256: str, max_bytes: int, tmp_dir: Path) -> None:
        self.store, self.sha256, self.max_bytes = store, check_digest(sha256), max_bytes
        tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=tmp_dir, prefix=f"{sha256[:12]}-", suffix=".part")
        self.path = Path(name)
        self._file: BinaryIO | None = os.fdopen(fd, "wb")
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, chunk: bytes) -> None:
        assert self._file is not None, "blob writer already closed"
        self.size += len(chunk)
        if self.size > self.max_bytes:
            raise PayloadTooLargeError(
                f"blob {self.sha256} is larger than the upload limit of {self.max_bytes} bytes"
            )
        self._hash.update(chunk)
        self._file.write(chunk)

    def commit(self) -> int:
        """Verify the digest, make the bytes durable and install the blob; returns its size."""
        assert self._file is not None, "blob writer already closed"
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self._file = None
        actual = self._hash.hexdigest()
        if actual != self.sha256:
            raise DigestMismatchError(
                f"uploaded bytes have sha256 {actual}, not {self.sha256} as named",
                expected=self.sha256,
                actual=actual,
            )
        self.store.install(self.path, self.sha256)
        return self.size

    def abort(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.abort()  # after a commit the temp file is gone already: a no-op


class BlobStore(ABC):
    """Where blobs live. Subclasses store; this class holds the shared write/verify logic."""

    def __init__(self, tmp_dir: Path) -> None:
        self.tmp_dir = tmp_dir
        self.corrupt_found = 0  # blobs found corrupt (and dropped) since this store was made

    def writer(self, sha256: str, max_bytes: int) -> BlobWriter:
        """A writer for the blob named ``sha256``; use as a context manager, then commit."""
        return BlobWriter(self, sha256, max_bytes, self.tmp_dir)

    def put_file(self, path: Path, sha256: str, max_bytes: int = 2**62) -> int:
        """Store a local file under its (checked) digest; returns its size."""
        with self.writer(sha256, max_bytes) as writer, path.open("rb") as handle:
            while chunk := handle.read(CHUNK):
                writer.write(chunk)
            return writer.commit()

    @abstractmethod
    def install(self, staged: Path, sha256: str) -> None:
        """Move a verified, fsynced temp file into place as blob ``sha256``."""

    @abstractmethod
    def size(self, sha256: str) -> int | None:
        """The blob's size, or None when it is not stored."""

    @abstractmethod
    def delete(self, sha256: str) -> None:
        """Drop a blob (used for blobs found corrupt)."""

    @abstractmethod
    @contextmanager
    def open_verified(self, sha256: str) -> Iterator[Path]:
        """A local path holding the blob's bytes, checked against its digest.

        Raises ``UnknownBlobError`` when the blob is missing, or corrupt (then it is dropped).
        """

    def exists(self, sha256: str) -> bool:
        return self.size(sha256) is not None

    def _corrupt(self, sha256: str, actual: str) -> UnknownBlobError:
        log.error("blob %s is corrupt: its bytes hash to %s; dropped it", sha256, actual)
        self.corrupt_found += 1
        self.delete(sha256)
        return UnknownBlobError(
            f"blob {sha256} was corrupt on the server (its bytes hash to {actual}) and has "
            "been dropped; upload it again (a module archive: `modreg publish "
            "--skip-existing` from the commit it was published from)"
        )


class LocalBlobStore(BlobStore):
    """Blobs as files ``ROOT/ab/cdef…`` on the local filesystem."""

    def __init__(self, root: Path) -> None:
        super().__init__(root / "tmp")
        self.root = root

    def path_of(self, sha256: str) -> Path:
        check_digest(sha256)
        return self.root / sha256[:2] / sha256[2:]

    def install(self, staged: Path, sha256: str) -> None:
        final = self.path_of(sha256)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged, final)
        _fsync_dir(final.parent)

    def size(self, sha256: str) -> int | None:
        try:
            return self.path_of(sha256).stat().st_size
        except FileNotFoundError:
            return None

    def delete(self, sha256: str) -> None:
        self.path_of(sha256).unlink(missing_ok=True)

    @contextmanager
    def open_verified(self, sha256: str) -> Iterator[Path]:
        path = self.path_of(sha256)
        try:
            actual = sha256_file(path)
        except FileNotFoundError as exc:
            raise UnknownBlobError(f"blob {sha256} is not stored here") from exc
        if actual != sha256:
            raise self._corrupt(sha256, actual)
        yield path


class FsspecBlobStore(BlobStore):
    """Blobs under any fsspec URL, e.g. ``s3://bucket/modreg/blobs``.

    Endpoint and credentials come from the server's ``AWS_*`` variables. Listing caches are
    off, so a replica sees at once what another just wrote. On an object store one PUT (or a
    completed multipart upload) is atomic, so a blob is written under its key directly; a
    ``.part`` object renamed into place would be a copy plus a delete there.
    """

    def __init__(self, url: str, tmp_dir: Path, **storage_options: Any) -> None:
        import fsspec

        super().__init__(tmp_dir)
        options = {"use_listings_cache": False, **storage_options}
        self.fs, self.base = fsspec.core.url_to_fs(url, **options)
        self.base = self.base.rstrip("/")
        protocols = self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,)
        self._renames = bool({"file", "local"} & set(protocols))

    def key_of(self, sha256: str) -> str:
        check_digest(sha256)
        return f"{self.base}/{sha256[:2]}/{sha256[2:]}"

    def install(self, staged: Path, sha256: str) -> None:
        final = self.key_of(sha256)
        if not self._renames:
            try:
                self.fs.put_file(str(staged), final)
            finally:
                staged.unlink(missing_ok=True)
            return
        partial = f"{final}.{uuid.uuid4().hex}.part"
        self.fs.makedirs(final.rsplit("/", 1)[0], exist_ok=True)
        try:
            self.fs.put_file(str(staged), partial)
            self.fs.mv(partial, final)
        finally:
            staged.unlink(missing_ok=True)
            if self.fs.exists(partial):
                self.fs.rm(partial)

    def size(self, sha256: str) -> int | None:
        try:
            return int(self.fs.size(self.key_of(sha256)))
        except FileNotFoundError:
            return None

    def delete(self, sha256: str) -> None:
        try:
            self.fs.rm(self.key_of(sha256))
        except FileNotFoundError:
            pass

    @contextmanager
    def open_verified(self, sha256: str) -> Iterator[Path]:
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.tmp_dir) as scratch:
            local = Path(scratch) / sha256
            try:
                self.fs.get_file(self.key_of(sha256), str(local))
            except FileNotFoundError as exc:
                raise UnknownBlobError(f"blob {sha256} is not stored here") from exc
            actual = sha256_file(local)
            if actual != sha256:
                raise self._corrupt(sha256, actual)
            yield local


def make_blob_store(data_dir: Path, blob_url: str | None) -> BlobStore:
    """The store a server uses: a local folder, or an fsspec URL when one is configured."""
    if blob_url:
        return FsspecBlobStore(blob_url, data_dir / "tmp")
    return LocalBlobStore(data_dir / "blobs")
