"""The API probed as an attacker and a clumsy user would: schemathesis against a real server.

For every operation of the live OpenAPI document, schemathesis generates requests that
follow the schema (positive) and requests that break it (negative), sends them to a real
``modreg server`` on loopback, and checks each answer: never a 5xx, a status and a content
type the document lists for that route, a body that matches the documented schema, and a
4xx for data the schema forbids. It runs anonymous and with a token, on SQLite and
PostgreSQL. Bounded (examples per operation, a deadline per request) and seeded
(``derandomize``), so CI pays about a minute for it and a failure reproduces.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from registry_servers import ServerHandle, bearer, create_team_tokens
from schemathesis import GenerationMode
from schemathesis.checks import CheckFunction, not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

EXAMPLES_PER_OPERATION = 12
REQUEST_DEADLINE_MS = 5000
CHECKS: list[CheckFunction] = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


def _probe(
    operation: Any, mode: GenerationMode, headers: dict[str, str], failures: list[str]
) -> None:
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=REQUEST_DEADLINE_MS,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.generate],
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def probe(case: schemathesis.Case) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS, timeout=10)

    try:
        probe()
    except Exception as exc:  # every failure of every operation is reported, not the first
        failures.append(f"{operation.label} [{mode.value}]: {exc}")


def _fuzz(server: ServerHandle, token: str | None) -> list[str]:
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    schema.config.base_url = server.url  # type: ignore[misc]
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _probe(operation, mode, bearer(token), failures)
    return failures


@pytest.mark.timeout(300)
@pytest.mark.parametrize("caller", ["anonymous", "admin", "publish"])
def test_api_answers_every_request_as_documented(
    db_url: str, registry_server: ServerHandle, caller: str
) -> None:
    tokens = create_team_tokens(registry_server, "vision")
    token = {"anonymous": None, "admin": registry_server.admin_token}.get(caller, tokens.publish)
    started = time.monotonic()
    failures = _fuzz(registry_server, token)
    print(f"fuzzed in {time.monotonic() - started:.1f}s")
    assert not failures, "\n\n".join(failures)
