"""Content digests, the stat cache, and what a fingerprint does and does not cover."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from modreg.engine import DigestCache, Fingerprint
from modreg.engine.digests import sha256_bytes
from modreg.engine.fingerprint import explain_change


def age(path: Path, seconds: float = 10) -> None:
    """Make a file old enough to be cached (not 'racy')."""
    past = time.time() - seconds
    os.utime(path, (past, past))


def test_file_and_dir_digests(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"hello")
    folder = tmp_path / "d"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_bytes(b"a")
    (folder / "sub" / "b.txt").write_bytes(b"b")
    cache = DigestCache()
    assert cache.digest(tmp_path / "f") == ("file", sha256_bytes(b"hello"), 5)
    kind, digest, size = cache.digest(folder)
    assert (kind, size) == ("dir", 2)
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "sub").mkdir()
    (copy / "a.txt").write_bytes(b"a")
    (copy / "sub" / "b.txt").write_bytes(b"b")
    assert cache.digest(copy)[1] == digest, "same files, same digest, wherever the folder is"
    (copy / "sub" / "b.txt").write_bytes(b"B")
    assert cache.digest(copy)[1] != digest


def test_stat_cache_skips_rehashing_unchanged_files(tmp_path: Path) -> None:
    data = tmp_path / "big"
    data.write_bytes(b"x" * 1000)
    age(data)
    store = tmp_path / "state" / "digests.json"
    first = DigestCache(store)
    digest, _ = first.file_digest(data)
    first.save()
    # Same size and mtime, different bytes: the cache (keyed by stat) answers without reading.
    info = data.stat()
    data.write_bytes(b"y" * 1000)
    os.utime(data, ns=(info.st_atime_ns, info.st_mtime_ns))
    assert DigestCache(store).file_digest(data)[0] == digest
    # A changed mtime is noticed.
    age(data, 20)
    assert DigestCache(store).file_digest(data)[0] == sha256_bytes(b"y" * 1000)


def test_recent_files_are_not_cached(tmp_path: Path) -> None:
    data = tmp_path / "fresh"
    data.write_bytes(b"1")
    cache = DigestCache(tmp_path / "digests.json")
    cache.file_digest(data)
    cache.save()
    assert not (tmp_path / "digests.json").exists()


ENV = "e" * 64
BASE = Fingerprint("a" * 64, ("python", "main.py"), {"lr": 0.1, "size": 8}, {"raw": "c" * 64}, ENV)


def test_fingerprint_ignores_order_and_is_stable() -> None:
    same = Fingerprint(
        "a" * 64, ("python", "main.py"), {"size": 8, "lr": 0.1}, {"raw": "c" * 64}, ENV
    )
    assert same.digest == BASE.digest
    assert Fingerprint.from_dict(BASE.to_dict()).digest == BASE.digest


@pytest.mark.parametrize(
    "changed",
    [
        Fingerprint("b" * 64, BASE.command, BASE.params, BASE.inputs, ENV),
        Fingerprint(BASE.archive, ("python", "other.py"), BASE.params, BASE.inputs, ENV),
        Fingerprint(BASE.archive, BASE.command, {"lr": 0.01, "size": 8}, BASE.inputs, ENV),
        Fingerprint(BASE.archive, BASE.command, BASE.params, {"raw": "d" * 64}, ENV),
        Fingerprint(BASE.archive, BASE.command, BASE.params, BASE.inputs, "f" * 64),
    ],
    ids=["archive", "command", "param", "input", "environment"],
)
def test_each_component_changes_the_fingerprint(changed: Fingerprint) -> None:
    assert changed.digest != BASE.digest


@pytest.mark.parametrize(
    ("new", "versions", "expected"),
    [
        (
            BASE,
            ("1.0.0", "1.0.0"),
            "no earlier result (same fingerprint as the last run, whose result is not stored)",
        ),
        (
            Fingerprint(BASE.archive, BASE.command, {"lr": 0.01, "size": 8}, BASE.inputs, ENV),
            ("1.0.0", "1.0.0"),
            "param 'lr' changed: 0.1 -> 0.01",
        ),
        (
            Fingerprint(BASE.archive, BASE.command, BASE.params, {"raw": "d" * 64}, ENV),
            ("1.0.0", "1.0.0"),
            f"input 'raw' changed: {'c' * 12} -> {'d' * 12}",
        ),
        (
            Fingerprint("b" * 64, BASE.command, BASE.params, BASE.inputs, ENV),
            ("1.0.0", "1.1.0"),
            f"module changed (1.0.0 -> 1.1.0, archive {'a' * 12} -> {'b' * 12})",
        ),
        (
            Fingerprint(BASE.archive, BASE.command, BASE.params, BASE.inputs, "f" * 64),
            ("1.0.0", "1.0.0"),
            f"environment changed ({'e' * 12} -> {'f' * 12})",
        ),
    ],
)
def test_explain_says_what_changed(
    new: Fingerprint, versions: tuple[str, str], expected: str
) -> None:
    assert explain_change(BASE, new, *versions) == expected
    assert explain_change(None, new) == "no earlier result"


def test_a_fingerprint_from_before_environments_reads_and_differs() -> None:
    """History written by FINGERPRINT_VERSION 1 has no environment: it still reads, and
    ``--explain`` names the environment as what changed."""
    old = {key: value for key, value in BASE.to_dict().items() if key != "environment"}
    read = Fingerprint.from_dict({**old, "v": 1})
    assert read.environment == "" and read.digest != BASE.digest
    assert explain_change(read, BASE) == f"environment changed (none -> {'e' * 12})"
