"""What an extracted module folder held when it was extracted, to verify it before each use.

A ``SourceManifest`` records every entry of the folder (relative POSIX name): its kind, for
a file the sha256 of its bytes and whether it is executable, for a link its target. It is
built from the freshly extracted, still private staging folder, so it describes the
verified archive's content. ``changes`` compares a folder with it before every use:

- fast path, no reading: the same names, and each file's ``lstat`` key (inode, size,
  mtime_ns, ctime_ns, mode) as recorded. ctime cannot be set back by a user, so an edit
  that restores the mtime is still seen. A key taken within ``RACY_NS`` of the record is
  not trusted (git's "racy" case: two writes in one clock tick);
- slow path, only for entries whose key differs: re-hash them and compare content, kind
  and executable bit. A stat-only change (``touch``, a copy made by a concurrent extraction
  of the same archive) is not a change; the caller re-records the keys (``refreshed``).

Measured on the project's 2-core test machine (ext4, shared with other jobs), a module of
1,000 files (3.4 MB): the fast check, run before every step, ~15 ms; the full hash done at
extraction ~105 ms. A module of a dozen files costs well under a millisecond.
"""

from __future__ import annotations

import os
import stat
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from modreg.registry.hashing import sha256_file

RACY_NS = 1_000_000_000  # as digests.RACY_SECONDS
StatKey = tuple[int, int, int, int, int]


@dataclass(frozen=True)
class Entry:
    """One entry of the folder: ``kind`` file/link/dir, ``content`` the file's sha256 or
    the link's target, ``key`` its lstat key when recorded."""

    kind: str
    content: str = ""
    executable: bool = False
    key: StatKey = (0, 0, 0, 0, 0)

    def same_content(self, other: Entry) -> bool:
        return (self.kind, self.content, self.executable) == (
            other.kind,
            other.content,
            other.executable,
        )


def _key(info: os.stat_result) -> StatKey:
    return (info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_mode)


def _scan(folder: Path) -> dict[str, os.stat_result]:
    """Every entry under ``folder`` by relative name, with its lstat (links not followed)."""
    found: dict[str, os.stat_result] = {}
    pending = [""]
    while pending:
        prefix = pending.pop()
        with os.scandir(folder / prefix if prefix else folder) as entries:
            for item in entries:
                name = f"{prefix}/{item.name}" if prefix else item.name
                found[name] = item.stat(follow_symlinks=False)
                if item.is_dir(follow_symlinks=False):
                    pending.append(name)
    return found


def _entry(path: Path, info: os.stat_result) -> Entry:
    """What ``path`` holds now (reads a file whole)."""
    if stat.S_ISLNK(info.st_mode):
        return Entry("link", os.readlink(path), key=_key(info))
    if stat.S_ISDIR(info.st_mode):
        return Entry("dir", key=_key(info))
    if not stat.S_ISREG(info.st_mode):
        return Entry("special", key=_key(info))
    executable = bool(info.st_mode & stat.S_IXUSR)
    return Entry("file", sha256_file(path), executable, _key(info))


@dataclass(frozen=True)
class SourceManifest:
    """The entries of an extracted folder, and when their stat keys were taken."""

    entries: dict[str, Entry]
    taken_ns: int = field(default_factory=time.time_ns)

    @classmethod
    def of(cls, folder: Path) -> SourceManifest:
        """Record ``folder`` as it is (hashing every file)."""
        taken = time.time_ns()
        return cls({rel: _entry(folder / rel, info) for rel, info in _scan(folder).items()}, taken)

    def changes(self, folder: Path) -> tuple[list[str], SourceManifest | None]:
        """Names whose content differs from the record (empty: intact), and a manifest with
        fresh stat keys when some keys moved without a content change (else None)."""
        now = _scan(folder)
        differ = sorted(set(now) ^ set(self.entries))
        if differ:
            return differ, None
        moved = [rel for rel, info in now.items() if not self._trusted(rel, info)]
        fresh = {rel: _entry(folder / rel, now[rel]) for rel in moved}
        changed = [rel for rel in moved if not fresh[rel].same_content(self.entries[rel])]
        if changed or not moved:
            return changed, None
        return [], replace(self, entries={**self.entries, **fresh}, taken_ns=time.time_ns())

    def _trusted(self, rel: str, info: os.stat_result) -> bool:
        recorded = self.entries[rel]
        if recorded.kind == "dir":  # its times move with its members, which are checked
            return stat.S_ISDIR(info.st_mode)
        racy = max(info.st_mtime_ns, info.st_ctime_ns) >= self.taken_ns - RACY_NS
        return not racy and _key(info) == recorded.key

    def to_json(self) -> dict[str, Any]:
        entries = {
            rel: [e.kind, e.content, e.executable, list(e.key)] for rel, e in self.entries.items()
        }
        return {"taken_ns": self.taken_ns, "entries": entries}

    @classmethod
    def from_json(cls, data: Any) -> SourceManifest | None:
        """The manifest in ``data``, or None when it is not one (then nothing is trusted)."""
        try:
            entries = {
                rel: Entry(kind, content, bool(executable), tuple(int(k) for k in key))  # type: ignore[arg-type]
                for rel, (kind, content, executable, key) in data["entries"].items()
            }
            return cls(entries, int(data["taken_ns"]))
        except (KeyError, TypeError, ValueError, AttributeError):
            return None
