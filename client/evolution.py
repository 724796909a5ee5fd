"""What a new version changes for the people who use the module: its semver verdict, the
dependents it would reach, and the difference between two published versions.

- ``verdict``: the registry's own check (``registry.semver_check``) run before uploading,
  against the versions already published, so an under-bumped version is refused before its
  archive is sent (the server checks again, authoritatively).
- ``impact``: which recorded dependents' ranges would pick the new version up on their next
  ``modreg lock --upgrade``, and which of those a breaking change would break.
- ``diff``: interface changes with their class, environment changes, changed files.

Everything here reads the registry and never writes to it (a dry run may call it).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modreg.registry.errors import UnknownModuleError
from modreg.registry.schemas import DependentPublic, Manifest, VersionPublic
from modreg.registry.semver_check import (
    Bump,
    Change,
    Published,
    Verdict,
    check,
    classify,
    package_changes,
)
from modreg.registry.versioning import parse_range, parse_version, precedence

if TYPE_CHECKING:
    from modreg.client.http import RegistryClient

# --- semver before publishing ----------------------------------------------------------


def published(client: RegistryClient, module: str) -> list[Published]:
    """The module's published versions as the check reads them (none for a new module)."""
    try:
        versions = client.list_versions(module)
    except UnknownModuleError:
        return []
    return [Published(v.version, v.status, v.manifest, v.environment) for v in versions]


def verdict(client: RegistryClient, manifest: Manifest) -> Verdict:
    return check(manifest.name, manifest, published(client, manifest.name))


def refuse_underbumped(found: Verdict) -> None:
    """The error the server would answer, raised before anything is uploaded."""
    if not found.ok:
        raise found.error()


# --- impact on dependents ----------------------------------------------------------------


@dataclass(frozen=True)
class Reached:
    """A dependent whose range would pick up the new version on its next upgrade."""

    dependent: DependentPublic
    broken: bool  # the new version has a breaking change for it

    def to_dict(self) -> dict[str, Any]:
        d = self.dependent
        return {
            "team": d.team, "pipeline": d.pipeline, "step": d.step, "range": d.range,
            "version": d.version, "broken": self.broken,
        }  # fmt: skip


def _latest_uses(dependents: list[DependentPublic]) -> list[DependentPublic]:
    """One entry per (team, pipeline, step, range): the highest version it resolved to."""
    latest: dict[tuple[str, str, str, str | None], DependentPublic] = {}
    for d in dependents:
        key = (d.team, d.pipeline, d.step, d.range)
        known = latest.get(key)
        if known is None or parse_version(d.version) > parse_version(known.version):
            latest[key] = d
    return [latest[key] for key in sorted(latest, key=str)]


def _picks_up(dependent: DependentPublic, version: str, has_default: bool) -> bool:
    """Whether the range would choose ``version`` over what it uses now. A reference
    without a range follows the module's default if it has one, else the highest stable."""
    new = parse_version(version)
    if precedence(new) <= precedence(parse_version(dependent.version)):
        return False
    if dependent.range is None:
        return not has_default and not new.prerelease
    return parse_range(dependent.range).allows(new)


def impact(client: RegistryClient, manifest: Manifest, found: Verdict) -> list[Reached]:
    """The dependents ``manifest``'s version would reach, and whether it breaks them."""
    try:
        dependents = client.list_dependents(manifest.name)
        has_default = client.get_module(manifest.name).default_version is not None
    except UnknownModuleError:
        return []
    breaking = found.needed == Bump.major
    return [
        Reached(d, breaking)
        for d in _latest_uses(dependents)
        if _picks_up(d, manifest.version, has_default)
    ]


# --- diff of two published versions ------------------------------------------------------


@dataclass
class VersionDiff:
    """What changed from ``old`` to ``new``: ``modreg diff``'s answer."""

    old: VersionPublic
    new: VersionPublic
    changes: list[Change]
    packages: list[tuple[str, str | None, str | None]]
    files: dict[str, list[str]] = field(default_factory=dict)  # added, removed, changed, binary
    patch: str = ""  # a unified diff of the changed text files

    @property
    def needs(self) -> Bump:
        """The bump these changes need, from ``old`` to ``new``."""
        return max((change.bump for change in self.changes), default=Bump.patch)

    def to_dict(self) -> dict[str, Any]:
        return {
            "module": self.new.module,
            "old": self.old.version,
            "new": self.new.version,
            "needs": self.needs.name,
            "interface": [change.to_dict() for change in self.changes],
            "environment": [
                {"package": name, "old": before, "new": after}
                for name, before, after in self.packages
            ],
            "files": self.files,
            "patch": self.patch,
        }


def _files(root: Path) -> dict[str, bytes]:
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and not path.is_symlink()
    }


def _text(data: bytes) -> list[str] | None:
    if b"\x00" in data:
        return None
    try:
        return data.decode("utf-8").splitlines(keepends=True)
    except UnicodeDecodeError:
        return None


def file_changes(old_root: Path, new_root: Path) -> tuple[dict[str, list[str]], str]:
    """Names of added, removed, changed and binary files, and a unified diff of the
    changed text files (added and removed ones diffed against nothing)."""
    before, after = _files(old_root), _files(new_root)
    files: dict[str, list[str]] = {"added": [], "removed": [], "changed": [], "binary": []}
    patch: list[str] = []
    for name in sorted(before.keys() | after.keys()):
        if before.get(name) == after.get(name):
            continue
        kind = "added" if name not in before else "removed" if name not in after else "changed"
        files[kind].append(name)
        old_lines, new_lines = _text(before.get(name, b"")), _text(after.get(name, b""))
        if old_lines is None or new_lines is None:
            files["binary"].append(name)
            continue
        for line in difflib.unified_diff(old_lines, new_lines, f"a/{name}", f"b/{name}"):
            patch.append(line if line.endswith("\n") else line + "\n")
    return files, "".join(patch)


def diff(old: VersionPublic, new: VersionPublic, old_root: Path, new_root: Path) -> VersionDiff:
    """The difference between two published versions whose sources are at the roots."""
    changes = classify(old.manifest, new.manifest, old.environment, new.environment)
    packages = package_changes(old.environment, new.environment)
    files, patch = file_changes(old_root, new_root)
    return VersionDiff(old, new, changes, packages, files, patch)
