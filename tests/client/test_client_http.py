"""RegistryClient: retries, error mapping and the engine's protocol, over real HTTP.

Retry and failure behaviour is driven by a small stdlib HTTP server on loopback that answers
from a script (503 twice, then 200 …); everything else runs against the real registry.
"""

from __future__ import annotations

import inspect
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from modreg.client import RegistryClient
from modreg.client.errors import RegistryUnavailableError
from modreg.engine.protocol import RegistryProtocol
from modreg.registry.errors import (
    AuthenticationError,
    InvalidInputError,
    RegistryError,
    TeamExistsError,
    UnknownModuleError,
    VersionExistsError,
)
from modreg.registry.schemas import (
    RunCreate,
    RunUpdate,
    StepRunBatch,
    StepRunRecord,
    SweepCreate,
)

HEALTH = {"status": "ok", "version": "0", "database": "sqlite"}


class ScriptedServer:
    """A loopback HTTP server answering each request with the next scripted reply."""

    def __init__(self, replies: list[tuple[int, dict[str, str], bytes]]) -> None:
        self.replies = replies
        self.seen: list[str] = []
        script = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self) -> None:
                script.seen.append(f"{self.command} {self.path}")
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                status, headers, body = script.replies.pop(0) if script.replies else (500, {}, b"")
                self.send_response(status)
                for key, value in {"Content-Length": str(len(body)), **headers}.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_HEAD = do_PATCH = do_DELETE = _reply

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)


@pytest.fixture
def scripted() -> Iterator[Any]:
    servers: list[ScriptedServer] = []

    def start(*replies: tuple[int, dict[str, str], bytes]) -> ScriptedServer:
        server = ScriptedServer(list(replies))
        server.thread.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.httpd.shutdown()
        server.httpd.server_close()


def _json(
    status: int, body: dict[str, Any], kind: str = "application/json"
) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": kind}, json.dumps(body).encode()


def test_idempotent_calls_are_retried_on_503(scripted: Any) -> None:
    server = scripted(_json(503, {}), _json(502, {}), _json(200, HEALTH))
    with RegistryClient(server.url, backoff=0.01) as client:
        assert client.health().status == "ok"
    assert server.seen == ["GET /api/v1/health"] * 3


@pytest.mark.parametrize("call", ["health", "search_modules"])
def test_an_answer_that_is_not_modreg_is_one_clear_error(scripted: Any, call: str) -> None:
    page = (200, {"Content-Type": "text/html"}, b"<html>please log in</html>")
    server = scripted(page)
    with RegistryClient(server.url) as client, pytest.raises(RegistryUnavailableError) as info:
        getattr(client, call)()
    assert "with something that is not a modreg response; is this the registry's URL?" in str(
        info.value
    )


def test_non_idempotent_calls_are_sent_once(scripted: Any) -> None:
    server = scripted(
        _json(503, {}), _json(201, {"name": "x", "created_at": "2024-01-01T00:00:00Z"})
    )
    with (
        RegistryClient(server.url, backoff=0.01) as client,
        pytest.raises(RegistryUnavailableError) as caught,
    ):
        client.create_team("x")
    assert server.seen == ["POST /api/v1/teams"]
    assert str(caught.value) == (
        f"the registry at {server.url} answered 503 Service Unavailable to POST /api/v1/teams"
    )


def test_a_download_cut_off_midway_is_fetched_again(scripted: Any, tmp_path: Path) -> None:
    import hashlib

    data = b"blob bytes " * 100
    sha256 = hashlib.sha256(data).hexdigest()
    server = scripted((200, {"Content-Length": str(len(data))}, data[:10]), (200, {}, data))
    with RegistryClient(server.url, backoff=0.01) as client:
        client.get_blob(sha256, tmp_path / "blob")
    assert (tmp_path / "blob").read_bytes() == data
    assert server.seen == [f"GET /api/v1/blobs/{sha256}"] * 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blob"]


def test_retries_give_up_with_the_url_named(scripted: Any) -> None:
    server = scripted(*[_json(504, {})] * 3)
    with (
        RegistryClient(server.url, retries=2, backoff=0.01) as client,
        pytest.raises(RegistryUnavailableError),
    ):
        client.resolve(["vision/prep"])
    assert len(server.seen) == 3


def test_an_unreachable_registry_is_one_clear_error() -> None:
    with RegistryClient("http://127.0.0.1:9", retries=1, backoff=0.01) as client:
        with pytest.raises(
            RegistryUnavailableError,
            match=r"^cannot reach the registry at http://127.0.0.1:9 \(GET /api/v1/whoami\): ",
        ):
            client.whoami()


