"""Environment locks at the registry: ``[environment]`` in the manifest, the lock a publish
sends beside the archive, what a version shows of it, and that it stays (a GC root).

The client's side (resolving with uv, ``modreg show``) is tested in tests/client; the
engine's (materialising venvs) in tests/engine.
"""

from __future__ import annotations

from typing import Any

import pytest
from registry_data import Api, env_lock, module_archive, publish_body

from modreg.registry import compatibility
from modreg.registry.environment_lock import lowest_python, parse_lock
from modreg.registry.errors import ManifestError
from modreg.registry.manifest import parse_manifest

TOML = '[module]\nname = "vision/prep"\nversion = "1.0.0"\ncommand = ["python", "run.py"]\n'
SIX = {"requirements": ["six==1.16.0"]}


def _publish(
    api: Api,
    lock: str | None,
    environment: dict[str, Any] | None = SIX,
    files: dict[str, str | bytes] | None = None,
    version: str = "1.0.0",
    lock_sha: str | None = None,
) -> Any:
    """Upload an archive (and the lock, when given) and publish them."""
    manifest: dict[str, Any] = {} if environment is None else {"environment": environment}
    sha = api.put_blob(module_archive(version, files=files, **manifest))
    body = publish_body(sha, version, **manifest)
    if lock is not None:
        body["environment_sha256"] = lock_sha or api.put_blob(lock.encode())
    return api.publish_version(body)


# --- the manifest's [environment] -------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        ("python = 'banana'", "[environment] python: 'banana' is not a Python version range"),
        ("python = '<3'", "[environment] python: '<3' allows no Python 3 version"),
        ("python = 3.11", "[environment] python: expected a version range string, got 3.11"),
        ("requirements = ['numpy>=>1']", "[environment] requirements[0]: 'numpy>=>1' is not a"),
        ("requirements = 'six'", "[environment] requirements: expected a list of strings"),
        ("requirements-file = '../r.txt'", "[environment] requirements-file: expected a file"),
        ("requirements = ['six']\nrequirements-file = 'r.txt'", "[environment]: give 'req"),
        ("pip = ['six']", "[environment]: unknown key 'pip' (allowed: python, requirements, r"),
    ],
)
def test_a_bad_environment_table_is_one_line_naming_the_key(table: str, problem: str) -> None:
    with pytest.raises(ManifestError) as caught:
        parse_manifest(f"{TOML}[environment]\n{table}\n")
    assert str(caught.value).startswith(f"modreg.toml: {problem}")
    assert "\n" not in str(caught.value)


def test_the_environment_table_is_read_as_written() -> None:
    manifest = parse_manifest(
        f"{TOML}[environment]\npython = '>=3.12'\nrequirements-file = 'requirements.txt'\n"
    )
    assert manifest.environment is not None
    assert manifest.environment.python == ">=3.12"
    assert manifest.environment.requirements_file == "requirements.txt"
    assert parse_manifest(TOML).environment is None


def test_lowest_python_is_what_a_lock_is_resolved_for() -> None:
    assert lowest_python(None) == "3.11"
    assert lowest_python(">=3.9,<4") == "3.9"
    assert lowest_python(">=3.12.2") == "3.12.2"
    assert lowest_python("~=3.13") == "3.13"


def test_a_lock_must_pin_every_package_with_hashes() -> None:
    assert parse_lock(env_lock("six==1.16.0", "Typing_Extensions==4.12.2")) == {
        "six": "1.16.0",
        "typing-extensions": "4.12.2",
    }
    universal = env_lock("numpy==2.4.6 ; python_full_version < '3.12'", "numpy==2.5.5")
    assert parse_lock(universal) == {"numpy": "2.4.6, 2.5.5"}
    for text, problem in [
        ("six==1.16.0\n", "line 1: six==1.16.0 has no --hash=sha256:"),
        (env_lock("six>=1.16"), "line 1: 'six>=1.16' is not pinned with '=='"),
        ("-e ./src\n", "line 1: '-e' is not allowed in a lock"),
        ("# a comment\n\nfoo bar\n", "line 3: 'foo bar' is not a PEP 508 requirement"),
    ]:
        with pytest.raises(ValueError, match="^" + problem.replace("(", r"\(")):
            parse_lock(text)


# --- publishing with a lock ---------------------------------------------------------------


def test_a_version_shows_its_environment_lock(api: Api) -> None:
    lock = env_lock("six==1.16.0", "tqdm==4.66.4")
    answer = _publish(api, lock, {"python": ">=3.12", **SIX})
    assert answer.status_code == 201, answer.text
    environment = answer.json()["version"]["environment"]
    assert environment["packages"] == {"six": "1.16.0", "tqdm": "4.66.4"}
    assert (environment["python"], environment["python_range"]) == ("3.12", ">=3.12")
    shown = api.client.get("/api/v1/modules/vision/prep/versions/1.0.0").json()
    assert shown["environment"] == environment
    blob = api.client.get(f"/api/v1/blobs/{environment['sha256']}")
    assert blob.status_code == 200 and blob.text == lock, "readable like the archive"
    (resolved,) = api.client.post("/api/v1/resolve", json={"refs": ["vision/prep"]}).json()[
        "results"
    ]
    assert resolved["version"]["environment"] == environment


