"""Module environments end to end: modules that commit a hash-pinned ``requirements.lock``,
published to a real registry and run by the real ``modreg`` CLI, with the real uv installing
tiny wheels the test builds (``tiny_wheels``) from a local folder, no index.

Each step reports what it saw (``tinypkg.VERSION``, its interpreter, ``VIRTUAL_ENV``,
``PATH``) in its output, and counts its executions in a side file.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from engine_env import EngineEnv
from factories import default_command, make_module_repo, manifest_toml
from test_run_e2e import script
from tiny_wheels import build_wheel, compile_lock, uv_settings

from modreg.client.publishing import publish
from modreg.engine import (
    LocalArtifactStore,
    LocalExecutor,
    ModuleStep,
    Pipeline,
    RunOptions,
    StateDir,
    StepEvent,
    Workspace,
    run_pipeline,
)
from modreg.engine.environments import Interpreter
from modreg.registry.environment_lock import LOCK_FILE

REPORT = """\
import json
report = {"executable": sys.executable, "prefix": sys.prefix,
          "venv": os.environ.get("VIRTUAL_ENV"), "path": os.environ["PATH"]}
try:
    import tinypkg
    report["tinypkg"] = tinypkg.VERSION
except ImportError:
    report["tinypkg"] = None
Path(args["out"]).write_text(json.dumps(report))
"""
TWO = """\
name: two
steps:
  old:
    uses: TEAM/old@^1.0
  new:
    uses: TEAM/new@^1.0
"""
ONE = """\
name: {name}
steps:
  {step}:
    uses: TEAM/{module}@^1.0
"""


@pytest.fixture
def wheels(tmp_path: Path) -> Path:
    folder = tmp_path / "wheels"
    build_wheel(folder, "tinypkg", "1.0")
    build_wheel(folder, "tinypkg", "2.0")
    return folder


@pytest.fixture
def uv(tmp_path: Path, wheels: Path) -> dict[str, str]:
    """The uv settings every run gets: the wheels folder, no index, a cache of the test's."""
    return uv_settings(wheels, tmp_path / "uv-cache")


def _lock(env: EngineEnv, wheels: Path, version: str) -> str:
    return compile_lock(f"tinypkg=={version}", wheels, env.root / "compile")


def _module(env: EngineEnv, name: str, lock: str | None, tag: str = "") -> str:
    """Publish ``TEAM/name@1.0.0`` reporting what it sees; it commits ``lock``, if any, as its
    ``requirements.lock``."""
    files = script(env, name, REPORT + f"# {tag}\n")
    if lock is None:
        return env.module(name, files=files)
    files[LOCK_FILE] = lock
    full = f"{env.team}/{name}"
    outputs = {"out": {"type": "file"}}
    command = default_command({}, outputs, {})
    text = manifest_toml(full, "1.0.0", command, {}, outputs, {}, {"env": ["TEST_STEP_COUNTER"]})
    text += '\n[environment]\npython = ">=3.11"\n'  # the lock beside it holds the rest
    folder = make_module_repo(env.root, full, files=files, manifest=text)
    with env.client() as client:
        publish(client, folder)  # sends the committed lock as it is
    return full


def _run(env: EngineEnv, pipeline: Path, *args: str, **extra: str) -> dict[str, Any]:
    result = env.run("run", pipeline, "--json", *args, **extra)
    assert result.exit_code == 0, result.stderr + result.stdout
    return json.loads(result.stdout)


def _explained(
    env: EngineEnv, pipeline: Path, *args: str, **extra: str
) -> tuple[dict[str, Any], str]:
    """Run with ``--explain``: the run (as ``{"run": id}``) and why its steps executed."""
    result = env.run("run", pipeline, "--explain", *args, **extra)
    assert result.exit_code == 0, result.stderr + result.stdout
    match = re.search(r"run (\S+): succeeded", result.stdout)
    assert match is not None, result.stdout
    return {"run": match.group(1)}, result.stdout


def _seen(env: EngineEnv, body: dict[str, Any], step: str) -> dict[str, Any]:
    """What a step of a run reported (its output, downloaded)."""
    folder = env.root / "got" / body["run"]
    if not folder.exists():
        download = env.run("runs", "download", body["run"], "--to", folder)
        assert download.exit_code == 0, download.stderr
    return json.loads((folder / step / "out").read_text())


