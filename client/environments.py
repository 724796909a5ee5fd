"""A module's environment at publish: the hash-pinned lock its version carries.

A module has an environment when its ``modreg.toml`` has an ``[environment]`` table
(``Manifest.environment``). What it declares is read from the published commit, never the
working tree (``declared_environment``): the ``requirements`` lines, the lines of its
``requirements-file``, or, when it gives neither, its committed ``requirements.lock``. The
lock a publish sends then comes from the first of:

1. **stored**: the registry already has this version from the same commit and archive (a
   retried publish). Its lock is used again, so a resolver that moved since (a new release on
   the index) cannot turn a safe retry into a 409.
2. **committed**: the module's own ``requirements.lock``, byte for byte, once ``parse_lock``
   accepts it (every package ``name==version`` with a hash).
3. **resolved**: ``uv pip compile --universal --generate-hashes --no-header --python-version
   <lowest Python the range allows>`` on the requirement lines. uv runs in an empty temporary
   folder, so no ``uv.toml``, ``pyproject.toml`` or ``.python-version`` lying around steers it,
   with the caller's environment as it is: private indexes, certificates and caches reach it
   through uv's own settings (``UV_INDEX_URL``, ``UV_FIND_LINKS``, ``SSL_CERT_FILE`` ...).
   Without a header the lock's bytes, and so its sha256, depend only on the resolution.

Everything that can be checked without the registry (a missing requirements file, a line
that is not PEP 508, a committed lock without hashes) is checked by ``declared_environment``
before any request; a requirement uv cannot satisfy stops the publish with one line naming it,
before anything is uploaded.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modreg.client.errors import ResolutionError

if TYPE_CHECKING:
    from modreg.client.gitops import BuiltArchive, ModuleSource
    from modreg.client.http import RegistryClient
    from modreg.registry.schemas import Manifest

REQUIREMENTS_IN = "requirements.in"  # the name uv's "# via -r ..." comments show in the lock


class LockOrigin(StrEnum):
    """Where a publish's environment lock came from (see the module docstring)."""

    stored = "stored"
    committed = "committed"
    resolved = "resolved"


@dataclass(frozen=True)
class EnvironmentLock:
    """A version's environment lock: digest, the Python it holds for, the pinned packages."""

    sha256: str
    python: str
    packages: dict[str, str]
    origin: LockOrigin
    path: Path | None = field(default=None, compare=False)  # None: the registry has it already

    def summary(self) -> dict[str, Any]:
        """The ``environment`` of a publish's ``--json``."""
        return {
            "sha256": self.sha256,
            "python": self.python,
            "packages": self.packages,
            "origin": self.origin.value,
        }


@dataclass(frozen=True)
class DeclaredEnvironment:
    """What a module's ``[environment]`` asks for, read and checked at the published commit."""

    python: str  # the lowest Python its range allows: what the lock is resolved for
    requirements: list[str]  # PEP 508 lines, each checked
    where: str  # "MANIFEST: [environment] KEY", the start of an error line about them
    committed: EnvironmentLock | None = None  # its own requirements.lock, used as it is


def declared_environment(
    manifest: Manifest, source: ModuleSource, manifest_path: Path, workdir: Path
) -> DeclaredEnvironment | None:
    """Read what the module declares from its commit; errors name the key or the file
    (``manifest_path`` is the module's ``modreg.toml``, as the user named it)."""
    from modreg.client.gitops import read_committed
    from modreg.registry.environment_lock import LOCK_FILE, lowest_python
    from modreg.registry.manifest import environment_source

    spec = manifest.environment
    if spec is None:
        return None
    label, folder = str(manifest_path), manifest_path.parent
    wanted = [LOCK_FILE] + ([spec.requirements_file] if spec.requirements_file else [])
    files = {name: read_committed(source, name) for name in wanted}
    origin = environment_source(spec, lambda name: files.get(name) is not None, label)
    python = lowest_python(spec.python)
    if spec.requirements_file is not None:
        where = f"{label}: [environment] requirements-file"
        data = files[spec.requirements_file]
        assert data is not None  # environment_source refuses a missing file
        return DeclaredEnvironment(
            python, requirement_lines(data, spec.requirements_file, where), where
        )
    if origin == LOCK_FILE:
        data = files[LOCK_FILE]
        assert data is not None
        lock = _lock_from(data, python, LockOrigin.committed, workdir, str(folder / LOCK_FILE))
        return DeclaredEnvironment(python, [], f"{label}: [environment]", lock)
    return DeclaredEnvironment(
        python, list(spec.requirements), f"{label}: [environment] requirements"
    )


def requirement_lines(data: bytes, name: str, where: str) -> list[str]:
    """The PEP 508 lines of a requirements file: comments and blank lines dropped; anything
    else (``-r``, ``-e``, index options: uv's own settings say where packages come from) is
    an error naming the file's line."""
    from modreg.registry.environment_lock import check_requirement
    from modreg.registry.errors import ManifestError

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ManifestError(f"{where}: {name} is not UTF-8 text") from exc
    lines = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = "" if raw.lstrip().startswith("#") else raw.split(" #", 1)[0].strip()
        if not line:
            continue
        try:
            check_requirement(line)
        except ValueError as exc:
            raise ManifestError(f"{where}: {name} line {number}: {exc}") from exc
        lines.append(line)
    return lines


