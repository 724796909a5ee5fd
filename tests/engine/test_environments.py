"""Module environments at the engine's level: digests, the seam, and building venvs with the
real uv from tiny local wheels (no index), with the environment lock kept in the state folder
as an earlier online run leaves it.

End to end through the CLI and a registry: test_environments_e2e.py.
"""

from __future__ import annotations

import hashlib
import threading
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from tiny_wheels import build_wheel, compile_lock, uv_settings

from modreg.engine.environments import (
    Environments,
    Interpreter,
    StepEnvironment,
    installed_distributions,
    leftovers,
    list_environments,
    step_environment,
    uv_environment,
)
from modreg.engine.errors import EnvironmentBuildError, PipelineSpecError
from modreg.engine.lock import Lock, LockedEnvironment, LockedModule, read_lock
from modreg.engine.pruning import prune_environments
from modreg.engine.state import StateDir
from modreg.registry.schemas import EnvironmentSpec, Manifest

HERE = Interpreter.current()
OTHER = Interpreter(HERE.implementation, "3.99", HERE.platform)
LOCK = "a" * 64


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("cpython-3.12-linux-x86_64", Interpreter("cpython", "3.12", "linux-x86_64")),
        ("pypy-3.10-macosx-14.0-arm64", Interpreter("pypy", "3.10", "macosx-14.0-arm64")),
    ],
)
def test_the_interpreter_seam_reads_what_it_prints(text: str, expected: Interpreter) -> None:
    assert Interpreter.parse(text) == expected
    assert str(expected) == text


@pytest.mark.parametrize("text", ["cpython", "cpython-3-linux", "cpython-3.12-", "3.12"])
def test_a_bad_interpreter_identity_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="is not IMPLEMENTATION-MAJOR.MINOR-PLATFORM"):
        Interpreter.parse(text)


def test_digests_follow_lock_and_interpreter_not_the_module() -> None:
    with_lock = step_environment("t/a@1.0.0", LOCK, None, HERE)
    assert step_environment("t/b@2.0.0", LOCK, None, HERE).digest == with_lock.digest
    assert step_environment("t/a@1.0.0", "b" * 64, None, HERE).digest != with_lock.digest
    assert step_environment("t/a@1.0.0", LOCK, None, OTHER).digest != with_lock.digest
    bare = step_environment("t/a@1.0.0", None, None, HERE)
    assert not bare.builds and with_lock.builds
    assert step_environment("t/a@1.0.0", None, None, OTHER).digest != bare.digest


def test_the_engine_interpreter_builds_when_it_fits_the_range() -> None:
    assert step_environment("t/a@1.0.0", LOCK, f">={HERE.version}", HERE).python != ""
    outside = step_environment("t/a@1.0.0", LOCK, ">=3.99", HERE)
    assert outside.python == ">=3.99"
    assert outside.digest != step_environment("t/a@1.0.0", LOCK, None, HERE).digest


def test_installed_distributions_name_what_the_engine_can_import() -> None:
    installed = installed_distributions()
    assert f"click=={metadata.version('click')}" in installed
    assert list(installed) == sorted(installed)


def test_uv_gets_its_settings_and_tls_but_no_credentials() -> None:
    caller = {
        "UV_INDEX_URL": "https://pypi.example/simple",
        "SSL_CERT_FILE": "/etc/ca.pem",
        "PATH": "/usr/bin",
        "HOME": "/home/u",
        "MODREG_TOKEN": "secret",
        "AWS_SECRET_ACCESS_KEY": "secret",
        "UV_PYTHON_DOWNLOADS": "automatic",
    }
    passed = uv_environment(caller)
    assert passed == {
        "UV_INDEX_URL": "https://pypi.example/simple",
        "SSL_CERT_FILE": "/etc/ca.pem",
        "PATH": "/usr/bin",
        "HOME": "/home/u",
        "UV_PYTHON_DOWNLOADS": "never",
    }


# --- building, with the real uv -------------------------------------------------------------


@pytest.fixture
def wheels(tmp_path: Path) -> Path:
    folder = tmp_path / "wheels"
    build_wheel(folder, "tinypkg", "1.0")
    build_wheel(folder, "tinypkg", "2.0")
    return folder


