"""The wire shapes of the HTTP API, declared once and imported by engine and client.

These are plain pydantic models rather than SQLModel classes: the client and the engine
import them on every command, and SQLModel drags SQLAlchemy in (≈0.6 s here), which would
blow the CLI's start-up budget. The table rows in ``models.py`` are the database's own
shape (ids, foreign keys, hashes) and convert to these at the edge.

The shapes may grow: a newer registry adds answer fields and enum values that an older
client has never heard of. So each model is read two ways, and each field is still
declared once:

- strictly, by default: the server parsing a request, a model built in code. A field the
  model lacks, or a value outside an enum, is refused (a typo must not pass silently);
- leniently, with ``Model.from_answer`` / ``from_answer_json``: how the client reads the
  registry's answers. Unknown fields are dropped; an unknown enum value (a version status
  ``archived``, a run status ``queued``) is kept as a member of its own, so it prints as
  it is (``VersionStatus`` values are ``str``) instead of failing the command.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)
from pydantic_core import CoreSchema, PydanticCustomError, core_schema

SHA256_PATTERN = r"^[0-9a-f]{64}$"
COMMIT_PATTERN = r"^[0-9a-f]{40}$"

# Length limits shared with the table columns (models.py), so an overlong value is a 422
# here rather than a database error.
SHORT_TEXT = 200  # token descriptions, pipeline and step names
LONG_TEXT = 2000  # module descriptions, status messages, remotes
PATH_TEXT = 1000
VERSION_TEXT = 128
RUN_ID_TEXT = 32
ERROR_TEXT = 10_000
FINGERPRINT_TEXT = 128

# Integer bounds of the request, so a number the database cannot hold is a 422 here rather
# than a driver error (a 500): row ids are the tables' INTEGER primary keys (32-bit on
# PostgreSQL), offsets and limits are kept far below the 64-bit range both databases take.
ROW_ID_MAX = 2**31 - 1
OFFSET_MAX = 10**9


_ANSWER = "modreg.answer"  # the validation context key that makes reading lenient


def _is_answer(info: ValidationInfo) -> bool:
    return isinstance(info.context, dict) and info.context.get(_ANSWER) is True


def refuse_nul(value: Any, where: str) -> None:
    """Refuse the NUL character anywhere in ``value``'s text (strings, keys, nested JSON).

    PostgreSQL cannot store it in text or JSON columns (SQLite can), and no name, path,
    description or param of modreg has a use for it, so it is refused on both databases
    before anything is written. Nested ``Wire`` models are skipped: they checked themselves.
    """
    if isinstance(value, str):
        if "\x00" in value:
            raise PydanticCustomError(
                "nul_character", "{where}: text may not contain NUL (\\u0000)", {"where": where}
            )
    elif isinstance(value, dict):
        for key, item in value.items():
            refuse_nul(key, where)
            refuse_nul(item, f"{where}.{key}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            refuse_nul(item, f"{where}.{index}")


class Wire(BaseModel):
    """A JSON shape of the API: strict when validated plainly, lenient ``from_answer``."""

    # Built on first use: a CLI command touches a few of these models, and building all of
    # them at import costs ~120 ms of every command's start-up on a slow machine.
    # Unknown fields are refused by ``_known_fields_only`` unless reading an answer.
    model_config = ConfigDict(extra="ignore", defer_build=True)

    @model_validator(mode="before")
    @classmethod
    def _known_fields_only(cls, data: Any, info: ValidationInfo) -> Any:
        if isinstance(data, dict) and not _is_answer(info):
            unknown = sorted(str(key) for key in data if key not in cls.model_fields)
            if unknown:
                names = ", ".join(repr(name) for name in unknown)
                message = f"unknown field{'s' if len(unknown) > 1 else ''} {names}"
                raise PydanticCustomError("extra_forbidden", message)
        return data

    @model_validator(mode="after")
    def _no_nul_text(self, info: ValidationInfo) -> Self:
        if not _is_answer(info):
            for name in type(self).model_fields:
                refuse_nul(getattr(self, name), name)
        return self

    @classmethod
    def from_answer(cls, data: Any) -> Self:
        """``data`` (parsed JSON) as this model, read as a registry's answer: leniently."""
        return cls.model_validate(data, context={_ANSWER: True})

    @classmethod
    def from_answer_json(cls, data: str | bytes) -> Self:
        """A JSON document as this model, read as a registry's answer: leniently."""
        return cls.model_validate_json(data, context={_ANSWER: True})


