"""Who reads which blob, end to end against real servers.

The leak found when a ``--private`` registry was probed from outside: another team's token
could GET and HEAD this team's step outputs by digest. Now a blob is readable only through
something the caller may read refers to it, and one it may not read answers as absent.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from registry_data import module_archive, publish_body
from registry_servers import ServerHandle, TeamTokens, bearer, create_team_tokens

from modreg.registry.schemas import DirManifest

MEMBER = b"weights of a model vision trained"


@dataclass
class Blobs:
    """Team vision's blobs on a server, by what refers to them."""

    archive: str  # of vision/prep@1.0.0
    output: str  # a file output (cache entry, step run)
    log: str  # a step's log (step run)
    folder: str  # a folder output's manifest (cache entry, step run)
    member: str  # a file of that folder

    def of_runs(self) -> dict[str, str]:
        return {
            "output": self.output, "log": self.log, "folder": self.folder, "member": self.member
        }  # fmt: skip


def _put(server: ServerHandle, token: str, data: bytes) -> str:
    sha = hashlib.sha256(data).hexdigest()
    answer = httpx.put(f"{server.api}/blobs/{sha}", content=data, headers=bearer(token))
    assert answer.status_code in (200, 201), answer.text
    return sha


def _call(server: ServerHandle, token: str, method: str, path: str, body: Any) -> Any:
    answer = httpx.request(method, f"{server.api}{path}", json=body, headers=bearer(token))
    assert answer.status_code < 300, answer.text
    return answer.json() if answer.content else None


def _vision_runs_a_pipeline(server: ServerHandle, vision: TeamTokens) -> Blobs:
    """What the engine sends for one run: blobs, a cache entry, a run and its step records."""
    archive = _put(server, vision.publish, module_archive())
    _call(server, vision.publish, "POST", "/modules/vision/prep/versions", publish_body(archive))
    output = _put(server, vision.run, b"accuracy 0.93")
    log = _put(server, vision.run, b"epoch 1 ... epoch 9")
    member = _put(server, vision.run, MEMBER)
    manifest = DirManifest.of({"model.bin": (member, len(MEMBER))})
    folder = _put(server, vision.run, manifest.to_bytes())
    outputs = {
        "score": {"type": "file", "digest": output, "size": 13},
        "model": {"type": "dir", "digest": folder, "size": len(MEMBER)},
    }
    _call(server, vision.run, "PUT", f"/cache/{'f' * 64}", {"outputs": outputs})
    run = _call(server, vision.run, "POST", "/runs", {"pipeline": "digits"})
    step = {"status": "executed", "module": "vision/prep", "version": "1.0.0"}
    batch = {"steps": {"train": {**step, "outputs": outputs, "log_digest": log}}}
    _call(server, vision.run, "PUT", f"/runs/{run['id']}/steps", batch)
    return Blobs(archive, output, log, folder, member)


def _status(server: ServerHandle, method: str, sha: str, token: str | None) -> int:
    return httpx.request(method, f"{server.api}/blobs/{sha}", headers=bearer(token)).status_code


@pytest.mark.parametrize("private", [True, False], ids=["private", "open"])
def test_a_teams_step_outputs_are_absent_to_other_teams(
    server_factory: Callable[..., ServerHandle], private: bool
) -> None:
    server = server_factory(extra_args=("--private",) if private else ())
    vision, audio = create_team_tokens(server, "vision"), create_team_tokens(server, "audio")
    blobs = _vision_runs_a_pipeline(server, vision)
    for name, sha in blobs.of_runs().items():
        for method in ("GET", "HEAD"):
            for token in (audio.read, audio.run, audio.publish):
                assert _status(server, method, sha, token) == 404, f"{name} {method} by audio"
            assert _status(server, method, sha, None) == 401, f"{name} {method} by anonymous"
            for token in (vision.read, server.admin_token):
                assert _status(server, method, sha, token) == 200, f"{name} {method} by vision"
    answer = httpx.get(f"{server.api}/blobs/{blobs.member}", headers=bearer(vision.read))
    assert answer.content == MEMBER
    never_stored = "0" * 64
    assert _status(server, "GET", never_stored, audio.read) == 404  # the same answer
    archive = {method: _status(server, method, blobs.archive, None) for method in ("GET", "HEAD")}
    assert archive == ({"GET": 401, "HEAD": 401} if private else {"GET": 200, "HEAD": 200})
    expected = 404 if private else 200
    assert _status(server, "GET", blobs.archive, audio.read) == expected


def test_naming_a_blob_does_not_give_it_but_uploading_its_bytes_does(
    server_factory: Callable[..., ServerHandle],
) -> None:
    server = server_factory(extra_args=("--private",))
    vision, audio = create_team_tokens(server, "vision"), create_team_tokens(server, "audio")
    blobs = _vision_runs_a_pipeline(server, vision)
    claim = {"outputs": {"x": {"type": "file", "digest": blobs.output}}}
    answer = httpx.put(f"{server.api}/cache/{'e' * 64}", json=claim, headers=bearer(audio.run))
    assert (answer.status_code, answer.json()["type"]) == (404, "unknown-blob")
    forged = DirManifest.of({"stolen": (blobs.member, len(MEMBER))}).to_bytes()
    folder = _put(server, audio.run, forged)  # a manifest naming vision's file
    claim = {"outputs": {"x": {"type": "dir", "digest": folder}}}
    answer = httpx.put(f"{server.api}/cache/{'e' * 64}", json=claim, headers=bearer(audio.run))
    assert (answer.status_code, answer.json()["type"]) == (404, "unknown-blob")
    assert _status(server, "GET", blobs.member, audio.read) == 404
    sha = hashlib.sha256(MEMBER).hexdigest()
    again = httpx.put(f"{server.api}/blobs/{sha}", content=MEMBER, headers=bearer(audio.run))
    assert again.status_code == 201, "new to audio: whether vision stored it is not told"
    assert _status(server, "GET", blobs.member, audio.read) == 200  # audio holds the bytes now
    assert _put(server, audio.run, MEMBER) == sha
    assert (
        httpx.put(
            f"{server.api}/blobs/{sha}", content=MEMBER, headers=bearer(audio.run)
        ).status_code
        == 200
    )


def test_the_folder_manifest_format_does_not_change() -> None:
    """A folder's digest is the sha256 of these bytes: changing them changes every folder
    output's digest (and so every fingerprint downstream of one)."""
    a, bb = hashlib.sha256(b"a").hexdigest(), hashlib.sha256(b"bb").hexdigest()
    manifest = DirManifest.of({"sub/b é.bin": (bb, 2), "a.txt": (a, 1)})
    expected = (
        (
            '{"files":{"a.txt":{"digest":"A","size":1},"sub/b é.bin":{"digest":"B","size":2}},'
            '"type":"dir"}'
        )
        .replace('"A"', f'"{a}"')
        .replace('"B"', f'"{bb}"')
        .encode()
    )
    assert manifest.to_bytes() == expected
    assert DirManifest.from_bytes(expected).members() == {"a.txt": (a, 1), "sub/b é.bin": (bb, 2)}
    for bad in (
        b'{"type": "file", "files": {}}',
        b'{"files": {"x": {"digest": "nope", "size": 1}}}',
    ):
        with pytest.raises(ValueError):
            DirManifest.from_bytes(bad)
