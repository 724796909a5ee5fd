"""Hostile module archives, by family: what an attacker or a broken tool can send as a module.

``HOSTILE`` lists one ``HostileArchive`` per case, grouped in families (traversal, absolute,
backslash names, links chained through links, hard links, devices, FIFOs, duplicates and
file/folder clashes, gzip bombs, empty tar/gzip, truncated streams). Each builds real bytes
with ``tarfile`` and ``gzip`` around a module that is otherwise fine (``module_members``: a
``modreg.toml`` and a ``main.py``), and ``benign`` is the same module without the hostile
part, so a test can show that a refusal comes from that part alone. Names that would land
outside the extraction folder aim at ``ESCAPE`` (a basename) or ``ABSOLUTE_ESCAPE``, which a
test checks are never written.
"""

from __future__ import annotations

import gzip
import io
import tarfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

ESCAPE = "modreg-hostile-escape.txt"
ABSOLUTE_ESCAPE = f"/tmp/{ESCAPE}"
BOMB_MEMBER_BYTES = 600 << 20  # over ArchiveLimits.max_member_bytes (512 MiB)
BOMB_TRAILING_BYTES = 64 << 20  # NULs after the archive's end, far over any tar padding
_ZERO_CHUNK = 1 << 20

KINDS = {
    "file": tarfile.REGTYPE,
    "dir": tarfile.DIRTYPE,
    "sym": tarfile.SYMTYPE,
    "lnk": tarfile.LNKTYPE,
    "chr": tarfile.CHRTYPE,
    "blk": tarfile.BLKTYPE,
    "fifo": tarfile.FIFOTYPE,
}


@dataclass(frozen=True)
class Entry:
    """One tar member: a ``file`` with ``data``, a ``dir``, a link (``sym``/``lnk``) to
    ``link``, or a special file (``chr``/``blk``/``fifo``)."""

    name: str
    kind: str = "file"
    data: bytes = b"hostile\n"
    link: str = ""


def module_members(module: str, version: str) -> list[Entry]:
    """The good part of every case: a valid manifest and the script it runs."""
    manifest = (
        f'[module]\nname = "{module}"\nversion = "{version}"\n'
        'description = "hostile archive probe"\ncommand = ["python", "main.py"]\n'
    )
    return [Entry("modreg.toml", data=manifest.encode()), Entry("main.py", data=b"print(1)\n")]


def tar_bytes(entries: list[Entry], end: bool = True) -> bytes:
    """An uncompressed tar of ``entries`` in order; without ``end``, no end-of-archive blocks."""
    buffer = io.BytesIO()
    tar = tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT)
    for entry in entries:
        info = tarfile.TarInfo(entry.name)
        info.type, info.linkname, info.mtime = KINDS[entry.kind], entry.link, 0
        info.size = len(entry.data) if entry.kind == "file" else 0
        tar.addfile(info, io.BytesIO(entry.data) if entry.kind == "file" else None)
    if end:
        tar.close()
    return buffer.getvalue()


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def _zeros_gz(count: int) -> bytes:
    """``count`` MiB of NULs as gzip members, built from one compressed MiB (a multi-member
    gzip stream is one stream to every reader), so a bomb costs milliseconds to make."""
    one = zlib.compressobj(9, zlib.DEFLATED, 31)
    member = one.compress(b"\0" * _ZERO_CHUNK) + one.flush()
    return member * count