class WireEnum(StrEnum):
    """An enum of the wire: strict in requests; in an answer, an unknown value is kept.

    The unknown value becomes a member of its own (not listed by iterating the enum), so
    code typed for the enum keeps working and compares it by its string, and it prints and
    serialises as it is. Code that must act on the value asks ``is_known()`` first.
    """

    def is_known(self) -> bool:
        """Whether this is one of the declared values, not one of a newer registry's."""
        return self.value in type(self)._value2member_map_

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        known = core_schema.enum_schema(cls, list(cls), sub_type="str")
        return core_schema.with_info_wrap_validator_function(cls._keep_unknown, known)

    @classmethod
    def _keep_unknown(
        cls, value: Any, known: ValidatorFunctionWrapHandler, info: ValidationInfo
    ) -> Self:
        try:
            member: Self = known(value)
        except ValidationError:
            if not (isinstance(value, str) and _is_answer(info)):
                raise
            member = str.__new__(cls, value)
            member._name_ = member._value_ = value
        return member


class Scope(WireEnum):
    """What a team token may do; each scope includes the one before it.

    ``read``: read the team's modules, runs, step cache and step outputs; never writes.
    ``run``: read, and record runs, sweeps, cache entries and step outputs (blobs).
    ``publish``: run, and publish and change the team's modules and manage its tokens.
    """

    read = "read"
    run = "run"
    publish = "publish"

    def includes(self, other: Scope) -> bool:
        """Whether a token of this scope may do what ``other`` allows."""
        order = list(Scope)
        return order.index(self) >= order.index(other)


class VersionStatus(WireEnum):
    active = "active"
    deprecated = "deprecated"
    yanked = "yanked"


class PortType(WireEnum):
    file = "file"
    dir = "dir"


class ParamType(WireEnum):
    str = "str"
    int = "int"
    float = "float"
    bool = "bool"
    json = "json"


# --- interface and manifest -------------------------------------------------------------


class Port(Wire):
    """One input or output of a module."""

    type: PortType
    optional: bool = False
    description: str = ""


class Param(Wire):
    """One typed parameter; ``required`` when the manifest gives no default."""

    type: ParamType
    required: bool = False
    default: Any = None
    description: str = ""


class Interface(Wire):
    """The contract between teams: named inputs, outputs and typed params."""

    inputs: dict[str, Port] = Field(default_factory=dict)
    outputs: dict[str, Port] = Field(default_factory=dict)
    params: dict[str, Param] = Field(default_factory=dict)


class EnvironmentSpec(Wire):
    """``[environment]`` of a ``modreg.toml``: what the module needs to run, as declared.

    The requirements come from ``requirements`` (PEP 508 lines), or from the module's file
    ``requirements_file``, or, when neither is given, from the module's committed
    ``requirements.lock``. What runs is the environment lock resolved at publish
    (``EnvironmentPublic``), never these lines.
    """

    python: str | None = Field(default=None, max_length=SHORT_TEXT)  # a range: ">=3.11"
    requirements: list[str] = Field(default_factory=list, max_length=1000)
    requirements_file: str | None = Field(default=None, max_length=PATH_TEXT)


