"""Record the registry's answers of today into ``recorded_answers.json``, for replay tests.

``test_client_answers.py`` replays these bodies to the client as they are (a newer client must
still read an older registry's answers) and grown (extra fields, unknown enum values: an
older client must still read a newer registry's). Recorded once, from a real registry on
loopback; do not re-record them when the API grows, they stand for the registries already
deployed. Run: ``.venv/bin/python tests/client/record_answers.py``.
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import httpx

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS))
from factories import make_module_repo  # noqa: E402
from registry_servers import create_team_tokens, start_server, stop_server  # noqa: E402

from modreg.client import RegistryClient, publish  # noqa: E402
from modreg.registry.schemas import (  # noqa: E402
    CacheEntryCreate,
    OutputRef,
    PortType,
    RunCreate,
    RunStatus,
    RunUpdate,
    StepRunBatch,
    StepRunRecord,
    StepStatus,
    SweepCreate,
)

FINGERPRINT = "cd" * 32


class Recording(httpx.HTTPTransport):
    """httpx's transport, keeping the JSON body of every answer by ``METHOD /path``."""

    def __init__(self) -> None:
        super().__init__()
        self.answers: dict[str, object] = {}

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        response.read()
        if response.headers.get("content-type", "").startswith("application/json"):
            path = request.url.path.removeprefix("/api/v1")
            self.answers[f"{request.method} {path}"] = response.json()
        return response


def _fill(client: RegistryClient, work: Path) -> None:
    """Every kind of answer: a team, tokens, a published module, a cache entry, a sweep."""
    folder = make_module_repo(
        work, "vision/prep", "1.0.0", params={"size": {"type": "int", "default": 8}}
    )
    publish(client, folder)
    client.create_token("vision", "read", description="for the replay tests")
    client.list_tokens("vision")
    client.list_teams()
    client.whoami()
    client.health()
    client.search_modules()
    client.get_module("vision/prep")
    client.list_versions("vision/prep")
    client.get_version("vision/prep", "1.0.0")
    client.deprecate("vision/prep", "1.0.0", "use 2.x")
    client.resolve(["vision/prep@^1", "vision/missing"])
    blob = work / "out.txt"
    blob.write_bytes(b"out")
    digest = hashlib.sha256(b"out").hexdigest()
    client.put_blob(digest, blob)
    output = OutputRef(type=PortType.file, digest=digest, size=3)
    client.record_cache(FINGERPRINT, CacheEntryCreate(outputs={"out": output}, step="prep"))
    client.lookup_cache([FINGERPRINT])
    run = RunCreate(pipeline="digits", variant={"prep.params.size": 8})
    sweep = client.create_sweep(SweepCreate(pipeline="digits", axes={"a": [8]}, runs=[run]))
    step = StepRunRecord(
        status=StepStatus.executed,
        module="vision/prep",
        version="1.0.0",
        fingerprint=FINGERPRINT,
        outputs={"out": output},
        metrics={"accuracy": 0.9},
        started_at=datetime.now(UTC),
        ended_at=datetime.now(UTC),
    )
    finish = RunUpdate(status=RunStatus.succeeded, ended_at=datetime.now(UTC))
    client.record_steps(sweep.run_ids[0], StepRunBatch(steps={"prep": step}, finish=finish))
    client.get_sweep(sweep.id)
    client.get_run(sweep.run_ids[0])
    client.list_runs(sweep=sweep.id)


def main() -> None:
    with tempfile.TemporaryDirectory() as temp:
        handle = start_server(Path(temp) / "registry")
        try:
            tokens = create_team_tokens(handle, "vision")
            recording = Recording()
            with RegistryClient(handle.url, tokens.publish, transport=recording) as client:
                _fill(client, Path(temp))
        finally:
            assert handle.process is not None
            stop_server(handle.process)
    target = Path(__file__).with_name("recorded_answers.json")
    target.write_text(json.dumps(recording.answers, indent=1, sort_keys=True) + "\n")
    print(f"wrote {len(recording.answers)} answers to {target}")


if __name__ == "__main__":
    main()
