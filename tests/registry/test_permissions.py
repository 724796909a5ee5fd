"""Every route of the app, every kind of caller, on an open and on a private registry.

``EXPECTED`` holds, for each route (``METHOD /path``), one or more requests and the status
each caller gets. The test walks the app's route table: a route added without an entry here
fails ``test_every_route_has_an_expected_outcome``, so nobody adds a route without saying who
may call it. The data (teams, tokens, a module, a run, blobs…) is built once per registry
kind; a request that changes something works on fresh objects (a new version, token, run…),
so the order of the checks does not matter.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from registry_data import Api, build_api, module_archive, publish_body
from sqlmodel import Session, select

from modreg.registry.models import Token
from modreg.registry.schemas import DirManifest

ANON, READ, RUN, PUBLISH, OTHER, ADMIN, REVOKED, EXPIRED = CALLERS = (
    "anonymous",
    "read",
    "run",
    "publish",
    "other team",
    "admin",
    "revoked",
    "expired",
)
KINDS = ("open", "private")


def o(
    anon: int, read: int, run: int, publish: int, other: int, admin: int, bad: int = 401
) -> dict[str, int]:
    """Statuses per caller; ``bad`` is what a revoked or an expired token gets."""
    return dict(zip(CALLERS, (anon, read, run, publish, other, admin, bad, bad), strict=True))


def both(outcome: dict[str, int]) -> dict[str, dict[str, int]]:
    return {"open": outcome, "private": outcome}


# --- the world the requests refer to ---------------------------------------------------------


@dataclass
class World:
    """A registry (in-process) with team vision's things and a token of every kind."""

    kind: str
    api: Api
    tokens: dict[str, str | None]
    archive: str = ""  # the archive blob of vision/prep@1.0.0
    output: str = ""  # a step output blob of vision (in a cache entry and a step run)
    log: str = ""  # a step log blob of vision (in a step run)
    folder: str = ""  # a folder output of vision: its manifest blob (cache entry, step run)
    member: str = ""  # a file of that folder
    run: str = ""  # a run of vision
    sweep: str = ""  # a sweep of vision
    counter: Iterator[int] = field(default_factory=itertools.count)

    def fresh(self) -> int:
        return next(self.counter)

    def call(self, token: str | None, method: str, url: str, **kwargs: Any) -> Any:
        answer = self.api.client.request(method, url, headers=self.api.as_(token), **kwargs)
        assert answer.status_code < 300, f"{method} {url}: {answer.text}"
        return answer.json() if answer.content else None


def _bad_tokens(api: Api) -> tuple[str, str]:
    """A revoked and an expired publish token of vision."""
    made = [
        api.client.post(
            "/api/v1/tokens",
            json={"team": "vision", "scope": "publish"},
            headers=api.as_(api.admin),
        ).json()
        for _ in range(2)
    ]
    api.client.delete(f"/api/v1/tokens/{made[0]['id']}", headers=api.as_(api.admin))
    with Session(api.client.app.state.engine) as session:  # type: ignore[attr-defined]
        row = session.exec(select(Token).where(Token.id == made[1]["id"])).one()
        row.expires_at = datetime.now(UTC) - timedelta(seconds=1)
        session.add(row)
        session.commit()
    return made[0]["token"], made[1]["token"]


def _populate(world: World) -> None:
    api = world.api
    for version in ("1.0.0", "0.1.0"):
        sha = api.put_blob(module_archive(version))
        assert api.publish_version(publish_body(sha, version)).status_code == 201
        world.archive = world.archive or sha
    world.output = api.put_blob(b"an output of vision", token=api.run)
    world.log = api.put_blob(b"a log of vision", token=api.run)
    world.member = api.put_blob(b"a file in a folder of vision", token=api.run)
    files = {"part/1.bin": (world.member, 28)}
    world.folder = api.put_blob(DirManifest.of(files).to_bytes(), token=api.run)
    ref = {"type": "file", "digest": world.output}
    folder = {"type": "dir", "digest": world.folder, "size": 28}
    outputs = {"out": ref, "folder": folder}
    world.call(api.run, "PUT", f"/api/v1/cache/{'a' * 64}", json={"outputs": outputs})
    world.sweep = world.call(api.run, "POST", "/api/v1/sweeps", json={"pipeline": "p"})["id"]
    world.run = world.call(api.run, "POST", "/api/v1/runs", json={"pipeline": "p"})["id"]
    step = {**STEP, "outputs": outputs, "log_digest": world.log}
    world.call(api.run, "PUT", f"/api/v1/runs/{world.run}/steps/s", json=step)