class Manifest(Wire):
    """A validated ``modreg.toml``."""

    name: str
    version: str = Field(max_length=VERSION_TEXT)
    description: str = Field(default="", max_length=LONG_TEXT)
    command: list[str]
    interface: Interface = Field(default_factory=Interface)
    allow_reuse: bool = True
    timeout: float | None = None
    retries: int = 0
    # names of the caller's variables the step receives (values are never stored anywhere)
    env: list[str] = Field(default_factory=list)
    environment: EnvironmentSpec | None = None
    # what one execution needs (manifest.parse_resources): cpus, memory in bytes, GPU
    resources: dict[str, float] = Field(default_factory=dict, max_length=3)


# --- teams and tokens ---------------------------------------------------------------


class TeamCreate(Wire):
    name: str


class TeamPublic(Wire):
    name: str
    created_at: datetime


class TokenCreate(Wire):
    team: str
    scope: Scope
    expires_in_days: int | None = Field(default=None, ge=1, le=36500)
    description: str = Field(default="", max_length=SHORT_TEXT)


class TokenPublic(Wire):
    """A token as listed: never its secret."""

    id: int
    team: str | None
    scope: Scope | None
    admin: bool = False
    description: str = ""
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None


class TokenCreated(TokenPublic):
    """Answer to token creation: the only time the secret is shown."""

    token: str


class Identity(Wire):
    """Who the caller is (``GET /api/v1/whoami``)."""

    authenticated: bool
    admin: bool = False
    team: str | None = None
    scope: Scope | None = None
    token_id: int | None = None


# --- modules and versions ------------------------------------------------------------


class ModulePublic(Wire):
    name: str  # "team/name"
    team: str
    description: str = ""
    default_version: str | None = None
    latest_version: str | None = None
    created_at: datetime


class VersionCreate(Wire):
    """A publish: the archive blob must already be uploaded under ``sha256``."""

    version: str = Field(max_length=VERSION_TEXT)
    commit: str = Field(pattern=COMMIT_PATTERN)
    tree_sha: str = Field(pattern=COMMIT_PATTERN)
    path: str = Field(default="", max_length=PATH_TEXT)  # the module's folder, "" for the root
    remote: str | None = Field(default=None, max_length=LONG_TEXT)
    sha256: str = Field(pattern=SHA256_PATTERN)
    manifest: Manifest
    # the environment lock, uploaded as a blob first; exactly when the manifest has one
    environment_sha256: str | None = Field(default=None, pattern=SHA256_PATTERN)

    @field_validator("path")
    @classmethod
    def _plain_path(cls, path: str) -> str:
        return check_module_path(path)


def check_module_path(path: str) -> str:
    """A module's folder inside its repo: "" (the root) or a relative POSIX path of plain
    names, never ``..``, ``.``, an absolute path, a backslash or an empty segment."""
    if path and ("\\" in path or any(part in ("", ".", "..") for part in path.split("/"))):
        raise ValueError(
            f"path {path!r} is not a folder of the repository: expected a relative POSIX path "
            "such as 'modules/prep' (or '' for the root)"
        )
    return path


class EnvironmentPublic(Wire):
    """A published version's environment lock: what its steps run with."""

    sha256: str  # the lock, a blob: immutable with the version
    python: str  # the Python it was resolved for: the lowest the range allows ("3.11")
    python_range: str | None = None  # the declared range, as written
    packages: dict[str, str] = Field(default_factory=dict)  # name -> exact version(s)


class VersionPublic(Wire):
    module: str  # "team/name"
    version: str
    status: VersionStatus
    status_message: str | None = None
    commit: str
    tree_sha: str
    path: str
    remote: str | None = None
    sha256: str
    size: int
    manifest: Manifest
    published_at: datetime
    published_by: int | None = None  # token id
    environment: EnvironmentPublic | None = None
    replaced_by: str | None = None  # the successor of a deprecated version


class PublishResult(Wire):
    """Answer to a publish; ``created`` is false when an identical publish was replayed."""

    created: bool
    version: VersionPublic


