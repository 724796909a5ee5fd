"""Tiny pure-Python wheels and hash-pinned locks for them, so environment tests need no index.

``build_wheel(folder, "tinypkg", "1.0")`` writes ``tinypkg-1.0-py3-none-any.whl`` (a module
``tinypkg`` whose ``VERSION`` is ``"1.0"``), byte-for-byte the same each time; ``compile_lock``
pins a requirement against such a folder with ``uv pip compile --generate-hashes``, as a
module's committed ``requirements.lock``.
"""

from __future__ import annotations

import base64
import hashlib
import subprocess
import zipfile
from collections.abc import Sequence
from pathlib import Path

import uv

DATE = (2020, 1, 1, 0, 0, 0)


def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def build_wheel(folder: Path, name: str, version: str, requires: Sequence[str] = ()) -> Path:
    """Write the wheel of ``name`` ``version`` (depending on ``requires``) into ``folder``,
    with a correct ``RECORD`` so installers accept it; returns its path."""
    module = name.replace("-", "_")
    info = f"{module}-{version}.dist-info"
    metadata = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    metadata += [f"Requires-Dist: {requirement}" for requirement in requires]
    files = {
        f"{module}/__init__.py": f'VERSION = "{version}"\n'.encode(),
        f"{info}/METADATA": ("\n".join(metadata) + "\n").encode(),
        f"{info}/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: modreg-tests\nRoot-Is-Purelib: true\n"
            b"Tag: py3-none-any\n"
        ),
    }
    record = [_record_line(path, data) for path, data in files.items()] + [f"{info}/RECORD,,"]
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / f"{module}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, data in files.items():
            archive.writestr(zipfile.ZipInfo(path, DATE), data)
    return wheel


def compile_lock(requirement: str, links: Path, work: Path) -> str:
    """The hash-pinned lock of ``requirement`` resolved from the wheels in ``links``."""
    work.mkdir(parents=True, exist_ok=True)
    source = work / "requirements.in"
    source.write_text(requirement + "\n")
    done = subprocess.run(
        [
            uv.find_uv_bin(),
            "pip",
            "compile",
            "--generate-hashes",
            "--universal",
            "--no-header",
            "--find-links",
            str(links),
            "--no-index",
            "--quiet",
            str(source),
        ],  # fmt: skip
        cwd=work,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def uv_settings(links: Path | str, cache: Path) -> dict[str, str]:
    """The caller's uv settings that install only from ``links`` (a folder or a URL): an
    empty local index stands in for PyPI (this uv reads no ``UV_NO_INDEX``)."""
    empty = cache.parent / f"{cache.name}-empty-index"
    empty.mkdir(parents=True, exist_ok=True)
    return {
        "UV_FIND_LINKS": str(links),
        "UV_INDEX_URL": empty.as_uri(),
        "UV_CACHE_DIR": str(cache),
    }
