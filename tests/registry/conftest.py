"""Registry test fixtures: in-process registries (fast route tests) on every database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from registry_data import Api, build_api, module_archive, publish_body


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[Api]:
    """An in-process registry on ``db_url`` with teams vision and audio."""
    yield from build_api(db_url, tmp_path / "data")


@pytest.fixture
def private_api(tmp_path: Path) -> Iterator[Api]:
    """An in-process private registry on SQLite."""
    yield from build_api(f"sqlite:///{tmp_path}/private.db", tmp_path / "data", private=True)


@pytest.fixture
def published(api: Api) -> Api:
    """``api`` with vision/prep 1.0.0, 1.1.0, 1.2.0-rc.1 and 2.0.0 published."""
    for version in ("1.0.0", "1.1.0", "1.2.0-rc.1", "2.0.0"):
        sha = api.put_blob(module_archive(version))
        answer = api.publish_version(publish_body(sha, version))
        assert answer.status_code == 201, answer.text
    return api
