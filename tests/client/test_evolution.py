"""Evolving modules through a real registry: semver refusals with their exact lines (from the
client's check and from the server's, for a client that skips it), ``publish --dry-run``'s
classification and impact, ``diff`` of real published versions, the privacy of
``dependents``, and deprecation with a successor."""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
from pathlib import Path
from typing import Any

import pytest
from factories import make_module_repo
from registry_data import env_lock, module_archive, publish_body
from registry_servers import create_team_tokens

from modreg.client import RegistryClient, publish
from modreg.client.publishing import plan_publish
from modreg.engine.lock import Lock, LockedModule
from modreg.registry.errors import PermissionDeniedError, SemverError
from modreg.registry.schemas import RunCreate, VersionCreate
from modreg.registry.semver_check import Published, check

SIZE = {"size": {"type": "int", "default": 8}}
WIDTH = {"width": {"type": "int", "default": 8}}


def _publish(shared: Any, tmp_path: Path, name: str, version: str, **kwargs: Any) -> Path:
    folder = make_module_repo(tmp_path, name=name, version=version, **kwargs)
    with RegistryClient(shared.url, shared.publish) as client:
        publish(client, folder)
    return folder


def test_an_under_bumped_version_is_refused_line_by_line(
    shared: Any, tmp_path: Path, run: Any, module_name: str
) -> None:
    _publish(shared, tmp_path, module_name, "1.2.0", params=SIZE, inputs={"raw": "dir"})
    folder = make_module_repo(
        tmp_path, name=module_name, version="1.3.0", params=WIDTH, inputs={"raw": "file"}
    )
    result = run(*shared.options(), "publish", folder)
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: {module_name} 1.3.0: input 'raw' type changed dir -> file (breaking): "
        "publish as 2.0.0\n"
        f"error: {module_name} 1.3.0: param 'size' removed (breaking): publish as 2.0.0\n"
    )
    with RegistryClient(shared.url, shared.read) as client:
        assert [v.version for v in client.list_versions(module_name)] == ["1.2.0"]


def test_the_server_refuses_a_client_that_skips_the_check(
    shared: Any, tmp_path: Path, module_name: str
) -> None:
    _publish(shared, tmp_path, module_name, "0.4.0", params=SIZE)
    folder = make_module_repo(tmp_path, name=module_name, version="0.4.1", params={})
    plan = plan_publish(folder, tmp_path / "work")
    with RegistryClient(shared.url, shared.publish) as client:
        client.put_blob(plan.archive.sha256, plan.archive.path)
        with pytest.raises(SemverError) as refused:  # the raw POST: no client-side check
            client.publish_version(module_name, plan.version_create())
        assert refused.value.lines == [
            f"{module_name} 0.4.1: param 'size' removed (breaking): publish as 0.5.0"
        ]
        assert refused.value.extra["accepted"] == "0.5.0"
        assert [v.version for v in client.list_versions(module_name)] == ["0.4.0"]


def test_a_compatible_bump_and_a_backport_are_accepted(
    shared: Any, tmp_path: Path, run: Any, module_name: str
) -> None:
    _publish(shared, tmp_path, module_name, "1.2.3", params=SIZE)
    _publish(shared, tmp_path, module_name, "1.3.0", params={**SIZE, **WIDTH})
    backport = make_module_repo(tmp_path, name=module_name, version="1.2.4", params=SIZE)
    assert run(*shared.options(), "publish", backport).exit_code == 0
    bad = make_module_repo(tmp_path, name=module_name, version="1.2.5", params={**SIZE, **WIDTH})
    refused = run(*shared.options(), "publish", bad)
    assert refused.stderr == (
        f"error: {module_name} 1.2.5: param 'width' added (minor): publish as 1.3.0\n"
    )


def _record_run(
    url: str, token: str, pipeline: str, step: str, ref: str, version: str, reader: str = ""
) -> None:
    """A run record as the engine sends it: its lock names the step's reference and the
    version it resolved to (read with ``reader``'s token, else ``token``)."""
    lock = Lock(pipeline)
    with RegistryClient(url, reader or token) as client:
        found = client.get_version(ref.partition("@")[0], version)
    lock.put(step, ref, LockedModule.from_version(found))
    with RegistryClient(url, token) as client:
        client.create_run(RunCreate(pipeline=pipeline, lock=lock.to_dict()))