class StatusChange(Wire):
    """Body of deprecate / yank / unyank: the message or reason shown to users, and for a
    deprecation the successor to use instead (``team/name@RANGE``)."""

    message: str | None = Field(default=None, max_length=LONG_TEXT)
    replaced_by: str | None = Field(default=None, max_length=SHORT_TEXT)


class DependentPublic(Wire):
    """A pipeline that uses a module version (``GET …/dependents``): names and dates only."""

    team: str
    pipeline: str
    step: str
    range: str | None = None  # as written in the pipeline; None: no range (the default)
    version: str
    status: VersionStatus = VersionStatus.active  # of that version
    replaced_by: str | None = None
    last_run_at: datetime


class DefaultVersion(Wire):
    version: str | None = Field(max_length=VERSION_TEXT)


# --- resolution ----------------------------------------------------------------------


class ResolveRequest(Wire):
    """Many references in one call: ``team/name``, ``team/name@RANGE``."""

    refs: list[str] = Field(max_length=1000)


class Resolution(Wire):
    """The answer for one reference: a version, or the error that prevents one."""

    ref: str
    module: str | None = None
    range: str | None = None
    version: VersionPublic | None = None
    reason: str = ""  # why this version: "highest active version satisfying ^1.2", …
    warnings: list[str] = Field(default_factory=list)
    error: dict[str, Any] | None = None  # a problem body when no version could be chosen


class ResolveResponse(Wire):
    results: list[Resolution]


# --- blobs, step cache and runs -------------------------------------------------------


class OutputRef(Wire):
    """A step output in the artifact store: a file blob, or a dir manifest blob."""

    type: PortType
    digest: str = Field(pattern=SHA256_PATTERN)
    size: int = 0


class DirFile(Wire):
    """One file of a folder output: the blob holding its bytes, and its size."""

    digest: str = Field(pattern=SHA256_PATTERN)
    size: int = Field(ge=0)


class DirManifest(Wire):
    """A folder output, stored as a blob of its own: its files, by relative POSIX path.

    The bytes are canonical JSON (sorted keys, compact, UTF-8):
    ``{"files": {"rel/path": {"digest": "<sha256>", "size": N}}, "type": "dir"}``, and the
    folder's digest is their sha256, so a folder given as a path and a folder produced by a
    step have the same digest when their files do. The engine writes these (its artifact
    store); the registry reads them to follow a folder output to its member blobs (who may
    read them; later, what garbage collection keeps).
    """

    type: Literal["dir"] = "dir"
    files: dict[str, DirFile] = Field(default_factory=dict)

    @classmethod
    def of(cls, files: Mapping[str, tuple[str, int]]) -> DirManifest:
        """The manifest of ``files``: relative path -> (digest, size)."""
        entries = {rel: {"digest": digest, "size": size} for rel, (digest, size) in files.items()}
        return cls.model_validate({"files": entries})

    @classmethod
    def from_bytes(cls, data: bytes) -> DirManifest:
        """Parse a manifest blob; a ``ValueError`` (pydantic's) when it is not one."""
        return cls.model_validate_json(data)

    def to_bytes(self) -> bytes:
        """The canonical bytes, whose sha256 is the folder's digest."""
        text = json.dumps(
            self.model_dump(mode="json"),
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
            allow_nan=False,
        )
        return text.encode("utf-8")

    def members(self) -> dict[str, tuple[str, int]]:
        """Relative path -> (digest, size) of every file."""
        return {rel: (entry.digest, entry.size) for rel, entry in self.files.items()}


class CacheEntryCreate(Wire):
    """A step result. With ``store`` (a shared artifact store's URL, ``s3://bucket/prefix``)
    the outputs stay in that store and are not registry blobs: the registry neither checks
    nor keeps them, and a reader without access to that store executes the step instead."""

    outputs: dict[str, OutputRef]
    run_id: str | None = Field(default=None, max_length=RUN_ID_TEXT)
    step: str | None = Field(default=None, max_length=SHORT_TEXT)
    store: str | None = Field(default=None, min_length=1, max_length=PATH_TEXT)


