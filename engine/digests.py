"""Content digests of files and folders, with a stat cache so unchanged files are not re-hashed.

A file's digest is the sha256 of its bytes. A folder's digest is the sha256 of its
*manifest*, a wire format of the registry (``modreg.registry.schemas.DirManifest``: canonical
JSON of its files' digests and sizes). The artifact store keeps that same manifest as a blob,
so a folder given as a path and a folder produced by a step have the same digest when their
files do, and the registry can follow a folder output to its files.

``DigestCache`` remembers ``path -> (size, mtime_ns, inode, digest)`` in one JSON file in the
state dir. A file is re-hashed only when one of those changed, or when its mtime is so recent
that a write in the same clock tick could go unnoticed (the "racy" case git guards against).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

from modreg.registry.hashing import sha256_file
from modreg.registry.schemas import DirManifest

CHUNK = 1 << 20
RACY_SECONDS = 1.0


def canonical_json(value: Any) -> bytes:
    """Sorted, compact JSON bytes: the same value always gives the same bytes."""
    text = json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return text.encode("utf-8")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def walk_files(root: Path) -> list[tuple[str, Path]]:
    """Every regular file under ``root`` (following links), as (relative POSIX path, path)."""
    found = []
    for folder, dirs, files in os.walk(root, followlinks=True):
        dirs.sort()
        for name in files:
            path = Path(folder, name)
            found.append((path.relative_to(root).as_posix(), path))
    return sorted(found)


class DigestCache:
    """Digests of local files, remembered by (size, mtime_ns, inode) across runs."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._entries: dict[str, list[Any]] = self._load()
        self._dirty = False

    def _load(self) -> dict[str, list[Any]]:
        if self.path is None:
            return {}
        try:
            data = json.loads(self.path.read_bytes())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def file_digest(self, path: Path) -> tuple[str, int]:
        """(sha256, size) of a file, hashed only if it changed since last time."""
        info = os.stat(path)
        key = os.fspath(path)
        stamp = [info.st_size, info.st_mtime_ns, info.st_ino]
        cached = self._entries.get(key)
        if cached is not None and cached[:3] == stamp:
            return cached[3], info.st_size
        digest = sha256_file(path)
        if time.time_ns() - info.st_mtime_ns > RACY_SECONDS * 1e9:
            self._entries[key] = [*stamp, digest]
            self._dirty = True
        return digest, info.st_size

    def dir_digest(self, root: Path) -> tuple[str, int]:
        """(manifest digest, total size) of a folder."""
        files = {rel: self.file_digest(path) for rel, path in walk_files(root)}
        manifest = DirManifest.of(files).to_bytes()
        return sha256_bytes(manifest), sum(size for _, size in files.values())

    def digest(self, path: Path) -> tuple[str, str, int]:
        """("file" or "dir", digest, size) of a path."""
        if path.is_dir():
            return ("dir", *self.dir_digest(path))
        return ("file", *self.file_digest(path))

    def save(self) -> None:
        """Write the cache back (atomically) if anything was learned."""
        if self.path is None or not self._dirty:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        temp.write_bytes(json.dumps(self._entries).encode())
        os.replace(temp, self.path)
        self._dirty = False
