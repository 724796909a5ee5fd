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

import gzip
import os
import posixpath
import shutil
import tarfile
import tempfile
import zlib
from collections import deque
from collections.abc import Callable
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
MAX_PADDING_BYTES = 1 << 20  # NULs after the end blocks; tar pads to 10 KiB records


def _escapes(path: str) -> bool:
    normal = posixpath.normpath(path)
    return normal == ".." or normal.startswith("../") or posixpath.isabs(normal)


def _check_name(member: tarfile.TarInfo) -> None:
    name = member.name
    if not name or name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise UnsafeArchiveError(f"bad archive: absolute path {name!r}")
    if ".." in name.split("/") or _escapes(name):
        raise UnsafeArchiveError(f"bad archive: path {name!r} leaves the module folder")
    if "\\" in name or "\\" in member.linkname:
        # harmless on POSIX, a path separator on Windows: "..\\x" climbs out there
        raise UnsafeArchiveError(f"bad archive: {name!r} has a backslash in its name or link")


class _Tree:
    """The folder an extraction would build, member by member, to judge each member as the
    filesystem will see it: links through the archive's other links, not alone, and one
    name for one thing (a duplicate or a file that is also a folder is refused, never left
    to whichever extraction step fails or overwrites)."""

    def __init__(self) -> None:
        self.kinds: dict[str, str] = {}  # normalised name -> dir | folder (implied) | file | link
        self.links: dict[str, str] = {}  # normalised name -> link target, in archive order

    def add(self, member: tarfile.TarInfo, name: str) -> None:
        """Place ``member`` (normalised ``name``), or refuse it."""
        if name == "." and member.isdir():
            return  # the root itself
        self._place_parents(member, name)
        self._place(member, name)
        if member.issym():
            self.links[name] = member.linkname
            self.check_link(name)
        elif member.islnk() and self.kinds.get(posixpath.normpath(member.linkname)) != "file":
            raise UnsafeArchiveError(
                f"bad archive: hard link {member.name!r} to {member.linkname!r}, "
                "not a file member before it"
            )

    def _place_parents(self, member: tarfile.TarInfo, name: str) -> None:
        parts = name.split("/")
        for depth in range(1, len(parts)):
            parent = "/".join(parts[:depth])
            kind = self.kinds.setdefault(parent, "folder")
            if kind == "link":
                raise UnsafeArchiveError(
                    f"bad archive: {member.name!r} lies under the link {parent!r}"
                )
            if kind == "file":
                raise UnsafeArchiveError(
                    f"bad archive: {member.name!r} lies under {parent!r}, which is not a folder"
                )

    def _place(self, member: tarfile.TarInfo, name: str) -> None:
        kind = "dir" if member.isdir() else "link" if member.issym() else "file"
        before = "dir" if name == "." else self.kinds.get(name)
        if before is not None:
            if (before in ("dir", "folder")) != (kind == "dir"):
                raise UnsafeArchiveError(
                    f"bad archive: {member.name!r} is both a folder and a file"
                )
            if before != "folder":
                raise UnsafeArchiveError(f"bad archive: {member.name!r} appears twice")
        self.kinds[name] = kind

    def check_link(self, name: str) -> None:
        """Refuse the link ``name`` unless it resolves inside the root, following the links
        known so far the way the kernel would (loops refused like ELOOP)."""
        target = self.links[name]
        if posixpath.isabs(target):
            raise UnsafeArchiveError(f"bad archive: link {name!r} points outside ({target!r})")
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
                        f"bad archive: link {name!r} points outside ({target!r})"
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
                raise UnsafeArchiveError(f"bad archive: link {name!r} {what}")
            pending.extendleft(reversed(inner.split("/")))

    def check_links_again(self) -> None:
        """Every link against the finished tree: a later link can change where an earlier
        one leads (``l -> d/..`` then ``d -> .``)."""
        for name in self.links:
            self.check_link(name)


def _check_kind(member: tarfile.TarInfo) -> None:
    if not (member.islnk() or member.issym() or member.isfile() or member.isdir()):
        raise UnsafeArchiveError(f"bad archive: {member.name!r} is a device file or FIFO")


