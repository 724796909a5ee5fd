"""Fixtures of the UI tests: one registry with a published, run sweep, and one browser.

Once per session (a registry start, five publishes and a 3-run sweep take ~10 s): ``ui_site``
(see ``ui_site.py`` for what it holds), ``private_site`` (a ``--private`` registry with two
teams), and ``browser``: Debian's chromium (``/usr/bin/chromium``) driven by Playwright;
Playwright's own browser download cannot reach anything here, and is never used.
Screenshots go to ``snap``'s folder, ``ui-screenshots*`` under the pytest temp folder.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from engine_env import EngineEnv, Server, make_team
from registry_servers import start_server, stop_server
from ui_site import (
    CHROMIUM,
    CHROMIUM_ARGS,
    PrivateSite,
    Shots,
    Site,
    publish_modules,
    run_sweep,
)


@pytest.fixture(scope="session")
def ui_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    for name in ("MODREG_URL", "MODREG_TOKEN", "MODREG_STORE", "MODREG_EXECUTOR"):
        os.environ.pop(name, None)
    handle = start_server(tmp_path_factory.mktemp("ui-registry"))
    try:
        server = Server(handle.url, handle.admin_token)
        team, tokens = make_team(server)
        env = EngineEnv(server, team, tokens, tmp_path_factory.mktemp("ui-work"))
        publish_modules(env)
        yield Site(handle.url, env, run_sweep(env))
    finally:
        stop_server(handle.process)


@pytest.fixture(scope="session")
def private_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateSite]:
    handle = start_server(tmp_path_factory.mktemp("ui-private"), extra_args=("--private",))
    try:
        server = Server(handle.url, handle.admin_token)
        alpha, alpha_tokens = make_team(server)
        _, beta_tokens = make_team(server)
        env = EngineEnv(server, alpha, alpha_tokens, tmp_path_factory.mktemp("ui-private-work"))
        env.module("secret-prep", "1.0.0")
        headers = {"Authorization": f"Bearer {alpha_tokens['alice']}"}
        answer = httpx.post(
            f"{handle.url}/api/v1/runs",
            headers=headers,
            json={"pipeline": "alpha-only"},
            timeout=30,
        )
        answer.raise_for_status()
        yield PrivateSite(
            handle.url, alpha, alpha_tokens["reader"], beta_tokens["reader"], answer.json()["id"]
        )
    finally:
        stop_server(handle.process)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `apt-get install -y chromium chromium-driver`")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context (no cookies) at a laptop's size."""
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture(scope="session")
def snap(tmp_path_factory: pytest.TempPathFactory) -> Shots:
    return Shots(tmp_path_factory.mktemp("ui-screenshots"))