def _big_member_bomb(good: list[Entry]) -> bytes:
    """A member that says (and holds) 600 MiB of NULs, in about 600 KiB."""
    head = tar_bytes(good, end=False)
    info = tarfile.TarInfo("weights.bin")
    info.size = BOMB_MEMBER_BYTES
    header = info.tobuf(tarfile.PAX_FORMAT)
    end = b"\0" * (2 * tarfile.BLOCKSIZE)
    return gz(head + header) + _zeros_gz(BOMB_MEMBER_BYTES // _ZERO_CHUNK) + gz(end)


def _trailing_bomb(good: list[Entry]) -> bytes:
    """A fine archive followed by 64 MiB of NULs that no tar reader needs to look at."""
    return gz(tar_bytes(good)) + _zeros_gz(BOMB_TRAILING_BYTES // _ZERO_CHUNK)


def _cut_in_member(good: list[Entry]) -> bytes:
    raw = tar_bytes([*good, Entry("data.bin", data=b"x" * 4096)], end=False)
    return gz(raw[:-2048])  # half of data.bin and the end blocks gone


Builder = Callable[[list[Entry]], bytes]


@dataclass(frozen=True)
class HostileArchive:
    """One hostile case: ``build(good members) -> .tar.gz bytes``."""

    family: str
    case: str
    build: Builder = field(repr=False)

    @property
    def id(self) -> str:
        return f"{self.family}-{self.case}"


def _with(*hostile: Entry) -> Builder:
    """The good members, then ``hostile`` (a name clash needs the good ones first)."""
    return lambda good: gz(tar_bytes([*good, *hostile]))


def _before(*hostile: Entry) -> Builder:
    """``hostile`` first, then the good members (a link judged before what it points at)."""
    return lambda good: gz(tar_bytes([*hostile, *good]))


def _raw(data: bytes) -> Builder:
    return lambda good: data


def benign(good: list[Entry]) -> bytes:
    """The module alone: what every hostile case is, without its hostile part."""
    return gz(tar_bytes(good))


HOSTILE: list[HostileArchive] = [
    HostileArchive("traversal", "dotdot", _with(Entry(f"../{ESCAPE}"))),
    HostileArchive("traversal", "nested", _with(Entry(f"a/../../{ESCAPE}"))),
    HostileArchive("traversal", "dot-prefixed", _with(Entry(f"./../{ESCAPE}"))),
    HostileArchive("traversal", "deep", _with(Entry(f"a/b/../../../../{ESCAPE}"))),
    HostileArchive("absolute", "root", _with(Entry(ABSOLUTE_ESCAPE))),
    HostileArchive("absolute", "drive", _with(Entry(f"C:/{ESCAPE}"))),
    HostileArchive("backslash", "dotdot", _with(Entry(f"..\\{ESCAPE}"))),
    HostileArchive("backslash", "nested", _with(Entry(f"a\\..\\..\\{ESCAPE}"))),
    HostileArchive("backslash", "drive", _with(Entry(f"C:\\{ESCAPE}"))),
    HostileArchive("backslash", "link-target", _with(Entry("l", "sym", link=f"..\\{ESCAPE}"))),
    HostileArchive("links", "absolute", _with(Entry("l", "sym", link="/etc/passwd"))),
    HostileArchive("links", "up", _with(Entry("l", "sym", link=f"../{ESCAPE}"))),
    HostileArchive(
        "links",
        "through-a-link",
        _with(Entry("a", "sym", link="."), Entry("a/l", "sym", link=f"../{ESCAPE}")),
    ),
    HostileArchive(
        "links",
        "chained",
        _with(Entry("d/up", "sym", link=".."), Entry("l", "sym", link="d/up/..")),
    ),
    HostileArchive(
        "links",
        "moved-by-a-later-link",
        _before(Entry("l", "sym", link="d/.."), Entry("d", "sym", link=".")),
    ),
    HostileArchive(
        "links",
        "write-through",
        _with(Entry("a", "sym", link="."), Entry("a/main.py", data=b"import os\n")),
    ),
    HostileArchive(
        "links", "loop", _with(Entry("a", "sym", link="b"), Entry("b", "sym", link="a"))
    ),
    HostileArchive("hardlinks", "up", _with(Entry("h", "lnk", link=f"../{ESCAPE}"))),
    HostileArchive("hardlinks", "absolute", _with(Entry("h", "lnk", link="/etc/passwd"))),
    HostileArchive("hardlinks", "not-a-member", _with(Entry("h", "lnk", link="missing.py"))),
    HostileArchive(
        "hardlinks",
        "to-a-link",
        _with(Entry("s", "sym", link="main.py"), Entry("h", "lnk", link="s")),
    ),
    HostileArchive("devices", "char", _with(Entry("dev", "chr"))),
    HostileArchive("devices", "block", _with(Entry("disk", "blk"))),
    HostileArchive("fifos", "fifo", _with(Entry("pipe", "fifo"))),
    HostileArchive("duplicates", "file", _with(Entry("main.py", data=b"import os\n"))),
    HostileArchive("duplicates", "dot-slash", _with(Entry("./main.py", data=b"import os\n"))),
    HostileArchive("duplicates", "dir", _with(Entry("d", "dir"), Entry("d", "dir"))),
    HostileArchive("duplicates", "link-over-file", _with(Entry("main.py", "sym", link="x"))),
    HostileArchive("clashes", "file-then-folder", _with(Entry("f"), Entry("f/g"))),
    HostileArchive("clashes", "folder-then-file", _with(Entry("f/g"), Entry("f"))),
    HostileArchive("clashes", "under-a-file", _with(Entry("main.py/x"))),
    HostileArchive("bombs", "big-member", _big_member_bomb),
    HostileArchive("bombs", "trailing-zeros", _trailing_bomb),
    HostileArchive("empty", "zero-bytes", _raw(b"")),
    HostileArchive("empty", "gzip", _raw(gz(b""))),
    HostileArchive("empty", "tar", _raw(gz(tar_bytes([])))),
    HostileArchive("empty", "folders-only", _raw(gz(tar_bytes([Entry("d", "dir")])))),
    HostileArchive("truncated", "gzip-halved", lambda good: benign(good)[:40]),
    HostileArchive("truncated", "gzip-trailer", lambda good: benign(good)[:-4]),
    HostileArchive("truncated", "in-a-member", _cut_in_member),
    HostileArchive("truncated", "no-end-blocks", lambda good: gz(tar_bytes(good, end=False))),
    HostileArchive(
        "truncated", "trailing-garbage", lambda good: gz(tar_bytes(good) + b"garbage" * 100)
    ),
    HostileArchive("truncated", "not-gzip", _raw(b"definitely not gzip")),
]