class CacheEntryPublic(Wire):
    fingerprint: str
    team: str
    outputs: dict[str, OutputRef]
    run_id: str | None = None
    step: str | None = None
    created_at: datetime
    store: str | None = None


class CacheLookup(Wire):
    fingerprints: list[str] = Field(max_length=10000)


class CacheLookupResult(Wire):
    entries: dict[str, CacheEntryPublic]  # only the fingerprints that have an entry


class BlobCompose(Wire):
    """A blob larger than one upload, sent as chunks (each a blob the team uploaded, in
    order): the registry joins them, and the whole must hash to the name."""

    chunks: list[str] = Field(min_length=1, max_length=100_000)


class StoreRoots(Wire):
    """What keeps step outputs in a team's shared artifact store: the outputs of its live
    cache entries naming that store, and of the steps of its pinned runs."""

    outputs: list[OutputRef]


class LeaseClaim(Wire):
    """Claim the right to execute a fingerprint for the caller's team, for ``ttl`` seconds
    (renewed by ``LeaseRenewal`` while the step runs)."""

    holder: str = Field(min_length=1, max_length=SHORT_TEXT)
    ttl: float = Field(gt=0, le=3600)
    # a holder the claimant knows is dead (an engine of its own machine, killed): its lease is
    # taken over without waiting for it to expire
    replaces: str | None = Field(default=None, min_length=1, max_length=SHORT_TEXT)


class LeaseGrant(Wire):
    """The answer to a claim: ``granted`` to the caller, or held by ``holder`` until
    ``expires_at``; ``entry`` when the step's result is already stored (reuse it)."""

    fingerprint: str
    granted: bool
    holder: str | None = None
    expires_at: datetime | None = None
    entry: CacheEntryPublic | None = None


class LeaseRenewal(Wire):
    """One heartbeat for every lease an engine holds."""

    holder: str = Field(min_length=1, max_length=SHORT_TEXT)
    ttl: float = Field(gt=0, le=3600)
    # a holder the claimant knows is dead (an engine of its own machine, killed): its lease is
    # taken over without waiting for it to expire
    replaces: str | None = Field(default=None, min_length=1, max_length=SHORT_TEXT)
    fingerprints: list[str] = Field(max_length=10000)


class LeasesRenewed(Wire):
    held: list[str]  # the renewed ones; a lease missing here expired and was taken over


class CacheEviction(Wire):
    """Which cache entries to evict: named ``fingerprints``, or every entry a step of
    ``module`` (``team/name``) at ``version`` produced. ``team``: whose cache (a team
    token's own by default; for the admin, the one named, else every team's)."""

    team: str | None = Field(default=None, max_length=SHORT_TEXT)
    fingerprints: list[str] = Field(default_factory=list, max_length=1000)
    module: str | None = Field(default=None, max_length=SHORT_TEXT)
    version: str | None = Field(default=None, max_length=VERSION_TEXT)


class CacheEvicted(Wire):
    evicted: list[CacheEntryPublic]


class RunStatus(WireEnum):
    pending = "pending"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"
    # the engine stopped heartbeating while the run was running (killed, or its registry went
    # away): as read once the heartbeat timeout passed, and as stored once a later run closed it
    abandoned = "abandoned"


class StepStatus(WireEnum):
    pending = "pending"
    running = "running"
    executed = "executed"
    reused = "reused"
    failed = "failed"
    skipped = "skipped"
    cancelled = "cancelled"