def _check_members(tar: tarfile.TarFile, limits: ArchiveLimits) -> None:
    tree = _Tree()
    total = 0
    for count, member in enumerate(tar, start=1):
        if count > limits.max_files:
            raise UnsafeArchiveError(f"bad archive: more than {limits.max_files} members")
        _check_name(member)
        _check_kind(member)
        name = posixpath.normpath(member.name)
        tree.add(member, name)
        if member.size > limits.max_member_bytes:
            raise UnsafeArchiveError(
                f"bad archive: member {member.name!r} is {member.size} bytes "
                f"(limit {limits.max_member_bytes})"
            )
        total += member.size
        if total > limits.max_bytes:
            raise UnsafeArchiveError(
                f"bad archive: it unpacks to more than {limits.max_bytes} bytes"
            )
    if "file" not in tree.kinds.values():
        raise UnsafeArchiveError("bad archive: it holds no files")
    tree.check_links_again()


class _TailRecorder:
    """A read-only file over the decompressed stream that remembers the last block read,
    so the block that ended tarfile's walk can be judged without seeking back (a backward
    seek in gzip decompresses everything again)."""

    def __init__(self, raw: gzip.GzipFile) -> None:
        self.raw = raw
        self.last = b""

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.last = (self.last + data)[-tarfile.BLOCKSIZE :]
        return data

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self.raw.seek(offset, whence)

    def tell(self) -> int:
        return self.raw.tell()


def _check_end(tar: tarfile.TarFile, stream: _TailRecorder) -> None:
    """The archive ends as tar writes it: NUL end blocks, a little NUL padding, and the
    gzip stream complete to its checksum. tarfile stops quietly at a missing end, garbage,
    or a cut gzip trailer; a bomb can hide in bytes after the end that it never reads."""
    ended = stream.tell() - tar.offset == tarfile.BLOCKSIZE and not stream.last.strip(b"\0")
    padding = 0
    while ended and (chunk := stream.read(CHUNK)):
        padding += len(chunk)
        ended = not chunk.strip(b"\0") and padding <= MAX_PADDING_BYTES
    if not ended or padding < tarfile.BLOCKSIZE:
        raise UnsafeArchiveError(
            "bad archive: it is cut short or has data after its end (not as tar writes it)"
        )


def check_archive(path: Path, limits: ArchiveLimits = ArchiveLimits()) -> None:
    """Raise UnsafeArchiveError unless ``path`` is a gzip'd tar that is safe to extract."""
    try:
        with gzip.open(path, "rb") as raw:
            stream = _TailRecorder(raw)
            with tarfile.open(fileobj=stream, mode="r:") as tar:  # type: ignore[call-overload]
                _check_members(tar, limits)
                _check_end(tar, stream)
    except (tarfile.TarError, zlib.error, EOFError, OSError) as exc:
        raise UnsafeArchiveError(
            f"bad archive: not a readable .tar.gz archive ({_reason(exc)})"
        ) from exc


def safe_extract(
    archive: Path,
    dest: Path,
    limits: ArchiveLimits = ArchiveLimits(),
    exist_ok: bool = False,
    before_publish: Callable[[Path], None] | None = None,
) -> None:
    """Extract a checked archive to ``dest`` all at once, or not at all.

    With ``exist_ok`` an existing ``dest`` (say, another process filling the same cache
    entry first) is taken as done; without it, it is an error. ``before_publish`` is called
    with the complete, still private folder just before it becomes ``dest`` (the engine
    records what it holds, so the record exists whenever the folder does).
    """
    if dest.exists():
        if exist_ok:
            return
        raise FileExistsError(f"{dest} already exists")
    check_archive(archive, limits)
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        _extract_checked(archive, staging)
        if before_publish is not None:
            before_publish(staging)
        _publish(staging, dest, exist_ok)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _extract_checked(archive: Path, staging: Path) -> None:
    """Extract a checked archive; tarfile's "data" filter stays on as a second guard. A
    failure here is told as the archive's, without the staging folder's internal path."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(staging, filter="data")
    except (tarfile.TarError, zlib.error, EOFError, OSError) as exc:
        raise UnsafeArchiveError(
            f"bad archive: it could not be extracted ({_reason(exc)})"
        ) from exc


def _reason(exc: BaseException) -> str:
    """What went wrong, without file names (they would be internal temp paths)."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _publish(staging: Path, dest: Path, exist_ok: bool) -> None:
    try:
        os.rename(staging, dest)
    except OSError:
        if not (exist_ok and dest.exists()):
            raise
