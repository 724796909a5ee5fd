"""``modreg cache prune`` on a real state folder: least recently used first, by age and by
size, a dry run that removes nothing, and nothing at all while an engine runs there."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from engine_env import EngineEnv

from modreg.client.cli import cli
from modreg.engine.state import StateDir
from modreg.engine.store import LocalArtifactStore

DAY = 86400


@pytest.fixture
def state(tmp_path: Path) -> StateDir:
    return StateDir(tmp_path / "cache" / "modreg" / "engine")


def _blob(state: StateDir, data: bytes, days_ago: float) -> str:
    store = LocalArtifactStore(state.store)
    digest = store.put_bytes(data)
    path = store.local_path(digest)
    assert path is not None
    when = time.time() - days_ago * DAY
    os.utime(path, (when, when))
    return digest


def _source(state: StateDir, name: str, size: int, days_ago: float) -> Path:
    folder = state.sources / name
    (folder / "pkg").mkdir(parents=True)
    (folder / "pkg" / "main.py").write_bytes(b"x" * size)
    (folder / "pkg" / "main.py").chmod(0o444)
    (folder / "pkg").chmod(0o555)  # extracted sources may be read-only
    when = time.time() - days_ago * DAY
    os.utime(folder, (when, when))
    return folder


def _prune(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        cli, ["cache", "prune", *args], env={"XDG_CACHE_HOME": str(tmp_path / "cache")}
    )
    return result.exit_code, result.stdout, result.stderr


def test_prune_by_age_then_by_size_least_recently_used_first(
    state: StateDir, tmp_path: Path
) -> None:
    ancient = _blob(state, b"a" * 100, days_ago=60)
    old_source = _source(state, "s" * 64, 100, days_ago=40)
    middle = _blob(state, b"m" * 100, days_ago=10)
    recent = _blob(state, b"r" * 100, days_ago=1)
    fresh_source = _source(state, "t" * 64, 100, days_ago=0)

    code, out, err = _prune(tmp_path, "--older-than", "30d", "--dry-run", "--json")
    assert code == 0, err
    assert [i["name"] for i in json.loads(out)["removed"]] == [ancient, "s" * 64]
    assert old_source.exists(), "a dry run removes nothing"

    code, out, err = _prune(tmp_path, "--older-than", "30d", "--max-size", "250", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert [i["name"] for i in report["removed"]] == [ancient, "s" * 64, middle]
    assert report["kept_bytes"] == 200
    store = LocalArtifactStore(state.store)
    assert not store.has_blob(ancient) and not store.has_blob(middle) and not old_source.exists()
    assert store.has_blob(recent) and fresh_source.exists()


def test_a_pruned_source_takes_its_record_and_archive_copy_and_leftovers_go(
    state: StateDir, tmp_path: Path
) -> None:
    sha = "s" * 64
    _source(state, sha, 100, days_ago=40)
    kept = [state.sources / f"{sha}.files.json", state.sources / f"{sha}.tar.gz"]
    for path in kept:
        path.write_bytes(b"k" * 50)
    stale = _source(state, f".stale-{'u' * 64}-0123abcd", 10, days_ago=0)
    pulling = _source(state, ".pull-inprogress", 10, days_ago=0)

    code, out, err = _prune(tmp_path, "--older-than", "30d", "--json")
    assert code == 0, err
    [removed] = json.loads(out)["removed"]
    assert (removed["name"], removed["size"]) == (sha, 200)
    assert not any(path.exists() for path in [state.sources / sha, *kept])
    assert not stale.exists(), "a folder an interrupted engine set aside is never used again"
    assert pulling.exists(), "a pull may be in progress"


def test_prune_refuses_while_an_engine_runs_on_the_state(state: StateDir, tmp_path: Path) -> None:
    blob = _blob(state, b"held", days_ago=90)
    with state.in_use():  # what every `modreg run` holds while it runs
        code, _, err = _prune(tmp_path, "--older-than", "1d")
    assert code == 1
    assert (
        err.strip()
        == f"error: an engine is running on {state.root}: prune again once it has finished"
    )
    assert LocalArtifactStore(state.store).has_blob(blob)
    code, _, err = _prune(tmp_path, "--older-than", "1d")
    assert code == 0, err
    assert not LocalArtifactStore(state.store).has_blob(blob)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "say what to prune: --older-than, --max-size or both"),
        (("--max-size", "lots"), "invalid size 'lots'"),
        (("--older-than", "3 fortnights"), "invalid duration '3 fortnights'"),
    ],
)
def test_prune_usage_errors(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    code, _, err = _prune(tmp_path, *args)
    assert code == 2 and message in err


GATED = """\
import sys, time
from pathlib import Path
args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
args = {{k.lstrip("-"): v for k, v in args.items()}}
Path({started!r}).write_text("started")
deadline = time.monotonic() + 60
while not Path({go!r}).exists() and time.monotonic() < deadline:
    time.sleep(0.05)
Path(args["out"]).write_text(Path(args["raw"]).read_text() + "|gated")
"""


@pytest.mark.slow
def test_a_running_engine_keeps_prune_away_then_a_pruned_result_comes_back(
    env: EngineEnv,
) -> None:
    started, go = env.root / "started", env.root / "go"
    script = GATED.format(started=str(started), go=str(go))
    env.module("gated", inputs={"raw": "file"}, files={"main.py": script})
    (env.root / "work").mkdir(exist_ok=True)
    (env.root / "work" / "raw.txt").write_text("raw")
    pipeline = env.pipeline("name: g\nsteps:\n  g:\n    uses: TEAM/gated@^1\n"
                            "    inputs: {raw: raw.txt}\n")  # fmt: skip
    running = env.spawn("run", pipeline, "--json")
    try:
        deadline = time.monotonic() + 60
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert started.exists(), "the step started"
        busy = env.run("cache", "prune", "--max-size", "0")
        assert busy.exit_code == 1
        assert busy.stderr.startswith("error: an engine is running on ")
    finally:
        go.write_text("go")
        out, err = running.communicate(timeout=120)
    assert running.returncode == 0, err
    first = json.loads(out)["steps"]["g"]

    pruned = env.run("cache", "prune", "--max-size", "0", "--json")
    assert pruned.exit_code == 0, pruned.stderr
    removed = {item["name"] for item in json.loads(pruned.stdout)["removed"]}
    assert first["outputs"]["out"] in removed
    again = env.run("run", pipeline, "--json")
    assert again.exit_code == 0, again.stderr
    step = json.loads(again.stdout)["steps"]["g"]
    assert step["status"] == "reused", "the registry still holds the result"
    downloaded = env.run(
        "runs", "download", json.loads(again.stdout)["run"], "--to", env.root / "dl"
    )
    assert downloaded.exit_code == 0, downloaded.stderr
    assert (env.root / "dl" / "g" / "out").read_text() == "raw|gated"
