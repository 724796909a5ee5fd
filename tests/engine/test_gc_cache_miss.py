"""End to end: a cache hit whose blob was collected is a miss, never a failed run.

A real registry with a one-second cache retention, a real ``modreg run``: once the registry's
``gc`` has expired the entry and collected its output, and the local store has lost the blob
too (as ``modreg cache prune`` would), the step executes again and the run succeeds; the
dangling local entry is dropped. A registry entry whose blob is gone from the registry's
store (lost storage) is a miss as well, for a teammate with nothing local.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from engine_env import EngineEnv, Server, make_team

SCRIPT = """\
import os, sys
from pathlib import Path
args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
args = {k.lstrip("-"): v for k, v in args.items()}
Path(args["out"]).write_text(Path(args["raw"]).read_text() + "|made")
with open(os.environ["TEST_STEP_COUNTER"], "a") as counter:
    counter.write("TEAM/make\\n")
"""


@pytest.fixture
def gc_env(server_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> EngineEnv:
    for name in ("MODREG_URL", "MODREG_TOKEN", "MODREG_STORE"):
        monkeypatch.delenv(name, raising=False)
    handle = server_factory(extra_args=("--cache-retention", "1s"))
    server = Server(handle.url, handle.admin_token)
    team, tokens = make_team(server)
    env = EngineEnv(server, team, tokens, tmp_path)
    env.data_dir = handle.data_dir  # type: ignore[attr-defined]
    return env


def _run(env: EngineEnv, pipeline: Path, user: str = "alice") -> dict[str, Any]:
    result = env.run("run", pipeline, "--json", user=user)
    assert result.exit_code == 0, result.stderr
    body: dict[str, Any] = json.loads(result.stdout)
    assert body["status"] == "succeeded"
    return body


def _gc(env: EngineEnv) -> dict[str, Any]:
    answer = httpx.post(
        f"{env.server.url}/api/v1/gc",
        json={"grace_seconds": 0},
        headers={"Authorization": f"Bearer {env.server.admin}"},
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


@pytest.mark.slow
def test_a_collected_cache_entry_reexecutes_the_step_and_the_run_succeeds(
    gc_env: EngineEnv,
) -> None:
    env = gc_env
    files = {"main.py": SCRIPT.replace("TEAM", env.team)}
    env.module("make", inputs={"raw": "file"}, files=files)
    (env.root / "work").mkdir(exist_ok=True)
    (env.root / "work" / "raw.txt").write_text("raw")
    pipeline = env.pipeline("name: one\nsteps:\n  make:\n    uses: TEAM/make@^1\n"
                            "    inputs: {raw: raw.txt}\n")  # fmt: skip
    first = _run(env, pipeline)
    out = first["steps"]["make"]["outputs"]["out"]
    fingerprint = first["steps"]["make"]["fingerprint"]
    assert _run(env, pipeline, user="bob")["steps"]["make"]["status"] == "reused"

    time.sleep(1.2)  # the entry is past the registry's retention
    report = _gc(env)
    assert report["expired_cache_entries"] == 1
    assert out in {blob["sha256"] for blob in report["blobs"]}
    for user in ("alice", "bob"):  # and this machine's store lost it too
        for blob in (env.state(user) / "store" / "blobs").rglob(out):
            blob.chmod(0o644)
            blob.unlink()
    local_entry = env.state() / "cache" / fingerprint[:2] / f"{fingerprint}.json"
    assert local_entry.exists(), "alice still has the (now dangling) local entry"

    again = _run(env, pipeline)
    assert again["steps"]["make"]["status"] == "executed"
    assert again["steps"]["make"]["outputs"]["out"] == out
    assert env.executions() == ["make", "make"]
    assert json.loads(local_entry.read_text())["outputs"]["out"]["digest"] == out

    # a registry entry whose blob the registry lost: a teammate with nothing local executes
    data_dir: Path = env.data_dir  # type: ignore[attr-defined]
    (data_dir / "blobs" / out[:2] / out[2:]).unlink()
    result = env.run("run", pipeline, "--json", user="bob")
    assert result.exit_code == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["status"] == "succeeded"
    assert body["steps"]["make"]["status"] == "executed"
    assert "is gone from the registry" in result.stderr
    assert env.executions() == ["make", "make", "make"]
