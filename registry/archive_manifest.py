"""The ``modreg.toml`` inside a module archive, which the server holds every publish to.

A publish sends its manifest as JSON beside the archive's digest. Readers of the version are
shown that JSON (interface, command), but the code that runs is the archive's. So the server
reads the archive's own ``modreg.toml`` — the last regular-file member named so at the
archive's root, as extraction would leave it — parses it with the same ``parse_manifest``
the client publishes with, and refuses the publish unless the result equals the manifest
sent in every field. Formatting, comments and key order of the file do not count; every
value does. An archive without one is refused: it is not a module.
"""

from __future__ import annotations

import posixpath
import tarfile
import zlib
from pathlib import Path

from modreg.registry.errors import ManifestError, UnsafeArchiveError
from modreg.registry.manifest import parse_manifest
from modreg.registry.schemas import Manifest

MANIFEST_NAME = "modreg.toml"
MAX_MANIFEST_BYTES = 1 << 20


def read_archive_files(
    archive: Path, names: tuple[str, ...], source: str, limit: int = MAX_MANIFEST_BYTES
) -> dict[str, bytes | None]:
    """The bytes of each of ``names`` at its path in the gzip'd tar ``archive`` (the last
    regular-file member so named, as extraction leaves it), None for one it lacks."""
    found: dict[str, bytes | None] = dict.fromkeys(names)
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = {posixpath.normpath(m.name): m for m in tar}
            for name in names:
                member = members.get(name)
                if member is None:
                    continue
                if not member.isfile():
                    raise ManifestError(f"{source}: {name} in the archive is not a file")
                if member.size > limit:
                    raise ManifestError(f"{source}: {name} is over {limit} bytes")
                handle = tar.extractfile(member)
                assert handle is not None  # a regular file
                found[name] = handle.read()
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise UnsafeArchiveError(f"{source}: the archive cannot be read: {exc}") from exc
    return found


def read_archive_manifest(archive: Path, source: str) -> str:
    """The text of the ``modreg.toml`` at the root of the gzip'd tar ``archive``."""
    data = read_archive_files(archive, (MANIFEST_NAME,), source)[MANIFEST_NAME]
    if data is None:
        raise ManifestError(f"{source}: the archive has no {MANIFEST_NAME} at its root")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ManifestError(f"{source}: {MANIFEST_NAME} is not UTF-8 text") from exc


def check_archive_manifest(archive: Path, sent: Manifest, source: str) -> None:
    """Refuse unless the archive's ``modreg.toml`` says exactly what ``sent`` says."""
    stored = parse_manifest(read_archive_manifest(archive, source), source)
    theirs, ours = stored.model_dump(mode="json"), sent.model_dump(mode="json")
    differing = [key for key in ours if theirs.get(key) != ours[key]]
    if differing:
        raise ManifestError(
            f"{source}: {MANIFEST_NAME} in the archive differs from the one sent: "
            f"{', '.join(differing)}"
        )
