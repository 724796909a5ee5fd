"""The code base stays ruff-clean (lint and format) and mypy-clean, as STYLE.md asks."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ["registry", "engine", "client", "tests", "benchmarks", "examples"]
PACKAGES = ["registry", "engine", "client"]


def _tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: it is in the 'test' extra of pyproject.toml")
    return found


def _run(command: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]])
def test_ruff(command: list[str]) -> None:
    result = _run([_tool("ruff"), *command, *FOLDERS])
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_on_the_three_folders() -> None:
    """``mypy registry engine client``, as ``make lint`` runs it: each file on its own terms."""
    result = _run([_tool("mypy"), *PACKAGES])
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_with_real_types_across_packages_strict_on_the_engine() -> None:
    """All three packages, checked as ``modreg.…``; the engine strictly.

    Run on the folders, mypy names their modules ``engine.…`` and cannot find ``modreg.…``:
    the folders become that package only through setuptools' editable-install finder, which
    mypy does not run. So there, every import across packages is ``Any`` (the client's
    check that it satisfies the engine's ``RegistryProtocol`` included). Here the folders
    appear as ``modreg/<folder>`` (links in mypy's cache folder, so its incremental cache
    holds).
    """
    source = ROOT / ".mypy_cache" / "modreg-src"
    (source / "modreg").mkdir(parents=True, exist_ok=True)
    for folder in PACKAGES:
        link = source / "modreg" / folder
        if not link.is_symlink():
            link.symlink_to(ROOT / folder, target_is_directory=True)
    command = [
        _tool("mypy"),
        "--follow-imports=silent",
        "-p",
        "modreg.engine",
        "-p",
        "modreg.client",
        "-p",
        "modreg.registry",
    ]
    result = _run(command, env={**os.environ, "MYPYPATH": str(source)})
    shown = f"{source.relative_to(ROOT)}/modreg/"
    assert result.returncode == 0, (result.stdout + result.stderr).replace(shown, "")
