"""Module environments at publish: pinned with uv, stored with the version, shown, reused.

uv resolves against a local find-links folder of tiny wheels the tests write
(``tests/wheels.py``, named by ``UV_FIND_LINKS``), with the index switched off in the user's
``uv.toml`` (under the test's private ``XDG_CONFIG_HOME``: uv has no variable for
``--no-index``) and a private ``UV_CACHE_DIR``. modreg passes uv's own settings through
untouched, which is what these tests lean on.
"""

from __future__ import annotations

import hashlib
import json
import os
import tomllib
from pathlib import Path
from typing import Any

import pytest
from factories import make_module_repo, manifest_toml
from tiny_wheels import build_wheel

from modreg.client import RegistryClient, publish
from modreg.client.environments import resolution_problem
from modreg.registry.errors import UnknownModuleError

COMMAND = ["python", "main.py", "--out", "{outputs.out}"]


@pytest.fixture
def find_links(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder of wheels uv resolves from (tinypkg 1.0.0; other-pkg 2.0.0 needs tinypkg)."""
    links = tmp_path / "wheels"
    build_wheel(links, "tinypkg", "1.0.0")
    build_wheel(links, "other-pkg", "2.0.0", requires=["tinypkg>=1"])
    user_config = Path(os.environ["XDG_CONFIG_HOME"]) / "uv" / "uv.toml"  # isolated_home's
    user_config.parent.mkdir(parents=True)
    user_config.write_text("no-index = true\n")
    monkeypatch.setenv("UV_FIND_LINKS", str(links))
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "uv-cache"))
    return links


def wheel_hash(links: Path, name: str, version: str) -> str:
    return hashlib.sha256((links / f"{name}-{version}-py3-none-any.whl").read_bytes()).hexdigest()


def env_module(
    tmp_path: Path,
    name: str,
    environment: str | None,
    files: dict[str, str] | None = None,
    subdir: str = "",
) -> Path:
    """A committed module whose modreg.toml ends with ``environment`` (a TOML table body)."""
    text = manifest_toml(name, "1.0.0", COMMAND, {}, {"out": {"type": "file"}}, {})
    if environment is not None:
        text += f"\n[environment]\n{environment}\n"
    return make_module_repo(tmp_path, name=name, manifest=text, files=files, subdir=subdir)


def publish_json(run: Any, options: list[str], folder: Path, *extra: str) -> dict[str, Any]:
    result = run(*options, "publish", folder, "--json", *extra)
    assert result.exit_code == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


# --- pinned, stored, shown -----------------------------------------------------------------


def test_publish_pins_the_requirements_and_show_lists_them(
    shared: Any, tmp_path: Path, run: Any, module_name: str, find_links: Path
) -> None:
    folder = env_module(tmp_path, module_name, 'python = ">=3.11"\nrequirements = ["other-pkg"]')
    data = publish_json(run, shared.options(), folder)
    pinned = {"other-pkg": "2.0.0", "tinypkg": "1.0.0"}
    assert data["created"] is True
    assert data["environment"]["packages"] == pinned
    assert data["environment"]["origin"] == "resolved"
    sha256 = data["environment"]["sha256"]

    shown = run(*shared.options("read"), "show", module_name, "--json")
    assert shown.exit_code == 0, shown.stderr
    environment = json.loads(shown.stdout)["environment"]
    assert environment == {
        "sha256": sha256,
        "python": "3.11",
        "python_range": ">=3.11",
        "packages": pinned,
    }
    text = run(*shared.options("read"), "show", module_name)
    assert f"Python 3.11 (>=3.11), lock {sha256[:12]}" in text.stdout
    assert "package tinypkg" in text.stdout and "package other-pkg" in text.stdout

    with RegistryClient(shared.url, shared.read) as client:
        client.get_blob(sha256, tmp_path / "lock")
    lock = (tmp_path / "lock").read_text()
    digest = wheel_hash(find_links, "tinypkg", "1.0.0")
    assert f"tinypkg==1.0.0 \\\n    --hash=sha256:{digest}" in lock
    assert not lock.startswith("#")  # no header: the bytes depend on the resolution alone


def test_requirements_file_is_read_from_the_module(
    shared: Any, tmp_path: Path, run: Any, module_name: str, find_links: Path
) -> None:
    folder = env_module(  # a module in a monorepo's sub-folder, its file in a sub-folder too
        tmp_path,
        module_name,
        'requirements-file = "reqs/run.txt"',
        files={"reqs/run.txt": "# what the step imports\ntinypkg>=1  # any 1.x\n"},
        subdir="steps/prep",
    )
    result = run(*shared.options(), "publish", folder)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(f"Published {module_name}@1.0.0 (commit ")
    assert result.stdout.endswith(", environment: 1 package for Python 3.11)\n")
    with RegistryClient(shared.url, shared.read) as client:
        stored = client.get_version(module_name, "1.0.0").environment
    assert stored is not None and stored.packages == {"tinypkg": "1.0.0"}


def test_a_committed_lock_is_used_as_it_is(
    shared: Any, tmp_path: Path, run: Any, module_name: str, find_links: Path
) -> None:
    # tinypkg 0.5.0 is not in the find-links folder: uv would never write this lock
    lock = "tinypkg==0.5.0 \\\n    --hash=sha256:" + "ab" * 32 + "\n"
    folder = env_module(tmp_path, module_name, 'python = ">=3.12"', {"requirements.lock": lock})
    data = publish_json(run, shared.options(), folder)
    assert data["environment"]["origin"] == "committed"
    assert data["environment"]["sha256"] == hashlib.sha256(lock.encode()).hexdigest()
    with RegistryClient(shared.url, shared.read) as client:
        stored = client.get_version(module_name, "1.0.0").environment
    assert stored is not None and stored.packages == {"tinypkg": "0.5.0"}
    assert (stored.python, stored.python_range) == ("3.12", ">=3.12")


def test_a_module_without_an_environment_publishes_none(
    shared: Any, tmp_path: Path, run: Any, module_name: str
) -> None:
    folder = env_module(tmp_path, module_name, None)
    assert publish_json(run, shared.options(), folder)["environment"] is None
    shown = run(*shared.options("read"), "show", module_name, "--json")
    assert json.loads(shown.stdout)["environment"] is None


def test_uv_settings_in_the_working_folder_do_not_steer_the_resolution(
    tmp_path: Path, run: Any, module_name: str, find_links: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = env_module(tmp_path, module_name, 'requirements = ["tinypkg"]')
    build_wheel(tmp_path / "elsewhere", "tinypkg", "5.0.0")
    stray = tmp_path / "stray"
    stray.mkdir()
    (stray / "uv.toml").write_text(f'find-links = ["{tmp_path / "elsewhere"}"]\n')
    (stray / ".python-version").write_text("3.13\n")
    monkeypatch.chdir(stray)  # where the user happens to run `modreg publish`
    data = publish_json(run, [], folder, "--dry-run")
    assert data["environment"]["packages"] == {"tinypkg": "1.0.0"}


# --- errors: one line, nothing published -----------------------------------------------


def test_an_unresolvable_requirement_names_it_and_publishes_nothing(
    registry_server: Any, team_tokens: Any, tmp_path: Path, run: Any, find_links: Path
) -> None:
    folder = env_module(tmp_path, "vision/prep", 'requirements = ["tinypkg", "tinypkg==99"]')
    options = ["--registry", registry_server.url, "--token", team_tokens.publish]
    result = run(*options, "publish", folder)
    assert result.exit_code == 1 and result.stdout == ""
    prefix = (
        f"error: {folder}/modreg.toml: [environment] requirements: "
        "no version of 'tinypkg==99' can be found (uv: "
    )
    assert result.stderr.startswith(prefix), result.stderr
    assert result.stderr.endswith(")\n") and result.stderr.count("\n") == 1
    with RegistryClient(registry_server.url, team_tokens.read) as client:
        with pytest.raises(UnknownModuleError):
            client.list_versions("vision/prep")
    blobs = registry_server.data_dir / "blobs"
    assert not blobs.exists() or [p for p in blobs.rglob("*") if p.is_file()] == []


def test_conflicting_requirements_are_named_together(
    tmp_path: Path, run: Any, module_name: str, find_links: Path
) -> None:
    folder = env_module(tmp_path, module_name, 'requirements = ["other-pkg", "tinypkg<1"]')
    result = run("publish", folder, "--dry-run")
    assert result.exit_code == 1
    assert result.stderr.startswith(
        f"error: {folder}/modreg.toml: [environment] requirements: "
        "'other-pkg', 'tinypkg<1' cannot be satisfied together (uv: "
    ), result.stderr


MANIFEST_ERRORS = [
    (
        'requirements = ["tinypkg>=>1"]',
        {},
        "[environment] requirements[0]: 'tinypkg>=>1' is not a PEP 508 requirement",
    ),
    (
        'requirements-file = "requirements.txt"',
        {},
        "[environment] requirements-file: 'requirements.txt' is not a file of the module",
    ),
    (
        'requirements-file = "requirements.txt"',
        {"requirements.txt": "tinypkg\n-e .\n"},
        "[environment] requirements-file: requirements.txt line 2: '-e .' is not a PEP 508 "
        "requirement",
    ),
]


@pytest.mark.parametrize(
    ("environment", "files", "message"),
    MANIFEST_ERRORS,
    ids=["bad-line", "missing-file", "bad-line-in-file"],
)
def test_manifest_errors_name_the_key(
    tmp_path: Path,
    run: Any,
    module_name: str,
    environment: str,
    files: dict[str, str],
    message: str,
) -> None:
    folder = env_module(tmp_path, module_name, environment, files=files)
    result = run("publish", folder)  # no registry configured: checked before any request
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith(f"error: {folder}/modreg.toml: {message}"), result.stderr
    assert result.stderr.count("\n") == 1


def test_the_requirements_file_is_read_at_the_published_commit(
    tmp_path: Path, run: Any, module_name: str, find_links: Path
) -> None:
    folder = env_module(
        tmp_path,
        module_name,
        'requirements-file = "requirements.txt"',
        files={".gitignore": "requirements.txt\n"},
    )
    (folder / "requirements.txt").write_text("tinypkg\n")  # ignored: not in the commit
    result = run("publish", folder, "--dry-run")
    assert result.exit_code == 1
    assert result.stderr.startswith(
        f"error: {folder}/modreg.toml: [environment] requirements-file: "
    ), result.stderr


def test_a_committed_lock_without_hashes_is_refused(
    tmp_path: Path, run: Any, module_name: str
) -> None:
    folder = env_module(tmp_path, module_name, "", files={"requirements.lock": "tinypkg==1\n"})
    result = run("publish", folder, "--dry-run")
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith(f"error: {folder}/requirements.lock: "), result.stderr
    assert "hash" in result.stderr and result.stderr.count("\n") == 1


# --- dry run and retry --------------------------------------------------------------------


def test_dry_run_shows_the_pinned_set_and_publishes_nothing(
    shared: Any, tmp_path: Path, run: Any, module_name: str, find_links: Path
) -> None:
    folder = env_module(tmp_path, module_name, 'requirements = ["other-pkg"]')
    data = publish_json(run, [], folder, "--dry-run")  # no registry configured: resolved here
    assert data["dry_run"] is True and data["environment"]["origin"] == "resolved"
    assert data["environment"]["packages"] == {"other-pkg": "2.0.0", "tinypkg": "1.0.0"}
    blobs_before = sorted(shared.data_dir.joinpath("blobs").rglob("*"))
    text = run(*shared.options(), "publish", folder, "--dry-run")  # reads, writes nothing
    assert text.exit_code == 0, text.stderr
    assert "package tinypkg" in text.stdout and "1.0.0" in text.stdout
    with RegistryClient(shared.url, shared.read) as client, pytest.raises(UnknownModuleError):
        client.get_module(module_name)
    assert sorted(shared.data_dir.joinpath("blobs").rglob("*")) == blobs_before


def test_a_retry_reuses_the_stored_lock_after_the_index_moved(
    shared: Any, tmp_path: Path, run: Any, module_name: str, find_links: Path
) -> None:
    folder = env_module(tmp_path, module_name, 'requirements = ["tinypkg"]')
    first = publish_json(run, shared.options(), folder)
    build_wheel(find_links, "tinypkg", "1.1.0")  # the resolver now picks another version
    fresh = publish_json(run, [], folder, "--dry-run")
    assert fresh["environment"]["packages"] == {"tinypkg": "1.1.0"}
    planned = publish_json(run, shared.options(), folder, "--dry-run")  # what a retry sends
    assert planned["environment"] == {**first["environment"], "origin": "stored"}

    again = publish_json(run, shared.options(), folder, "--skip-existing")
    assert again["created"] is False
    assert again["environment"]["origin"] == "stored"
    assert again["environment"]["sha256"] == first["environment"]["sha256"]
    assert again["environment"]["packages"] == {"tinypkg": "1.0.0"}
    with RegistryClient(shared.url, shared.publish) as client:
        outcome = publish(client, folder, skip_existing=True)  # the Python API does the same
    assert outcome.created is False and outcome.plan.environment is not None
    assert outcome.plan.environment.sha256 == first["environment"]["sha256"]


# --- init -----------------------------------------------------------------------------------


def _init(run: Any, folder: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.chdir(folder)
    result = run("init", "--name", "vision/step")
    assert result.exit_code == 0, result.stderr
    return tomllib.loads((folder / "modreg.toml").read_text())


def test_init_names_requirements_txt(
    tmp_path: Path, run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "requirements.txt").write_text("tinypkg>=1\n")
    written = _init(run, tmp_path, monkeypatch)
    assert written["environment"] == {"requirements-file": "requirements.txt"}


def test_init_copies_pyproject_dependencies(
    tmp_path: Path, run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "step"\nrequires-python = ">=3.11,<4"\n'
        'dependencies = ["tinypkg>=1", "other-pkg; python_version >= \'3.11\'"]\n'
    )
    written = _init(run, tmp_path, monkeypatch)
    assert written["environment"] == {
        "python": ">=3.11,<4",
        "requirements": ["tinypkg>=1", "other-pkg; python_version >= '3.11'"],
    }


def test_init_without_declared_needs_writes_no_environment(
    tmp_path: Path, run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "step"\n')
    assert "environment" not in _init(run, tmp_path, monkeypatch)


# --- uv's error in one line, for the formats uv has printed ----------------------------------

UV_ERRORS = [
    (  # uv 0.13, stderr not a terminal
        "Resolved 1 package in 3ms\nerror: No solution found when resolving dependencies\n"
        "  cause: Because there is no version of six==99 and you require six==99, we can "
        "conclude that your requirements are unsatisfiable.\n",
        "W: no version of 'six==99' can be found (uv: Because there is no version of six==99 "
        "and you require six==99, we can conclude that your requirements are unsatisfiable.)",
    ),
    (  # uv 0.4's report
        "  × No solution found when resolving dependencies:\n"
        "  ╰─▶ Because all versions of other-pkg depend on tinypkg>=1 and you require\n"
        "      other-pkg, we can conclude that you require tinypkg>=1.\n"
        "      And because you require tinypkg<1, we can conclude that your requirements\n"
        "      are unsatisfiable.\n",
        "W: 'Other_Pkg', 'tinypkg<1' cannot be satisfied together (uv: Because all versions of "
        "other-pkg depend on tinypkg>=1 and you require other-pkg, we can conclude that you "
        "require tinypkg>=1. And because you require tinypkg<1, we can conclude that your "
        "requirements are unsatisfiable.)",
    ),
    (
        "error: No solution found when resolving dependencies\n  cause: Because nopkg was not "
        "found in the provided package locations and you require nopkg, we can conclude that "
        "your requirements are unsatisfiable.\n",
        "W: no version of 'nopkg' can be found (uv: Because nopkg was not found in the provided "
        "package locations and you require nopkg, we can conclude that your requirements are "
        "unsatisfiable.)",
    ),
    (
        "error: Failed to fetch: `https://example.invalid/simple/six/`\n  Caused by: dns error\n",
        "W: cannot be resolved (uv: Failed to fetch: `https://example.invalid/simple/six/` "
        "Caused by: dns error)",
    ),
]


@pytest.mark.parametrize(
    ("stderr", "line"), UV_ERRORS, ids=["no-version", "conflict", "not-found", "network"]
)
def test_uv_errors_become_one_line_naming_the_requirement(stderr: str, line: str) -> None:
    requirements = ["six==99", "Other_Pkg", "tinypkg<1", "nopkg"]
    assert resolution_problem(stderr, requirements, "W") == line


def test_an_environment_of_only_a_python_range_pins_no_packages(
    shared: Any, tmp_path: Path, run: Any, module_name: str, find_links: Path
) -> None:
    folder = env_module(tmp_path, module_name, 'python = ">=3.12,<3.14"')
    data = publish_json(run, shared.options(), folder)
    assert data["environment"]["packages"] == {} and data["environment"]["python"] == "3.12"
    shown = json.loads(run(*shared.options("read"), "show", module_name, "--json").stdout)
    assert shown["environment"]["python_range"] == ">=3.12,<3.14"
