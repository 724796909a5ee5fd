"""modreg.registry: the registry server, its data model, and the wire schemas.

Importing this package is cheap: the server pieces (FastAPI, SQLModel) load only when one
of the lazy names below is first used, because the client and engine import
``modreg.registry.schemas`` and ``modreg.registry.errors`` on every command.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modreg.registry.app import create_app
    from modreg.registry.blobs import BlobStore, FsspecBlobStore, LocalBlobStore
    from modreg.registry.server import serve
    from modreg.registry.settings import Settings

__all__ = [
    "BlobStore",
    "FsspecBlobStore",
    "LocalBlobStore",
    "Settings",
    "create_app",
    "serve",
]

_LAZY = {
    "BlobStore": "modreg.registry.blobs",
    "FsspecBlobStore": "modreg.registry.blobs",
    "LocalBlobStore": "modreg.registry.blobs",
    "Settings": "modreg.registry.settings",
    "create_app": "modreg.registry.app",
    "serve": "modreg.registry.server",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'modreg.registry' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
