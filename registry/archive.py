"""Module source archives: digests, safety checks, and all-or-nothing extraction.

An archive is a gzip'd tar as ``git archive --format=tar.gz COMMIT:PATH`` writes it, the
module folder being the archive root. The server checks every archive on publish, and every
reader checks it again before extracting, because a digest says only that the bytes are the
ones published, not that they are harmless. Both call ``check_archive``, so the server and
every reader give one verdict. Rejected: absolute names, ``..``, links that point outside
the root — resolved the way the filesystem will follow them, through the archive's other
links, in order and again on the finished tree — members written through a link, hard links
to non-members, device files and FIFOs, too many members, too many bytes. Extraction goes
to a temp folder beside the destination and is renamed into place only when complete, so a
rejected or interrupted extraction leaves nothing behind.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import tarfile
import tempfile
import zlib
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from modreg.registry.errors import UnsafeArchiveError

CHUNK = 1 << 20


@dataclass(frozen=True)
class ArchiveLimits:
    max_files: int = 20_000
    max_bytes: int = 1 << 30  # uncompressed, all members together
    max_member_bytes: int = 512 << 20


MAX_LINK_HOPS = 40  # as Linux's MAXSYMLINKS


def _escapes(path: str) -> bool:
    normal = posixpath.normpath(path)
    return normal == ".." or normal.startswith("../") or posixpath.isabs(normal)


def _check_name(member: tarfile.TarInfo) -> None:
    name = member.name
    if not name or name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise UnsafeArchiveError(f"unsafe archive: absolute path {name!r}")
    if ".." in name.split("/") or _escapes(name):
        raise UnsafeArchiveError(f"unsafe archive: path {name!r} leaves the module folder")


class _Tree:
    """The folder an extraction would build, member by member, to judge links as the
    filesystem will follow them: through earlier links of the same archive, not alone."""

    def __init__(self) -> None:
        self.links: dict[str, str] = {}  # normalised name -> link target, in archive order

    def add(self, member: tarfile.TarInfo, name: str) -> None:
        """Place ``member`` (normalised ``name``), refusing it if extraction would write
        through an earlier link or the link it is would point outside."""
        parts = name.split("/")
        for depth in range(1, len(parts)):
            parent = "/".join(parts[:depth])
            if parent in self.links:
                raise UnsafeArchiveError(
                    f"unsafe archive: {member.name!r} lies under the link {parent!r}"
                )
        if member.issym():
            self.links[name] = member.linkname
            self.check_link(name)

    def check_link(self, name: str) -> None:
        """Refuse the link ``name`` unless it resolves inside the root, following the links
        known so far the way the kernel would (loops refused like ELOOP)."""
        target = self.links[name]
        if posixpath.isabs(target):
            raise UnsafeArchiveError(f"unsafe archive: link {name!r} points outside ({target!r})")
        pending = deque(posixpath.dirname(name).split("/") + target.split("/"))
        resolved: list[str] = []
        hops = 0
        while pending:
            part = pending.popleft()
            if part in ("", "."):
                continue
            if part == "..":
                if not resolved:
                    raise UnsafeArchiveError(
                        f"unsafe archive: link {name!r} points outside ({target!r})"
                    )
                resolved.pop()
                continue
            here = "/".join([*resolved, part])
            inner = self.links.get(here)
            if inner is None:
                resolved.append(part)
                continue
            hops += 1
            if hops > MAX_LINK_HOPS or posixpath.isabs(inner):
                what = "is a loop" if hops > MAX_LINK_HOPS else f"points outside ({target!r})"
                raise UnsafeArchiveError(f"unsafe archive: link {name!r} {what}")
            pending.extendleft(reversed(inner.split("/")))

    def check_links_again(self) -> None:
        """Every link against the finished tree: a later link can change where an earlier
        one leads (``l -> d/..`` then ``d -> .``)."""
        for name in self.links:
            self.check_link(name)


def _check_kind(member: tarfile.TarInfo, names: set[str]) -> None:
    if member.islnk():
        if posixpath.normpath(member.linkname) not in names:
            raise UnsafeArchiveError(
                f"unsafe archive: hard link {member.name!r} to {member.linkname!r}, not a member"
            )
    elif not (member.issym() or member.isfile() or member.isdir()):
        raise UnsafeArchiveError(f"unsafe archive: {member.name!r} is a device file or FIFO")


def _check_members(tar: tarfile.TarFile, limits: ArchiveLimits) -> None:
    names: set[str] = set()
    tree = _Tree()
    total = 0
    for count, member in enumerate(tar, start=1):
        if count > limits.max_files:
            raise UnsafeArchiveError(f"archive has more than {limits.max_files} members")
        _check_name(member)
        _check_kind(member, names)
        name = posixpath.normpath(member.name)
        tree.add(member, name)
        if member.size > limits.max_member_bytes:
            raise UnsafeArchiveError(
                f"archive member {member.name!r} is {member.size} bytes "
                f"(limit {limits.max_member_bytes})"
            )
        total += member.size
        if total > limits.max_bytes:
            raise UnsafeArchiveError(f"archive unpacks to more than {limits.max_bytes} bytes")
        names.add(name)
    tree.check_links_again()


def check_archive(path: Path, limits: ArchiveLimits = ArchiveLimits()) -> None:
    """Raise UnsafeArchiveError unless ``path`` is a gzip'd tar that is safe to extract."""
    try:
        with tarfile.open(path, "r:gz") as tar:
            _check_members(tar, limits)
    except (tarfile.TarError, zlib.error, EOFError, OSError) as exc:
        raise UnsafeArchiveError(f"not a readable .tar.gz archive: {exc}") from exc


def safe_extract(
    archive: Path,
    dest: Path,
    limits: ArchiveLimits = ArchiveLimits(),
    exist_ok: bool = False,
) -> None:
    """Extract a checked archive to ``dest`` all at once, or not at all.

    With ``exist_ok`` an existing ``dest`` (say, another process filling the same cache
    entry first) is taken as done; without it, it is an error.
    """
    if dest.exists():
        if exist_ok:
            return
        raise FileExistsError(f"{dest} already exists")
    check_archive(archive, limits)
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(staging, filter="data")
        _publish(staging, dest, exist_ok)
    except (tarfile.TarError, zlib.error, EOFError) as exc:
        raise UnsafeArchiveError(f"archive could not be extracted: {exc}") from exc
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _publish(staging: Path, dest: Path, exist_ok: bool) -> None:
    try:
        os.rename(staging, dest)
    except OSError:
        if not (exist_ok and dest.exists()):
            raise
