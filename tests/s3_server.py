"""A real S3 API on a loopback port: moto's server mode, as its own process.

``start_s3`` launches ``python -m moto.server`` on a free port and waits until it answers;
``S3Server.environ`` are the standard ``AWS_*`` variables that point botocore (and so s3fs,
the engine's ``FsspecArtifactStore`` and the registry's ``FsspecBlobStore``) at it — the way
a user points modreg at MinIO. One server serves a whole test session; each test makes its
own bucket (``bucket``), so tests share nothing but the process.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from registry_servers import free_port, stop_server

START_TIMEOUT = 60.0


@dataclass
class S3Server:
    endpoint: str
    process: subprocess.Popen[bytes]
    log: Path  # one line per request, written when the request has been answered

    @property
    def environ(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "modreg-test",
            "AWS_SECRET_ACCESS_KEY": "modreg-test-secret",
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def client(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, **_credentials(self.environ))

    def bucket(self) -> str:
        """A new, empty bucket."""
        name = f"modreg-{uuid.uuid4().hex[:16]}"
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        pages = (
            self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        )
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))


def _credentials(environ: dict[str, str]) -> dict[str, str]:
    return {
        "aws_access_key_id": environ["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": environ["AWS_SECRET_ACCESS_KEY"],
        "region_name": environ["AWS_DEFAULT_REGION"],
    }


def start_s3(log_dir: Path) -> S3Server:
    port = free_port()
    log = log_dir / f"moto-{port}.log"
    cmd = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto server exited early:\n{log.read_text()}")
        try:
            httpx.get(f"{endpoint}/moto-api/", timeout=1.0)
            return S3Server(endpoint, process, log)
        except httpx.HTTPError:
            time.sleep(0.1)
    stop_server(process)
    raise RuntimeError(f"moto server did not answer:\n{log.read_text()}")
