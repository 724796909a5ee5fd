"""Publishing a module: manifest, clean git state, archive, blob upload, version record.

The steps, each of which can stop the publish with one clear error:

1. read and validate ``modreg.toml`` (``parse_manifest``: unknown keys, bad types, bad
   placeholders are ``ManifestError`` lines naming the key);
2. refuse a dirty module path, take HEAD's commit and the module path's tree;
3. build the reproducible archive from that commit and hash it;
4. check semver against the published versions (``evolution.verdict``), then ``PUT`` the
   archive as a blob (the server recomputes its sha256), then ``POST`` the version.

An identical replay (same version, commit and archive) is answered by the server as
already done; it surfaces here as ``AlreadyPublishedError`` unless ``skip_existing``.
A dry run stops after step 3 and sends nothing (the CLI's dry run reads the registry for the
semver check, ``cli/evolution_commands.py``).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modreg.client.errors import AlreadyPublishedError
from modreg.client.gitops import BuiltArchive, ModuleSource, build_archive, module_source
from modreg.registry.errors import ManifestError
from modreg.registry.schemas import Manifest, VersionCreate, VersionPublic

if TYPE_CHECKING:
    from modreg.client.http import RegistryClient

MANIFEST_NAME = "modreg.toml"


@dataclass(frozen=True)
class PublishPlan:
    """Everything a publish sends: the manifest, where the code is, and its archive."""

    manifest: Manifest
    source: ModuleSource
    archive: BuiltArchive

    @property
    def ref(self) -> str:
        return f"{self.manifest.name}@{self.manifest.version}"

    def version_create(self) -> VersionCreate:
        return VersionCreate(
            version=self.manifest.version,
            commit=self.source.commit,
            tree_sha=self.source.tree_sha,
            path=self.source.path,
            remote=self.source.remote,
            sha256=self.archive.sha256,
            manifest=self.manifest,
        )

    def summary(self) -> dict[str, Any]:
        """The publish's ``--json`` shape (DESIGN.md keys first)."""
        return {
            "module": self.manifest.name,
            "version": self.manifest.version,
            "commit": self.source.commit,
            "sha256": self.archive.sha256,
            "tree_sha": self.source.tree_sha,
            "path": self.source.path,
            "remote": self.source.remote,
            "size": self.archive.size,
            "files": self.archive.files,
        }


@dataclass(frozen=True)
class PublishOutcome:
    """What happened: created, replayed (``created`` false), or only planned (dry run)."""

    plan: PublishPlan
    created: bool
    dry_run: bool = False
    version: VersionPublic | None = None


def read_manifest(folder: Path) -> Manifest:
    """Parse and validate ``folder/modreg.toml``; errors name that file."""
    from modreg.registry.manifest import parse_manifest

    path = folder / MANIFEST_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ManifestError(f"{path}: not found (run `modreg init` to write one)") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{path}: cannot read: {exc}") from exc
    return parse_manifest(text, source=str(path))


def plan_publish(folder: Path, workdir: Path) -> PublishPlan:
    """Validate the module at ``folder`` and build its archive inside ``workdir``."""
    manifest = read_manifest(folder)
    source = module_source(folder)
    return PublishPlan(manifest, source, build_archive(source, workdir))


def upload(
    client: RegistryClient, plan: PublishPlan, skip_existing: bool = False
) -> PublishOutcome:
    """Send a planned publish: the archive blob, then the version record. An under-bumped
    version is refused before anything is sent (the server checks again)."""
    from modreg.client.evolution import refuse_underbumped, verdict

    refuse_underbumped(verdict(client, plan.manifest))
    client.put_blob(plan.archive.sha256, plan.archive.path)
    result = client.publish_version(plan.manifest.name, plan.version_create())
    if not result.created and not skip_existing:
        raise AlreadyPublishedError(
            f"{plan.manifest.name}@{result.version.version} is already published with this "
            "commit and archive (pass --skip-existing to accept that)"
        )
    return PublishOutcome(plan, created=result.created, version=result.version)


def publish(
    client: RegistryClient | None,
    folder: Path,
    *,
    dry_run: bool = False,
    skip_existing: bool = False,
) -> PublishOutcome:
    """Publish the module at ``folder`` (``client`` may be None for a dry run)."""
    with tempfile.TemporaryDirectory(prefix="modreg-publish-") as workdir:
        plan = plan_publish(folder, Path(workdir))
        if dry_run or client is None:
            return PublishOutcome(plan, created=False, dry_run=True)
        return upload(client, plan, skip_existing)
