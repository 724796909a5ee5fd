"""A client and a registry too far apart say so in one line, naming which to upgrade.

The registry is a real server on loopback, of this release. The other side is made older or
newer by changing, in this test process only, the client's idea of its own API level
(``registry.compatibility``): the server process keeps the real one.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from modreg.client import RegistryClient, RegistryTooOldError
from modreg.registry import compatibility
from modreg.registry.compatibility import (
    API_LEVEL,
    OLDEST_CLIENT_LEVEL,
    OLDEST_REGISTRY_LEVEL,
    VERSION,
)
from modreg.registry.errors import ClientTooOldError


def test_every_answer_names_the_registry_s_version_and_api_level(shared: Any) -> None:
    answer = httpx.get(f"{shared.url}/api/v1/modules/vision/none")
    assert answer.status_code == 404
    assert answer.headers["Modreg-Version"] == VERSION
    assert answer.headers["Modreg-Api-Level"] == str(API_LEVEL)


def test_every_request_names_the_client_s_version_and_api_level() -> None:
    seen: list[httpx.Headers] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers)
        body = {"status": "ok", "version": VERSION, "database": "x"}
        return httpx.Response(200, json=body, headers={"Modreg-Api-Level": str(API_LEVEL)})

    with RegistryClient("http://registry.test", transport=httpx.MockTransport(answer)) as client:
        client.health()
    assert seen[0]["User-Agent"] == f"modreg/{VERSION}"
    assert (seen[0]["Modreg-Version"], seen[0]["Modreg-Api-Level"]) == (VERSION, str(API_LEVEL))


def test_a_client_too_old_for_the_registry_is_told_to_upgrade_itself(
    shared: Any, run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(compatibility, "API_LEVEL", OLDEST_CLIENT_LEVEL - 1)
    monkeypatch.setattr(compatibility, "VERSION", "0.0.1")
    expected = (
        f"this registry runs modreg {VERSION} and serves clients of API level "
        f"{OLDEST_CLIENT_LEVEL} and newer; this client, modreg 0.0.1, speaks level "
        f"{OLDEST_CLIENT_LEVEL - 1}: upgrade the modreg client (pip install -U modreg)"
    )
    with RegistryClient(shared.url) as client, pytest.raises(ClientTooOldError) as caught:
        client.list_versions("vision/prep")
    assert str(caught.value) == expected
    result = run(*shared.options("read"), "versions", "vision/prep")
    assert (result.exit_code, result.stderr, result.stdout) == (1, f"error: {expected}\n", "")


def test_a_registry_too_old_for_the_client_is_named_for_upgrade(
    shared: Any, run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(compatibility, "API_LEVEL", API_LEVEL + 1)
    monkeypatch.setattr(compatibility, "OLDEST_REGISTRY_LEVEL", API_LEVEL + 1)
    monkeypatch.setattr(compatibility, "VERSION", "9.0.0")
    expected = (
        f"the registry at {shared.url} runs modreg {VERSION} (API level {API_LEVEL}); "
        f"this client, modreg 9.0.0, needs API level {API_LEVEL + 1} or newer: "
        "upgrade the registry server"
    )
    with RegistryClient(shared.url) as client, pytest.raises(RegistryTooOldError) as caught:
        client.whoami()
    assert str(caught.value) == expected
    result = run(*shared.options("read"), "versions", "vision/prep")
    assert (result.exit_code, result.stderr, result.stdout) == (1, f"error: {expected}\n", "")


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 200),  # curl, a browser, a health probe: not a modreg client
        ({"User-Agent": "modreg-client"}, 200),  # a client from before the check: level 1
        ({"Modreg-Api-Level": str(OLDEST_CLIENT_LEVEL)}, 200),
        ({"Modreg-Api-Level": str(API_LEVEL + 5)}, 200),  # newer clients judge for themselves
        ({"Modreg-Api-Level": str(OLDEST_CLIENT_LEVEL - 1)}, 400),
    ],
)
def test_which_requests_the_registry_serves(
    shared: Any, headers: dict[str, str], status: int
) -> None:
    answer = httpx.get(f"{shared.url}/api/v1/health", headers=headers)
    assert answer.status_code == status
    if status == 400:
        assert answer.headers["Content-Type"] == "application/problem+json"
        assert answer.json()["type"] == "client-too-old"


def test_a_malformed_api_level_is_one_clear_problem(shared: Any) -> None:
    answer = httpx.get(f"{shared.url}/api/v1/health", headers={"Modreg-Api-Level": "two"})
    assert answer.status_code == 422
    assert answer.json()["detail"] == "Modreg-Api-Level header: expected an integer, got 'two'"


def test_version_names_the_one_version_and_the_api_level(run: Any) -> None:
    result = run("--version")
    assert (result.exit_code, result.stdout) == (0, f"modreg {VERSION} (API level {API_LEVEL})\n")


def test_a_level_1_registry_is_too_old_for_module_environments() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        headers = {"Modreg-Api-Level": "1", "Modreg-Version": "0.1.0"}
        return httpx.Response(200, json={"team": "vision"}, headers=headers)

    transport = httpx.MockTransport(answer)
    with RegistryClient("http://old.test", transport=transport) as client:
        with pytest.raises(RegistryTooOldError, match="needs API level 2 or newer"):
            client.whoami()
    assert OLDEST_REGISTRY_LEVEL == 2, "step records and publishes carry level-2 fields"
