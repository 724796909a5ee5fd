"""Module sources: archives pulled by sha256, verified, extracted safely, cached by digest.

``SOURCES/<sha256>/`` holds the extracted archive whose digest is ``sha256``. It is created
by extracting into a temporary folder and renaming (``archive.safe_extract``), so it is
complete or absent; two processes filling the same entry both succeed. Several archives
are pulled at once with a small thread pool.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from modreg.engine.errors import OfflineError
from modreg.engine.protocol import RegistryProtocol
from modreg.registry.archive import safe_extract

PULL_THREADS = 4


class SourceCache:
    """Extracted module archives by sha256, pulled from the registry when missing."""

    def __init__(self, root: Path, registry: RegistryProtocol | None) -> None:
        self.root = Path(root)
        self.registry = registry

    def path(self, sha256: str) -> Path:
        return self.root / sha256

    def has(self, sha256: str) -> bool:
        return self.path(sha256).is_dir()

    def ensure(self, sha256: str, label: str = "") -> Path:
        """The folder of the archive ``sha256``, pulling and extracting it if needed."""
        dest = self.path(sha256)
        if dest.is_dir():
            return dest
        if self.registry is None:
            what = f"the sources of {label}" if label else f"module archive {sha256[:12]}"
            raise OfflineError(
                f"--offline: {what} are not in the local source cache; run once online"
            )
        self.root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.root, prefix=".pull-") as temp:
            archive = Path(temp) / "archive.tar.gz"
            self.registry.get_blob(sha256, archive)  # verifies the digest
            safe_extract(archive, dest, exist_ok=True)
        return dest

    def ensure_many(self, wanted: Iterable[tuple[str, str]]) -> None:
        """Pull several (sha256, label) archives at once; the first failure is raised."""
        missing = sorted({(sha, label) for sha, label in wanted if not self.has(sha)})
        if len(missing) <= 1:
            for sha, label in missing:
                self.ensure(sha, label)
            return
        with ThreadPoolExecutor(max_workers=min(PULL_THREADS, len(missing))) as pool:
            for future in [pool.submit(self.ensure, sha, label) for sha, label in missing]:
                future.result()