@pytest.mark.parametrize(
    ("reply", "cls", "message"),
    [
        (
            _json(
                409,
                {"type": "version-exists", "title": "t", "status": 409, "detail": "exists!"},
                "application/problem+json",
            ),
            VersionExistsError,
            "exists!",
        ),
        (
            _json(
                404,
                {"type": "unknown-module", "status": 404, "detail": "no such"},
                "application/problem+json",
            ),
            UnknownModuleError,
            "no such",
        ),
        (
            _json(401, {"type": "something-new", "status": 401, "detail": "who?"}),
            AuthenticationError,
            "who?",
        ),
        (
            _json(422, {"detail": [{"loc": ["body", "name"], "msg": "field required"}]}),
            InvalidInputError,
            "body.name: field required",
        ),
        (
            (500, {"Content-Type": "text/plain"}, b"boom"),
            RegistryError,
            "answered 500 Internal Server Error",
        ),
    ],
    ids=["problem-409", "problem-404", "unknown-type-by-status", "framework-422", "plain-500"],
)
def test_error_answers_become_the_named_classes(
    scripted: Any, reply: tuple[int, dict[str, str], bytes], cls: type[Exception], message: str
) -> None:
    server = scripted(reply)
    with RegistryClient(server.url, retries=0) as client, pytest.raises(cls) as caught:
        client.get_module("vision/prep")
    assert type(caught.value) is cls
    assert message in str(caught.value)


def test_real_registry_errors_keep_their_class(shared: Any) -> None:
    with RegistryClient(shared.url, shared.admin) as client:
        with pytest.raises(TeamExistsError):
            client.create_team("vision")
        with pytest.raises(UnknownModuleError):
            client.list_versions("vision/does-not-exist")
    with (
        RegistryClient(shared.url, "mr_not-a-real-token") as client,
        pytest.raises(AuthenticationError),
    ):
        client.create_team("other")


def test_blobs_round_trip_and_put_is_a_no_op_when_present(shared: Any, tmp_path: Path) -> None:
    import hashlib

    source = tmp_path / "blob"
    source.write_bytes(b"some step output\n" * 1000)
    sha256 = hashlib.sha256(source.read_bytes()).hexdigest()
    with RegistryClient(shared.url, shared.publish) as client:
        assert client.has_blob(sha256) is False
        client.put_blob(sha256, source)
        client.put_blob(sha256, source)
        assert client.has_blob(sha256) is True
        client.get_blob(sha256, tmp_path / "copy" / "blob")
    assert (tmp_path / "copy" / "blob").read_bytes() == source.read_bytes()


def test_runs_sweeps_and_cache_through_the_protocol(shared: Any, tmp_path: Path) -> None:
    import hashlib

    from modreg.registry.schemas import CacheEntryCreate, OutputRef, RunStatus, StepStatus

    client: RegistryProtocol = RegistryClient(shared.url, shared.publish)
    (tmp_path / "out").write_bytes(b"abc")
    digest = hashlib.sha256(b"abc").hexdigest()
    client.put_blob(digest, tmp_path / "out")
    output = OutputRef(type="file", digest=digest, size=3)
    sweep = client.create_sweep(SweepCreate(pipeline="p", axes={"a.params.x": [1, 2]}))
    run = client.create_run(RunCreate(pipeline="p", sweep_id=sweep.id))
    executed = StepRunRecord(
        status=StepStatus.executed,
        module="vision/m",
        version="1.0.0",
        fingerprint="f" * 64,
        outputs={"out": output},
    )
    skipped = StepRunRecord(status=StepStatus.skipped, module="vision/m", version="1.0.0")
    client.record_steps(run.id, StepRunBatch(steps={"a": executed}))
    finish = RunUpdate(status=RunStatus.succeeded)
    client.record_steps(run.id, StepRunBatch(steps={"b": skipped}, finish=finish))
    recorded = client.get_run(run.id)
    assert recorded.status == RunStatus.succeeded
    steps = recorded.steps
    assert steps["a"].outputs["out"] == output and steps["b"].status == StepStatus.skipped
    entry = client.record_cache("f" * 64, CacheEntryCreate(outputs={"out": output}, run_id=run.id))
    assert client.lookup_cache(["f" * 64, "e" * 64]) == {"f" * 64: entry}
    assert isinstance(client, RegistryClient)
    assert [r.id for r in client.list_runs(sweep=sweep.id)] == [run.id]
    client.close()


def test_registry_client_has_the_protocol_methods_with_the_same_signatures() -> None:
    members = [name for name in vars(RegistryProtocol) if not name.startswith("_")]
    assert members, "the protocol declares methods"
    for name in members:
        expected = inspect.signature(getattr(RegistryProtocol, name))
        actual = inspect.signature(getattr(RegistryClient, name))
        assert list(actual.parameters) == list(expected.parameters), name
        assert str(actual.return_annotation) == str(expected.return_annotation), name
