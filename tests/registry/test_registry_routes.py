"""Route behaviour through an in-process app, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import tarfile
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from registry_data import (
    COMMIT_B,
    Api,
    manifest_body,
    manifest_toml,
    module_archive,
    publish_body,
    tar_gz,
)
from sqlmodel import Session, select

from modreg.registry.models import Token
from modreg.registry.schemas import ModulePublic, ResolveResponse, TokenPublic, VersionPublic

PROBLEM = "application/problem+json"


def assert_problem(answer: Any, status: int, type_: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == PROBLEM
    body = answer.json()
    assert body["status"] == status and body["type"] == type_ and body["detail"] and body["title"]
    return dict(body)


def test_health_and_whoami(api: Api) -> None:
    health = api.client.get("/api/v1/health").json()
    assert health["status"] == "ok" and health["database"] in ("sqlite", "postgresql")
    me = api.client.get("/api/v1/whoami", headers=api.as_(api.read)).json()
    assert me == {
        "authenticated": True,
        "admin": False,
        "team": "vision",
        "scope": "read",
        "token_id": me["token_id"],
    }
    assert api.client.get("/api/v1/whoami").json()["authenticated"] is False


def test_openapi_is_served(api: Api) -> None:
    paths = api.client.get("/openapi.json").json()["paths"]
    assert "/api/v1/resolve" in paths and "/api/v1/blobs/{sha256}" in paths


@pytest.mark.parametrize(
    ("name", "status", "type_"),
    [
        ("vision", 409, "team-exists"),
        ("Bad Name", 422, "invalid-name"),
        ("x" * 40, 422, "invalid-name"),
    ],
)
def test_team_create_errors(api: Api, name: str, status: int, type_: str) -> None:
    answer = api.client.post("/api/v1/teams", json={"name": name}, headers=api.as_(api.admin))
    assert_problem(answer, status, type_)


def test_tokens_list_revoke_and_expiry(api: Api) -> None:
    created = api.client.post(
        "/api/v1/tokens",
        json={"team": "vision", "scope": "read", "expires_in_days": 90},
        headers=api.as_(api.publish),
    ).json()
    assert created["token"].startswith("mr_")
    expires = datetime.fromisoformat(created["expires_at"])
    assert timedelta(days=89) < expires - datetime.now(UTC) <= timedelta(days=90)
    listed = [
        TokenPublic.model_validate(t)
        for t in api.client.get("/api/v1/tokens?team=vision", headers=api.as_(api.publish)).json()
    ]
    assert {t.id for t in listed} >= {created["id"]}
    assert all("token" not in t.model_dump() for t in listed)
    gone = api.client.delete(f"/api/v1/tokens/{created['id']}", headers=api.as_(api.publish))
    assert gone.status_code == 204
    answer = api.client.get("/api/v1/whoami", headers=api.as_(created["token"]))
    assert "revoked" in assert_problem(answer, 401, "authentication-required")["detail"]
    assert_problem(
        api.client.delete("/api/v1/tokens/9999", headers=api.as_(api.admin)), 404, "unknown-token"
    )


def test_expired_token_is_refused(api: Api) -> None:
    token = api.client.post(
        "/api/v1/tokens", json={"team": "vision", "scope": "read"}, headers=api.as_(api.admin)
    ).json()
    engine = api.client.app.state.engine  # type: ignore[attr-defined]
    with Session(engine) as session:
        row = session.exec(select(Token).where(Token.id == token["id"])).one()
        row.expires_at = datetime.now(UTC) - timedelta(seconds=1)
        session.add(row)
        session.commit()
    answer = api.client.get("/api/v1/whoami", headers=api.as_(token["token"]))
    assert "expired" in assert_problem(answer, 401, "authentication-required")["detail"]


def test_publish_created_replayed_and_conflicting(api: Api) -> None:
    sha = api.put_blob(module_archive())
    first = api.publish_version(publish_body(sha))
    assert first.status_code == 201 and first.json()["created"] is True
    again = api.publish_version(publish_body(sha, "1.0.0+build.7"))
    assert again.status_code == 200 and again.json()["created"] is False
    other = api.put_blob(module_archive(salt="changed"))
    for body in (publish_body(other), publish_body(sha, commit=COMMIT_B)):
        assert_problem(api.publish_version(body), 409, "version-exists")
    version = VersionPublic.model_validate(
        api.client.get("/api/v1/modules/vision/prep/versions/1.0.0").json()
    )
    assert (version.commit, version.sha256, version.size) == ("a" * 40, sha, len(module_archive()))


@pytest.mark.parametrize(
    ("change", "status", "type_"),
    [
        ({"name": "vision/other"}, 422, "invalid-manifest"),
        ({"version": "1.0.1"}, 422, "invalid-manifest"),
        ({"command": ["run", "{params.nope}"]}, 422, "invalid-manifest"),
        ({"env": ["MODREG_TOKEN"]}, 422, "invalid-manifest"),
        ({"env": ["AWS_SESSION_TOKEN"]}, 422, "invalid-manifest"),
        ({"env": ["NOT A NAME"]}, 422, "invalid-manifest"),
        ({"body_version": "1.0"}, 422, "invalid-version"),
        ({"body_version": " 1.0.0"}, 422, "invalid-version"),
        ({"body_version": "1.0.0\n"}, 422, "invalid-version"),
        ({"version": " 1.0.0"}, 422, "invalid-manifest"),
        ({"version": "1.0.0\n"}, 422, "invalid-manifest"),
        ({"sha256": "f" * 64}, 404, "unknown-blob"),
        ({"commit": "xyz"}, 422, "invalid-input"),
        ({"command": []}, 422, "invalid-manifest"),
        ({"command": ["", "run.py"]}, 422, "invalid-manifest"),
        ({"path": "../../etc"}, 422, "invalid-input"),
        ({"path": "/etc"}, 422, "invalid-input"),
        ({"path": "mods\\prep"}, 422, "invalid-input"),
        ({"path": "mods/./prep"}, 422, "invalid-input"),
        ({"path": "mods/prep/"}, 422, "invalid-input"),
    ],
)
def test_publish_rejects_bad_input(
    api: Api, change: dict[str, Any], status: int, type_: str
) -> None:
    sha = api.put_blob(module_archive())
    body = publish_body(sha)
    for key, value in change.items():
        if key == "body_version":
            body["version"] = value
        elif key in ("sha256", "commit", "path"):
            body[key] = value
        else:
            body["manifest"][key] = value
    assert_problem(api.publish_version(body), status, type_)
    assert api.client.get("/api/v1/modules/vision/prep/versions").status_code == 404


def test_publish_in_a_subfolder_is_accepted(api: Api) -> None:
    body = {**publish_body(api.put_blob(module_archive())), "path": "mods/prep-1.x"}
    assert api.publish_version(body).status_code == 201


@pytest.mark.parametrize(
    ("archive", "message"),
    [
        (tar_gz({"run.py": "x"}), "has no modreg.toml"),
        (tar_gz({"sub/modreg.toml": manifest_toml(manifest_body())}), "has no modreg.toml"),
        (tar_gz({"modreg.toml": "[module"}), "not valid TOML"),
        (module_archive(description="not what was sent"), "differs from the one sent: description"),
        (module_archive(command=["python", "other.py"]), "differs from the one sent: command"),
        (module_archive(command=[]), "[module] command: is empty: write the program"),
    ],
    ids=["none", "not-at-root", "broken", "description", "command", "empty-command"],
)
def test_publish_checks_the_manifest_in_the_archive(api: Api, archive: bytes, message: str) -> None:
    sha = api.put_blob(archive)
    body = assert_problem(api.publish_version(publish_body(sha)), 422, "invalid-manifest")
    assert message in body["detail"]
    assert api.client.get("/api/v1/modules/vision/prep").status_code == 404


def _symlink_out(tar: tarfile.TarFile) -> None:
    info = tarfile.TarInfo("evil")
    info.type, info.linkname = tarfile.SYMTYPE, "../../etc/passwd"
    tar.addfile(info)


@pytest.mark.parametrize(
    "archive",
    [
        tar_gz({"../escape.py": "x"}),
        tar_gz({"/abs.py": "x"}),
        tar_gz({"ok.py": "x"}, extra=_symlink_out),
        b"not a tarball at all",
    ],
    ids=["dotdot", "absolute", "symlink-out", "garbage"],
)
def test_unsafe_archive_publish_rejected(api: Api, archive: bytes) -> None:
    sha = api.put_blob(archive)
    assert_problem(api.publish_version(publish_body(sha)), 422, "unsafe-archive")
    assert api.client.get("/api/v1/modules/vision/prep").status_code == 404


def test_versions_listing_and_module(published: Api) -> None:
    versions = published.client.get("/api/v1/modules/vision/prep/versions").json()
    assert [v["version"] for v in versions] == ["1.0.0", "1.1.0", "1.2.0-rc.1", "2.0.0"]
    module = ModulePublic.model_validate(published.client.get("/api/v1/modules/vision/prep").json())
    assert (module.name, module.latest_version, module.default_version) == (
        "vision/prep",
        "2.0.0",
        None,
    )


def test_latest_version_is_what_a_bare_reference_picks(api: Api) -> None:
    """Only pre-releases: no latest version, and a bare reference picks nothing either."""
    sha = api.put_blob(module_archive("1.0.0-rc.1"))
    assert api.publish_version(publish_body(sha, "1.0.0-rc.1")).status_code == 201
    module = api.client.get("/api/v1/modules/vision/prep").json()
    (bare,) = _resolve(api, "vision/prep").results
    assert (module["latest_version"], bare.version) == (None, None)
    assert bare.error and bare.error["type"] == "unsatisfiable-range"
    sha = api.put_blob(module_archive("0.9.0"))
    assert api.publish_version(publish_body(sha, "0.9.0")).status_code == 201
    module = api.client.get("/api/v1/modules/vision/prep").json()
    (bare,) = _resolve(api, "vision/prep").results
    assert module["latest_version"] == "0.9.0" and bare.version and bare.version.version == "0.9.0"


def _resolve(api: Api, *refs: str) -> ResolveResponse:
    answer = api.client.post("/api/v1/resolve", json={"refs": list(refs)})
    assert answer.status_code == 200, answer.text
    return ResolveResponse.model_validate(answer.json())


@pytest.mark.parametrize(
    ("ref", "version"),
    [
        ("vision/prep@^1", "1.1.0"),
        ("vision/prep@~1.0", "1.0.0"),
        ("vision/prep@^1.2.0-rc.0", "1.2.0-rc.1"),
        ("vision/prep@>=1.0.0, <2", "1.1.0"),
        ("vision/prep@*", "2.0.0"),
        ("vision/prep", "2.0.0"),
        ("vision/prep@1.0.0", "1.0.0"),
    ],
)
def test_resolve_picks(published: Api, ref: str, version: str) -> None:
    (result,) = _resolve(published, ref).results
    assert result.error is None and result.version is not None
    assert result.version.version == version and result.module == "vision/prep" and result.reason


def test_resolve_statuses_default_and_errors(published: Api) -> None:
    client, auth = published.client, published.as_(published.publish)
    base = "/api/v1/modules/vision/prep"
    assert_problem(
        client.post(f"{base}/versions/1.1.0/yank", json={}, headers=auth), 422, "invalid-input"
    )
    assert (
        client.post(f"{base}/versions/1.1.0/yank", json={"message": "broken"}, headers=auth).json()[
            "status"
        ]
        == "yanked"
    )
    assert (
        client.post(
            f"{base}/versions/1.0.0/deprecate", json={"message": "old"}, headers=auth
        ).status_code
        == 200
    )
    assert (
        client.put(f"{base}/default", json={"version": "1.0.0"}, headers=auth).json()[
            "default_version"
        ]
        == "1.0.0"
    )
    ranged, pinned, bare, missing, bad, none = _resolve(
        published,
        "vision/prep@^1",
        "vision/prep@1.1.0",
        "vision/prep",
        "vision/nope",
        "vision/prep@>>1",
        "vision/prep@^3",
    ).results
    assert ranged.version and ranged.version.version == "1.0.0" and ranged.warnings  # deprecated
    assert pinned.version and pinned.version.version == "1.1.0" and "yanked" in pinned.warnings[0]
    assert bare.version and bare.version.version == "1.0.0"
    assert missing.error and missing.error["type"] == "unknown-module"
    assert bad.error and bad.error["type"] == "invalid-range"
    assert none.error and none.error["type"] == "unsatisfiable-range"
    unyanked = client.post(f"{base}/versions/1.1.0/unyank", headers=auth).json()
    assert unyanked["status"] == "active" and unyanked["status_message"] is None
    assert_problem(
        client.put(f"{base}/default", json={"version": "9.9.9"}, headers=auth),
        404,
        "unknown-version",
    )


def test_resolve_many_modules_in_one_call(api: Api) -> None:
    for index in range(5):
        sha = api.put_blob(module_archive(name=f"vision/m{index}"))
        assert (
            api.publish_version(
                publish_body(sha, name=f"vision/m{index}"), module=f"vision/m{index}"
            ).status_code
            == 201
        )
    refs = [f"vision/m{i % 5}@^1" for i in range(50)]
    results = _resolve(api, *refs).results
    assert [r.ref for r in results] == refs and all(r.version for r in results)


def test_search(published: Api) -> None:
    archive = module_archive(name="vision/train", description="Trains the model")
    sha = published.put_blob(archive)
    body = publish_body(sha, name="vision/train_100%", description="Trains the model")
    assert (
        published.publish_version(body, module="vision/train_100%").status_code == 422
    )  # bad name
    body = publish_body(sha, name="vision/train", description="Trains the model")
    assert published.publish_version(body, module="vision/train").status_code == 201

    def names(query: str) -> list[str]:
        return [m["name"] for m in published.client.get(f"/api/v1/modules?{query}").json()]

    assert names("") == ["vision/prep", "vision/train"]
    assert names("q=MODEL") == ["vision/train"]
    assert names("q=vision/pr") == ["vision/prep"]
    assert names("q=%25") == []
    assert names("team=audio") == []
    assert names("limit=1&offset=1") == ["vision/train"]


def test_archive_download_and_blob_get(published: Api) -> None:
    answer = published.client.get("/api/v1/modules/vision/prep/versions/1.0.0/archive")
    assert answer.status_code == 200 and answer.content == module_archive("1.0.0")
    assert answer.headers["x-modreg-sha256"] == hashlib.sha256(answer.content).hexdigest()
    sha = answer.headers["x-modreg-sha256"]
    assert published.client.head(f"/api/v1/blobs/{sha}").headers["content-length"] == str(
        len(answer.content)
    )
    assert published.client.get(f"/api/v1/blobs/{sha}").content == answer.content


def test_corrupt_blob_is_dropped_not_served(published: Api) -> None:
    sha = published.client.get("/api/v1/modules/vision/prep/versions/1.0.0").json()["sha256"]
    stored = published.settings.data_dir / "blobs" / sha[:2] / sha[2:]
    stored.write_bytes(b"rotten")
    assert_problem(
        published.client.get(f"/api/v1/blobs/{sha}", headers=published.as_(published.read)),
        404,
        "unknown-blob",
    )
    assert not stored.exists()
    assert (
        published.client.head(
            f"/api/v1/blobs/{sha}", headers=published.as_(published.read)
        ).status_code
        == 404
    )


def test_blob_put_rules(api: Api) -> None:
    data = b"some bytes"
    sha = hashlib.sha256(data).hexdigest()
    first = api.client.put(f"/api/v1/blobs/{sha}", content=data, headers=api.as_(api.run))
    second = api.client.put(f"/api/v1/blobs/{sha}", content=data, headers=api.as_(api.publish))
    assert (first.status_code, second.status_code) == (201, 200)
    wrong = "0" * 64
    body = assert_problem(
        api.client.put(f"/api/v1/blobs/{wrong}", content=data, headers=api.as_(api.run)),
        422,
        "digest-mismatch",
    )
    assert body["actual"] == sha
    assert_problem(
        api.client.put("/api/v1/blobs/xyz", content=data, headers=api.as_(api.run)),
        422,
        "invalid-input",
    )
    assert_problem(
        api.client.put(f"/api/v1/blobs/{sha}", content=data), 401, "authentication-required"
    )
    assert_problem(
        api.client.get(f"/api/v1/blobs/{sha}"), 401, "authentication-required"
    )  # not an archive
    assert not list((api.settings.data_dir / "blobs" / "tmp").iterdir())


def test_step_cache_is_per_team_and_first_write_wins(api: Api) -> None:
    data = b"output"
    sha = api.put_blob(data)
    entry = {
        "outputs": {"model": {"type": "file", "digest": sha, "size": 6}},
        "run_id": "r-1",
        "step": "train",
    }
    fingerprint = "f" * 64
    first = api.client.put(f"/api/v1/cache/{fingerprint}", json=entry, headers=api.as_(api.run))
    assert first.status_code == 200 and first.json()["team"] == "vision"
    later = api.client.put(
        f"/api/v1/cache/{fingerprint}",
        json={**entry, "step": "other"},
        headers=api.as_(api.publish),
    )
    assert later.json()["step"] == "train"
    lookup = {"fingerprints": [fingerprint, "e" * 64]}
    mine = api.client.post("/api/v1/cache/lookup", json=lookup, headers=api.as_(api.read)).json()
    theirs = api.client.post("/api/v1/cache/lookup", json=lookup, headers=api.as_(api.other)).json()
    assert list(mine["entries"]) == [fingerprint] and theirs == {"entries": {}}
    missing = {"outputs": {"model": {"type": "file", "digest": "d" * 64}}}
    assert_problem(
        api.client.put(f"/api/v1/cache/{'1' * 64}", json=missing, headers=api.as_(api.run)),
        404,
        "unknown-blob",
    )
    assert_problem(
        api.client.post("/api/v1/cache/lookup", json=lookup, headers=api.as_(api.admin)),
        403,
        "permission-denied",
    )


def test_sweeps_runs_and_steps(api: Api) -> None:
    auth = api.as_(api.run)
    sweep = api.client.post(
        "/api/v1/sweeps",
        json={"pipeline": "digits", "axes": {"train.params.lr": [0.1, 0.01]}},
        headers=auth,
    ).json()
    assert sweep["id"].startswith("s-") and len(sweep["id"]) == 14
    run = api.client.post(
        "/api/v1/runs",
        json={
            "pipeline": "digits",
            "sweep_id": sweep["id"],
            "variant": {"train.params.lr": 0.1},
            "spec": {"a": 1},
        },
        headers=auth,
    )
    assert run.status_code == 201 and run.json()["status"] == "running"
    run_id = run.json()["id"]
    step = {
        "status": "executed",
        "module": "vision/prep",
        "version": "1.0.0",
        "fingerprint": "f" * 64,
        "metrics": {"acc": 0.9},
    }
    for status in ("running", "executed"):
        answer = api.client.put(
            f"/api/v1/runs/{run_id}/steps/prep", json={**step, "status": status}, headers=auth
        )
        assert answer.status_code == 204
    batch = {"steps": {"train": {**step, "module": "vision/train"}, "prep": step}}
    assert (
        api.client.put(f"/api/v1/runs/{run_id}/steps", json=batch, headers=auth).status_code == 204
    )
    done = api.client.patch(
        f"/api/v1/runs/{run_id}", json={"status": "succeeded"}, headers=auth
    ).json()
    assert (
        done["status"] == "succeeded"
        and done["ended_at"]
        and done["steps"]["prep"]["metrics"] == {"acc": 0.9}
    )
    assert done["steps"]["train"]["module"] == "vision/train" and len(done["steps"]) == 2
    listed = api.client.get(f"/api/v1/runs?sweep={sweep['id']}", headers=api.as_(api.read)).json()
    assert (
        [r["id"] for r in listed] == [run_id]
        and listed[0]["spec"] == {}
        and listed[0]["steps"]["prep"]
    )
    assert api.client.get(f"/api/v1/sweeps/{sweep['id']}", headers=auth).json()["run_ids"] == [
        run_id
    ]
    assert_problem(
        api.client.get(f"/api/v1/runs/{run_id}", headers=api.as_(api.other)), 404, "unknown-run"
    )
    assert_problem(
        api.client.get(f"/api/v1/sweeps/{sweep['id']}", headers=api.as_(api.other)),
        404,
        "unknown-sweep",
    )
    assert api.client.get(f"/api/v1/runs/{run_id}", headers=api.as_(api.admin)).json()["spec"] == {
        "a": 1
    }
    assert api.client.get("/api/v1/runs", headers=api.as_(api.other)).json() == []


def test_a_sweep_with_its_runs_in_one_call(api: Api) -> None:
    auth = api.as_(api.run)
    variants = [{"train.params.lr": lr} for lr in (0.3, 0.1, 0.2, 0.05, 0.4)]
    body = {
        "pipeline": "digits",
        "axes": {"train.params.lr": [v["train.params.lr"] for v in variants]},
        "runs": [{"pipeline": "digits", "variant": v} for v in variants],
    }
    sweep = api.client.post("/api/v1/sweeps", json=body, headers=auth)
    assert sweep.status_code == 201
    run_ids = sweep.json()["run_ids"]
    runs = [api.client.get(f"/api/v1/runs/{r}", headers=auth).json() for r in run_ids]
    assert [r["variant"] for r in runs] == variants, "run_ids keep the order of runs"
    assert {r["sweep_id"] for r in runs} == {sweep.json()["id"]}
    step = {"status": "reused", "module": "vision/train", "version": "1.0.0"}
    batch = {"steps": {"train": step}, "finish": {"status": "failed", "error": "boom"}}
    answer = api.client.put(f"/api/v1/runs/{run_ids[0]}/steps", json=batch, headers=auth)
    assert answer.status_code == 204
    done = api.client.get(f"/api/v1/runs/{run_ids[0]}", headers=auth).json()
    assert (done["status"], done["error"]) == ("failed", "boom")
    assert done["ended_at"] and done["steps"]["train"]["status"] == "reused"


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "type_"),
    [
        ("get", "/api/v1/nowhere", None, 404, "not-found"),
        ("delete", "/api/v1/health", None, 405, "method-not-allowed"),
        ("get", "/api/v1/modules/vision/prep/versions/1.0.0", None, 404, "unknown-module"),
        ("post", "/api/v1/resolve", {"refs": "nope"}, 422, "invalid-input"),
        ("post", "/api/v1/resolve", {"refs": [], "extra": 1}, 422, "invalid-input"),
        ("get", "/api/v1/modules?limit=0", None, 422, "invalid-input"),
        ("post", "/api/v1/teams", {"name": "x"}, 401, "authentication-required"),
    ],
)
def test_errors_are_problems(
    api: Api, method: str, path: str, body: Any, status: int, type_: str
) -> None:
    answer = api.client.request(method.upper(), path, json=body)
    assert_problem(answer, status, type_)


def test_malformed_json_is_422(api: Api) -> None:
    answer = api.client.post(
        "/api/v1/resolve", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert_problem(answer, 422, "invalid-input")


def test_malformed_authorization_is_401(api: Api) -> None:
    answer = api.client.get("/api/v1/whoami", headers={"Authorization": "Basic abc"})
    assert_problem(answer, 401, "authentication-required")
    assert answer.headers["www-authenticate"] == "Bearer"


def test_private_registry_needs_a_team_token(private_api: Api) -> None:
    api = private_api
    sha = api.put_blob(module_archive())
    assert api.publish_version(publish_body(sha)).status_code == 201
    paths = [
        "/api/v1/modules/vision/prep",
        "/api/v1/modules/vision/prep/versions",
        "/api/v1/modules/vision/prep/versions/1.0.0/archive",
    ]
    for path in paths:
        assert_problem(api.client.get(path), 401, "authentication-required")
        assert_problem(
            api.client.get(path, headers=api.as_(api.other_read)), 403, "permission-denied"
        )
        assert api.client.get(path, headers=api.as_(api.read)).status_code == 200
    assert_problem(api.client.get("/api/v1/modules"), 401, "authentication-required")
    assert api.client.get("/api/v1/modules", headers=api.as_(api.other_read)).json() == []
    assert len(api.client.get("/api/v1/modules", headers=api.as_(api.read)).json()) == 1
    (result,) = api.client.post(
        "/api/v1/resolve", json={"refs": ["vision/prep"]}, headers=api.as_(api.other_read)
    ).json()["results"]
    assert result["error"]["type"] == "permission-denied"
    assert_problem(api.client.get(f"/api/v1/blobs/{sha}"), 401, "authentication-required")
    for method in ("get", "head"):  # the archive is no easier to read by its digest
        answer = getattr(api.client, method)(
            f"/api/v1/blobs/{sha}", headers=api.as_(api.other_read)
        )
        assert answer.status_code == 404  # as if absent: its existence does not leak
        owner = getattr(api.client, method)(f"/api/v1/blobs/{sha}", headers=api.as_(api.read))
        assert owner.status_code == 200
    assert [
        t["name"] for t in api.client.get("/api/v1/teams", headers=api.as_(api.read)).json()
    ] == ["vision"]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "/api/v1/tokens", {"team": "vision", "scope": "read", "description": "d" * 300}),
        ("post", "/api/v1/tokens", {"team": "vision", "scope": "read", "expires_in_days": 10**9}),
        ("post", "/api/v1/runs", {"pipeline": "p" * 300}),
        ("post", "/api/v1/sweeps", {"pipeline": "p" * 300}),
        ("put", "/api/v1/cache/" + "f" * 64, {"outputs": {}, "step": "s" * 300}),
        ("put", "/api/v1/cache/" + "f" * 64, {"outputs": {}, "run_id": "r" * 40}),
    ],
)
def test_overlong_values_are_422_on_every_database(
    api: Api, method: str, path: str, body: dict[str, Any]
) -> None:
    answer = getattr(api.client, method)(path, json=body, headers=api.as_(api.publish))
    assert_problem(answer, 422, "invalid-input")


def test_an_overlong_run_error_is_422_not_a_database_error(api: Api) -> None:
    auth = api.as_(api.publish)
    run = api.client.post("/api/v1/runs", json={"pipeline": "p"}, headers=auth).json()
    update = {"status": "failed", "error": "e" * 20_000}
    answer = api.client.patch(f"/api/v1/runs/{run['id']}", json=update, headers=auth)
    assert_problem(answer, 422, "invalid-input")
    step = {"status": "failed", "module": "vision/a", "version": "1.0.0", "fingerprint": "x" * 200}
    answer = api.client.put(f"/api/v1/runs/{run['id']}/steps/a", json=step, headers=auth)
    assert_problem(answer, 422, "invalid-input")


def test_openapi_lists_every_error_as_a_problem(api: Api) -> None:
    """A client generated from the document knows each route's errors: problem+json bodies
    of the statuses the route really answers, never FastAPI's default 422 shape."""
    document = api.client.get("/openapi.json").json()
    assert "HTTPValidationError" not in document["components"]["schemas"]
    assert set(document["components"]["schemas"]["Problem"]["required"]) == {
        "type", "title", "status", "detail"
    }  # fmt: skip
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            errors = {int(s): r for s, r in operation["responses"].items() if int(s) >= 400}
            takes_input = "requestBody" in operation or operation.get("parameters")
            assert 400 in errors and (422 in errors or not takes_input), (method, path)
            for answer in errors.values():
                assert list(answer["content"]) == [PROBLEM], (method, path)
    publish = document["paths"]["/api/v1/modules/{team}/{name}/versions"]["post"]["responses"]
    assert {"200", "201", "404", "409"} <= set(publish)
    assert "413" in document["paths"]["/api/v1/blobs/{sha256}"]["put"]["responses"]


def test_a_bad_request_is_answered_as_the_document_says(api: Api) -> None:
    answer = api.client.get("/api/v1/modules?limit=0")
    assert_problem(answer, 422, "invalid-input")
    assert answer.json()["errors"][0]["loc"] == "query.limit"