@pytest.fixture(scope="module", params=KINDS)
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    kind = request.param
    folder = tmp_path_factory.mktemp(kind)
    for api in build_api(f"sqlite:///{folder}/r.db", folder / "data", private=kind == "private"):
        revoked, expired = _bad_tokens(api)
        tokens = {
            ANON: None, READ: api.read, RUN: api.run, PUBLISH: api.publish, OTHER: api.other,
            ADMIN: api.admin, REVOKED: revoked, EXPIRED: expired,
        }  # fmt: skip
        world = World(kind, api, tokens)
        _populate(world)
        yield world


# --- the requests ------------------------------------------------------------------------------

STEP = {"status": "executed", "module": "vision/prep", "version": "1.0.0"}
M = "/api/v1/modules/vision/prep"
V = f"{M}/versions/1.0.0"

Body = Callable[[World], dict[str, Any]] | dict[str, Any] | bytes | None


@dataclass(frozen=True)
class Case:
    """One request (``url`` may name ``World`` fields: ``{w.run}``) and who gets what."""

    url: str
    expect: dict[str, dict[str, int]]
    body: Body | Callable[[World], bytes] = None


def _new_version(w: World) -> dict[str, Any]:
    version = f"2.0.{w.fresh()}"
    data = module_archive(version)
    sha = hashlib.sha256(data).hexdigest()
    w.call(w.api.run, "PUT", f"/api/v1/blobs/{sha}", content=data)
    return publish_body(sha, version)


def _new_bytes(w: World) -> bytes:
    return f"fresh bytes {w.fresh()}".encode()


def _token_of_vision(w: World) -> str:
    body = {"team": "vision", "scope": "read"}
    return str(w.call(w.api.admin, "POST", "/api/v1/tokens", json=body)["id"])


def _cache_entry(w: World) -> dict[str, Any]:
    return {"outputs": {"out": {"type": "file", "digest": w.output}}}


def _fresh_cache_entry(w: World, team: str | None = None) -> dict[str, Any]:
    """A new entry of vision's cache, to be evicted."""
    fingerprint = f"evict{w.fresh()}"
    w.call(w.api.run, "PUT", f"/api/v1/cache/{fingerprint}", json=_cache_entry(w))
    return {"fingerprints": [fingerprint], **({"team": team} if team else {})}


EVERYONE = both(o(200, 200, 200, 200, 200, 200, bad=200))  # no token is even looked at
ANYONE = both(o(200, 200, 200, 200, 200, 200))
ADMIN_ONLY = both(o(401, 403, 403, 403, 403, 201))
PUBLISHERS = both(o(401, 403, 403, 200, 403, 200))
OPEN_READ = {"open": o(200, 200, 200, 200, 200, 200), "private": o(401, 200, 200, 200, 403, 200)}
LISTING = {"open": o(200, 200, 200, 200, 200, 200), "private": o(401, 200, 200, 200, 200, 200)}
RECORDERS = both(o(401, 403, 201, 201, 201, 403))
TEAM_RECORD = both(o(401, 403, 200, 200, 404, 403))  # another team's run is unknown to it
RUN_READERS = both(o(401, 200, 200, 200, 404, 200))
TEAM_LEASE = both(o(401, 403, 200, 200, 200, 403))
TEAM_BLOB = both(o(401, 200, 200, 200, 404, 200))  # out of reach: answered as absent

BLOB_READS = [
    Case("/api/v1/blobs/{archive}", OPEN_READ | {"private": o(401, 200, 200, 200, 404, 200)}),
    Case("/api/v1/blobs/{output}", TEAM_BLOB),
    Case("/api/v1/blobs/{log}", TEAM_BLOB),
    Case("/api/v1/blobs/{folder}", TEAM_BLOB),
    Case("/api/v1/blobs/{member}", TEAM_BLOB),
    Case(f"/api/v1/blobs/{'0' * 64}", both(o(401, 404, 404, 404, 404, 404))),  # never stored
]

