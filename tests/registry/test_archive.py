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
        # one name, one thing: what extraction would overwrite or cannot create
        (
            [("file", "f", b"x"), ("file", "f/g", b"y")],
            "'f/g' lies under 'f', which is not a folder",
        ),
        ([("file", "f/g", b"x"), ("file", "f", b"y")], "'f' is both a folder and a file"),
        ([("dir", "f", b""), ("file", "f", b"y")], "'f' is both a folder and a file"),
        ([("file", "ok.txt", b"again")], "'ok.txt' appears twice"),
        ([("file", "./ok.txt", b"again")], "'./ok.txt' appears twice"),
        ([("dir", "d", b""), ("dir", "d/", b"")], "'d' appears twice"),
        ([("sym", "ok2", "ok.txt"), ("sym", "ok2", "ok.txt")], "'ok2' appears twice"),
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


def test_a_folder_entry_after_its_members_is_the_same_folder(tmp_path: Path) -> None:
    """tar writes a folder's entry before or after its members; both are one folder."""
    archive = _tar(tmp_path / "a.tar.gz", [("file", "d/x", b"1"), ("dir", "d", b"")])
    safe_extract(archive, tmp_path / "out")
    assert (tmp_path / "out/d/x").read_text() == "1"


def test_a_failed_extraction_is_one_line_without_internal_paths(tmp_path: Path) -> None:
    archive = _tar(tmp_path / "a.tar.gz", [("file", "f", b"x"), ("file", "f/g", b"y")])
    with pytest.raises(UnsafeArchiveError) as caught:
        safe_extract(archive, tmp_path / "dest")
    message = str(caught.value)
    assert message.startswith("bad archive: ") and "\n" not in message
    assert str(tmp_path) not in message and ".tmp" not in message
    assert list(tmp_path.iterdir()) == [archive]


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        (ArchiveLimits(max_files=2), "bad archive: more than 2 members"),
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
    with pytest.raises(UnsafeArchiveError, match="bad archive: not a readable .tar.gz archive"):
        check_archive(junk)


def test_existing_destination(tmp_path: Path) -> None:
    archive = _tar(tmp_path / "a.tar.gz", [("file", "a", b"1")])
    (tmp_path / "dest").mkdir()
    with pytest.raises(FileExistsError):
        safe_extract(archive, tmp_path / "dest")
    safe_extract(archive, tmp_path / "dest", exist_ok=True)