def test_dry_run_classifies_and_lists_the_dependents_it_would_reach(
    shared: Any, tmp_path: Path, run: Any, module_name: str
) -> None:
    _publish(shared, tmp_path, module_name, "1.2.0", params=SIZE)
    _record_run(shared.url, shared.publish, "digits", "prep", f"{module_name}@^1.2", "1.2.0")
    _record_run(shared.url, shared.publish, "pinned", "prep", f"{module_name}@1.2.0", "1.2.0")
    folder = make_module_repo(tmp_path, name=module_name, version="1.3.0", params={})
    result = run(*shared.options(), "publish", folder, "--dry-run", "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["semver"] == {
        "base": "1.2.0", "needs": "major", "makes": "minor", "ok": False, "accepted": "2.0.0",
        "changes": [
            {"change": "param 'size' removed", "class": "breaking", "needs": "major"},
            {"change": "command changed", "class": "patch", "needs": "patch"},
        ],
    }  # fmt: skip
    assert data["dependents"] == [
        {"team": "vision", "pipeline": "digits", "step": "prep", "range": "^1.2",
         "version": "1.2.0", "broken": True},
    ]  # fmt: skip
    text = run(*shared.options(), "publish", folder, "--dry-run")
    assert f"refused: {module_name} 1.3.0: param 'size' removed (breaking): publish as 2.0.0\n" in (
        text.stdout
    )
    assert (
        "dependent: vision pipeline digits step prep (^1.2, now 1.2.0) would be broken\n"
        in text.stdout
    )
    with RegistryClient(shared.url, shared.read) as client:
        assert [v.version for v in client.list_versions(module_name)] == ["1.2.0"]


def test_diff_of_two_published_versions(
    shared: Any, tmp_path: Path, run: Any, module_name: str
) -> None:
    _publish(shared, tmp_path, module_name, "1.0.0", params=SIZE, files={"notes.txt": "a\nb\n"})
    _publish(
        shared, tmp_path, module_name, "2.0.0", params=WIDTH,
        files={"notes.txt": "a\nc\n", "weights.bin": b"\x00\x01"},
    )  # fmt: skip
    result = run(*shared.options("read"), "diff", f"{module_name}@1.0.0", f"{module_name}@2.0.0")
    assert result.exit_code == 0, result.stderr
    data = json.loads(
        run(
            *shared.options("read"), "diff", f"{module_name}@1.0.0", f"{module_name}@2.0.0",
            "--json",
        ).stdout
    )  # fmt: skip
    assert data["needs"] == "major"
    assert [c["change"] for c in data["interface"]] == [
        "param 'size' removed",
        "param 'width' added",
        "command changed",
    ]
    assert data["files"]["binary"] == ["weights.bin"] and "notes.txt" in data["files"]["changed"]
    assert "-b\n+c\n" in data["patch"] and "--- a/notes.txt\n+++ b/notes.txt\n" in data["patch"]
    assert "param 'size' removed (breaking)" in result.stdout
    assert "file binary: weights.bin" in result.stdout


def test_dependents_are_private_to_the_teams_a_caller_may_read(
    server_factory: Any, tmp_path: Path, run: Any
) -> None:
    server = server_factory(extra_args=("--private",))
    vision, audio = create_team_tokens(server, "vision"), create_team_tokens(server, "audio")
    folder = make_module_repo(tmp_path, name="vision/prep", version="1.0.0")
    with RegistryClient(server.url, vision.publish) as client:
        publish(client, folder)
    _record_run(server.url, vision.run, "digits", "prep", "vision/prep@^1", "1.0.0")
    # a lock audio kept from before the registry went private
    admin = server.admin_token
    _record_run(server.url, audio.run, "speech", "clean", "vision/prep@1.0.0", "1.0.0", admin)

    def listed(token: str) -> list[tuple[str, str]]:
        with RegistryClient(server.url, token) as client:
            return [(d.team, d.pipeline) for d in client.list_dependents("vision/prep")]

    assert listed(server.admin_token) == [("audio", "speech"), ("vision", "digits")]
    assert listed(vision.read) == [("vision", "digits")], "audio is not vision's to see"
    with pytest.raises(PermissionDeniedError):
        listed(audio.read)
    shown = run("--registry", server.url, "--token", vision.read, "dependents", "vision/prep")
    assert shown.exit_code == 0 and "digits" in shown.stdout and "speech" not in shown.stdout


def test_deprecate_with_a_successor_is_shown(
    shared: Any, tmp_path: Path, run: Any, module_name: str
) -> None:
    _publish(shared, tmp_path, module_name, "1.0.0")
    done = run(
        *shared.options(), "deprecate", f"{module_name}@1.0.0", "--message", "too slow",
        "--replaced-by", f"{module_name}@^1", "--json",
    )  # fmt: skip
    assert done.exit_code == 0, done.stderr
    assert json.loads(done.stdout)["replaced_by"] == f"{module_name}@^1"
    shown = json.loads(
        run(*shared.options("read"), "show", f"{module_name}@1.0.0", "--json").stdout
    )
    assert shown["replaced_by"] == f"{module_name}@^1"
    assert shown["warnings"] == [
        f"{module_name}@1.0.0 is deprecated: too slow; use {module_name}@^1 instead"
    ]
    unknown = run(
        *shared.options(), "deprecate", f"{module_name}@1.0.0", "--replaced-by", "vision/nope"
    )
    assert (unknown.exit_code, unknown.stderr) == (1, "error: no module vision/nope\n")


