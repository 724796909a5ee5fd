"""Artifact stores: content-addressed blobs of step outputs.

A file output is one blob named by its sha256. A folder output is a *manifest* blob (the
registry's wire format ``schemas.DirManifest``) plus one blob per file; its digest is the
manifest's. A blob is either complete or absent, whatever instant the process dies at: on
a filesystem it is written to a temporary name and renamed into place; on an object store
(S3) one PUT, or a completed multipart upload, is already atomic, and a rename would be a
copy plus a delete that leaks temporary objects, so the object is written under its name
directly. Bytes stream through in chunks: an output of any size never sits in memory.
Every read is verified: a blob whose bytes do not match its name is dropped and reported
(``CorruptBlobError``), and the caller fetches or recomputes it.

``ArtifactStore`` holds that logic over four primitives; ``LocalArtifactStore`` (a folder) and
``FsspecArtifactStore`` (any fsspec URL: ``s3://…``, ``memory://…``) provide them. A store
given by URL is *shared* (``shared_url``): the team's engines and workers open the same URL,
each with its own credentials (``AWS_*``), so step outputs stay there and are not copied to
the registry.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import IO, Any

from modreg.engine.digests import CHUNK, sha256_bytes, walk_files
from modreg.engine.errors import CorruptBlobError, MissingBlobError, StoreURLError
from modreg.registry.hashing import sha256_file
from modreg.registry.schemas import DirManifest, OutputRef, PortType


def _copy_hashing(source: IO[bytes], dest: IO[bytes]) -> str:
    digest = hashlib.sha256()
    while chunk := source.read(CHUNK):
        digest.update(chunk)
        dest.write(chunk)
    return digest.hexdigest()


def _safe_relative(rel: str) -> PurePosixPath:
    path = PurePosixPath(rel)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise ValueError(f"unsafe path {rel!r} in a folder manifest")
    return path


class ArtifactStore(ABC):
    """Content-addressed blobs; outputs put in and materialised back out, verified."""

    # --- primitives ---------------------------------------------------------------------

    @abstractmethod
    def has_blob(self, digest: str) -> bool: ...

    @abstractmethod
    def put_path(self, path: Path, move: bool = False) -> tuple[str, int]:
        """Store a file's bytes; (sha256, size). ``move`` lets a store take the file itself."""

    @abstractmethod
    def _open(self, digest: str) -> IO[bytes]: ...

    @abstractmethod
    def drop(self, digest: str) -> None:
        """Forget a blob (it was corrupt, or collected)."""

    @abstractmethod
    def list_blobs(self) -> Iterator[tuple[str, datetime]]:
        """Every blob stored, with when it was written (for ``store_gc``)."""

    def local_path(self, digest: str) -> Path | None:
        """A local file holding the blob, when the store has one (not verified)."""
        return None

    @property
    def shared_url(self) -> str | None:
        """The URL every engine and worker of the team opens this store by; None for a
        store of one machine (its outputs are shared through the registry's blobs)."""
        return None

    # --- shared logic -------------------------------------------------------------------

    def put_bytes(self, data: bytes) -> str:
        """Store bytes; their sha256."""
        temp = Path(os.environ.get("TMPDIR", "/tmp"), f"modreg-{uuid.uuid4().hex}")
        temp.write_bytes(data)
        try:
            return self.put_path(temp, move=True)[0]
        finally:
            temp.unlink(missing_ok=True)

    def put_output(self, path: Path, port_type: PortType | str, move: bool = False) -> OutputRef:
        """Store a step output (a file, or a folder as manifest + files)."""
        if PortType(port_type) == PortType.file:
            digest, size = self.put_path(path, move)
            return OutputRef(type=PortType.file, digest=digest, size=size)
        files = {rel: self.put_path(file, move) for rel, file in walk_files(path)}
        digest = self.put_bytes(DirManifest.of(files).to_bytes())
        total = sum(size for _, size in files.values())
        return OutputRef(type=PortType.dir, digest=digest, size=total)

    def _open_checked(self, digest: str) -> IO[bytes]:
        try:
            return self._open(digest)
        except FileNotFoundError as exc:
            raise MissingBlobError(digest, f"blob {digest[:12]} is not in the store") from exc

    def read_to(self, digest: str, dest: Path) -> None:
        """Copy a blob to ``dest``, verifying it; a corrupt blob is dropped and reported."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        with self._open_checked(digest) as source, open(dest, "wb") as out:
            actual = _copy_hashing(source, out)
        if actual != digest:
            dest.unlink(missing_ok=True)
            self.drop(digest)
            raise CorruptBlobError(
                digest,
                f"blob {digest[:12]} was corrupt (its bytes hash to {actual[:12]}); dropped it",
            )

    def read_bytes(self, digest: str) -> bytes:
        """A blob's bytes, verified."""
        with self._open_checked(digest) as source:
            data = source.read()
        if sha256_bytes(data) != digest:
            self.drop(digest)
            raise CorruptBlobError(digest, f"blob {digest[:12]} was corrupt; dropped it")
        return data

    def dir_files(self, digest: str) -> dict[str, tuple[str, int]]:
        """The files of a folder output, from its manifest blob."""
        data = self.read_bytes(digest)
        try:
            return DirManifest.from_bytes(data).members()
        except (ValueError, KeyError, TypeError) as exc:
            raise CorruptBlobError(digest, f"blob {digest[:12]} is not a folder manifest") from exc

    def blobs_of(self, ref: OutputRef) -> list[str]:
        """Every blob an output consists of (file blobs first, then its manifest)."""
        if ref.type == PortType.file:
            return [ref.digest]
        return [digest for digest, _ in self.dir_files(ref.digest).values()] + [ref.digest]

    def has_output(self, ref: OutputRef) -> bool:
        """Whether the output's top blob is here (cheap; contents are verified on read)."""
        return self.has_blob(ref.digest)

    def materialize(self, ref: OutputRef, dest: Path) -> None:
        """Write an output to ``dest`` (a file, or a folder of files), verified."""
        if ref.type == PortType.file:
            self.read_to(ref.digest, dest)
            return
        dest.mkdir(parents=True, exist_ok=True)
        for rel, (digest, _) in self.dir_files(ref.digest).items():
            self.read_to(digest, dest.joinpath(*_safe_relative(rel).parts))