def stored_lock(
    client: RegistryClient, manifest: Manifest, source: ModuleSource, archive: BuiltArchive
) -> EnvironmentLock | None:
    """The lock of this very version if the registry has it from the same commit and archive."""
    from modreg.registry.errors import NotFoundError

    try:
        version = client.get_version(manifest.name, manifest.version)
    except NotFoundError:
        return None
    stored = version.environment
    if stored is None or (version.commit, version.sha256) != (source.commit, archive.sha256):
        return None
    return EnvironmentLock(stored.sha256, stored.python, dict(stored.packages), LockOrigin.stored)


def resolved_lock(declared: DeclaredEnvironment, workdir: Path) -> EnvironmentLock:
    """Resolve the declared requirements with uv into a universal, hash-pinned lock."""
    where = declared.where
    data = compile_requirements(declared.requirements, declared.python, workdir, where)
    return _lock_from(data, declared.python, LockOrigin.resolved, workdir, f"{where}: uv's lock")


def _lock_from(
    data: bytes, python: str, origin: LockOrigin, workdir: Path, label: str
) -> EnvironmentLock:
    """Check ``data`` is a hash-pinned lock and keep it on disk for the upload."""
    from modreg.registry.environment_lock import parse_lock

    try:
        packages = parse_lock(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ResolutionError(f"{label}: {exc}") from exc
    sha256 = hashlib.sha256(data).hexdigest()
    path = workdir / f"environment-{sha256[:12]}.lock"
    path.write_bytes(data)
    return EnvironmentLock(sha256, python, packages, origin, path)


def compile_requirements(requirements: list[str], python: str, workdir: Path, where: str) -> bytes:
    """``uv pip compile``'s lock of ``requirements`` for ``python`` and every platform."""
    folder = workdir / "resolve"
    folder.mkdir()
    (folder / REQUIREMENTS_IN).write_text("".join(f"{line}\n" for line in requirements))
    # uv would download a Python of that version only to build sdists' metadata (8 s of
    # retries offline); it falls back to any local interpreter, so no download is asked for.
    command = [
        *[_uv_binary(where), "pip", "compile", REQUIREMENTS_IN],
        *["--universal", "--generate-hashes", "--no-header", "--color", "never"],
        *["--python-version", python, "--no-python-downloads"],
    ]
    answer = subprocess.run(command, cwd=folder, capture_output=True, check=False)
    if answer.returncode != 0:
        stderr = answer.stderr.decode("utf-8", "replace")
        raise ResolutionError(resolution_problem(stderr, requirements, where))
    return answer.stdout


def _uv_binary(where: str) -> str:
    import uv

    try:
        return str(uv.find_uv_bin())
    except FileNotFoundError as exc:
        raise ResolutionError(f"{where}: cannot resolve: the uv binary is missing ({exc})") from exc


# --- uv's error, in one line --------------------------------------------------------------

_MARKS = re.compile(r"^(?:error:|cause:|hint:|×|╰─▶|│)\s*")
_NO_VERSION = re.compile(r"(?:there is no version of|no versions of) ([A-Za-z0-9][\w.\-\[\],]*)")
_NOT_FOUND = re.compile(r"([A-Za-z0-9][\w.\-]*) was not found in")
_REQUIRED = re.compile(r"you require ([A-Za-z0-9][\w.\-]*)")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def canonical_name(requirement: str) -> str:
    """``Foo_Bar[x]>=1`` -> ``foo-bar`` (PEP 503), to match uv's words to declared lines."""
    found = _NAME.match(requirement.strip())
    return re.sub(r"[-_.]+", "-", found.group(0)).lower() if found else ""


def uv_explanation(stderr: str) -> str:
    """uv's error as one line: from its cause on when it gives one, else all of it."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    causes = [at for at, line in enumerate(lines) if line.startswith(("cause:", "╰─▶"))]
    kept = [_MARKS.sub("", line) for line in lines[causes[0] if causes else 0 :]]
    text = " ".join(line for line in kept if not line.startswith("Resolved "))
    return " ".join(text.split()) or "uv failed without a message"


def resolution_problem(stderr: str, requirements: list[str], where: str) -> str:
    """The one line a failed resolution prints, naming the requirement(s) at fault."""
    explanation = uv_explanation(stderr)
    by_name = {canonical_name(line): line for line in requirements}
    missing = _NO_VERSION.search(explanation) or _NOT_FOUND.search(explanation)
    if missing and canonical_name(missing.group(1)) in by_name:
        culprit = by_name[canonical_name(missing.group(1))]
        return f"{where}: no version of {culprit!r} can be found (uv: {explanation})"
    required = [canonical_name(name) for name in _REQUIRED.findall(explanation)]
    named = list(dict.fromkeys(by_name[name] for name in required if name in by_name))
    if len(named) == 1:
        return f"{where}: {named[0]!r} cannot be satisfied (uv: {explanation})"
    if named:
        listed = ", ".join(repr(line) for line in named)
        return f"{where}: {listed} cannot be satisfied together (uv: {explanation})"
    return f"{where}: cannot be resolved (uv: {explanation})"