EXPECTED: dict[str, list[Case]] = {
    "GET /openapi.json": [Case("/openapi.json", EVERYONE)],
    "HEAD /openapi.json": [Case("/openapi.json", EVERYONE)],
    "GET /docs": [Case("/docs", EVERYONE)],
    "HEAD /docs": [Case("/docs", EVERYONE)],
    "GET /docs/oauth2-redirect": [Case("/docs/oauth2-redirect", EVERYONE)],
    "HEAD /docs/oauth2-redirect": [Case("/docs/oauth2-redirect", EVERYONE)],
    "GET /redoc": [Case("/redoc", EVERYONE)],
    "HEAD /redoc": [Case("/redoc", EVERYONE)],
    "GET /api/v1/health": [Case("/api/v1/health", EVERYONE)],
    "GET /api/v1/whoami": [Case("/api/v1/whoami", ANYONE)],
    "POST /api/v1/teams": [
        Case("/api/v1/teams", ADMIN_ONLY, lambda w: {"name": f"team{w.fresh()}"})
    ],
    "GET /api/v1/teams": [Case("/api/v1/teams", LISTING)],
    "POST /api/v1/tokens": [
        Case(
            "/api/v1/tokens",
            both(o(401, 403, 403, 201, 403, 201)),
            {"team": "vision", "scope": "read"},
        )
    ],
    "GET /api/v1/tokens": [
        Case("/api/v1/tokens?team=vision", PUBLISHERS),
        Case("/api/v1/tokens", both(o(401, 403, 403, 200, 200, 200))),  # one's own team's
    ],
    "DELETE /api/v1/tokens/{token_id}": [
        Case("/api/v1/tokens/{fresh_token}", both(o(401, 403, 403, 204, 403, 204)))
    ],
    "GET /api/v1/modules": [Case("/api/v1/modules", LISTING)],
    "GET /api/v1/modules/{team}/{name}": [Case(M, OPEN_READ)],
    "GET /api/v1/modules/{team}/{name}/versions": [Case(f"{M}/versions", OPEN_READ)],
    # which teams show is the reach's business (tests/client/test_evolution.py)
    "GET /api/v1/modules/{team}/{name}/dependents": [Case(f"{M}/dependents", OPEN_READ)],
    "GET /api/v1/modules/{team}/{name}/versions/{version}": [Case(V, OPEN_READ)],
    "GET /api/v1/modules/{team}/{name}/versions/{version}/archive": [
        Case(f"{V}/archive", OPEN_READ)
    ],
    "POST /api/v1/modules/{team}/{name}/versions": [
        Case(f"{M}/versions", both(o(401, 403, 403, 201, 403, 201)), _new_version)
    ],
    "POST /api/v1/modules/{team}/{name}/versions/{version}/deprecate": [
        Case(f"{M}/versions/0.1.0/deprecate", PUBLISHERS, {"message": "old"})
    ],
    "POST /api/v1/modules/{team}/{name}/versions/{version}/yank": [
        Case(f"{M}/versions/0.1.0/yank", PUBLISHERS, {"message": "broken"})
    ],
    "POST /api/v1/modules/{team}/{name}/versions/{version}/unyank": [
        Case(f"{M}/versions/0.1.0/unyank", PUBLISHERS)
    ],
    "PUT /api/v1/modules/{team}/{name}/default": [
        Case(f"{M}/default", PUBLISHERS, {"version": "1.0.0"})
    ],
    "POST /api/v1/resolve": [Case("/api/v1/resolve", LISTING, {"refs": ["vision/prep@^1"]})],
    "HEAD /api/v1/blobs/{sha256}": BLOB_READS,
    "GET /api/v1/blobs/{sha256}": BLOB_READS,
    "PUT /api/v1/blobs/{sha256}": [Case("/api/v1/blobs/{new_blob}", RECORDERS, _new_bytes)],
    # composing one's own chunk (the output blob itself: a blob of one chunk) is answered as
    # held already; another team may not take vision's blobs as chunks: absent to it
    "POST /api/v1/blobs/{sha256}/compose": [
        Case(
            "/api/v1/blobs/{output}/compose",
            both(o(401, 403, 200, 200, 404, 403)),
            lambda w: {"chunks": [w.output]},
        )
    ],
    "POST /api/v1/cache/lookup": [
        Case(
            "/api/v1/cache/lookup",
            both(o(401, 200, 200, 200, 200, 403)),
            {"fingerprints": ["a" * 64]},
        )
    ],
    "PUT /api/v1/cache/{fingerprint}": [
        # another team may not name in its cache what it may not read: answered as absent
        Case(
            "/api/v1/cache/{fresh_fingerprint}", both(o(401, 403, 200, 200, 404, 403)), _cache_entry
        )
    ],
    "POST /api/v1/cache/evict": [
        # another team's publish token evicts in its own cache: where this entry is unknown
        Case("/api/v1/cache/evict", both(o(401, 403, 403, 200, 404, 200)), _fresh_cache_entry),
        Case(
            "/api/v1/cache/evict",
            both(o(401, 403, 403, 200, 403, 200)),
            lambda w: _fresh_cache_entry(w, "vision"),
        ),
    ],
    # a lease is of the caller's own team: another team's engine claims in its own
    "PUT /api/v1/leases/{fingerprint}": [
        Case("/api/v1/leases/{fresh_fingerprint}", TEAM_LEASE, {"holder": "h", "ttl": 60})
    ],
    "POST /api/v1/leases/renew": [
        Case("/api/v1/leases/renew", TEAM_LEASE, {"holder": "h", "ttl": 60, "fingerprints": ["x"]})
    ],
    "DELETE /api/v1/leases/{fingerprint}": [
        Case("/api/v1/leases/{fresh_fingerprint}?holder=h", both(o(401, 403, 204, 204, 204, 403)))
    ],
    "POST /api/v1/sweeps": [Case("/api/v1/sweeps", RECORDERS, {"pipeline": "p"})],
    "GET /api/v1/sweeps/{sweep_id}": [Case("/api/v1/sweeps/{sweep}", RUN_READERS)],
    "POST /api/v1/runs": [Case("/api/v1/runs", RECORDERS, {"pipeline": "p"})],
    "GET /api/v1/runs": [Case("/api/v1/runs", both(o(401, 200, 200, 200, 200, 200)))],
    "GET /api/v1/runs/{run_id}": [Case("/api/v1/runs/{run}", RUN_READERS)],
    "PATCH /api/v1/runs/{run_id}": [Case("/api/v1/runs/{run}", TEAM_RECORD, {"status": "running"})],
    "PUT /api/v1/runs/{run_id}/pin": [Case("/api/v1/runs/{run}/pin", TEAM_RECORD)],
    "DELETE /api/v1/runs/{run_id}/pin": [Case("/api/v1/runs/{run}/pin", TEAM_RECORD)],
    "GET /api/v1/gc/store-roots": [
        Case("/api/v1/gc/store-roots?store=s3://b/p", both(o(401, 200, 200, 200, 200, 403)))
    ],
    "POST /api/v1/gc": [
        Case("/api/v1/gc", both(o(401, 403, 403, 403, 403, 200)), {"dry_run": True})
    ],
    "PUT /api/v1/runs/{run_id}/steps/{step}": [
        Case("/api/v1/runs/{run}/steps/t", both(o(401, 403, 204, 204, 404, 403)), STEP)
    ],
    "PUT /api/v1/runs/{run_id}/steps": [
        Case(
            "/api/v1/runs/{run}/steps",
            both(o(401, 403, 204, 204, 404, 403)),
            {"steps": {"t": STEP}},
        )
    ],
}