class LocalArtifactStore(ArtifactStore):
    """Blobs in a local folder: ``ROOT/blobs/ab/abcdef…``, written by rename."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self._blobs = self.root / "blobs"
        self._temp = self.root / "tmp"

    def __repr__(self) -> str:
        return f"LocalArtifactStore({str(self.root)!r})"

    def _path(self, digest: str) -> Path:
        return self._blobs / digest[:2] / digest

    def local_path(self, digest: str) -> Path | None:
        path = self._path(digest)
        return path if path.exists() else None

    def has_blob(self, digest: str) -> bool:
        return self._path(digest).exists()

    def put_path(self, path: Path, move: bool = False) -> tuple[str, int]:
        if move:
            return self._adopt(path)
        self._temp.mkdir(parents=True, exist_ok=True)
        temp = self._temp / uuid.uuid4().hex
        with open(path, "rb") as source, open(temp, "wb") as out:
            digest = _copy_hashing(source, out)
            size = out.tell()
        self._publish(temp, digest)
        return digest, size

    def _adopt(self, path: Path) -> tuple[str, int]:
        """Move a file into the store without copying it, when on the same filesystem."""
        digest, size = sha256_file(path), path.stat().st_size
        if self.has_blob(digest):
            return digest, size
        self._temp.mkdir(parents=True, exist_ok=True)
        temp = self._temp / uuid.uuid4().hex
        try:
            os.rename(path, temp)
        except OSError:
            shutil.copyfile(path, temp)
        self._publish(temp, digest)
        return digest, size

    def _publish(self, temp: Path, digest: str) -> None:
        final = self._path(digest)
        if final.exists():
            temp.unlink()
            return
        final.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(temp, 0o444)
        os.replace(temp, final)

    def put_bytes(self, data: bytes) -> str:
        self._temp.mkdir(parents=True, exist_ok=True)
        temp = self._temp / uuid.uuid4().hex
        temp.write_bytes(data)
        digest = sha256_bytes(data)
        self._publish(temp, digest)
        return digest

    def _open(self, digest: str) -> IO[bytes]:
        return open(self._path(digest), "rb")

    def drop(self, digest: str) -> None:
        self._path(digest).unlink(missing_ok=True)

    def list_blobs(self) -> Iterator[tuple[str, datetime]]:
        for path in self._blobs.glob("??/*"):
            with contextlib.suppress(FileNotFoundError):
                yield path.name, datetime.fromtimestamp(path.stat().st_mtime, UTC)


class FsspecArtifactStore(ArtifactStore):
    """Blobs under any fsspec URL (``s3://bucket/prefix``, ``memory://x``, ``file:///…``).

    Opened from the URL alone: endpoint and credentials come from the process's own
    environment (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``…, read by botocore), so a
    worker on another machine opens the same store with its own. Listing caches are off:
    a cached listing could hide a blob another engine wrote a moment ago.
    """

    def __init__(self, url: str, **storage_options: Any) -> None:
        import fsspec  # heavy: imported only when a team store is configured

        self.url = url
        options = {"use_listings_cache": False, **storage_options}
        try:
            self.fs, root = fsspec.core.url_to_fs(url, **options)
        except ImportError as exc:  # fsspec names the package: "Install s3fs to access S3"
            extra = " (pip install 'modreg[s3]')" if url.startswith("s3://") else ""
            raise StoreURLError(f"artifact store {url!r}: {exc}{extra}") from exc
        except ValueError as exc:  # "Protocol not known: foo"
            raise StoreURLError(f"artifact store {url!r}: {exc}") from exc
        self.root = root.rstrip("/")
        protocols = self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,)
        self._renames = bool({"file", "local"} & set(protocols))
        self._shared = "memory" not in protocols  # one process's memory is nobody else's

    def __repr__(self) -> str:
        return f"FsspecArtifactStore({self.url!r})"

    def __reduce__(self) -> tuple[type[FsspecArtifactStore], tuple[str]]:
        """Pickled as its URL: a worker reopens it with its own credentials."""
        return (FsspecArtifactStore, (self.url,))

    @property
    def shared_url(self) -> str | None:
        return self.url if self._shared else None

    def _path(self, digest: str) -> str:
        return f"{self.root}/blobs/{digest[:2]}/{digest}"

    def has_blob(self, digest: str) -> bool:
        return bool(self.fs.exists(self._path(digest)))

    def put_path(self, path: Path, move: bool = False) -> tuple[str, int]:
        digest, size = sha256_file(path), path.stat().st_size
        final = self._path(digest)
        if self.fs.exists(final):
            return digest, size
        if not self._renames:  # one PUT / a completed multipart upload: atomic already
            self.fs.put_file(os.fspath(path), final)
            return digest, size
        temp = f"{self.root}/tmp/{uuid.uuid4().hex}"
        self.fs.makedirs(f"{self.root}/tmp", exist_ok=True)
        self.fs.makedirs(final.rsplit("/", 1)[0], exist_ok=True)
        self.fs.put_file(os.fspath(path), temp)
        self.fs.mv(temp, final)
        return digest, size

    def _open(self, digest: str) -> IO[bytes]:
        path = self._path(digest)
        if not self.fs.exists(path):
            raise FileNotFoundError(path)
        return self.fs.open(path, "rb")  # type: ignore[no-any-return]

    def drop(self, digest: str) -> None:
        path = self._path(digest)
        if self.fs.exists(path):
            self.fs.rm(path)

    def list_blobs(self) -> Iterator[tuple[str, datetime]]:
        found = self.fs.find(f"{self.root}/blobs", detail=True)
        for path, info in found.items():
            yield path.rsplit("/", 1)[-1], _modified(info)


def _modified(info: dict[str, Any]) -> datetime:
    """When an fsspec listing says an object was written: S3's ``LastModified``, a local
    file's ``mtime``, a memory file's ``created``."""
    when = info.get("LastModified") or info.get("mtime") or info.get("created")
    if isinstance(when, datetime):
        return when if when.tzinfo else when.replace(tzinfo=UTC)
    return datetime.fromtimestamp(float(when or 0), UTC)
