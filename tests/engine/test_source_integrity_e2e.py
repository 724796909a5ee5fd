"""Cached module sources are verified before every use (issue 8, failure 7).

Editing a file under ``STATE/sources/<sha256>/`` used to make the changed code run, and its
output became the team's shared cache entry, reused by teammates. Now the source cache
compares the folder with the record written at extraction and extracts again from the kept
archive (or downloads it again when that is gone): the tampered code never runs.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from engine_env import EngineEnv

from modreg.engine.source_manifest import SourceManifest

TAMPERED = """\
import sys
args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
open(args["--out"], "w").write("TAMPERED")
"""

PIPELINE = """\
name: single
steps:
  gen:
    uses: TEAM/gen@^1.0
    params: {k: 1}
"""


def _run(env: EngineEnv, *args: object, user: str = "alice") -> dict:
    result = env.run("run", *args, "--json", user=user)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def _tamper(main: Path) -> None:
    """Rewrite main.py keeping its mtime, as a careful hand (or a stray tool) would."""
    before = main.stat()
    main.write_text(TAMPERED)
    os.utime(main, ns=(before.st_atime_ns, before.st_mtime_ns))


@pytest.mark.parametrize("archive_kept", [True, False], ids=["archive-kept", "archive-gone"])
def test_tampered_sources_do_not_run_nor_reach_the_team_cache(
    env: EngineEnv, archive_kept: bool
) -> None:
    env.module("gen", params={"k": {"type": "int", "default": 0}})
    pipeline = env.pipeline(PIPELINE)
    first = _run(env, pipeline)
    sources = env.state() / "sources"
    (folder,) = [p for p in sources.iterdir() if p.is_dir() and not p.name.startswith(".")]
    original = (folder / "main.py").read_text()
    _tamper(folder / "main.py")
    if not archive_kept:
        (sources / f"{folder.name}.tar.gz").unlink()

    tampered_run = _run(env, pipeline, "--set", "gen.params.k=2")
    clean_run = _run(env, pipeline, "--set", "gen.params.k=2", "--no-reuse", user="bob")

    assert first["steps"]["gen"]["status"] == "executed"
    step = tampered_run["steps"]["gen"]
    assert step["status"] == "executed"
    assert step["outputs"] == clean_run["steps"]["gen"]["outputs"]  # the right output
    assert (folder / "main.py").read_text() == original  # extracted again
    assert [p.name for p in sources.iterdir() if p.name.startswith(".")] == []
    assert env.executions().count("gen") == 3  # the real module ran each time


def test_the_fast_check_sees_content_not_stat_noise(tmp_path: Path) -> None:
    """touch is not a change; an edit with the same size and mtime is; so is a new file."""
    folder = tmp_path / "src"
    (folder / "pkg").mkdir(parents=True)
    (folder / "main.py").write_text("print(1)\n")
    (folder / "pkg" / "lib.py").write_text("X = 1\n")
    record = SourceManifest.of(folder)
    record = SourceManifest(record.entries, record.taken_ns + 10**10)  # past the racy window
    assert record.changes(folder) == ([], None)

    time.sleep(0.01)
    (folder / "main.py").touch()
    changed, refreshed = record.changes(folder)
    assert changed == [] and refreshed is not None

    _tamper(folder / "pkg" / "lib.py")
    assert record.changes(folder)[0] == ["pkg/lib.py"]
    (folder / "pkg" / "lib.py").write_text("X = 1\n")
    (folder / "sitecustomize.py").write_text("import os\n")
    assert record.changes(folder)[0] == ["sitecustomize.py"]
    assert SourceManifest.from_json(json.loads(json.dumps(record.to_json()))) == record
