"""Who may write what: every write endpoint without a token, with a read token (which never
writes), with another team's token; and no token secret stored in clear anywhere in the
database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from registry_data import Api, module_archive, publish_body
from sqlalchemy import text
from sqlmodel import SQLModel

V = "/api/v1/modules/vision/prep"
NO, READ, OTHER = "no token", "vision read token", "audio publish token"

# (method, path, body, {caller: (status, problem type)})
DENIED = {
    NO: (401, "authentication-required"),
    READ: (403, "permission-denied"),
    OTHER: (403, "permission-denied"),
}
TEAM_ONLY = {NO: (401, "authentication-required"), READ: (403, "permission-denied")}
WRITES: list[tuple[str, str, Any, dict[str, tuple[int, str]]]] = [
    ("POST", "/api/v1/teams", {"name": "newteam"}, DENIED),
    ("POST", "/api/v1/tokens", {"team": "vision", "scope": "publish"}, DENIED),
    ("GET", "/api/v1/tokens?team=vision", None, DENIED),
    ("DELETE", "/api/v1/tokens/{read_id}", None, DENIED),
    ("POST", f"{V}/versions", "publish", DENIED),
    ("POST", f"{V}/versions/1.0.0/deprecate", {"message": "m"}, DENIED),
    ("POST", f"{V}/versions/1.0.0/yank", {"message": "m"}, DENIED),
    ("POST", f"{V}/versions/1.0.0/unyank", None, DENIED),
    ("PUT", f"{V}/default", {"version": "1.0.0"}, DENIED),
    ("PUT", "/api/v1/blobs/{blob}", "blob", TEAM_ONLY),
    ("PUT", "/api/v1/cache/{fp}", "cache", TEAM_ONLY),
    ("POST", "/api/v1/cache/lookup", {"fingerprints": []}, {NO: (401, "authentication-required")}),
    ("POST", "/api/v1/sweeps", {"pipeline": "p"}, TEAM_ONLY),
    ("POST", "/api/v1/runs", {"pipeline": "p"}, TEAM_ONLY),
    (
        "PATCH",
        "/api/v1/runs/{run}",
        {"status": "failed"},
        {**TEAM_ONLY, OTHER: (404, "unknown-run")},
    ),
    ("PUT", "/api/v1/runs/{run}/steps", "batch", {**TEAM_ONLY, OTHER: (404, "unknown-run")}),
    ("PUT", "/api/v1/runs/{run}/steps/s", "step", {**TEAM_ONLY, OTHER: (404, "unknown-run")}),
]


def _world(api: Api) -> dict[str, Any]:
    """Objects the table's paths and bodies refer to."""
    sha = api.put_blob(module_archive())
    assert api.publish_version(publish_body(sha)).status_code == 201
    new_sha = api.put_blob(module_archive("1.1.0"))
    run = api.client.post("/api/v1/runs", json={"pipeline": "p"}, headers=api.as_(api.run)).json()
    me = api.client.get("/api/v1/whoami", headers=api.as_(api.read)).json()
    return {
        "read_id": me["token_id"],
        "run": run["id"],
        "fp": "f" * 64,
        "blob": new_sha,
        "bodies": {
            "publish": publish_body(new_sha, "1.1.0"),
            "blob": module_archive("1.1.0"),
            "cache": {"outputs": {"o": {"type": "file", "digest": sha}}},
            "step": {"status": "executed", "module": "vision/prep", "version": "1.0.0"},
            "batch": {"steps": {"s": {"status": "executed", "module": "m/n", "version": "1.0.0"}}},
        },
    }


