"""Module sources: archives pulled by sha256, verified, extracted safely, cached by digest,
and verified again before every use.

Layout under ``SOURCES`` (``STATE/sources``)::

    <sha256>/             the extracted archive whose digest is ``sha256``
    <sha256>.files.json   what that folder held when extracted (``SourceManifest``)
    <sha256>.tar.gz       the archive itself, kept to extract again without the network

A folder is created by extracting into a temporary folder, recording its manifest and
renaming (``archive.safe_extract``), so it is complete or absent and never without its
record; two processes filling the same entry both succeed. Before every use ``ensure``
compares the folder with its record (a stat-only check, re-hashing only what moved, see
``source_manifest``): a folder edited since extraction would run someone's changed code
and make its output the team's cache entry. A changed or unrecorded folder is set aside
and extracted again from the kept archive, once its sha256 verifies, else downloaded
again. Several archives are pulled at once with a small thread pool.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from modreg.engine.errors import OfflineError
from modreg.engine.protocol import RegistryProtocol
from modreg.engine.source_manifest import SourceManifest
from modreg.engine.state import read_json, write_json_atomic
from modreg.registry.archive import safe_extract
from modreg.registry.errors import DigestMismatchError, UnsafeArchiveError
from modreg.registry.hashing import sha256_file

PULL_THREADS = 4
log = logging.getLogger(__name__)


class SourceCache:
    """Extracted module archives by sha256, verified before use, pulled when missing."""

    def __init__(self, root: Path, registry: RegistryProtocol | None) -> None:
        self.root = Path(root)
        self.registry = registry

    def path(self, sha256: str) -> Path:
        return self.root / sha256

    def _record_path(self, sha256: str) -> Path:
        return self.root / f"{sha256}.files.json"

    def _archive_path(self, sha256: str) -> Path:
        return self.root / f"{sha256}.tar.gz"

    def kept_files(self, sha256: str) -> list[Path]:
        """The files kept beside an archive's folder: its record and its archive copy."""
        return [self._record_path(sha256), self._archive_path(sha256)]

    def leftovers(self) -> list[Path]:
        """Folders set aside (``.stale-*``) or being removed (``.prune-*``) by an interrupted
        process: never used again. A ``.pull-*`` folder may be a pull in progress."""
        if not self.root.is_dir():
            return []
        return [p for p in self.root.iterdir() if p.name.startswith((".stale-", ".prune-"))]

    def has(self, sha256: str) -> bool:
        return self.path(sha256).is_dir()

    def ensure(self, sha256: str, label: str = "") -> Path:
        """The verified folder of the archive ``sha256``, extracting or pulling it if needed."""
        dest = self.path(sha256)
        missing = "are not in the local source cache"
        if dest.is_dir():
            changed = self._changes(sha256)
            if not changed:
                os.utime(dest)  # used now: `modreg cache prune` removes the least recently used
                return dest
            what = _what(sha256, label)
            log.warning("%s changed since extraction (%s): extracting again", what, changed[0])
            self._set_aside(dest)
            missing = f"changed since extraction ({changed[0]}) and their archive is not here"
        self.root.mkdir(parents=True, exist_ok=True)
        kept = self._archive_path(sha256)
        if kept.is_file() and sha256_file(kept) == sha256:
            self._extract(kept, sha256, label)
            return dest
        if self.registry is None:
            raise OfflineError(f"--offline: {_what(sha256, label)} {missing}; run once online")
        self._pull(self.registry, sha256, label)
        return dest

    def add_archive(self, archive: Path, sha256: str) -> Path:
        """Extract a module archive already at hand (verified against ``sha256``) into the
        cache, keeping a copy, as a pull would; returns its folder."""
        if sha256_file(archive) != sha256:
            raise DigestMismatchError(f"{archive} does not have the sha256 {sha256}")
        self.root.mkdir(parents=True, exist_ok=True)
        kept = self._archive_path(sha256)
        temp = kept.with_name(f".{kept.name}.{uuid.uuid4().hex}")
        shutil.copyfile(archive, temp)
        os.replace(temp, kept)
        try:
            return self.ensure(sha256)
        except UnsafeArchiveError:
            kept.unlink(missing_ok=True)
            raise

    def _changes(self, sha256: str) -> list[str]:
        """What differs between the folder and its record (the record refreshed when only
        stat keys moved); no record at all counts as a change."""
        record = SourceManifest.from_json(read_json(self._record_path(sha256)))
        if record is None:
            return ["no record of the extracted files"]
        try:
            changed, refreshed = record.changes(self.path(sha256))
        except OSError as exc:  # set aside meanwhile by another process
            return [f"unreadable: {exc.strerror}"]
        if refreshed is not None:
            write_json_atomic(self._record_path(sha256), refreshed.to_json())
        return changed

    def _set_aside(self, dest: Path) -> None:
        aside = self.root / f".stale-{dest.name}-{uuid.uuid4().hex[:8]}"
        with contextlib.suppress(FileNotFoundError):  # another process set it aside first
            os.rename(dest, aside)
        shutil.rmtree(aside, ignore_errors=True)

    def _extract(self, archive: Path, sha256: str, label: str) -> None:
        def record(folder: Path) -> None:
            write_json_atomic(self._record_path(sha256), SourceManifest.of(folder).to_json())

        try:
            safe_extract(archive, self.path(sha256), exist_ok=True, before_publish=record)
        except UnsafeArchiveError as exc:
            raise UnsafeArchiveError(f"{_what(sha256, label)}: {exc}") from exc

    def _pull(self, registry: RegistryProtocol, sha256: str, label: str) -> None:
        with tempfile.TemporaryDirectory(dir=self.root, prefix=".pull-") as temp:
            archive = Path(temp) / "archive.tar.gz"
            registry.get_blob(sha256, archive)  # verifies the digest
            self._extract(archive, sha256, label)
            os.replace(archive, self._archive_path(sha256))  # kept only once it extracted

    def ensure_many(self, wanted: Iterable[tuple[str, str]]) -> None:
        """Pull several (sha256, label) archives at once; the first failure is raised."""
        missing = sorted({(sha, label) for sha, label in wanted if not self.has(sha)})
        if len(missing) <= 1:
            for sha, label in missing:
                self.ensure(sha, label)
            return
        with ThreadPoolExecutor(max_workers=min(PULL_THREADS, len(missing))) as pool:
            for future in [pool.submit(self.ensure, sha, label) for sha, label in missing]:
                future.result()


def _what(sha256: str, label: str) -> str:
    return f"the sources of {label}" if label else f"module archive {sha256[:12]}"
