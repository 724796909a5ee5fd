"""Step outputs larger than the registry's upload limit (``--max-upload 1``: 1 MiB), through
both paths, each time reused by a teammate on another state folder and downloaded whole:

- a team on S3: the registry's blobs (``--blob-url s3://…``) and the artifact store
  (``--store s3://…``) on a real S3 API (moto's server process, ``s3_server``), endpoint and
  credentials from the ``AWS_*`` variables alone. The output never goes through the
  registry: the cache entry names the store;
- a team without a shared store: the output goes to the registry's blobs in chunks.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from engine_env import EngineEnv, Server, make_team
from registry_servers import start_server, stop_server
from s3_server import S3Server
from test_run_e2e import run_json, script

pytestmark = pytest.mark.slow

BIG = 3 * 2**20  # three times the registry's upload limit
WRITE_BIG = f"""\
block = hashlib.sha256(Path(args["raw"]).read_bytes()).digest() * 32768
with open(args["out"], "wb") as out:
    for _ in range({BIG} // len(block)):
        out.write(block)
"""


def _big_pipeline(env: EngineEnv) -> Path:
    body = "import hashlib\n" + WRITE_BIG
    env.module("big", inputs={"raw": "file"}, files=script(env, "big", body))
    (env.root / "work").mkdir(parents=True, exist_ok=True)
    (env.root / "work" / "raw.txt").write_text("raw")
    return env.pipeline("name: big\nsteps:\n  a:\n    uses: TEAM/big@^1.0\n"
                        "    inputs: {raw: raw.txt}\n")  # fmt: skip


@pytest.fixture
def s3_team(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3_server: S3Server
) -> Iterator[tuple[EngineEnv, str, str]]:
    for name in ("MODREG_URL", "MODREG_TOKEN", "MODREG_STORE"):
        monkeypatch.delenv(name, raising=False)
    bucket = s3_server.bucket()
    extra = ("--blob-url", f"s3://{bucket}/registry", "--max-upload", "1")
    handle = start_server(tmp_path / "registry", extra_args=extra)
    try:
        server = Server(handle.url, handle.admin_token)
        yield EngineEnv(server, *make_team(server), tmp_path / "env"), bucket, f"s3://{bucket}/art"
    finally:
        stop_server(handle.process)


def test_outputs_larger_than_the_upload_limit_stay_in_the_s3_store(
    s3_team: tuple[EngineEnv, str, str], s3_server: S3Server
) -> None:
    env, bucket, store = s3_team
    pipeline = _big_pipeline(env)
    assert any(key.startswith("registry/") for key in s3_server.keys(bucket)), "the archive"

    first = run_json(env, pipeline, "--store", store)
    assert first["status"] == "succeeded", first
    digest = first["steps"]["a"]["outputs"]["out"]
    assert f"art/blobs/{digest[:2]}/{digest}" in s3_server.keys(bucket, "art/")
    assert not any(digest in key for key in s3_server.keys(bucket, "registry/")), "no upload"
    with env.client() as client:
        (entry,) = client.lookup_cache([first["steps"]["a"]["fingerprint"]]).values()
    assert entry.store == store and entry.outputs["out"].size == BIG

    second = run_json(env, pipeline, "--store", store, user="bob")
    assert second["steps"]["a"]["status"] == "reused" and env.executions() == ["big"]
    out = env.root / "download"
    download = env.run(
        "runs", "download", first["run"], "--to", out, user="bob", MODREG_STORE=store
    )
    assert download.exit_code == 0, download.stderr
    data = (out / "a" / "out").read_bytes()
    assert len(data) == BIG and hashlib.sha256(data).hexdigest() == digest


def test_outputs_larger_than_the_upload_limit_go_to_the_registry_in_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("MODREG_URL", "MODREG_TOKEN", "MODREG_STORE"):
        monkeypatch.delenv(name, raising=False)
    handle = start_server(tmp_path / "registry", extra_args=("--max-upload", "1"))
    try:
        server = Server(handle.url, handle.admin_token)
        env = EngineEnv(server, *make_team(server), tmp_path / "env")
        pipeline = _big_pipeline(env)
        first = run_json(env, pipeline)
        assert first["status"] == "succeeded" and not first.get("warnings"), first
        digest = first["steps"]["a"]["outputs"]["out"]
        with env.client("bob") as client:
            assert client.has_blob(digest), "shared with the team"
        second = run_json(env, pipeline, user="bob")
        assert second["steps"]["a"]["status"] == "reused" and env.executions() == ["big"]
        out = env.root / "download"
        download = env.run("runs", "download", first["run"], "--to", out, user="bob")
        assert download.exit_code == 0, download.stderr
        data = (out / "a" / "out").read_bytes()
        assert len(data) == BIG and hashlib.sha256(data).hexdigest() == digest
    finally:
        stop_server(handle.process)
