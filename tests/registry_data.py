"""Data builders for registry tests: archives, publish bodies, in-process registries.

``tar_gz`` builds a real .tar.gz with ``tarfile``; ``publish_body`` a VersionCreate body;
``build_api`` an in-process registry (TestClient) with teams ``vision`` and ``audio`` and
their tokens (vision: publish, run, read; audio: publish, read) ready.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient

from modreg.registry.app import create_app
from modreg.registry.db import create_db_engine
from modreg.registry.server import prepare
from modreg.registry.settings import Settings

COMMIT_A = "a" * 40
COMMIT_B = "b" * 40


@dataclass
class Api:
    """An in-process registry and the tokens of its teams."""

    client: TestClient
    settings: Settings
    admin: str
    publish: str  # team vision
    run: str  # team vision
    read: str  # team vision
    other: str  # a publish token of team audio
    other_read: str  # a read token of team audio

    def as_(self, token: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"} if token else {}

    def put_blob(self, data: bytes, token: str | None = None) -> str:
        sha = hashlib.sha256(data).hexdigest()
        answer = self.client.put(
            f"/api/v1/blobs/{sha}", content=data, headers=self.as_(token or self.publish)
        )
        assert answer.status_code in (200, 201), answer.text
        return sha

    def publish_version(
        self, body: dict[str, Any], module: str = "vision/prep", token: str | None = None
    ) -> httpx.Response:
        return self.client.post(
            f"/api/v1/modules/{module}/versions", json=body, headers=self.as_(token or self.publish)
        )


def tar_gz(
    files: dict[str, str | bytes], extra: Callable[[tarfile.TarFile], None] | None = None
) -> bytes:
    """A gzip'd tar holding ``files`` (name -> content), plus whatever ``extra`` adds.

    Deterministic: the same files give the same bytes.
    """
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as zipped,
        tarfile.open(fileobj=zipped, mode="w") as tar,
    ):
        for name, content in files.items():
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if extra is not None:
            extra(tar)
    return buffer.getvalue()


def module_archive(
    version: str = "1.0.0",
    salt: str = "",
    name: str = "vision/prep",
    files: dict[str, str | bytes] | None = None,
    **manifest: Any,
) -> bytes:
    """A small, safe module archive whose ``modreg.toml`` is the manifest ``publish_body``
    sends for the same arguments, plus ``files``; ``salt`` changes its bytes."""
    toml = manifest_toml(manifest_body(version, name, **manifest))
    return tar_gz({"run.py": f"print('v{version}{salt}')\n", "modreg.toml": toml, **(files or {})})


def env_lock(*pins: str) -> str:
    """A hash-pinned environment lock of ``name==version`` pins, as uv writes one (the hashes
    are made up: the registry reads them, only an install checks them)."""
    lines = []
    for pin in pins:
        digest = hashlib.sha256(pin.encode()).hexdigest()
        lines += [f"{pin} \\", f"    --hash=sha256:{digest}", "    # via -r requirements.in"]
    return "\n".join(lines) + "\n"


def manifest_body(
    version: str = "1.0.0", name: str = "vision/prep", **manifest: Any
) -> dict[str, Any]:
    """The manifest of a publish body (JSON), with the defaults of these builders."""
    base: dict[str, Any] = {
        "name": name,
        "version": version.split("+")[0],
        "command": ["python", "run.py", "--size", "{params.size}"],
        "interface": {"params": {"size": {"type": "int", "default": 8}}},
    }
    base.update(manifest)
    return base


def manifest_toml(manifest: dict[str, Any]) -> str:
    """``manifest`` (a publish body's, JSON) written as the ``modreg.toml`` that says it."""
    module = {k: v for k, v in manifest.items() if k not in ("interface", "environment")}
    lines = ["[module]", *(f"{key} = {json.dumps(value)}" for key, value in module.items())]
    if (environment := manifest.get("environment")) is not None:
        lines.append("[environment]")
        for key, value in environment.items():
            if value is not None:
                lines.append(f"{key.replace('_', '-')} = {json.dumps(value)}")
    for section, entries in manifest.get("interface", {}).items():
        for entry, fields in entries.items():
            lines.append(f"[{section}.{entry}]")
            kept = {k: v for k, v in fields.items() if k != "required"}
            lines += [f"{key} = {json.dumps(value)}" for key, value in kept.items()]
    return "\n".join(lines) + "\n"


def publish_body(
    sha256: str,
    version: str = "1.0.0",
    name: str = "vision/prep",
    commit: str = COMMIT_A,
    **manifest: Any,
) -> dict[str, Any]:
    """A VersionCreate body for an archive blob already uploaded."""
    base = manifest_body(version, name, **manifest)
    return {
        "version": version,
        "commit": commit,
        "tree_sha": "c" * 40,
        "path": "",
        "sha256": sha256,
        "manifest": base,
    }


def _token(client: TestClient, admin: str, team: str, scope: str) -> str:
    answer = client.post(
        "/api/v1/tokens",
        json={"team": team, "scope": scope},
        headers={"Authorization": f"Bearer {admin}"},
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["token"])


def build_api(db_url: str, data_dir: Path, **settings: Any) -> Iterator[Api]:
    config = Settings(data_dir=data_dir, db_url=db_url, **settings)
    engine = create_db_engine(db_url)
    token_path = prepare(config, engine)
    assert token_path is not None
    admin = token_path.read_text().strip()
    with TestClient(create_app(config, engine)) as client:
        for team in ("vision", "audio"):
            answer = client.post(
                "/api/v1/teams", json={"name": team}, headers={"Authorization": f"Bearer {admin}"}
            )
            assert answer.status_code == 201, answer.text
        yield Api(
            client,
            config,
            admin,
            publish=_token(client, admin, "vision", "publish"),
            run=_token(client, admin, "vision", "run"),
            read=_token(client, admin, "vision", "read"),
            other=_token(client, admin, "audio", "publish"),
            other_read=_token(client, admin, "audio", "read"),
        )
    engine.dispose()
