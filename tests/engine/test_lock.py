"""pipeline.lock: stable bytes, entries kept while references match, --locked / --offline."""

from __future__ import annotations

from pathlib import Path

import pytest

from modreg.engine import Lock, LockedModule, LockMismatchError, OfflineError
from modreg.engine.lock import read_lock, write_lock
from modreg.engine.resolve import ResolveOptions, resolve_pipelines
from modreg.engine.spec import parse_pipeline
from modreg.registry.schemas import Manifest

TEXT = "name: p\nsteps:\n  b: {uses: vision/b@^1}\n  a: {uses: vision/a@^1}\n"


def locked(name: str, version: str = "1.0.0") -> LockedModule:
    manifest = Manifest(name=name, version=version, command=["python", "main.py"])
    return LockedModule(name, version, "c" * 40, "d" * 64, manifest)


def full_lock() -> Lock:
    lock = Lock("p")
    lock.put("b", "vision/b@^1", locked("vision/b"))
    lock.put("a", "vision/a@^1", locked("vision/a"))
    return lock


def test_lock_bytes_are_sorted_and_stable(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.lock"
    assert write_lock(path, full_lock()) is True
    first = path.read_bytes()
    assert write_lock(path, full_lock()) is False
    reread = read_lock(path)
    assert reread is not None
    assert write_lock(path, reread) is False
    assert path.read_bytes() == first
    text = first.decode()
    assert text.index("\n  a:") < text.index("\n  b:")


def test_a_matching_lock_needs_no_registry(tmp_path: Path) -> None:
    pipeline = parse_pipeline(TEXT, tmp_path)
    resolved = resolve_pipelines(
        [pipeline], full_lock(), None, ResolveOptions(offline=True, locked=True)
    )
    assert resolved.resolved == [] and resolved.problems == []
    assert resolved.modules_for(pipeline)["a"].module == "vision/a"


def test_locked_refuses_a_changed_reference(tmp_path: Path) -> None:
    pipeline = parse_pipeline(TEXT.replace("vision/a@^1", "vision/a@^2"), tmp_path)
    with pytest.raises(LockMismatchError) as caught:
        resolve_pipelines([pipeline], full_lock(), None, ResolveOptions(locked=True))
    assert str(caught.value) == (
        "--locked: pipeline.lock is out of date (not locked: step 'a' uses 'vision/a@^2'; "
        "step 'a' no longer uses 'vision/a@^1'); run `modreg lock`"
    )


def test_offline_says_what_is_missing(tmp_path: Path) -> None:
    pipeline = parse_pipeline(TEXT.replace("vision/a@^1", "vision/a@^2"), tmp_path)
    with pytest.raises(OfflineError) as caught:
        resolve_pipelines([pipeline], full_lock(), None, ResolveOptions(offline=True))
    assert str(caught.value) == (
        "--offline: pipeline.lock has no entry for step 'a' uses 'vision/a@^2'; run "
        "`modreg lock` online first"
    )


def test_broken_lock_is_one_clear_problem(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.lock"
    path.write_text("lock-version: 99\n")
    with pytest.raises(Exception, match="unreadable lock"):
        read_lock(path)