class StepRunRecord(Wire):
    """One step of a run, as the engine reports it (PUT, idempotent)."""

    status: StepStatus
    module: str
    version: str
    fingerprint: str | None = Field(default=None, max_length=FINGERPRINT_TEXT)
    params: dict[str, Any] = Field(default_factory=dict)  # as run: the module's defaults filled in
    reused_from: str | None = None  # the run id whose result was reused
    outputs: dict[str, OutputRef] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)
    log_digest: str | None = None  # the step's log, as a blob
    exit_code: int | None = None
    error: str | None = None
    warnings: list[str] = Field(default_factory=list, max_length=100)  # it succeeded, but…
    explain: str | None = None  # why it executed: no earlier result / what changed
    started_at: datetime | None = None
    ended_at: datetime | None = None


class RunCreate(Wire):
    pipeline: str = Field(max_length=SHORT_TEXT)
    sweep_id: str | None = None
    variant: dict[str, Any] = Field(default_factory=dict)
    spec: dict[str, Any] = Field(default_factory=dict)  # the pipeline as run (resolved)
    lock: dict[str, Any] = Field(default_factory=dict)  # the pipeline.lock as run


class RunUpdate(Wire):
    status: RunStatus
    ended_at: datetime | None = None
    error: str | None = Field(default=None, max_length=ERROR_TEXT)


class StepRunBatch(Wire):
    """Many steps of one run at once (PUT, idempotent): one round trip for a whole run.

    With ``finish``, the run's final status is set in the same transaction.
    """

    steps: dict[str, StepRunRecord] = Field(max_length=10000)
    finish: RunUpdate | None = None


class RunBase(Wire):
    """What every record of a run holds: the registry's (``RunPublic``) and the one a machine
    keeps of its own runs (``engine.state.LocalRun``)."""

    id: str
    pipeline: str
    sweep_id: str | None = None
    variant: dict[str, Any] = Field(default_factory=dict)
    status: RunStatus
    error: str | None = None
    spec: dict[str, Any] = Field(default_factory=dict)
    lock: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime
    ended_at: datetime | None = None
    steps: dict[str, StepRunRecord] = Field(default_factory=dict)


class RunPublic(RunBase):
    team: str
    heartbeat_at: datetime | None = None
    pinned: bool = False  # garbage collection keeps its step outputs, logs and cache entries


class SweepCreate(Wire):
    """A sweep, and (optionally) all its runs at once, created in this order."""

    pipeline: str = Field(max_length=SHORT_TEXT)
    axes: dict[str, list[Any]] = Field(default_factory=dict)
    runs: list[RunCreate] = Field(default_factory=list, max_length=10000)


class SweepPublic(Wire):
    id: str
    team: str
    pipeline: str
    axes: dict[str, list[Any]] = Field(default_factory=dict)
    created_at: datetime
    run_ids: list[str] = Field(default_factory=list)


class Problem(Wire):
    """Every error answer (RFC 9457, ``application/problem+json``); some carry more fields
    (``errors`` of a 422, ``expected`` / ``actual`` digests, the winner of a 409)."""

    type: str
    title: str
    status: int
    detail: str


class Health(Wire):
    status: str
    version: str
    database: str
    corrupt_blobs: int = 0  # blobs this server found corrupt and dropped since it started
    # one upload's limit: a client sends a larger blob in chunks (POST /blobs/{sha}/compose)
    max_upload_bytes: int | None = None


class GcRequest(Wire):
    """``POST /gc``: collect blobs unseen for ``grace_seconds`` that nothing refers to."""

    dry_run: bool = False
    grace_seconds: int = Field(default=24 * 3600, ge=0, le=100 * 365 * 86400)


class GcBlob(Wire):
    sha256: str
    size: int


class GcReport(Wire):
    """What a collection deleted (or, in a dry run, would delete)."""

    dry_run: bool
    grace_seconds: int
    retention_seconds: int | None = None  # the registry's cache retention; None: never
    expired_cache_entries: int = 0
    blobs: list[GcBlob] = Field(default_factory=list)

    @property
    def bytes(self) -> int:
        return sum(blob.size for blob in self.blobs)
