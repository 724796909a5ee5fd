"""The API probed as an attacker and a clumsy user would: schemathesis against a real server.

For every operation of the live OpenAPI document, schemathesis generates requests that
follow the schema (positive) and requests that break it (negative), sends them to a real
``modreg server`` on loopback, and checks each answer: never a 5xx, a status and a content
type the document lists for that route, a body that matches the documented schema, and a
4xx for data the schema forbids. It runs anonymous, with a team's publish token and with the
admin token, on SQLite and PostgreSQL. Bounded (examples per operation, a deadline per
request) and seeded (one fixed seed per caller, operation and mode), so CI pays about 70 s
for it and a failure reproduces. Each failure is reported with a ``curl`` line to replay it.
Operations whose inputs are all free text get no negative requests: none exist.
"""

from __future__ import annotations

import time
import zlib
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from registry_servers import ServerHandle, bearer, create_team_tokens
from schemathesis import GenerationMode
from schemathesis.checks import CheckFunction, not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

EXAMPLES_PER_OPERATION = 3  # per mode and caller: ~30 s for the three callers on one database
REQUEST_DEADLINE_MS = 5000
CHECKS: list[CheckFunction] = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


def _probe(
    operation: Any, mode: GenerationMode, caller: str, headers: dict[str, str], failures: list[str]
) -> None:
    @seed(zlib.crc32(f"{caller} {operation.label} {mode.value}".encode()))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=REQUEST_DEADLINE_MS,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.generate],
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def probe(case: schemathesis.Case) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS, timeout=10)

    try:
        probe()
    except (Exception, BaseExceptionGroup) as exc:  # every operation reports, not the first
        failures.append(f"{operation.label} [{mode.value}, {caller}]: {exc}")


def _breakable(operation: dict[str, Any]) -> bool:
    """Whether a request can break this operation's schema: it has a body, or a parameter
    more constrained than free text (negative generation of free text alone only spins)."""
    free_text = {"type": "string"}
    schemas = [p.get("schema", {}) for p in operation.get("parameters", [])]
    return "requestBody" in operation or any(
        {k: v for k, v in schema.items() if k != "title"} != free_text for schema in schemas
    )


def _fuzz(server: ServerHandle, callers: dict[str, str | None]) -> list[str]:
    document = httpx.get(f"{server.url}/openapi.json").json()
    schema = schemathesis.openapi.from_dict(document)
    schema.config.base_url = server.url  # type: ignore[misc]
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        modes = [GenerationMode.POSITIVE]
        if _breakable(document["paths"][operation.path][operation.method.lower()]):
            modes.append(GenerationMode.NEGATIVE)
        for mode in modes:
            for caller, token in callers.items():
                _probe(operation, mode, caller, bearer(token), failures)
    return failures


@pytest.mark.timeout(300)
def test_api_answers_every_request_as_documented(
    db_url: str, registry_server: ServerHandle
) -> None:
    tokens = create_team_tokens(registry_server, "vision")
    callers = {"anonymous": None, "publish": tokens.publish, "admin": registry_server.admin_token}
    started = time.monotonic()
    failures = _fuzz(registry_server, callers)
    print(f"fuzzed in {time.monotonic() - started:.1f}s")
    assert not failures, "\n\n".join(failures)
