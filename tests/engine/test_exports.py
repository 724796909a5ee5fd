"""The engine's public API is complete, and importing it stays light and one-way."""

from __future__ import annotations

import subprocess
import sys

import modreg.engine


def test_all_is_complete_and_resolvable() -> None:
    public = {name for name in vars(modreg.engine) if not name.startswith("_")}
    modules = {name for name in public if type(getattr(modreg.engine, name)).__name__ == "module"}
    assert set(modreg.engine.__all__) == public - modules
    for name in modreg.engine.__all__:
        assert getattr(modreg.engine, name) is not None


def test_importing_the_engine_pulls_no_server_or_client_code() -> None:
    code = (
        "import sys, modreg.engine\n"
        "heavy = [m for m in ('fastapi', 'uvicorn', 'sqlalchemy', 'sqlmodel', 'httpx', "
        "'fsspec', 'modreg.client')"
        " if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
