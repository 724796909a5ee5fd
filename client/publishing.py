"""Publishing a module: manifest, clean git state, archive, blob upload, version record.

The steps, each of which can stop the publish with one clear error:

1. read and validate ``modreg.toml`` (``parse_manifest``: unknown keys, bad types, bad
   placeholders are ``ManifestError`` lines naming the key);
2. refuse a dirty module path, take HEAD's commit and the module path's tree;
3. build the reproducible archive from that commit and hash it;
4. pin the module's environment, if it has one (``modreg.client.environments``): the lock an
   earlier attempt stored for this commit and archive, else the committed
   ``requirements.lock``, else uv's resolution of the requirements;
5. check semver against the published versions (``evolution.verdict``), then ``PUT`` the
   environment lock and the archive as blobs (the server recomputes their sha256), then
   ``POST`` the version.

An identical replay (same version, commit, archive and environment lock) is answered by the
server as already done; it surfaces here as ``AlreadyPublishedError`` unless
``skip_existing``. A dry run stops after step 4: it may read the registry (the stored lock a
retry would reuse; the CLI's dry run also the semver check, ``cli/evolution_commands.py``)
but writes nothing.
"""

from __future__ import annotations

import dataclasses
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modreg.client.errors import AlreadyPublishedError
from modreg.client.gitops import BuiltArchive, ModuleSource, build_archive, module_source
from modreg.registry.errors import ManifestError
from modreg.registry.schemas import Manifest, VersionCreate, VersionPublic

if TYPE_CHECKING:
    from modreg.client.environments import DeclaredEnvironment, EnvironmentLock
    from modreg.client.http import RegistryClient

MANIFEST_NAME = "modreg.toml"


@dataclass(frozen=True)
class PublishPlan:
    """Everything a publish sends: the manifest, where the code is, its archive, what its
    ``[environment]`` declares, and the environment lock once pinned (``pin_environment``)."""

    manifest: Manifest
    source: ModuleSource
    archive: BuiltArchive
    declared: DeclaredEnvironment | None = None
    environment: EnvironmentLock | None = None

    @property
    def ref(self) -> str:
        return f"{self.manifest.name}@{self.manifest.version}"

    @property
    def warnings(self) -> list[str]:
        """What is allowed but likely a mistake: a module without outputs gives its steps
        nothing to pass on, to reuse or to download (metrics alone are not outputs)."""
        if self.manifest.interface.outputs:
            return []
        return [
            f"{self.ref} declares no outputs: its steps produce nothing a later step, "
            "a re-run or `modreg runs download` can use (declare them as [outputs.NAME])"
        ]

    def version_create(self) -> VersionCreate:
        return VersionCreate(
            version=self.manifest.version,
            commit=self.source.commit,
            tree_sha=self.source.tree_sha,
            path=self.source.path,
            remote=self.source.remote,
            sha256=self.archive.sha256,
            manifest=self.manifest,
            environment_sha256=self.environment.sha256 if self.environment else None,
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
            "environment": self.environment.summary() if self.environment else None,
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
    """Validate the module at ``folder``, build its archive inside ``workdir`` and read what
    its environment declares: every check that needs no registry and no resolver."""
    from modreg.client.environments import declared_environment

    manifest = read_manifest(folder)
    source = module_source(folder)
    archive = build_archive(source, workdir)
    declared = declared_environment(manifest, source, folder / MANIFEST_NAME, workdir)
    return PublishPlan(manifest, source, archive, declared)


def pin_environment(
    plan: PublishPlan, workdir: Path, client: RegistryClient | None = None
) -> PublishPlan:
    """``plan`` with its environment lock: with a ``client``, the one a first attempt stored
    (a retry); else the committed lock; else uv's resolution."""
    from modreg.client.environments import resolved_lock, stored_lock

    declared = plan.declared
    if declared is None:
        return plan
    lock = stored_lock(client, plan.manifest, plan.source, plan.archive) if client else None
    lock = lock or declared.committed or resolved_lock(declared, workdir)
    return dataclasses.replace(plan, environment=lock)


def upload(
    client: RegistryClient, plan: PublishPlan, skip_existing: bool = False
) -> PublishOutcome:
    """Send a planned publish: the environment lock and archive blobs, then the version. An
    under-bumped version is refused before anything is sent (the server checks again)."""
    from modreg.client.evolution import refuse_underbumped, verdict

    refuse_underbumped(verdict(client, plan.manifest))
    if plan.environment is not None and plan.environment.path is not None:
        client.put_blob(plan.environment.sha256, plan.environment.path)
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
        plan = pin_environment(plan, Path(workdir), client)  # only reads from the registry
        if dry_run or client is None:
            return PublishOutcome(plan, created=False, dry_run=True)
        return upload(client, plan, skip_existing)
