"""Hostile and clumsy input to a real server, on SQLite and PostgreSQL: never a 5xx.

Each case here was a 500 (or a silently accepted mistake) found by probing the live API
(issue 8); the fuzzing probe that keeps finding such cases is ``test_api_fuzz.py``.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from registry_servers import ServerHandle, bearer

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
