"""Folders that appear whole or not at all.

Downloads and pulls write into a temp folder beside the destination and rename it into
place only when everything is written, so a corrupt blob or an interrupted copy halfway
through leaves nothing behind. The destination must be absent or an empty folder: files
are never merged into, or written over, what a user already has there.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from modreg.engine.errors import EngineError


class DestinationExistsError(EngineError):
    """The destination folder already holds something."""


@contextmanager
def staged_folder(dest: Path) -> Iterator[Path]:
    """Yield an empty folder to fill; on success it becomes ``dest``, else it is removed."""
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise DestinationExistsError(f"{dest}: already exists and is not an empty folder")
    dest.parent.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}."))
    try:
        staged = temp / "staged"
        staged.mkdir()
        yield staged
        if dest.is_dir():
            dest.rmdir()
        os.replace(staged, dest)
    finally:
        shutil.rmtree(temp, ignore_errors=True)