def test_racing_publishes_are_checked_one_after_the_other(
    server_factory: Any, db_url: str, tmp_path: Path
) -> None:
    """1.1.0 adds a param; 1.1.1 lacks it, so it passes only if it commits before 1.1.0.
    Sent at the same instant by clients that skip the check, every outcome must be one some
    serial order allows: each version passes against the versions committed before it."""
    server = server_factory(db_url=db_url)
    tokens = create_team_tokens(server, "vision")
    for attempt in range(4):
        name = f"vision/race{attempt}"
        _publish_raw(server.url, tokens.publish, tmp_path / name, name, "1.0.0", {})
        plans = [
            plan_publish(make_module_repo(tmp_path / name / v, name=name, version=v, params=p),
                         tmp_path / name / v / "work")
            for v, p in (("1.1.0", SIZE), ("1.1.1", {}))
        ]  # fmt: skip
        _publish_at_once(server.url, tokens.publish, name, plans)
        with RegistryClient(server.url, tokens.read) as client:
            versions = sorted(client.list_versions(name), key=lambda v: v.published_at)
        for index, version in enumerate(versions):
            before = [Published(v.version, v.status, v.manifest) for v in versions[:index]]
            assert check(name, version.manifest, before).ok, [v.version for v in versions]


def _publish_at_once(url: str, token: str, name: str, plans: list[Any]) -> None:
    """POST every plan's version at the same instant, from one thread each (blobs first)."""
    barrier = threading.Barrier(len(plans))

    def send(plan: Any) -> None:
        with RegistryClient(url, token) as client:
            client.put_blob(plan.archive.sha256, plan.archive.path)
            barrier.wait()
            with contextlib.suppress(SemverError):
                client.publish_version(name, plan.version_create())

    threads = [threading.Thread(target=send, args=(plan,)) for plan in plans]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _publish_raw(url: str, token: str, root: Path, name: str, version: str, params: Any) -> None:
    folder = make_module_repo(root, name=name, version=version, params=params)
    with RegistryClient(url, token) as client:
        publish(client, folder)


def _publish_with_environment(
    shared: Any, tmp_path: Path, name: str, version: str, python: str, *pins: str
) -> None:
    """A raw publish of a module whose environment lock pins ``pins``."""
    environment = {"python": python, "requirements": [pin.split("==")[0] for pin in pins]}
    blobs = [module_archive(version, name=name, environment=environment), env_lock(*pins).encode()]
    digests = [hashlib.sha256(data).hexdigest() for data in blobs]
    body = publish_body(digests[0], version, name, environment=environment)
    with RegistryClient(shared.url, shared.publish) as client:
        for data, digest in zip(blobs, digests, strict=True):
            (tmp_path / digest).write_bytes(data)
            client.put_blob(digest, tmp_path / digest)
        body["environment_sha256"] = digests[1]
        client.publish_version(name, VersionCreate.model_validate(body))


def test_environment_changes_in_diff_and_a_narrowed_python_range(
    shared: Any, tmp_path: Path, run: Any, module_name: str
) -> None:
    _publish_with_environment(
        shared, tmp_path, module_name, "1.0.0", ">=3.10", "numpy==1.26.0", "six==1.16.0"
    )
    with pytest.raises(SemverError) as refused:
        _publish_with_environment(shared, tmp_path, module_name, "1.0.1", ">=3.11", "numpy==2.0.0")
    assert refused.value.lines == [
        f"{module_name} 1.0.1: python range narrowed '>=3.10' -> '>=3.11' (behaviour change): "
        "publish as 1.1.0"
    ]
    _publish_with_environment(shared, tmp_path, module_name, "1.1.0", ">=3.11", "numpy==2.0.0")
    found = run(
        *shared.options("read"), "diff", f"{module_name}@1.0.0", f"{module_name}@1.1.0", "--json"
    )
    data = json.loads(found.stdout)
    assert data["environment"] == [
        {"package": "numpy", "old": "1.26.0", "new": "2.0.0"},
        {"package": "six", "old": "1.16.0", "new": None},
    ]
    assert [(c["change"], c["class"]) for c in data["interface"]] == [
        ("python range narrowed '>=3.10' -> '>=3.11'", "behaviour change"),
        ("environment lock changed (2 packages)", "environment"),
    ]
    assert data["files"]["changed"] == ["modreg.toml", "run.py"]
