"""Every page reads with exactly the API's rules: for each page, every kind of caller gets
the status its API twin gives the same token (the page's through the sign-in cookie, the
API's as a bearer token), on an open and on a private registry. The API never takes the
cookie. A page added without a twin here fails ``test_every_page_has_a_twin``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI
from registry_data import Api, build_api, module_archive, publish_body

UI_PACKAGE = "modreg.registry.ui"
STEP = {"status": "executed", "module": "vision/prep", "version": "1.0.0"}
# page -> its API twin ({run}, {sweep}, {log}: vision's run, sweep and step log)
TWINS = {
    "/": "/api/v1/modules",
    "/modules/vision/prep": "/api/v1/modules/vision/prep",
    "/modules/vision/prep/1.0.0": "/api/v1/modules/vision/prep/versions/1.0.0",
    "/modules/vision/nothing": "/api/v1/modules/vision/nothing",
    "/runs": "/api/v1/runs",
    "/runs/{run}": "/api/v1/runs/{run}",
    "/runs/{run}/steps/s/log": "/api/v1/blobs/{log}",
    "/sweeps/{sweep}": "/api/v1/sweeps/{sweep}",
}
ROUTES = {  # the route of each page above
    "GET /": "/",
    "GET /modules/{team}/{name}": "/modules/vision/prep",
    "GET /modules/{team}/{name}/{version}": "/modules/vision/prep/1.0.0",
    "GET /runs": "/runs",
    "GET /runs/{run_id}": "/runs/{run}",
    "GET /runs/{run_id}/steps/{step}/log": "/runs/{run}/steps/s/log",
    "GET /sweeps/{sweep_id}": "/sweeps/{sweep}",
}
FORMS = {"GET /signin", "POST /signin", "POST /signout"}  # tests/ui/test_private.py


@dataclass
class World:
    api: Api
    names: dict[str, str]
    callers: dict[str, str | None]


@pytest.fixture(scope="module", params=["open", "private"])
def world(request: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    folder = tmp_path_factory.mktemp(f"pages-{request.param}")
    private = request.param == "private"
    for api in build_api(f"sqlite:///{folder}/r.db", folder / "data", private=private):
        sha = api.put_blob(module_archive("1.0.0"))
        assert api.publish_version(publish_body(sha, "1.0.0")).status_code == 201
        log = api.put_blob(b"a log of vision", token=api.run)
        auth = api.as_(api.run)
        sweep = api.client.post("/api/v1/sweeps", json={"pipeline": "p"}, headers=auth).json()
        run = api.client.post("/api/v1/runs", json={"pipeline": "p"}, headers=auth).json()
        step = api.client.put(
            f"/api/v1/runs/{run['id']}/steps/s", json={**STEP, "log_digest": log}, headers=auth
        )
        assert step.status_code == 204, step.text
        callers = {
            "anonymous": None,
            "read": api.read,
            "run": api.run,
            "publish": api.publish,
            "other team": api.other,
            "admin": api.admin,
            "unknown token": "mr_" + "x" * 43,
        }
        yield World(api, {"run": run["id"], "sweep": sweep["id"], "log": log}, callers)


def ui_routes(app: FastAPI) -> set[str]:
    found = set()
    for route in app.routes:
        contexts = getattr(route, "effective_route_contexts", None)
        for each in contexts() if contexts is not None else [route]:
            endpoint = getattr(each, "endpoint", None)
            if endpoint is not None and endpoint.__module__.startswith(UI_PACKAGE):
                found |= {f"{method} {each.path}" for method in each.methods}
    return found


def test_every_page_has_a_twin(world: World) -> None:
    assert ui_routes(world.api.client.app) == set(ROUTES) | FORMS  # type: ignore[arg-type]
    assert set(ROUTES.values()) <= set(TWINS)


@pytest.mark.parametrize("page", sorted(TWINS))
def test_a_page_answers_each_caller_as_its_api_twin(world: World, page: str) -> None:
    client, wrong = world.api.client, []
    for caller, token in world.callers.items():
        cookie = {"Cookie": f"modreg_token={token}"} if token else {}
        shown = client.get(page.format(**world.names), headers=cookie)
        twin = client.get(TWINS[page].format(**world.names), headers=world.api.as_(token))
        if shown.status_code != twin.status_code:
            wrong.append(f"{caller}: page {shown.status_code}, API {twin.status_code}")
        if shown.status_code == 200 and not page.endswith("/log"):
            assert shown.headers["content-type"].startswith("text/html")
    assert wrong == []


def test_the_api_never_takes_the_cookie(world: World) -> None:
    cookie = {"Cookie": f"modreg_token={world.api.admin}"}
    answer = world.api.client.get(f"/api/v1/runs/{world.names['run']}", headers=cookie)
    assert answer.status_code == 401


@pytest.mark.parametrize(
    ("query", "line"),
    [
        ("page=abc", "not a valid value: query.page"),
        ("status=bogus", "is not one of pending, running"),
    ],
)
def test_a_bad_filter_is_a_422_page(world: World, query: str, line: str) -> None:
    cookie = {"Cookie": f"modreg_token={world.api.read}"}
    answer = world.api.client.get(f"/runs?{query}", headers=cookie)
    assert answer.status_code == 422 and answer.headers["content-type"].startswith("text/html")
    assert line in answer.text
