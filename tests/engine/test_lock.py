"""Locks: stable bytes, entries kept while references match, --locked / --offline, and
one lock per pipeline file (taking over the folder's old shared ``pipeline.lock``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from engine_env import EngineEnv

from modreg.engine import Lock, LockedModule, LockMismatchError, OfflineError, lock_path
from modreg.engine.lock import read_lock, read_pipeline_lock, write_lock
from modreg.engine.resolve import ResolveOptions, resolve_pipelines
from modreg.engine.spec import parse_pipeline
from modreg.registry.schemas import Manifest

TEXT = "name: p\nsteps:\n  b: {uses: vision/b@^1}\n  a: {uses: vision/a@^1}\n"


def locked(name: str, version: str = "1.0.0") -> LockedModule:
    manifest = Manifest(name=name, version=version, command=["python", "main.py"])
    return LockedModule(
        module=name, version=version, commit="c" * 40, sha256="d" * 64, manifest=manifest
    )


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


# --- one lock per pipeline file ----------------------------------------------------------


@pytest.mark.parametrize(
    ("pipeline", "lock"),
    [
        ("pipeline.yaml", "pipeline.lock"),
        ("train.yaml", "train.lock"),
        ("eval.yml", "eval.lock"),
        ("nightly.v2.yaml", "nightly.v2.lock"),
    ],
)
def test_each_pipeline_file_has_its_own_lock(tmp_path: Path, pipeline: str, lock: str) -> None:
    assert lock_path(tmp_path / pipeline) == tmp_path / lock


def test_a_shared_pipeline_lock_naming_this_pipeline_is_taken_over_once(tmp_path: Path) -> None:
    write_lock(tmp_path / "pipeline.lock", full_lock())  # full_lock() is pipeline "p"
    lock, warnings = read_pipeline_lock(tmp_path / "train.lock", "p")
    assert lock is not None and lock.to_dict() == full_lock().to_dict()
    assert warnings == [
        "train.lock did not exist: took the versions pipeline.lock holds for pipeline 'p' "
        "and wrote them to train.lock, now this file's own lock"
    ]
    assert (tmp_path / "train.lock").read_text() == (tmp_path / "pipeline.lock").read_text()
    assert read_pipeline_lock(tmp_path / "train.lock", "p") == (lock, [])


@pytest.mark.parametrize("shared", ["lock-version: 99\n", None, "another pipeline"])
def test_a_shared_lock_that_is_not_this_pipeline_s_is_left_alone(
    tmp_path: Path, shared: str | None
) -> None:
    if shared == "another pipeline":
        write_lock(tmp_path / "pipeline.lock", full_lock())
    elif shared is not None:
        (tmp_path / "pipeline.lock").write_text(shared)
    assert read_pipeline_lock(tmp_path / "train.lock", "train") == (None, [])
    assert not (tmp_path / "train.lock").exists()


def _two_pipelines(env: EngineEnv) -> tuple[Path, Path]:
    env.module("fit")
    env.module("score")
    train = env.pipeline("name: train\nsteps:\n  fit: {uses: TEAM/fit@^1.0}\n", "train.yaml")
    score = "name: eval\nsteps:\n  score: {uses: TEAM/score@^1.0}\n"
    return train, env.pipeline(score, "eval.yaml")


def _run_json(env: EngineEnv, *args: object, **extra: str) -> dict[str, Any]:
    result = env.run("run", *args, "--json", **extra)
    assert result.exit_code == 0, result.stderr
    return dict(json.loads(result.stdout))


def test_two_pipelines_in_one_folder_keep_both_locks(env: EngineEnv) -> None:
    train, evaluate = _two_pipelines(env)
    _run_json(env, train)
    train_lock = (train.parent / "train.lock").read_text()
    _run_json(env, evaluate)
    assert (train.parent / "train.lock").read_text() == train_lock
    assert f"{env.team}/score@1.0.0" in (train.parent / "eval.lock").read_text()
    assert not (train.parent / "pipeline.lock").exists()
    env.module("fit", "1.1.0")  # a re-resolve would now move on; the lock must not
    locked = _run_json(env, train, "--locked")
    assert locked["steps"]["fit"]["version"] == "1.0.0"
    offline = _run_json(env, train, "--offline", MODREG_URL="http://127.0.0.1:9")
    assert offline["steps"]["fit"] == {**locked["steps"]["fit"], "status": "reused"}


def test_a_project_s_old_shared_lock_is_taken_over_by_its_pipeline(env: EngineEnv) -> None:
    train, _ = _two_pipelines(env)
    assert env.run("lock", train).exit_code == 0
    (train.parent / "train.lock").rename(train.parent / "pipeline.lock")  # the old layout
    env.module("fit", "1.1.0")
    first = env.run("run", train, "--locked")
    assert first.exit_code == 0, first.stderr
    assert first.stderr.count("warning: train.lock did not exist: took the versions") == 1
    assert f"{env.team}/fit@1.0.0" in (train.parent / "train.lock").read_text()
    again = env.run("run", train, "--locked", "--json")
    assert again.exit_code == 0 and "warning" not in again.stderr
    assert json.loads(again.stdout)["steps"]["fit"]["version"] == "1.0.0"