def _log(env: EngineEnv, body: dict[str, Any], step: str) -> str:
    return (env.state() / "logs" / body["run"] / f"{step}.log").read_text()


def _envs(env: EngineEnv) -> list[dict[str, Any]]:
    listed = env.run("envs", "list", "--json")
    assert listed.exit_code == 0, listed.stderr
    return list(json.loads(listed.stdout)["environments"])


def test_conflicting_versions_in_one_pipeline_each_see_their_own(
    env: EngineEnv, wheels: Path, uv: dict[str, str]
) -> None:
    old = _module(env, "old", _lock(env, wheels, "1.0"))
    new = _module(env, "new", _lock(env, wheels, "2.0"))
    pipeline = env.pipeline(TWO)

    body = _run(env, pipeline, **uv)
    assert {s["status"] for s in body["steps"].values()} == {"executed"}
    seen = {step: _seen(env, body, step) for step in ("old", "new")}
    assert (seen["old"]["tinypkg"], seen["new"]["tinypkg"]) == ("1.0", "2.0")
    envs = env.state() / "envs"
    for step, report in seen.items():
        venv = Path(report["venv"])
        assert venv.parent.parent == envs  # STATE/envs/<digest>/venv
        assert Path(report["prefix"]) == venv  # the leading `python` is the venv's
        assert report["executable"] == str(venv / "bin" / "python")
        assert report["path"].split(os.pathsep)[0] == str(venv / "bin")
        assert "[modreg] building environment" in _log(env, body, step)
    listed = {tuple(e["modules"]): e for e in _envs(env)}
    assert set(listed) == {(f"{old}@1.0.0",), (f"{new}@1.0.0",)}
    locked = yaml.safe_load(pipeline.with_suffix(".lock").read_text())["modules"]
    assert {m["environment"]["sha256"] for m in locked.values()} == {
        e["lock"] for e in listed.values()
    }

    again = _run(env, pipeline, "--no-reuse", **uv)
    assert {s["status"] for s in again["steps"].values()} == {"executed"}
    assert not any("building environment" in _log(env, again, step) for step in ("old", "new"))
    assert _run(env, pipeline, **uv)["steps"]["old"]["status"] == "reused"


def test_another_environment_lock_re_executes_the_same_version_and_a_shared_env_shares_no_results(
    env: EngineEnv, wheels: Path, uv: dict[str, str]
) -> None:
    _module(env, "old", _lock(env, wheels, "1.0"))
    _module(env, "new", _lock(env, wheels, "2.0"))
    _run(env, env.pipeline(TWO), **uv)
    pipeline = env.pipeline(ONE.format(name="one", step="s", module="old"), "one.yaml")
    first = _run(env, pipeline, **uv)
    assert first["steps"]["s"]["status"] == "reused"  # same version, same lock, same env

    lock_file = pipeline.with_suffix(".lock")
    text = lock_file.read_text()
    data = yaml.safe_load(text)
    [entry] = data["modules"].values()
    other = yaml.safe_load(env.pipeline(TWO).with_suffix(".lock").read_text())["modules"]
    swapped = next(m["environment"]["sha256"] for k, m in other.items() if "/new@" in k)
    lock_file.write_text(text.replace(entry["environment"]["sha256"], swapped))
    refused = env.run("run", pipeline, **uv)  # online, the registry's word is checked
    assert refused.exit_code == 1
    key, original = next(iter(data["modules"])), entry["environment"]["sha256"]
    expected = f"names {key} with environment lock {swapped[:12]}, but the registry has "
    assert expected + f"{original[:12]}; check the lock" in refused.stderr
    changed, why = _explained(env, pipeline, "--offline", **uv)  # the lock, trusted as it is
    assert "s: executed because environment changed (" in why
    assert _seen(env, changed, "s")["tinypkg"] == "2.0"

    lock_file.write_text(text)
    assert _run(env, pipeline, **uv)["steps"]["s"]["status"] == "reused"

    _module(env, "twin", _lock(env, wheels, "1.0"), tag="other code, same environment")
    twin = env.pipeline(ONE.format(name="twin", step="t", module="twin"), "twin.yaml")
    body = _run(env, twin, **uv)
    assert body["steps"]["t"]["status"] == "executed"  # another module: its own results
    assert "building environment" not in _log(env, body, "t")  # ... in the same venv
    by_lock = {e["lock"]: sorted(m.split("/")[1] for m in e["modules"]) for e in _envs(env)}
    assert by_lock[entry["environment"]["sha256"]] == ["old@1.0.0", "twin@1.0.0"]
    assert by_lock[swapped] == ["new@1.0.0", "old@1.0.0"]


