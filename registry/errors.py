"""The one error tree of modreg.

Every error modreg raises on purpose derives from ``ModregError``. Registry errors carry the
HTTP status they are served with, and a stable ``type`` slug that the problem+json body
names, so the client can raise the very same class on its side of the wire::

    ModregError
    ├── RegistryError                 (status 400)
    │   ├── ClientTooOldError         400  the client's API level is below what the registry serves
    │   ├── AuthenticationError       401  no, unknown, expired or revoked token
    │   ├── PermissionDeniedError     403  token lacks the scope or team
    │   ├── NotFoundError             404
    │   │   ├── UnknownTeamError
    │   │   ├── UnknownModuleError
    │   │   ├── UnknownVersionError
    │   │   ├── UnknownBlobError
    │   │   │   └── DamagedArchiveError   a listed version's archive rotted in the store
    │   │   ├── UnknownRunError
    │   │   ├── UnknownSweepError
    │   │   └── UnknownTokenError
    │   ├── ConflictError             409
    │   │   ├── VersionExistsError
    │   │   └── TeamExistsError
    │   ├── PayloadTooLargeError      413
    │   └── InvalidInputError         422
    │       ├── InvalidNameError
    │       ├── InvalidVersionError
    │       │   └── SemverError       the version is under-bumped for its interface changes
    │       ├── InvalidRangeError
    │       ├── ManifestError
    │       ├── DigestMismatchError
    │       ├── UnsatisfiableRangeError
    │       └── UnsafeArchiveError
    ├── ServerStartError                 the registry cannot start (database, data folder)
    ├── engine errors  (modreg.engine.errors: PipelineSpecError, CycleError, StepFailedError, …)
    └── client errors  (modreg.client.errors: RegistryUnavailableError, ConfigError, …)
"""

from __future__ import annotations

from typing import Any, ClassVar

# A HEAD answer has no body: a problem's type slug and detail (percent-encoded UTF-8) are
# also sent in these headers, so the client reads the same error as from a body.
PROBLEM_TYPE_HEADER = "Modreg-Problem-Type"
PROBLEM_DETAIL_HEADER = "Modreg-Problem-Detail"


class ModregError(Exception):
    """Root of every error modreg raises on purpose."""


class ServerStartError(ModregError):
    """The registry cannot start: its database, data folder or blob store is unusable."""


class RegistryError(ModregError):
    """An error the registry answers with a problem+json body."""

    status: ClassVar[int] = 400
    type: ClassVar[str] = "registry-error"
    title: ClassVar[str] = "Registry error"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra

    def to_problem(self) -> dict[str, Any]:
        """The RFC 9457 problem body for this error."""
        body: dict[str, Any] = {
            "type": self.type,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        body.update(self.extra)
        return body


class ClientTooOldError(RegistryError):
    """The registry no longer serves this client's API level (``compatibility``)."""

    status, type, title = 400, "client-too-old", "Client too old"


class AuthenticationError(RegistryError):
    status, type, title = 401, "authentication-required", "Authentication required"


class PermissionDeniedError(RegistryError):
    status, type, title = 403, "permission-denied", "Permission denied"


class NotFoundError(RegistryError):
    status, type, title = 404, "not-found", "Not found"


class UnknownTeamError(NotFoundError):
    type, title = "unknown-team", "Unknown team"


class UnknownModuleError(NotFoundError):
    type, title = "unknown-module", "Unknown module"


class UnknownVersionError(NotFoundError):
    type, title = "unknown-version", "Unknown version"


class UnknownBlobError(NotFoundError):
    type, title = "unknown-blob", "Unknown blob"


class DamagedArchiveError(UnknownBlobError):
    """A published version's archive is no longer in the store as published (its bytes
    rotted and were dropped); the detail names the repair."""

    type, title = "damaged-archive", "Archive damaged on the server"


class UnknownRunError(NotFoundError):
    type, title = "unknown-run", "Unknown run"


class UnknownSweepError(NotFoundError):
    type, title = "unknown-sweep", "Unknown sweep"


class UnknownCacheEntryError(NotFoundError):
    type, title = "unknown-cache-entry", "Unknown cache entry"


class UnknownTokenError(NotFoundError):
    type, title = "unknown-token", "Unknown token"


class ConflictError(RegistryError):
    status, type, title = 409, "conflict", "Conflict"


class VersionExistsError(ConflictError):
    type, title = "version-exists", "Version already published"


class TeamExistsError(ConflictError):
    type, title = "team-exists", "Team already exists"


class PayloadTooLargeError(RegistryError):
    status, type, title = 413, "payload-too-large", "Payload too large"


class InvalidInputError(RegistryError):
    status, type, title = 422, "invalid-input", "Invalid input"


class InvalidNameError(InvalidInputError):
    type, title = "invalid-name", "Invalid name"


class InvalidVersionError(InvalidInputError):
    type, title = "invalid-version", "Invalid version"


class SemverError(InvalidVersionError):
    """A publish whose version is smaller than its changes need (``semver_check``): the
    detail has one line per change that needs more; ``accepted`` is the smallest version
    that would pass."""

    type, title = "semver-violation", "Version under-bumped"

    @property
    def lines(self) -> list[str]:
        """The refusal, one line per change (the CLI prints each as an error line)."""
        refusals = self.extra.get("refusals")
        return [str(line) for line in refusals] if refusals else self.detail.splitlines()


class InvalidRangeError(InvalidInputError):
    type, title = "invalid-range", "Invalid version range"


class ManifestError(InvalidInputError):
    """A ``modreg.toml`` is wrong; with several problems, ``problems`` holds one line each
    (sent in the problem body too, so the client lists them the same way)."""

    type, title = "invalid-manifest", "Invalid manifest"

    @property
    def problems(self) -> list[str]:
        found = self.extra.get("problems")
        return [str(line) for line in found] if isinstance(found, list) else []


class DigestMismatchError(InvalidInputError):
    type, title = "digest-mismatch", "Digest mismatch"


class UnsatisfiableRangeError(InvalidInputError):
    type, title = "unsatisfiable-range", "No version satisfies the range"


class UnsafeArchiveError(InvalidInputError):
    type, title = "unsafe-archive", "Unsafe archive"


def _all_subclasses(cls: type[RegistryError]) -> list[type[RegistryError]]:
    found: list[type[RegistryError]] = []
    for sub in cls.__subclasses__():
        found.append(sub)
        found.extend(_all_subclasses(sub))
    return found


def error_class_for(problem_type: str, status: int) -> type[RegistryError]:
    """The error class a problem body names, or the closest one by status."""
    classes: list[type[RegistryError]] = [RegistryError, *_all_subclasses(RegistryError)]
    for cls in classes:
        if cls.type == problem_type:
            return cls
    for cls in classes:  # RegistryError first: a bare 400 is none of its subclasses
        if cls.status == status and (cls is RegistryError or cls.__bases__ == (RegistryError,)):
            return cls
    return RegistryError