@pytest.mark.parametrize(
    ("method", "path", "body", "expected"), WRITES, ids=[f"{m} {p}" for m, p, _, _ in WRITES]
)
def test_write_endpoints_refuse_the_wrong_callers(
    api: Api, method: str, path: str, body: Any, expected: dict[str, tuple[int, str]]
) -> None:
    world = _world(api)
    url = path.format(**world)
    payload = world["bodies"].get(body, body) if isinstance(body, str) else body
    kwargs = {"content": payload} if isinstance(payload, bytes) else {"json": payload}
    tokens = {NO: None, READ: api.read, OTHER: api.other}
    for caller, (status, type_) in expected.items():
        answer = api.client.request(method, url, headers=api.as_(tokens[caller]), **kwargs)
        assert (answer.status_code, answer.json()["type"]) == (status, type_), (
            f"{caller}: {answer.text}"
        )
    version = api.client.get(f"{V}/versions/1.0.0").json()
    module = api.client.get(V).json()
    assert (version["status"], module["default_version"], module["latest_version"]) == (
        "active",
        None,
        "1.0.0",
    )
    assert [t["name"] for t in api.client.get("/api/v1/teams").json()] == ["audio", "vision"]
    assert api.client.get("/api/v1/whoami", headers=api.as_(api.read)).status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PUT", "/api/v1/blobs/{blob}", "blob"),
        ("PUT", "/api/v1/cache/{fp}", "cache"),
        ("POST", "/api/v1/sweeps", {"pipeline": "p"}),
        ("POST", "/api/v1/runs", {"pipeline": "p"}),
        ("PATCH", "/api/v1/runs/{run}", {"status": "failed"}),
        ("PUT", "/api/v1/runs/{run}/steps/s", "step"),
    ],
)
def test_a_read_token_never_writes_and_a_run_token_records(
    api: Api, method: str, path: str, body: Any
) -> None:
    world = _world(api)
    url = path.format(**world)
    payload = world["bodies"].get(body, body) if isinstance(body, str) else body
    kwargs = {"content": payload} if isinstance(payload, bytes) else {"json": payload}
    refused = api.client.request(method, url, headers=api.as_(api.read), **kwargs)
    assert refused.status_code == 403
    assert refused.json()["detail"].endswith("yours is a read token, which never writes")
    recorded = api.client.request(method, url, headers=api.as_(api.run), **kwargs)
    assert recorded.status_code in (200, 201, 204), recorded.text


def test_a_run_token_does_not_publish(api: Api) -> None:
    sha = api.put_blob(module_archive(), token=api.run)
    answer = api.publish_version(publish_body(sha), token=api.run)
    assert (answer.status_code, answer.json()["type"]) == (403, "permission-denied")
    assert "yours is a run token" in answer.json()["detail"]


def test_publish_token_of_the_team_and_admin_may_write(api: Api) -> None:
    sha = api.put_blob(module_archive())
    assert api.publish_version(publish_body(sha)).status_code == 201
    for token in (api.publish, api.admin):
        answer = api.client.post(
            f"{V}/versions/1.0.0/deprecate", json={"message": "m"}, headers=api.as_(token)
        )
        assert answer.status_code == 200, answer.text


def _database_text(api: Api) -> str:
    engine = api.client.app.state.engine  # type: ignore[attr-defined]
    chunks = []
    with engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            for row in conn.execute(text(f'SELECT * FROM "{table.name}"')):
                chunks.extend(str(value) for value in row)
    return "\n".join(chunks)


def test_no_token_in_clear_in_the_database(api: Api) -> None:
    extra = api.client.post(
        "/api/v1/tokens", json={"team": "vision", "scope": "read"}, headers=api.as_(api.publish)
    )
    secrets = [api.admin, api.publish, api.read, api.other, api.other_read, extra.json()["token"]]
    sha = api.put_blob(module_archive())
    api.publish_version(publish_body(sha))
    dumped = _database_text(api)
    assert "vision" in dumped  # the scan does see the data
    for secret in secrets:
        assert secret not in dumped and secret[3:] not in dumped
    if api.settings.database_url.startswith("sqlite"):
        path = Path(api.settings.database_url.removeprefix("sqlite:///"))
        raw = b"".join(p.read_bytes() for p in path.parent.glob(f"{path.name}*"))
        assert not any(secret.encode() in raw for secret in secrets)