def test_a_module_without_environment_re_executes_on_another_interpreter_or_package_set(
    env: EngineEnv, tmp_path: Path
) -> None:
    _module(env, "plain", None)
    pipeline = env.pipeline(ONE.format(name="plain", step="p", module="plain"))
    first = _run(env, pipeline)
    assert first["steps"]["p"]["status"] == "executed"
    assert _seen(env, first, "p")["venv"] is None
    assert _run(env, pipeline)["steps"]["p"]["status"] == "reused"

    other = Interpreter(Interpreter.current().implementation, "3.99", "linux-x86_64")
    _, why = _explained(env, pipeline, MODREG_INTERPRETER=str(other))
    assert "p: executed because environment changed (" in why

    def spawned(**extra: str) -> str:
        process = env.spawn("run", pipeline, "--json", **extra)
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
        return str(json.loads(out)["steps"]["p"]["status"])

    assert spawned() == "reused"  # another process, the same packages
    extra = tmp_path / "site"
    (extra / "tinypkg-9.0.dist-info").mkdir(parents=True)
    (extra / "tinypkg-9.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: tinypkg\nVersion: 9.0\n"
    )
    assert spawned(PYTHONPATH=str(extra)) == "executed"
    bad = env.run("run", pipeline, MODREG_INTERPRETER="python3.12")
    assert bad.exit_code == 2
    assert "MODREG_INTERPRETER='python3.12' is not IMPLEMENTATION-MAJOR.MINOR-PLATFORM" in (
        " ".join(bad.stderr.split())
    )


def test_two_concurrent_runs_needing_one_new_environment_build_it_once(
    env: EngineEnv, wheels: Path, uv: dict[str, str]
) -> None:
    lock = _lock(env, wheels, "2.0")
    pipelines = []
    for name in ("left", "right"):
        _module(env, name, lock, tag=name)
        text = ONE.format(name=name, step=name, module=name)
        pipelines.append(env.pipeline(text, f"{name}.yaml"))
    processes = [env.spawn("run", pipeline, "--json", **uv) for pipeline in pipelines]
    bodies = []
    for process in processes:
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
        bodies.append(json.loads(out))
    logs = [_log(env, body, name) for body, name in zip(bodies, ("left", "right"), strict=True)]
    assert sum("[modreg] building environment" in log for log in logs) == 1
    [built] = _envs(env)
    assert len(built["modules"]) == 2


class _SlowWheels(ThreadingHTTPServer):
    """Serves a find-links page and its wheels, but holds every wheel download until
    ``release`` is set: a build that is stuck half-way, for as long as the test wants."""

    def __init__(self, folder: Path) -> None:
        super().__init__(("127.0.0.1", 0), _SlowHandler)
        self.folder = folder
        self.asked = threading.Event()
        self.release = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/"


