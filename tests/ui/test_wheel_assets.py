"""The UI works from ``pip install`` of the wheel, not only from a checkout: its templates
and assets are package data.

The wheel is built from this tree and installed, without dependencies, into a fresh venv
whose only link to this one is a ``.pth`` line naming this venv's site-packages for the
dependencies (a plain path entry: this venv's own ``.pth`` files, among them the editable
install of modreg, are not read from there). A registry started from that venv's Python
must then serve the pages and the vendored assets byte for byte.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import httpx
import pytest
from registry_servers import start_server, stop_server

REPO = Path(__file__).resolve().parents[2]
ASSET = "vendor/uplot/uPlot.iife.min.js"
PURELIB = "import sysconfig; print(sysconfig.get_paths()['purelib'])"


def _install_wheel(tmp_path: Path) -> Path:
    """A fresh venv with modreg installed from a wheel built here; returns its python."""
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", wheels, REPO],
        check=True,
        capture_output=True,
    )
    (wheel,) = wheels.glob("modreg-*.whl")
    target = tmp_path / "venv"
    venv.create(target, with_pip=False)
    python = target / "bin" / "python"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            python,
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            wheel,
        ],
        check=True,
        capture_output=True,
    )
    purelib = subprocess.run(
        [python, "-c", PURELIB], check=True, capture_output=True, text=True
    ).stdout.strip()
    Path(purelib, "modreg-test-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


@pytest.mark.slow
def test_an_installed_wheel_serves_the_pages_and_assets(tmp_path: Path) -> None:
    python = _install_wheel(tmp_path)
    where = subprocess.run(
        [python, "-c", "import modreg.registry.ui as ui; print(ui.__file__)"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert where.startswith(str(tmp_path / "venv")), where
    handle = start_server(tmp_path / "data", python=str(python))
    try:
        asset = httpx.get(f"{handle.url}/static/{ASSET}", timeout=30)
        assert asset.status_code == 200
        assert asset.content == (REPO / "registry/ui/static" / ASSET).read_bytes()
        licence = httpx.get(f"{handle.url}/static/vendor/uplot/LICENSE", timeout=30)
        assert "MIT" in licence.text
        page = httpx.get(handle.url, timeout=30)
        assert page.status_code == 200 and "No modules yet" in page.text
    finally:
        stop_server(handle.process)