# --- the tests ---------------------------------------------------------------------------------


UI_PACKAGE = "modreg.registry.ui"


def route_table(app: FastAPI) -> set[str]:
    """``METHOD /path`` of every route the app serves, included routers flattened; but the
    web UI's pages, which read a sign-in cookie and never a bearer token: each is held to
    the rule of its API twin by ``tests/ui/test_page_permissions.py``."""
    found: set[str] = set()
    for route in app.routes:
        contexts = getattr(route, "effective_route_contexts", None)
        for each in contexts() if contexts is not None else [route]:
            endpoint = getattr(each, "endpoint", None)
            if endpoint is not None and endpoint.__module__.startswith(UI_PACKAGE):
                continue
            found |= {f"{method} {each.path}" for method in getattr(each, "methods", None) or ()}
    return found


def test_every_route_has_an_expected_outcome(world: World) -> None:
    served = route_table(world.api.client.app)  # type: ignore[arg-type]
    assert sorted(served - set(EXPECTED)) == [], "routes without an entry in EXPECTED"
    assert sorted(set(EXPECTED) - served) == [], "entries in EXPECTED for no route"


def _request(world: World, case: Case, method: str, token: str | None) -> Any:
    names = {
        "archive": world.archive, "output": world.output, "log": world.log, "run": world.run,
        "sweep": world.sweep, "folder": world.folder, "member": world.member,
    }  # fmt: skip
    if "{fresh_token}" in case.url:
        names["fresh_token"] = _token_of_vision(world)
    if "{fresh_fingerprint}" in case.url:
        names["fresh_fingerprint"] = f"fp{world.fresh()}"
    body = case.body(world) if callable(case.body) else case.body
    if "{new_blob}" in case.url:
        assert isinstance(body, bytes)
        names["new_blob"] = hashlib.sha256(body).hexdigest()
    kwargs = {"content": body} if isinstance(body, bytes) else {"json": body}
    url = case.url.format(**names)
    return world.api.client.request(method, url, headers=world.api.as_(token), **kwargs)


@pytest.mark.parametrize("route", sorted(EXPECTED))
def test_who_may_call_each_route(world: World, route: str) -> None:
    method = route.split(" ", 1)[0]
    wrong = []
    for case, caller in itertools.product(EXPECTED[route], CALLERS):
        answer = _request(world, case, method, world.tokens[caller])
        expected = case.expect[world.kind][caller]
        if answer.status_code != expected:
            wrong.append(f"{caller} on {case.url}: {answer.status_code}, not {expected}")
        elif answer.status_code >= 400 and method != "HEAD":
            assert answer.headers["content-type"] == "application/problem+json"
    assert not wrong, f"{world.kind} registry, {route}:\n" + "\n".join(wrong)
