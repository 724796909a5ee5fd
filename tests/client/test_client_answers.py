"""Answers that grow: the client reads today's registry answers, and a newer registry's.

``recorded_answers.json`` holds real answers of today's registry (``record_answers.py``
recorded them from a server on loopback). They are replayed to a ``RegistryClient`` through
``httpx.MockTransport`` as they are, and grown the way a newer registry's answers grow: an
extra field in every object, and every enum value replaced by one this client has never
heard of. The CLI gets the grown answers from a canned server on loopback and prints the
unknown values as they are. Requests, the other way, stay strict at a real server.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import NoneType, UnionType
from typing import Any, Union, get_args, get_origin

import httpx
import pytest
from pydantic import TypeAdapter

from modreg.client import RegistryClient
from modreg.registry.compatibility import API_LEVEL
from modreg.registry.schemas import (
    CacheLookupResult,
    Health,
    Identity,
    ModulePublic,
    ResolveResponse,
    RunPublic,
    SweepPublic,
    TeamPublic,
    TokenCreated,
    TokenPublic,
    VersionCreate,
    VersionPublic,
    Wire,
    WireEnum,
)

ANSWERS: dict[str, Any] = json.loads(
    Path(__file__).with_name("recorded_answers.json").read_text(encoding="utf-8")
)
SWEEP = ANSWERS["POST /sweeps"]
RUN = SWEEP["run_ids"][0]
FINGERPRINT = "cd" * 32
ADDED = "added_later"

Call = Callable[[RegistryClient], Any]

# (the client call, the recorded answer it reads, the shape of that answer)
CALLS: list[tuple[str, Call, str, Any]] = [
    ("health", lambda c: c.health(), "GET /health", Health),
    ("whoami", lambda c: c.whoami(), "GET /whoami", Identity),
    ("teams", lambda c: c.list_teams(), "GET /teams", list[TeamPublic]),
    ("tokens", lambda c: c.list_tokens("vision"), "GET /tokens", list[TokenPublic]),
    ("token", lambda c: c.create_token("vision", "read"), "POST /tokens", TokenCreated),
    ("search", lambda c: c.search_modules(), "GET /modules", list[ModulePublic]),
    ("module", lambda c: c.get_module("vision/prep"), "GET /modules/vision/prep", ModulePublic),
    (
        "versions",
        lambda c: c.list_versions("vision/prep"),
        "GET /modules/vision/prep/versions",
        list[VersionPublic],
    ),
    (
        "version",
        lambda c: c.get_version("vision/prep", "1.0.0"),
        "GET /modules/vision/prep/versions/1.0.0",
        VersionPublic,
    ),
    (
        "deprecate",
        lambda c: c.deprecate("vision/prep", "1.0.0", "use 2.x"),
        "POST /modules/vision/prep/versions/1.0.0/deprecate",
        VersionPublic,
    ),
    (
        "resolve",
        lambda c: ResolveResponse(results=c.resolve(["vision/prep@^1", "vision/missing"])),
        "POST /resolve",
        ResolveResponse,
    ),
    (
        "cache",
        lambda c: CacheLookupResult(entries=c.lookup_cache([FINGERPRINT])),
        "POST /cache/lookup",
        CacheLookupResult,
    ),
    ("sweep", lambda c: c.get_sweep(SWEEP["id"]), f"GET /sweeps/{SWEEP['id']}", SweepPublic),
    ("run", lambda c: c.get_run(RUN), f"GET /runs/{RUN}", RunPublic),
    ("runs", lambda c: c.list_runs(sweep=SWEEP["id"]), "GET /runs", list[RunPublic]),
]
EVERY_CALL = pytest.mark.parametrize(
    ("call", "key", "shape"), [c[1:] for c in CALLS], ids=[c[0] for c in CALLS]
)


def _grown(shape: Any, value: Any) -> Any:
    """``value`` (an answer of ``shape``) as a newer registry might send it."""
    origin, args = get_origin(shape), get_args(shape)
    if value is None:
        return None
    if origin in (Union, UnionType):
        return _grown(next(arg for arg in args if arg is not NoneType), value)
    if origin is list:
        return [_grown(args[0], item) for item in value]
    if origin is dict:
        return {key: _grown(args[1], item) for key, item in value.items()}
    if isinstance(shape, type) and issubclass(shape, WireEnum):
        return f"future-{value}"
    if isinstance(shape, type) and issubclass(shape, Wire):
        fields = shape.model_fields
        grown = {k: _grown(fields[k].annotation, v) if k in fields else v for k, v in value.items()}
        return {**grown, ADDED: {"by": "a newer registry"}}
    return value


def _without_added(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _without_added(item) for key, item in value.items() if key != ADDED}
    if isinstance(value, list):
        return [_without_added(item) for item in value]
    return value


def _replaying(answers: dict[str, Any]) -> RegistryClient:
    def answer(request: httpx.Request) -> httpx.Response:
        body = answers[_key(request.method, request.url.path)]
        return httpx.Response(200, json=body, headers={"Modreg-Api-Level": str(API_LEVEL)})

    return RegistryClient("http://registry.test", "t", transport=httpx.MockTransport(answer))


def _key(method: str, path: str) -> str:
    return f"{method} {path.removeprefix('/api/v1')}"


def _grown_answers() -> dict[str, Any]:
    grown = dict(ANSWERS)
    for _, _, key, shape in CALLS:
        grown[key] = _grown(shape, ANSWERS[key])
    return grown


@EVERY_CALL
def test_today_s_answers_are_read_as_they_are(call: Call, key: str, shape: Any) -> None:
    """A newer client still reads an older registry: no field became required.

    Fields added since the recording (with their defaults) are not in the answer: they are
    left out of the comparison (``exclude_unset``), which holds every field the answer had.
    """
    with _replaying(ANSWERS) as client:
        answer = call(client)
    assert TypeAdapter(shape).dump_python(answer, mode="json", exclude_unset=True) == ANSWERS[key]


@EVERY_CALL
def test_a_newer_registry_s_answers_are_read_with_unknown_values_kept(
    call: Call, key: str, shape: Any
) -> None:
    grown = _grown_answers()
    with _replaying(grown) as client:
        answer = call(client)
    read = TypeAdapter(shape).dump_python(answer, mode="json", exclude_unset=True)
    assert read == _without_added(grown[key])


def test_an_unknown_status_is_a_member_that_reads_as_it_is() -> None:
    with _replaying(_grown_answers()) as client:
        version = client.get_version("vision/prep", "1.0.0")
        run = client.get_run(RUN)
    assert (version.status.value, str(version.status)) == ("future-active", "future-active")
    assert run.status == "future-succeeded" and run.steps["prep"].status == "future-executed"
    assert version.manifest.interface.params["size"].type == "future-int"


# --- the CLI, against a canned registry on loopback ---------------------------------------


class CannedRegistry:
    """A loopback HTTP server answering ``GET`` from a dict of recorded answers."""

    def __init__(self, answers: dict[str, Any]) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                body = json.dumps(answers[_key("GET", self.path.partition("?")[0])]).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Modreg-Api-Level", str(API_LEVEL))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"


@pytest.fixture
def newer_registry() -> Iterator[str]:
    canned = CannedRegistry(_grown_answers())
    thread = threading.Thread(target=canned.httpd.serve_forever, daemon=True)
    thread.start()
    yield canned.url
    canned.httpd.shutdown()
    canned.httpd.server_close()


def test_the_cli_shows_unknown_values_as_they_are(newer_registry: str, run: Any) -> None:
    versions = run("--registry", newer_registry, "versions", "vision/prep")
    assert versions.exit_code == 0, versions.stderr
    assert "future-active" in versions.stdout
    as_json = run("--registry", newer_registry, "versions", "vision/prep", "--json")
    assert [v["status"] for v in json.loads(as_json.stdout)] == ["future-active"]
    shown = run("--registry", newer_registry, "runs", "show", RUN, "--json")
    assert shown.exit_code == 0, shown.stderr
    body = json.loads(shown.stdout)
    assert (body["status"], body["steps"]["prep"]["status"]) == (
        "future-succeeded",
        "future-executed",
    )


# --- requests stay strict at the server ---------------------------------------------------


def test_the_server_refuses_an_unknown_field_in_a_request(shared: Any) -> None:
    version = VersionPublic.model_validate(ANSWERS["GET /modules/vision/prep/versions/1.0.0"])
    body = VersionCreate.model_validate(
        version.model_dump(include=set(VersionCreate.model_fields), mode="json")
    ).model_dump(mode="json")
    body["manifest"]["a_future_key"] = {"python": ">=3.11"}
    answer = httpx.post(
        f"{shared.url}/api/v1/modules/vision/prep/versions",
        json=body,
        headers={"Authorization": f"Bearer {shared.publish}"},
    )
    assert answer.status_code == 422
    assert answer.json()["detail"] == "body.manifest: unknown field 'a_future_key'"


def test_the_server_refuses_an_unknown_enum_value_in_a_request(shared: Any) -> None:
    answer = httpx.post(
        f"{shared.url}/api/v1/tokens",
        json={"team": "vision", "scope": "future-read"},
        headers={"Authorization": f"Bearer {shared.admin}"},
    )
    assert answer.status_code == 422
    assert answer.json()["detail"].startswith("body.scope: Input should be 'read'")