class _SlowHandler(BaseHTTPRequestHandler):
    server: _SlowWheels

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        name = self.path.strip("/")
        if not name:
            wheels = sorted(p.name for p in self.server.folder.iterdir())
            links = "".join(f'<a href="{name}">{name}</a>' for name in wheels)
            self._send(f"<html><body>{links}</body></html>".encode(), "text/html")
            return
        self.server.asked.set()
        self.server.release.wait(timeout=600)
        self._send((self.server.folder / name).read_bytes(), "application/octet-stream")

    def _send(self, data: bytes, kind: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def slow_wheels(wheels: Path) -> Iterator[_SlowWheels]:
    server = _SlowWheels(wheels)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.release.set()
        server.shutdown()
        server.server_close()


def test_a_build_killed_half_way_leaves_nothing_used_and_the_next_run_rebuilds(
    env: EngineEnv,
    tmp_path: Path,
    wheels: Path,
    uv: dict[str, str],
    slow_wheels: _SlowWheels,
) -> None:
    _module(env, "old", _lock(env, wheels, "1.0"))
    pipeline = env.pipeline(ONE.format(name="old", step="o", module="old"))
    slow = uv_settings(slow_wheels.url, tmp_path / "slow-cache")
    process = env.spawn("run", pipeline, "--json", **slow)
    try:
        assert slow_wheels.asked.wait(timeout=300), "uv never asked for the wheel"
        leftover = [p for p in (env.state() / "envs").iterdir() if len(p.name) == 64]
        assert len(leftover) == 1 and (leftover[0] / "venv").is_dir()
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
    assert not (leftover[0] / "ready.json").exists()
    assert _envs(env) == []

    body = _run(env, pipeline, **uv)
    assert body["steps"]["o"]["status"] == "executed"
    assert "[modreg] building environment" in _log(env, body, "o")
    assert _seen(env, body, "o")["tinypkg"] == "1.0"


def test_a_failed_build_fails_its_step_caches_nothing_and_leaves_no_environment(
    env: EngineEnv, wheels: Path, uv: dict[str, str]
) -> None:
    good = _lock(env, wheels, "1.0")
    _module(env, "broken", good.replace(good.split("sha256:")[1][:64], "0" * 64))
    pipeline = env.pipeline(ONE.format(name="broken", step="b", module="broken"))
    for _ in range(2):  # nothing cached: the second run tries again
        result = env.run("run", pipeline, **uv)
        assert result.exit_code == 1
        assert "could not build the environment of" in result.stderr
        assert "Hash mismatch for `tinypkg==1.0`" in result.stderr
        assert _envs(env) == []
        assert not [p for p in (env.state() / "envs").iterdir() if len(p.name) == 64]
    logs = list((env.state() / "logs").rglob("b.log"))
    assert len(logs) == 2 and all("0" * 64 in log.read_text() for log in logs)
    assert env.executions() == []


def test_offline_uses_built_environments_and_uvs_cache_and_names_what_is_missing(
    env: EngineEnv, wheels: Path, uv: dict[str, str]
) -> None:
    _module(env, "old", _lock(env, wheels, "1.0"))
    pipeline = env.pipeline(ONE.format(name="old", step="o", module="old"))
    _run(env, pipeline, **uv)

    built = _run(env, pipeline, "--offline", "--no-reuse", **uv)
    assert "building environment" not in _log(env, built, "o")
    recent = env.run("envs", "prune", "--older-than", "30d")
    assert recent.stdout == "envs prune removed 0 environments (0 bytes); " + (
        f"{_envs(env)[0]['size']} bytes kept\n"
    )
    shown = env.run("envs", "list")
    assert _envs(env)[0]["digest"][:12] in shown.stdout and "old@1.0.0" in shown.stdout

    pruned = env.run("envs", "prune", "--json")
    assert len(json.loads(pruned.stdout)["removed"]) == 1 and _envs(env) == []
    rebuilt = _run(env, pipeline, "--offline", "--no-reuse", **uv)  # the kept lock, uv's cache
    assert "[modreg] building environment" in _log(env, rebuilt, "o")
    assert "uv pip sync" in _log(env, rebuilt, "o") and len(_envs(env)) == 1

    assert env.run("envs", "prune").exit_code == 0
    assert env.run("envs", "list").stdout == "Environments: none\n"
    shutil.rmtree(env.state() / "env-locks")
    missing = env.run("run", pipeline, "--offline", "--no-reuse", **uv)
    assert missing.exit_code == 1
    assert "is not on this machine and --offline cannot fetch its lock" in missing.stderr


class _Recorder:
    """A RunObserver that keeps every step change."""

    def __init__(self) -> None:
        self.changes: list[tuple[str, str, str]] = []

    def step_changed(self, event: StepEvent) -> None:
        self.changes.append((event.step, str(event.status), event.detail))


def test_a_run_tells_its_observer_while_an_environment_builds(
    env: EngineEnv, tmp_path: Path, wheels: Path, uv: dict[str, str]
) -> None:
    old = _module(env, "old", _lock(env, wheels, "1.0"))
    pipeline = Pipeline("api", {"o": ModuleStep(f"{old}@^1")}, base_dir=tmp_path)
    state = StateDir(tmp_path / "state")
    caller = {**uv, "PATH": os.environ["PATH"], "TEST_STEP_COUNTER": str(env.counter)}
    building = ("o", "running", "building environment")
    with env.client() as client:
        for expected in (True, False):  # built on the first run, there on the second
            recorder = _Recorder()
            workspace = Workspace(
                state,
                LocalArtifactStore(state.store),
                LocalExecutor(1),
                client,
                observer=recorder,
                caller_env=caller,
            )
            result = run_pipeline(pipeline, workspace, RunOptions(no_reuse=True))
            assert result.status == "succeeded", result.error
            assert (building in recorder.changes) is expected