def test_a_module_without_environment_has_none(api: Api) -> None:
    answer = _publish(api, None, environment=None)
    assert answer.status_code == 201 and answer.json()["version"]["environment"] is None


@pytest.mark.parametrize(
    ("lock", "environment", "files", "problem"),
    [
        (None, SIX, None, "declares [environment] but no lock was sent (environment_sha256)"),
        (env_lock("six==1.16.0"), None, None, "has no [environment] but an environment lock"),
        ("six==1.16.0\n", SIX, None, "environment lock: line 1: six==1.16.0 has no --hash"),
        (env_lock("six>1"), SIX, None, "environment lock: line 1: 'six>1' is not pinned"),
        (
            env_lock("six==1.16.0"),
            {"requirements_file": "requirements.txt"},
            None,
            "[environment] requirements-file: 'requirements.txt' is not a file of the module",
        ),
        (
            env_lock("six==1.16.0"),
            {"python": ">=3.11"},
            {"requirements.lock": env_lock("six==1.17.0")},
            "the environment lock sent is not the module's own requirements.lock",
        ),
    ],
)
def test_a_publish_with_a_wrong_environment_is_refused_whole(
    api: Api,
    lock: str | None,
    environment: dict[str, Any] | None,
    files: dict[str, str | bytes] | None,
    problem: str,
) -> None:
    answer = _publish(api, lock, environment, files)
    assert answer.status_code == 422, answer.text
    assert problem in answer.json()["detail"]
    assert api.client.get("/api/v1/modules/vision/prep/versions").status_code == 404


def test_a_committed_lock_is_used_as_it_is(api: Api) -> None:
    lock = env_lock("six==1.17.0")
    answer = _publish(api, lock, {"python": ">=3.11"}, {"requirements.lock": lock})
    assert answer.status_code == 201, answer.text
    assert answer.json()["version"]["environment"]["packages"] == {"six": "1.17.0"}
    from_file = _publish(
        api,
        env_lock("six==1.16.0"),
        {"requirements_file": "reqs/base.txt"},
        {"reqs/base.txt": "six\n"},
        version="1.1.0",
    )
    assert from_file.status_code == 201, from_file.text


def test_a_lock_not_uploaded_is_a_404(api: Api) -> None:
    answer = _publish(api, "unused", lock_sha="e" * 64)
    assert answer.status_code == 404
    assert f"environment lock blob {'e' * 64} is not uploaded" in answer.json()["detail"]


def test_a_replay_must_send_the_same_lock(api: Api) -> None:
    first = env_lock("six==1.16.0")
    assert _publish(api, first).status_code == 201
    replay = _publish(api, first)
    assert replay.status_code == 200 and replay.json()["created"] is False
    moved = _publish(api, env_lock("six==1.17.0"))
    assert moved.status_code == 409, "the same version with another lock is another publish"


def test_an_environment_lock_is_a_gc_root(api: Api) -> None:
    lock = env_lock("six==1.16.0")
    version = _publish(api, lock).json()["version"]
    report = api.client.post(
        "/api/v1/gc", json={"grace_seconds": 0}, headers=api.as_(api.admin)
    ).json()
    assert report["blobs"] == []
    found = api.client.get(f"/api/v1/blobs/{version['environment']['sha256']}")
    assert found.status_code == 200 and found.text == lock


def test_a_level_1_client_cannot_resolve_a_module_with_an_environment(api: Any) -> None:
    environment = {"requirements": ["six==1.16.0"]}
    sha = api.put_blob(module_archive("1.1.0", environment=environment))
    body = publish_body(sha, "1.1.0", environment=environment)
    body["environment_sha256"] = api.put_blob(env_lock("six==1.16.0").encode())
    assert api.publish_version(body).status_code == 201
    api.publish_version(publish_body(api.put_blob(module_archive("1.0.0")), "1.0.0"))
    refs = {"refs": ["vision/prep@1.0.0", "vision/prep@1.1.0"]}
    old, new = ({"Modreg-Api-Level": str(level)} for level in (1, compatibility.API_LEVEL))
    plain, with_env = api.client.post("/api/v1/resolve", json=refs, headers=old).json()["results"]
    assert plain["version"]["version"] == "1.0.0", "modules without one still resolve"
    assert with_env["version"] is None and with_env["error"]["type"] == "client-too-old"
    assert with_env["error"]["detail"] == (
        "vision/prep@1.1.0 runs in its own environment, which clients of API level 1 ignore: "
        "upgrade the modreg client (pip install -U modreg)"
    )
    results = api.client.post("/api/v1/resolve", json=refs, headers=new).json()["results"]
    assert [r["version"]["version"] for r in results] == ["1.0.0", "1.1.0"]
