"""Hostile and clumsy input to a real server, on SQLite and PostgreSQL: never a 5xx.

Each case here was a 500 (or a silently accepted mistake) found by probing the live API
(issue 8); the fuzzing probe that keeps finding such cases is ``test_api_fuzz.py``.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import sqlalchemy
from registry_data import publish_body
from registry_servers import ServerHandle, bearer, create_team_tokens

PROBLEM = "application/problem+json"


def assert_problem(answer: httpx.Response, status: int) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == PROBLEM
    body: dict[str, Any] = answer.json()
    assert body["status"] == status and body["detail"]
    return body


@pytest.fixture
def admin(db_url: str, registry_server: ServerHandle) -> httpx.Client:
    return httpx.Client(
        base_url=registry_server.api, headers=bearer(registry_server.admin_token), timeout=30
    )


OUT_OF_BOUNDS = [
    ("GET", "/modules?offset=9223372036854775808"),
    ("GET", "/modules?offset=-1"),
    ("GET", "/modules?limit=18446744073709551616"),
    ("GET", "/runs?limit=9223372036854775808"),
    ("DELETE", "/tokens/1180591620717411303424"),
    ("DELETE", "/tokens/1099511627776"),  # was a 500 on PostgreSQL, a 404 on SQLite
    ("DELETE", "/tokens/2147483648"),  # one past the id column's range
    ("DELETE", "/tokens/0"),
]


def test_integers_beyond_their_bounds_are_refused(admin: httpx.Client) -> None:
    for method, url in OUT_OF_BOUNDS:
        body = assert_problem(admin.request(method, url), 422)
        assert body["type"] == "invalid-input", url
    assert_problem(admin.delete("/tokens/2147483647"), 404)  # the largest id: just unknown


NUL = "a\x00b"
NUL_IN_URL = "a%00b"


def _nul_requests(server: ServerHandle, publish: str) -> list[tuple[str, str, dict[str, Any]]]:
    """Requests with a NUL in a query value, a path value, and in text fields of bodies."""
    body = publish_body("0" * 64)
    return [
        ("GET", f"/modules?team={NUL_IN_URL}", {}),
        ("GET", f"/modules?q={NUL_IN_URL}", {}),
        ("GET", f"/runs?sweep={NUL_IN_URL}", {"headers": bearer(publish)}),
        ("GET", f"/runs?pipeline={NUL_IN_URL}", {"headers": bearer(publish)}),
        ("GET", "/modules/vision/a%00b", {}),
        ("GET", "/runs/a%00b", {"headers": bearer(publish)}),
        ("POST", "/tokens", {"json": {"team": "vision", "scope": "read", "description": NUL}}),
        ("POST", "/modules/vision/prep/versions", {"json": {**body, "path": NUL}}),
        ("POST", "/modules/vision/prep/versions", {"json": {**body, "remote": NUL}}),
        ("POST", "/modules/vision/prep/versions", {"json": _with_manifest(body, description=NUL)}),
        ("POST", "/modules/vision/prep/versions", {"json": _with_manifest(body, command=[NUL])}),
        (
            "POST",
            "/runs",
            {"json": {"pipeline": "p", "spec": {NUL: 1}}, "headers": bearer(publish)},
        ),
        (
            "POST",
            "/runs",
            {"json": {"pipeline": "p", "lock": {"k": [NUL]}}, "headers": bearer(publish)},
        ),
        ("POST", "/resolve", {"json": {"refs": [f"vision/{NUL}"]}}),
    ]


def _with_manifest(body: dict[str, Any], **manifest: Any) -> dict[str, Any]:
    return {**body, "manifest": {**body["manifest"], **manifest}}


def test_nul_in_any_text_is_refused(admin: httpx.Client, registry_server: ServerHandle) -> None:
    publish = create_team_tokens(registry_server, "vision").publish
    for method, url, options in _nul_requests(registry_server, publish):
        answer = admin.request(method, url, **options)
        body = assert_problem(answer, 422)
        assert "NUL" in body["detail"], (url, body)


def test_a_500_keeps_the_connection_alive(
    admin: httpx.Client, registry_server: ServerHandle
) -> None:
    """A bug (here: a table dropped under the server) is a 500, and the client's keep-alive
    connection survives it: the next request goes over the very same socket."""
    engine = sqlalchemy.create_engine(registry_server.db_url or "")
    with engine.begin() as connection:
        connection.execute(sqlalchemy.text("DROP TABLE audit_event"))
    engine.dispose()
    first = admin.post("/teams", json={"name": "audio"})
    assert_problem(first, 500)
    second = admin.get("/health")
    assert second.status_code == 200
    assert _local_port(first) == _local_port(second)


def _local_port(answer: httpx.Response) -> int:
    return int(answer.extensions["network_stream"].get_extra_info("client_addr")[1])
