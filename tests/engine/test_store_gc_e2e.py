"""``modreg gc --store URL``: collecting a team's shared artifact store on a real S3 API
(moto's server process), with its roots from a real registry whose cache entries expire
after a second (``--cache-retention 1s``).

Roots: the outputs of the team's live cache entries naming the store (a folder output's
files through its manifest) and of the steps of its pinned runs. Everything else written
before the grace period goes; a dry run lists exactly that.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from engine_env import EngineEnv, Server, make_team
from registry_servers import start_server, stop_server
from s3_server import S3Server
from test_run_e2e import run_json, script

from modreg.engine import FsspecArtifactStore

pytestmark = pytest.mark.slow

RETENTION = 1.0
SPLIT = """\
out = Path(args["out"])
(out / "x.txt").write_text("x")
(out / "y.txt").write_text(Path(args["raw"]).read_text())
"""
JOIN = 'Path(args["out"]).write_text((Path(args["data"]) / "y.txt").read_text() + "|joined")'


@pytest.fixture
def team(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3_server: S3Server
) -> Iterator[tuple[EngineEnv, str]]:
    for name in ("MODREG_URL", "MODREG_TOKEN", "MODREG_STORE"):
        monkeypatch.delenv(name, raising=False)
    extra = ("--cache-retention", f"{RETENTION:g}s")
    handle = start_server(tmp_path / "registry", extra_args=extra)
    try:
        server = Server(handle.url, handle.admin_token)
        yield (
            EngineEnv(server, *make_team(server), tmp_path / "env"),
            f"s3://{s3_server.bucket()}/a",
        )
    finally:
        stop_server(handle.process)


def _gc(env: EngineEnv, store: str, *args: str) -> list[str]:
    answer = env.run("gc", "--store", store, "--json", *args)
    assert answer.exit_code == 0, answer.stderr
    return sorted(json.loads(answer.stdout)["deleted"])


def _blobs(store: str) -> set[str]:
    return {digest for digest, _ in FsspecArtifactStore(store).list_blobs()}


def test_gc_of_a_shared_store_keeps_live_entries_and_pinned_runs(
    team: tuple[EngineEnv, str],
) -> None:
    env, store = team
    env.module("split", inputs={"raw": "file"}, outputs={"out": "dir"},
               files=script(env, "split", SPLIT))  # fmt: skip
    env.module("join", inputs={"data": "dir"}, files=script(env, "join", JOIN))
    (env.root / "work").mkdir(parents=True, exist_ok=True)
    (env.root / "work" / "raw.txt").write_text("raw")
    pipeline = env.pipeline("name: two\nsteps:\n  s:\n    uses: TEAM/split@^1.0\n"
                            "    inputs: {raw: raw.txt}\n  j:\n    uses: TEAM/join@^1.0\n"
                            "    inputs: {data: s.outputs.out}\n")  # fmt: skip
    body = run_json(env, pipeline, "--store", store)
    outputs = _blobs(store)
    assert len(outputs) == 4, "a manifest, its two files, the joined file"
    orphan = FsspecArtifactStore(store).put_bytes(b"written by a step never recorded")

    assert _gc(env, store, "--grace", "1h", "--dry-run") == [], "all young"
    assert _gc(env, store, "--grace", "0s", "--dry-run") == [orphan], "entries are live"
    time.sleep(RETENTION + 0.5)  # the cache entries expire: they root nothing now
    assert _gc(env, store, "--grace", "0s", "--dry-run") == sorted(outputs | {orphan})
    with env.client() as client:
        client.pin_run(body["run"])
    assert _gc(env, store, "--grace", "0s") == [orphan], "a pinned run keeps its outputs"
    assert _blobs(store) == outputs
    with env.client() as client:
        client.pin_run(body["run"], pinned=False)
    assert _gc(env, store, "--grace", "0s") == sorted(outputs)
    assert _blobs(store) == set()
    again = run_json(env, pipeline, "--store", store)
    assert {s["status"] for s in again["steps"].values()} == {"executed"}, "collected: rerun"
