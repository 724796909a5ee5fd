"""Publishing real git modules to a real registry, through the CLI and the Python API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import git
import pytest
from factories import make_module_repo

from modreg.client import RegistryClient, publish
from modreg.registry.errors import PermissionDeniedError, UnknownModuleError, VersionExistsError

PUBLISH_KEYS = {"module", "version", "commit", "sha256"}


def test_publish_end_to_end(
    registry_server: Any, team_tokens: Any, tmp_path: Path, run: Any
) -> None:
    folder = make_module_repo(tmp_path, remote="https://example.com/prep.git", subdir="prep")
    result = run(
        "--registry",
        registry_server.url,
        "--token",
        team_tokens.publish,
        "publish",
        folder,
        "--json",
    )
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert PUBLISH_KEYS <= set(data) and data["module"] == "vision/prep"
    head = git.Repo(folder, search_parent_directories=True).head.commit
    assert data["commit"] == head.hexsha and data["created"] is True
    with RegistryClient(registry_server.url, team_tokens.read) as client:
        version = client.get_version("vision/prep", "1.0.0")
        client.download_archive("vision/prep", "1.0.0", tmp_path / "a.tar.gz", data["sha256"])
    assert (version.commit, version.sha256, version.path) == (head.hexsha, data["sha256"], "prep")
    assert version.tree_sha == (head.tree / "prep").hexsha
    assert version.remote == "https://example.com/prep.git"
    assert version.manifest.command == ["python", "main.py", "--out", "{outputs.out}"]


MANIFEST_ERRORS = [
    (
        {"module_extra": {"colour": "red"}},
        "[module]: unknown key 'colour' (allowed: allow_reuse, command, description, env, name, "
        "resources, retries, timeout, version)",
    ),
    (
        {"params": {"size": {"type": "int", "default": "big"}}},
        "[params.size] default: expected int, got 'big'",
    ),
    (
        {"command": ["python", "main.py", "{params.nope}"]},
        "[module] command: placeholder {params.nope} names no declared param (declared: none)",
    ),
    (
        {"outputs": {"out": {"type": "folder"}}},
        "[outputs.out] type: expected 'file' or 'dir', got 'folder'",
    ),
]


@pytest.mark.parametrize(
    ("options", "message"),
    MANIFEST_ERRORS,
    ids=["unknown-key", "bad-type", "bad-placeholder", "bad-port-type"],
)
def test_manifest_errors_are_one_line_naming_the_key(
    tmp_path: Path, run: Any, options: dict[str, Any], message: str
) -> None:
    folder = make_module_repo(tmp_path, **options)
    result = run("publish", folder)  # no registry configured: the manifest is checked first
    assert result.exit_code == 1
    assert result.stderr == f"error: {folder}/modreg.toml: {message}\n"
    assert result.stdout == ""


def test_every_manifest_problem_is_listed_at_once(tmp_path: Path, run: Any) -> None:
    problems = [options for options, _ in MANIFEST_ERRORS]
    merged = {key: value for options in problems for key, value in options.items()}
    folder = make_module_repo(tmp_path, **merged)
    result = run("publish", folder, "--dry-run")
    assert (result.exit_code, result.stdout) == (1, "")
    source = f"{folder}/modreg.toml"
    messages = [message for _, message in MANIFEST_ERRORS]
    placeholder = messages[2].replace("(declared: none)", "(declared: size)")
    in_order = [messages[0], messages[3], placeholder, messages[1]]  # shapes, then the rules
    assert result.stderr.splitlines() == [
        f"error: 4 problems in {source}:",
        *(f"  {source}: {message}" for message in in_order),
    ]


def test_a_missing_manifest_is_named(tmp_path: Path, run: Any) -> None:
    folder = make_module_repo(tmp_path)
    git.Repo(folder).index.remove(["modreg.toml"], working_tree=True, r=True)
    result = run("publish", folder, "--dry-run")
    assert result.exit_code == 1
    assert (
        result.stderr
        == f"error: {folder}/modreg.toml: not found (run `modreg init` to write one)\n"
    )


def test_a_dirty_module_path_is_refused(
    shared: Any, tmp_path: Path, run: Any, module_name: str
) -> None:
    folder = make_module_repo(tmp_path, name=module_name)
    (folder / "main.py").write_text("print('edited')\n")
    (folder / "scratch.py").write_text("")
    result = run(*shared.options(), "publish", folder)
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: {folder}: uncommitted changes in the module path: main.py, scratch.py "
        "(commit them, or list them in .gitignore)\n"
    )


def test_dry_run_shows_the_publish_and_sends_nothing(
    shared: Any, tmp_path: Path, run: Any, module_name: str
) -> None:
    folder = make_module_repo(tmp_path, name=module_name)
    result = run("--registry", "http://127.0.0.1:9", "publish", folder, "--dry-run", "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert PUBLISH_KEYS <= set(data) and data["dry_run"] is True and data["created"] is False
    assert (data["semver"], data["dependents"]) == (None, None), "no registry to read"
    assert result.stderr.startswith("warning: semver not checked: ")
    text = run("publish", folder, "--dry-run")
    assert text.exit_code == 0 and "dry run: nothing sent" in text.stdout
    assert data["sha256"] in text.stdout
    with RegistryClient(shared.url, shared.read) as client, pytest.raises(UnknownModuleError):
        client.get_module(module_name)


def test_replayed_publish_says_already_published(
    shared: Any, tmp_path: Path, run: Any, module_name: str
) -> None:
    folder = make_module_repo(tmp_path, name=module_name, version="2.0.0")
    assert run(*shared.options(), "publish", folder).exit_code == 0
    again = run(*shared.options(), "publish", folder)
    assert again.exit_code == 1
    assert again.stderr == (
        f"error: {module_name}@2.0.0 is already published with this commit and archive "
        "(pass --skip-existing to accept that)\n"
    )
    skipped = run(*shared.options(), "publish", folder, "--skip-existing", "--json")
    assert skipped.exit_code == 0
    assert json.loads(skipped.stdout)["created"] is False


def test_same_version_with_different_content_is_409(
    shared: Any, tmp_path: Path, run: Any, module_name: str
) -> None:
    folder = make_module_repo(tmp_path, name=module_name)
    assert run(*shared.options(), "publish", folder).exit_code == 0
    make_module_repo(tmp_path, name=module_name, files={"extra.py": "X = 2\n"})
    result = run(*shared.options(), "publish", folder, "--skip-existing")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and f"{module_name}" in result.stderr
    assert result.stderr.count("\n") == 1
    with RegistryClient(shared.url, shared.publish) as client, pytest.raises(VersionExistsError):
        publish(client, folder)


def test_python_api_publish_and_monorepo_paths(
    shared: Any, tmp_path: Path, module_name: str
) -> None:
    repo = tmp_path / "mono"
    first = make_module_repo(tmp_path, name=module_name, subdir="a", repo_dir=repo)
    second = make_module_repo(tmp_path, name=f"{module_name}-b", subdir="b/c", repo_dir=repo)
    with RegistryClient(shared.url, shared.publish) as client:
        outcomes = [publish(client, first), publish(client, second)]
        assert [o.created for o in outcomes] == [True, True]
        assert [o.version.path for o in outcomes if o.version] == ["a", "b/c"]
        assert outcomes[0].plan.source.commit == outcomes[1].plan.source.commit


@pytest.mark.parametrize("token", ["read", None], ids=["read-token", "no-token"])
def test_publishing_needs_a_publish_token(
    shared: Any, tmp_path: Path, run: Any, module_name: str, token: str | None
) -> None:
    folder = make_module_repo(tmp_path, name=module_name)
    result = run(*shared.options(token), "publish", folder)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    with RegistryClient(shared.url, shared.read) as client:
        assert not [m for m in client.search_modules(module_name) if m.name == module_name]


def test_read_token_error_class_is_kept(shared: Any, tmp_path: Path, module_name: str) -> None:
    folder = make_module_repo(tmp_path, name=module_name)
    with RegistryClient(shared.url, shared.read) as client, pytest.raises(PermissionDeniedError):
        publish(client, folder)
