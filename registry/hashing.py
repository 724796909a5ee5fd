"""The sha256 of a file: the one helper the registry, the engine and the client hash files with.

It sits alone in a module that imports only ``hashlib``, so the engine and the client can use
it without importing anything else of the registry (the engine may import the registry; the
registry never imports the engine).
"""

from __future__ import annotations

import hashlib
from pathlib import Path


def sha256_file(path: Path) -> str:
    """The hex sha256 of a file's bytes, read in chunks (``hashlib.file_digest``)."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
