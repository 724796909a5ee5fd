"""Archive safety: malicious members are rejected and nothing is written."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from modreg.registry.archive import ArchiveLimits, check_archive, safe_extract
from modreg.registry.errors import UnsafeArchiveError
from modreg.registry.hashing import sha256_file


def _tar(path: Path, members: list[tuple[str, str, bytes | str]]) -> Path:
    """Write a .tar.gz of (kind, name, data-or-linkname) members."""
    with tarfile.open(path, "w:gz") as tar:
        for kind, name, data in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                assert isinstance(data, bytes)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
                continue
            info.type = {
                "dir": tarfile.DIRTYPE,
                "sym": tarfile.SYMTYPE,
                "lnk": tarfile.LNKTYPE,
                "chr": tarfile.CHRTYPE,
                "fifo": tarfile.FIFOTYPE,
            }[kind]
            if kind in ("sym", "lnk"):
                assert isinstance(data, str)
                info.linkname = data
            tar.addfile(info)
    return path


def test_good_archive_extracts(tmp_path: Path) -> None:
    archive = _tar(
        tmp_path / "a.tar.gz",
        [("dir", "src", b""), ("file", "src/a.py", b"print(1)\n"), ("sym", "link.py", "src/a.py")],
    )
    dest = tmp_path / "out"
    safe_extract(archive, dest)
    assert (dest / "src/a.py").read_text() == "print(1)\n"
    assert (dest / "link.py").read_text() == "print(1)\n"
    assert len(sha256_file(archive)) == 64


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ([("file", "/etc/evil", b"x")], "absolute path '/etc/evil'"),
        ([("file", "../evil", b"x")], "path '../evil' leaves the module folder"),
        ([("file", "a/../../evil", b"x")], "leaves the module folder"),
        ([("sym", "l", "/etc/passwd")], "link 'l' points outside"),
        ([("sym", "l", "../../x")], "link 'l' points outside"),
        ([("dir", "d", b""), ("sym", "d/l", "../../x")], "link 'd/l' points outside"),
        ([("lnk", "h", "/etc/passwd")], "hard link 'h'"),
        ([("chr", "dev", b"")], "'dev' is a device file or FIFO"),
        # links resolved through earlier links, as extraction follows them
        ([("sym", "a", "."), ("sym", "a/l", "../escape")], "'a/l' lies under the link 'a'"),
        ([("dir", "d", b""), ("sym", "d/up", ".."), ("sym", "l", "d/up/..")], "link 'l' points"),
        ([("sym", "l", "d/.."), ("sym", "d", ".")], "link 'l' points outside"),
        ([("sym", "a", "b"), ("sym", "b", "a")], "link 'b' is a loop"),
        ([("fifo", "pipe", b"")], "'pipe' is a device file or FIFO"),
    ],
)
def test_malicious_archives_leave_nothing(
    tmp_path: Path, members: list[tuple[str, str, bytes | str]], message: str
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    archive = _tar(tmp_path / "bad.tar.gz", [("file", "ok.txt", b"fine"), *members])
    with pytest.raises(UnsafeArchiveError, match=message.replace("(", r"\(")):
        safe_extract(archive, work / "dest")
    assert list(work.iterdir()) == []
    assert not (tmp_path / "evil").exists()


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        (ArchiveLimits(max_files=2), "more than 2 members"),
        (ArchiveLimits(max_bytes=10), "unpacks to more than 10 bytes"),
        (ArchiveLimits(max_member_bytes=5), "is 8 bytes"),
    ],
)
def test_limits(tmp_path: Path, limits: ArchiveLimits, message: str) -> None:
    archive = _tar(
        tmp_path / "a.tar.gz",
        [("file", "a", b"12345678"), ("file", "b", b"12345678"), ("file", "c", b"1")],
    )
    with pytest.raises(UnsafeArchiveError, match=message):
        check_archive(archive, limits)


def test_not_an_archive(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"definitely not gzip")
    with pytest.raises(UnsafeArchiveError, match="not a readable .tar.gz archive"):
        check_archive(junk)


def test_existing_destination(tmp_path: Path) -> None:
    archive = _tar(tmp_path / "a.tar.gz", [("file", "a", b"1")])
    (tmp_path / "dest").mkdir()
    with pytest.raises(FileExistsError):
        safe_extract(archive, tmp_path / "dest")
    safe_extract(archive, tmp_path / "dest", exist_ok=True)
