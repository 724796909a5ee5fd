"""The front page in-process: the empty state of a new registry, then pages of modules."""

from __future__ import annotations

import re
from pathlib import Path

from registry_data import build_api, module_archive, publish_body

from modreg.registry.ui.pages import MODULES_PAGE


def _cards(html: str) -> list[str]:
    return re.findall(r'class="title" href="/modules/([^"]+)"', html)


def test_empty_state_then_pages_of_modules(tmp_path: Path) -> None:
    for api in build_api(f"sqlite:///{tmp_path}/r.db", tmp_path / "data"):
        empty = api.client.get("/")
        assert empty.status_code == 200 and "No modules yet" in empty.text
        assert "modreg publish" in empty.text
        names = [f"vision/m{i:03d}" for i in range(MODULES_PAGE + 1)]
        for name in names:
            sha = api.put_blob(module_archive("1.0.0", name=name))
            assert api.publish_version(publish_body(sha, name=name), module=name).status_code == 201
        first = api.client.get("/").text
        assert _cards(first) == names[:MODULES_PAGE] and 'href="/?page=2"' in first
        assert "Recent publishes" in first
        second = api.client.get("/?page=2").text
        assert _cards(second) == names[MODULES_PAGE:] and 'href="/?page=1"' in second
        assert "Recent publishes" not in second
        assert "No more modules" in api.client.get("/?page=3").text
        found = api.client.get("/?q=m06").text
        assert _cards(found) == ["vision/m060"]