def _kept_lock(state: StateDir, text: str) -> str:
    """Keep an environment lock in the state folder, as an online run does; its sha256."""
    sha256 = hashlib.sha256(text.encode()).hexdigest()
    path = state.root / "env-locks" / f"{sha256}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return sha256


def _environments(state: StateDir, wheels: Path, tmp_path: Path) -> Environments:
    return Environments(state, uv_environment(uv_settings(wheels, tmp_path)), registry=None)


def _tinypkg(state: StateDir, wheels: Path, tmp_path: Path, version: str) -> StepEnvironment:
    text = compile_lock(f"tinypkg=={version}", wheels, tmp_path / "compile")
    return step_environment("t/a@1.0.0", _kept_lock(state, text), None, HERE)


def _installed(venv: Path) -> list[str]:
    return sorted(p.name for p in venv.glob("lib/python*/site-packages/tinypkg-*.dist-info"))


def test_an_environment_is_built_once_and_then_reused(tmp_path: Path, wheels: Path) -> None:
    state = StateDir(tmp_path / "state")
    environments = _environments(state, wheels, tmp_path / "uv-cache")
    env = _tinypkg(state, wheels, tmp_path, "2.0")
    log = tmp_path / "step.log"
    assert not environments.ready(env)
    with environments.activate(env, log) as venv:
        assert _installed(venv) == ["tinypkg-2.0.dist-info"]
    assert environments.ready(env)
    assert log.read_text().count("[modreg] building environment") == 1
    with environments.activate(env, log) as again:
        assert again == venv
    assert log.read_text().count("[modreg] building environment") == 1
    [info] = list_environments(state)
    assert (info.digest, info.lock_sha256, info.modules) == (
        env.digest,
        env.lock_sha256,
        ["t/a@1.0.0"],
    )


