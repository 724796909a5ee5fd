"""Tests that pin the architecture: what importing costs, and that ``__all__`` is whole."""

from __future__ import annotations

import importlib
import inspect
import json
import subprocess
import sys
from pathlib import Path

import pytest

import modreg.client
import modreg.client.errors
from modreg.registry.errors import ModregError

SERVER_FRAMEWORKS = ["fastapi", "uvicorn", "sqlmodel", "sqlalchemy", "alembic", "starlette"]


def _imported_after(statement: str) -> set[str]:
    code = f"import json, sys; {statement}; print(json.dumps(sorted(sys.modules)))"
    answer = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    return set(json.loads(answer.stdout.splitlines()[-1]))


@pytest.mark.parametrize(
    "statement",
    [
        "import modreg.client",
        "import modreg.engine",
        "from modreg.client import RegistryClient, publish, pull",
        "import modreg.client.cli",
        "from modreg.client.cli import cli; cli.main(['show', '--help'], standalone_mode=False)",
    ],
)
def test_client_and_engine_do_not_import_the_server_framework(statement: str) -> None:
    imported = _imported_after(statement)
    assert not [name for name in SERVER_FRAMEWORKS if name in imported]


def test_the_cli_starts_with_click_alone() -> None:
    imported = _imported_after("import modreg.client.cli")
    heavy = ["httpx", "pydantic", "rich", "git", "semver", "modreg.registry.schemas"]
    assert [name for name in heavy if name in imported] == []


def test_registry_does_not_import_engine_or_client() -> None:
    imported = _imported_after("import modreg.registry.app, modreg.registry.server")
    assert [n for n in imported if n.startswith(("modreg.engine", "modreg.client"))] == []


@pytest.mark.parametrize("package", ["modreg.client", "modreg.registry", "modreg.engine"])
def test_every_name_in_all_is_importable(package: str) -> None:
    module = importlib.import_module(package)
    exported = getattr(module, "__all__", None)
    assert exported, f"{package} declares __all__"
    assert len(exported) == len(set(exported))
    for name in exported:
        assert getattr(module, name) is not None, f"{package}.{name}"


def test_client_all_is_complete() -> None:
    errors = {
        name
        for name, value in vars(modreg.client.errors).items()
        if inspect.isclass(value)
        and issubclass(value, ModregError)
        and value.__module__ == "modreg.client.errors"
    }
    api = {"RegistryClient", "ClientConfig", "load_config", "save_login", "publish", "pull"}
    assert errors | api <= set(modreg.client.__all__)
    assert set(modreg.client.__all__) <= set(dir(modreg.client))


def test_client_errors_derive_from_the_one_root() -> None:
    for name in modreg.client.__all__:
        value = getattr(modreg.client, name)
        if inspect.isclass(value) and issubclass(value, Exception):
            assert issubclass(value, ModregError), name


@pytest.mark.parametrize("package", ["modreg.client", "modreg.engine", "modreg.registry"])
def test_exported_names_survive_importing_every_submodule(package: str) -> None:
    """A submodule named like an exported function would replace it on the package."""
    root = importlib.import_module(package)
    folder = Path(root.__file__ or "").parent
    for path in folder.rglob("*.py"):
        parts = path.relative_to(folder).with_suffix("").parts
        if parts[-1] not in ("__init__", "__main__") and "migrations" not in parts:
            importlib.import_module(".".join((package, *parts)))
    for name in root.__all__:
        value = getattr(root, name)
        assert not inspect.ismodule(value), f"{package}.{name} is a module, not the API"
