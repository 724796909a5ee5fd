"""Pulling a module's sources: resolve, download, verify, extract into a cache, place.

Sources are cached by archive digest in the engine's source cache,
``$XDG_CACHE_HOME/modreg/engine/sources/<sha256>`` (``sources_dir``), which ``modreg run``
reads too. An entry appears there only complete: the archive is downloaded to a temp file
(its sha256 checked while streaming), checked again, and extracted by ``safe_extract`` into
a temp folder that is renamed into place. So a cache entry that exists is whole, a second
pull of the same version needs no download, and a bad archive (wrong digest, ``..``,
absolute paths, links out, device files, too big) leaves nothing behind. ``--dest`` gets a
copy, also made beside it and renamed.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modreg.client.config import engine_state_dir
from modreg.client.errors import PullError
from modreg.registry.errors import DamagedArchiveError, UnknownBlobError
from modreg.registry.schemas import Resolution, VersionPublic

if TYPE_CHECKING:
    from modreg.client.http import RegistryClient


@dataclass(frozen=True)
class PullResult:
    """Where a pulled version's sources are, and whether the cache already had them."""

    version: VersionPublic
    path: Path
    cached: bool
    reason: str = ""
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """The pull's ``--json`` shape (DESIGN.md keys first)."""
        return {
            "module": self.version.module,
            "version": self.version.version,
            "commit": self.version.commit,
            "path": str(self.path),
            "sha256": self.version.sha256,
            "cached": self.cached,
            "warnings": self.warnings,
        }


def sources_dir(cache_root: Path | None = None) -> Path:
    """Cached sources, one sub-folder per archive sha256: the engine's own source cache,
    so sources pulled once serve ``modreg run`` (offline too), and the other way round."""
    from modreg.engine.state import StateDir

    return StateDir(cache_root or engine_state_dir()).sources


def resolve_one(client: RegistryClient, ref: str) -> Resolution:
    """Resolve one ``team/name[@RANGE]``, raising the registry's error when none fits."""
    from modreg.client.http import resolution_error
    from modreg.registry.versioning import parse_ref

    parse_ref(ref)  # a malformed reference fails here, before any request
    resolution = client.resolve([ref])[0]
    error = resolution_error(resolution)
    if error is not None:
        raise error
    return resolution


def pull(
    client: RegistryClient,
    ref: str,
    dest: Path | None = None,
    cache_root: Path | None = None,
) -> PullResult:
    """Resolve ``ref``, make sure its sources are cached, and copy them to ``dest`` if given."""
    from modreg.engine.sources import SourceCache

    resolution = resolve_one(client, ref)
    assert resolution.version is not None
    version = resolution.version
    sources = SourceCache(sources_dir(cache_root), client)
    hit = sources.has(version.sha256)
    try:
        cached_path = sources.ensure(version.sha256, f"{version.module}@{version.version}")
    except UnknownBlobError as exc:  # listed, yet its archive cannot be served
        raise _damaged(version, exc) from exc
    path = place(cached_path, dest.absolute()) if dest is not None else cached_path
    return PullResult(version, path, hit, resolution.reason, list(resolution.warnings))


def _damaged(version: VersionPublic, cause: UnknownBlobError) -> DamagedArchiveError:
    """The archive of a listed version is missing or rotten in the registry's store: say so,
    and name the repair (the same publish again re-uploads the bytes)."""
    return DamagedArchiveError(
        f"the archive of {version.module}@{version.version} is damaged on the server "
        f"({cause.detail}); repair it: run `modreg publish --skip-existing` from commit "
        f"{version.commit}"
    )


def place(source: Path, dest: Path) -> Path:
    """Copy the folder ``source`` to ``dest`` (absent or empty) atomically; returns ``dest``."""
    from modreg.engine.staging import DestinationExistsError, staged_folder

    try:
        with staged_folder(dest) as staged:
            shutil.copytree(source, staged, symlinks=True, dirs_exist_ok=True)
    except DestinationExistsError as exc:
        raise PullError(f"--dest {exc}") from exc
    return dest
