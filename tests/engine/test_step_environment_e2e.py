"""A module is someone else's code: a step runs with a scrubbed environment.

Through the real CLI against a real registry: a module that dumps its whole environment
sees none of the engine's credentials (``MODREG_TOKEN``, ``AWS_*``) nor the login file's
folder, gets ``HOME`` and ``TMPDIR`` inside its scratch folder, and receives the one
variable it declares in ``[module] env``, whose value is then found in no run record,
cache entry, fingerprint or log the engine or the registry wrote.
"""

from __future__ import annotations

import json
from pathlib import Path

from engine_env import EngineEnv
from test_run_e2e import script

SECRET = "hf-secret-value-8c1f"
DUMP = 'Path(args["out"]).write_text(json.dumps(dict(os.environ)))'
PIPELINE = """\
name: dump
steps:
  dump:
    uses: TEAM/dump@^1.0
"""


def _dump_module(env: EngineEnv) -> Path:
    env.module(
        "dump",
        files=script(env, "dump", "import json\n" + DUMP),
        module_extra={"env": ["HF_TOKEN", "NOT_SET_ANYWHERE"]},
    )
    return env.pipeline(PIPELINE)


def run_json(env: EngineEnv, pipeline: Path, **variables: str) -> dict:
    result = env.run("run", pipeline, "--json", **variables)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def _files_holding(root: Path, needle: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_a_step_sees_no_credentials_and_only_the_variables_it_declares(env: EngineEnv) -> None:
    pipeline = _dump_module(env)
    login = env.run("login", env.server.url, "--token", env.tokens["alice"])
    assert login.exit_code == 0, login.stderr
    config = env.root / "users" / "alice" / "config"
    secrets = {
        "HF_TOKEN": SECRET,
        "AWS_SECRET_ACCESS_KEY": "aws-secret-3e9a",
        "AWS_ACCESS_KEY_ID": "AKIATEST",
        "UNDECLARED_TOKEN": "undeclared-7d2b",
        "LANG": "C.UTF-8",
    }
    body = run_json(env, pipeline, **secrets)
    step = body["steps"]["dump"]
    assert step["status"] == "executed"
    download = env.run("runs", "download", body["run"], "--to", env.root / "got")
    assert download.exit_code == 0, download.stderr
    seen = json.loads((env.root / "got" / "dump" / "out").read_text())

    assert not [name for name in seen if name.startswith(("MODREG_TOKEN", "MODREG_URL"))]
    assert not [name for name in seen if name.startswith(("AWS_", "XDG_"))]
    assert "UNDECLARED_TOKEN" not in seen and "NOT_SET_ANYWHERE" not in seen
    assert seen["HF_TOKEN"] == SECRET and seen["LANG"] == "C.UTF-8"
    leaked = [v for v in seen.values() if str(config) in v or env.tokens["alice"] in v]
    assert not leaked
    scratch = env.state() / "scratch"
    assert Path(seen["HOME"]).is_relative_to(scratch)
    assert Path(seen["TMPDIR"]).is_relative_to(scratch)
    assert Path(seen["MODREG_METRICS"]).is_relative_to(scratch)
    engine_set = {"PATH", "HOME", "TMPDIR", "LANG", "LC_CTYPE", "MODREG_METRICS"}
    assert set(seen) <= engine_set | {"HF_TOKEN", "TEST_STEP_COUNTER"}

    shown = env.run("runs", "show", body["run"], "--json")
    assert SECRET not in shown.stdout
    # the value exists only in the step's own output blob, which the module chose to write
    holding = _files_holding(env.state(), SECRET.encode())
    assert all("store" in p.relative_to(env.state()).parts for p in holding), holding
    assert not _files_holding(env.state() / "logs", SECRET.encode())
    assert not _files_holding(env.state() / "runs", SECRET.encode())
    assert not _files_holding(env.state() / "cache", SECRET.encode())
    assert (
        not (env.root / "work" / "pipeline.lock").exists()
        or SECRET not in (env.root / "work" / "pipeline.lock").read_text()
    )


def test_a_declared_variable_changes_no_fingerprint(env: EngineEnv) -> None:
    pipeline = _dump_module(env)
    first = run_json(env, pipeline, HF_TOKEN="one")
    second = run_json(env, pipeline, HF_TOKEN="two")
    assert second["steps"]["dump"]["status"] == "reused"
    assert first["steps"]["dump"]["fingerprint"] == second["steps"]["dump"]["fingerprint"]