def test_threads_needing_one_new_environment_build_it_once(tmp_path: Path, wheels: Path) -> None:
    state = StateDir(tmp_path / "state")
    environments = _environments(state, wheels, tmp_path / "uv-cache")
    env = _tinypkg(state, wheels, tmp_path, "1.0")
    logs = [tmp_path / f"step{i}.log" for i in range(4)]

    def use(log: Path) -> None:
        with environments.activate(env, log):
            pass

    threads = [threading.Thread(target=use, args=(log,)) for log in logs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    builds = [log for log in logs if log.exists() and "building environment" in log.read_text()]
    assert len(builds) == 1


def test_a_failed_build_leaves_nothing_and_names_uv_error(tmp_path: Path, wheels: Path) -> None:
    state = StateDir(tmp_path / "state")
    environments = _environments(state, wheels, tmp_path / "uv-cache")
    good = compile_lock("tinypkg==1.0", wheels, tmp_path / "compile")
    wrong = good.replace(good.split("sha256:")[1][:64], "0" * 64)
    env = step_environment("t/a@1.0.0", _kept_lock(state, wrong), None, HERE)
    log = tmp_path / "step.log"
    with pytest.raises(EnvironmentBuildError, match=r"t/a@1\.0\.0: uv pip failed: ") as caught:
        with environments.activate(env, log):
            pytest.fail("a venv was handed out")
    assert "Hash mismatch for `tinypkg==1.0`" in str(caught.value)
    assert "0" * 64 in log.read_text()
    assert not environments.folder(env).exists()
    assert list_environments(state) == [] and leftovers(state) == []


def test_no_local_python_for_the_range_is_one_clear_error(tmp_path: Path, wheels: Path) -> None:
    state = StateDir(tmp_path / "state")
    environments = _environments(state, wheels, tmp_path / "uv-cache")
    text = compile_lock("tinypkg==1.0", wheels, tmp_path / "compile")
    env = step_environment("t/a@1.0.0", _kept_lock(state, text), ">=3.99", HERE)
    with pytest.raises(EnvironmentBuildError) as caught:
        with environments.activate(env, tmp_path / "step.log"):
            pytest.fail("a venv was handed out")
    assert str(caught.value).startswith(
        "no local Python satisfies '>=3.99', the [environment] python of t/a@1.0.0 "
        "(modreg does not download interpreters): "
    )
    assert not environments.folder(env).exists()


def test_a_dead_builders_leftover_is_replaced(tmp_path: Path, wheels: Path) -> None:
    state = StateDir(tmp_path / "state")
    environments = _environments(state, wheels, tmp_path / "uv-cache")
    env = _tinypkg(state, wheels, tmp_path, "1.0")
    half = environments.folder(env) / "venv" / "lib"
    half.mkdir(parents=True)
    (half / "half-written").write_text("x")
    assert leftovers(state) == [environments.folder(env)] and list_environments(state) == []
    with environments.activate(env, tmp_path / "step.log") as venv:
        assert _installed(venv) == ["tinypkg-1.0.dist-info"]
        assert not (half / "half-written").exists()


def test_offline_without_the_lock_is_one_clear_error(tmp_path: Path, wheels: Path) -> None:
    state = StateDir(tmp_path / "state")
    environments = _environments(state, wheels, tmp_path / "uv-cache")
    env = step_environment("t/a@1.0.0", LOCK, None, HERE)
    with pytest.raises(EnvironmentBuildError) as caught:
        with environments.activate(env, None):
            pytest.fail("a venv was handed out")
    assert str(caught.value) == (
        "the environment of t/a@1.0.0 is not on this machine and --offline cannot fetch "
        f"its lock {LOCK[:12]}: run it once online"
    )


def test_prune_keeps_an_environment_in_use(tmp_path: Path, wheels: Path) -> None:
    state = StateDir(tmp_path / "state")
    environments = _environments(state, wheels, tmp_path / "uv-cache")
    one, two = (_tinypkg(state, wheels, tmp_path, v) for v in ("1.0", "2.0"))
    for env in (one, two):
        with environments.activate(env, None):
            pass
    with environments.activate(one, None):
        report = prune_environments(state)
        assert [item.name for item in report.removed] == [two.digest]
        assert environments.ready(one) and not environments.folder(two).exists()
    assert [item.name for item in prune_environments(state).removed] == [one.digest]
    assert list_environments(state) == []


# --- the pipeline lock records each version's environment -----------------------------------


def _locked(environment: LockedEnvironment | None) -> LockedModule:
    spec = EnvironmentSpec(python=">=3.11") if environment else None
    manifest = Manifest(
        name="t/a", version="1.0.0", command=["python", "main.py"], environment=spec
    )
    return LockedModule(
        module="t/a",
        version="1.0.0",
        commit="c" * 40,
        sha256="d" * 64,
        manifest=manifest,
        environment=environment,
    )


def _lock_text(module: LockedModule) -> str:
    lock = Lock("p")
    lock.put("s", "t/a@^1", module)
    return lock.dumps()


def test_the_lock_records_the_environment_and_reads_it_back(tmp_path: Path) -> None:
    module = _locked(LockedEnvironment(LOCK, ">=3.11"))
    path = tmp_path / "p.lock"
    path.write_text(_lock_text(module))
    read = read_lock(path)
    assert read is not None and read.get("s", "t/a@^1") == module
    entry = yaml.safe_load(path.read_text())["modules"]["t/a@1.0.0"]
    assert entry["environment"] == {"sha256": LOCK, "python-range": ">=3.11"}


def test_a_lock_from_before_environments_reads_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / "p.lock"
    path.write_text(_lock_text(_locked(None)))
    assert "environment" not in path.read_text()
    read = read_lock(path)
    assert read is not None and read.get("s", "t/a@^1") == _locked(None)


def test_a_lock_missing_the_environment_its_manifest_declares_is_refused(tmp_path: Path) -> None:
    text = _lock_text(_locked(LockedEnvironment(LOCK, ">=3.11")))
    data = yaml.safe_load(text.split("\n", 1)[1])
    del data["modules"]["t/a@1.0.0"]["environment"]
    path = tmp_path / "p.lock"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(PipelineSpecError) as caught:
        read_lock(path)
    assert "t/a@1.0.0: its manifest has an environment the lock does not record" in str(
        caught.value
    )
