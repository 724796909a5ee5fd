"""``RegistryClient``: the HTTP API of docs/http-api.md as Python methods, on httpx.

One method per endpoint, taking and returning the wire models of ``modreg.registry.schemas``.
It implements ``modreg.engine.protocol.RegistryProtocol``, so the engine can be handed one.
Answers are read leniently (``Wire.from_answer``): a newer registry's extra fields are
ignored and its new enum values kept, so it never breaks this client.

Failure handling, in one place (``_send``):

- a problem+json answer is raised as the very class of ``modreg.registry.errors`` it names
  (``version-exists`` -> ``VersionExistsError``), with the server's detail as the message;
- idempotent calls (GET, HEAD, PUT, PATCH of a run's final state, and the POSTs
  ``/resolve``, ``/cache/lookup`` and ``/leases/renew``) are retried with exponential
  backoff on transport errors and on 502/503/504; a publish or a run creation is sent once;
- when the registry stays unreachable, ``RegistryUnavailableError`` names the URL;
- every request says which modreg and API level it comes from, and an answer from a
  registry too old for this client is ``RegistryTooOldError`` (``registry.compatibility``).

Downloads stream to a temp file beside the destination, are hashed on the way, and are
renamed into place only when the sha256 matches, so a bad download leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import os
import ssl
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar
from urllib.parse import quote, unquote

import httpx
from pydantic import ValidationError

from modreg.client.config import ClientConfig, load_config, normalize_url
from modreg.client.errors import RegistryTooOldError, RegistryUnavailableError
from modreg.registry import compatibility
from modreg.registry.errors import (
    PROBLEM_DETAIL_HEADER,
    PROBLEM_TYPE_HEADER,
    DigestMismatchError,
    RegistryError,
    error_class_for,
)
from modreg.registry.schemas import (
    BlobCompose,
    CacheEntryCreate,
    CacheEntryPublic,
    CacheEvicted,
    CacheEviction,
    CacheLookup,
    CacheLookupResult,
    DefaultVersion,
    DependentPublic,
    GcReport,
    GcRequest,
    Health,
    Identity,
    LeaseClaim,
    LeaseGrant,
    LeaseRenewal,
    LeasesRenewed,
    ModulePublic,
    OutputRef,
    PublishResult,
    Resolution,
    ResolveRequest,
    ResolveResponse,
    RunCreate,
    RunPublic,
    RunUpdate,
    Scope,
    StatusChange,
    StepRunBatch,
    StoreRoots,
    SweepCreate,
    SweepPublic,
    TeamCreate,
    TeamPublic,
    TokenCreate,
    TokenCreated,
    TokenPublic,
    VersionCreate,
    VersionPublic,
    Wire,
)

API_PREFIX = "/api/v1"
RETRY_STATUSES = frozenset({502, 503, 504})
CHUNK_SIZE = 1024 * 1024
PROBLEM_KEYS = frozenset({"type", "title", "status", "detail"})

M = TypeVar("M", bound=Wire)


def problem_error(problem: Mapping[str, Any], status: int) -> RegistryError:
    """The exception a problem+json body describes, as the class it names."""
    slug = str(problem.get("type") or "").rsplit("/", 1)[-1]
    cls = error_class_for(slug, status)
    detail = problem.get("detail") or problem.get("title") or f"HTTP {status}"
    if not isinstance(detail, str):  # e.g. a framework's list of validation errors
        detail = _first_validation_message(detail)
    extra = {k: v for k, v in problem.items() if k not in PROBLEM_KEYS}
    return cls(detail, **extra)


def _first_validation_message(detail: Any) -> str:
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        first = detail[0]
        where = ".".join(str(part) for part in first.get("loc", ()))
        return f"{where}: {first.get('msg', 'invalid')}"
    return str(detail)


def _header_problem(headers: httpx.Headers) -> dict[str, str]:
    """The problem a body-less answer (to HEAD) carries in its ``Modreg-Problem-*`` headers."""
    return {
        "type": unquote(headers.get(PROBLEM_TYPE_HEADER, "")),
        "detail": unquote(headers.get(PROBLEM_DETAIL_HEADER, "")),
    }


def resolution_error(resolution: Resolution) -> RegistryError | None:
    """The error of a per-reference resolve failure, or None when a version was chosen."""
    if resolution.version is not None:
        return None
    problem = resolution.error or {"detail": f"cannot resolve {resolution.ref!r}"}
    return problem_error(problem, int(problem.get("status") or 422))


def module_path(module: str) -> str:
    """``team/name`` as the URL path ``/modules/team/name`` (each part quoted)."""
    team, _, name = module.partition("/")
    return f"/modules/{quote(team, safe='')}/{quote(name, safe='')}"


def version_path(module: str, version: str) -> str:
    return f"{module_path(module)}/versions/{quote(version, safe='')}"


def _default_transport(url: str) -> httpx.HTTPTransport:
    """httpx's transport; for a plain-http registry without loading the CA bundle (~0.1 s).

    The context given for http:// has no CA at all, so if TLS were ever attempted through it
    (it is not: the base URL is http and redirects are not followed) it would fail closed.
    """
    if url.startswith("https://"):
        return httpx.HTTPTransport()
    return httpx.HTTPTransport(verify=ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT))


CHUNK_BYTES = 64 * 2**20  # a chunk of an upload larger than the registry's limit
DEFAULT_UPLOAD_LIMIT = 100 * 2**20  # a registry too old to say its own


def _copy_chunk(source: BinaryIO, dest: Path, size: int) -> str | None:
    """Copy the next ``size`` bytes of ``source`` to ``dest``; their sha256, None at the end."""
    digest, left = hashlib.sha256(), size
    with dest.open("wb") as out:
        while left and (data := source.read(min(left, 1 << 20))):
            digest.update(data)
            out.write(data)
            left -= len(data)
    return digest.hexdigest() if left < size else None


class RegistryClient:
    """A connection to one registry; use as a context manager, or call ``close()``."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        retries: int = 3,
        backoff: float = 0.25,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = normalize_url(url)
        self.retries = retries
        self.backoff = backoff
        self._upload_limit: int | None = None  # the registry's, read from /health when needed
        headers = compatibility.request_headers()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(
            base_url=self.url + API_PREFIX,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            transport=transport or _default_transport(self.url),
        )

    @classmethod
    def from_config(cls, config: ClientConfig | None = None, **options: Any) -> RegistryClient:
        """A client for ``config``; without one, for the registry and token the ``modreg``
        command would use (``MODREG_URL`` / ``MODREG_TOKEN``, else what ``modreg login`` saved)."""
        config = load_config() if config is None else config
        return cls(config.url, config.token, **options)

    def worker_access(self) -> RegistryAccess:
        """How a Dask worker reaches this registry: its URL, with the worker's own token."""
        from modreg.client.worker_access import RegistryAccess

        return RegistryAccess(self.url)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RegistryClient({self.url!r})"

    # --- transport ------------------------------------------------------------------------

    def _send(
        self,
        method: str,
        path: str,
        *,
        idempotent: bool,
        stream: bool = False,
        upload: Path | None = None,
        ok_statuses: frozenset[int] = frozenset(),
        **kwargs: Any,
    ) -> httpx.Response:
        """Send one request, retrying idempotent ones; raise the error an answer describes."""
        attempts = 1 + (self.retries if idempotent else 0)
        for attempt in range(attempts):
            last = attempt + 1 == attempts
            try:
                response = self._attempt(method, path, stream, upload, kwargs)
            except httpx.TransportError as exc:
                if last:
                    raise self._unavailable(method, path, exc) from exc
                self._sleep(attempt)
                continue
            if response.status_code in RETRY_STATUSES and not last:
                response.close()
                self._sleep(attempt)
                continue
            return self._check(response, method, path, ok_statuses)
        raise AssertionError("unreachable")  # pragma: no cover

    def _attempt(
        self, method: str, path: str, stream: bool, upload: Path | None, kwargs: dict[str, Any]
    ) -> httpx.Response:
        if upload is None:
            request = self._http.build_request(method, path, **kwargs)
            return self._http.send(request, stream=stream)
        with upload.open("rb") as body:  # reopened per attempt, so a retry resends it whole
            request = self._http.build_request(method, path, content=body, **kwargs)
            return self._http.send(request, stream=stream)

    def _sleep(self, attempt: int) -> None:
        time.sleep(self.backoff * (2**attempt))

    def _unavailable(self, method: str, path: str, exc: Exception) -> RegistryUnavailableError:
        reason = str(exc) or type(exc).__name__
        return RegistryUnavailableError(
            f"cannot reach the registry at {self.url} ({method} {API_PREFIX}{path}): {reason}"
        )

    def _check(
        self, response: httpx.Response, method: str, path: str, ok_statuses: frozenset[int]
    ) -> httpx.Response:
        refusal = compatibility.registry_refusal(response.headers, self.url)
        if refusal is not None:
            response.close()
            raise RegistryTooOldError(refusal)
        status = response.status_code
        if status < 400 or status in ok_statuses:
            return response
        response.read()
        response.close()
        if status in RETRY_STATUSES:
            raise RegistryUnavailableError(
                f"the registry at {self.url} answered {status} {response.reason_phrase} "
                f"to {method} {API_PREFIX}{path}"
            )
        raise self._error_from(response, method, path)

    def _error_from(self, response: httpx.Response, method: str, path: str) -> RegistryError:
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and ("type" in body or "detail" in body):
            return problem_error(body, response.status_code)
        if PROBLEM_TYPE_HEADER in response.headers:  # a HEAD answer: the problem in headers
            return problem_error(_header_problem(response.headers), response.status_code)
        cls = error_class_for("", response.status_code)
        return cls(
            f"the registry at {self.url} answered {response.status_code} "
            f"{response.reason_phrase} to {method} {API_PREFIX}{path}"
        )

    def _model(self, model: type[M], method: str, path: str, **kwargs: Any) -> M:
        idempotent = kwargs.pop("idempotent", method in ("GET", "HEAD", "PUT"))
        response = self._send(method, path, idempotent=idempotent, **kwargs)
        try:
            return model.from_answer_json(response.content)
        except ValidationError as exc:
            raise self._not_modreg(method, path) from exc

    def _models(self, model: type[M], path: str, **kwargs: Any) -> list[M]:
        response = self._send("GET", path, idempotent=True, **kwargs)
        try:
            return [model.from_answer(item) for item in response.json()]
        except (ValidationError, ValueError, TypeError) as exc:
            raise self._not_modreg("GET", path) from exc

    def _not_modreg(self, method: str, path: str) -> RegistryUnavailableError:
        """A 2xx answer that is not a modreg document: a proxy page, the wrong port."""
        return RegistryUnavailableError(
            f"{self.url} answered {method} {API_PREFIX}{path} with something that is not a "
            "modreg response; is this the registry's URL?"
        )

    def _download(self, path: str, dest: Path, expected_sha256: str) -> int:
        """Stream ``path`` into ``dest`` atomically, verifying its sha256; returns its size."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        handle, temp_name = tempfile.mkstemp(
            dir=dest.parent, prefix=f".{dest.name}.", suffix=".part"
        )
        temp = Path(temp_name)
        try:
            with os.fdopen(handle, "wb") as out:
                size, digest = self._stream_with_retries(path, out)
            if digest != expected_sha256:
                raise DigestMismatchError(
                    f"download of {API_PREFIX}{path} from {self.url} has sha256 {digest}, "
                    f"expected {expected_sha256}"
                )
            os.replace(temp, dest)
        finally:
            temp.unlink(missing_ok=True)
        return size

    def _stream_with_retries(self, path: str, out: BinaryIO) -> tuple[int, str]:
        """Write the body of ``GET path`` to ``out``; a body cut off midway is fetched again."""
        for attempt in range(self.retries + 1):
            out.seek(0)
            out.truncate()
            try:
                return self._stream_once(path, out)
            except httpx.TransportError as exc:
                if attempt == self.retries:
                    raise self._unavailable("GET", path, exc) from exc
                self._sleep(attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def _stream_once(self, path: str, out: BinaryIO) -> tuple[int, str]:
        hasher, size = hashlib.sha256(), 0
        response = self._send("GET", path, idempotent=True, stream=True)
        try:
            for chunk in response.iter_bytes(CHUNK_SIZE):
                out.write(chunk)
                hasher.update(chunk)
                size += len(chunk)
        finally:
            response.close()
        out.flush()
        os.fsync(out.fileno())
        return size, hasher.hexdigest()

    # --- health, identity, teams, tokens -----------------------------------------------------

    def health(self) -> Health:
        return self._model(Health, "GET", "/health")

    def whoami(self) -> Identity:
        return self._model(Identity, "GET", "/whoami")

    def create_team(self, name: str) -> TeamPublic:
        body = TeamCreate(name=name).model_dump(mode="json")
        return self._model(TeamPublic, "POST", "/teams", json=body)

    def list_teams(self) -> list[TeamPublic]:
        return self._models(TeamPublic, "/teams")

    def create_token(
        self,
        team: str,
        scope: Scope | str,
        expires_in_days: int | None = None,
        description: str = "",
    ) -> TokenCreated:
        body = TokenCreate(
            team=team, scope=Scope(scope), expires_in_days=expires_in_days, description=description
        )
        return self._model(TokenCreated, "POST", "/tokens", json=body.model_dump(mode="json"))

    def list_tokens(self, team: str | None = None) -> list[TokenPublic]:
        params = {"team": team} if team else {}
        return self._models(TokenPublic, "/tokens", params=params)

    def revoke_token(self, token_id: int) -> None:
        self._send("DELETE", f"/tokens/{int(token_id)}", idempotent=False)

    # --- modules and versions -----------------------------------------------------------------

    def search_modules(
        self,
        text: str | None = None,
        team: str | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[ModulePublic]:
        params = {"q": text, "team": team, "limit": limit, "offset": offset}
        query = {key: value for key, value in params.items() if value not in (None, "")}
        return self._models(ModulePublic, "/modules", params=query)

    def get_module(self, module: str) -> ModulePublic:
        return self._model(ModulePublic, "GET", module_path(module))

    def list_versions(self, module: str) -> list[VersionPublic]:
        return self._models(VersionPublic, f"{module_path(module)}/versions")

    def get_version(self, module: str, version: str) -> VersionPublic:
        return self._model(VersionPublic, "GET", version_path(module, version))

    def publish_version(self, module: str, version: VersionCreate) -> PublishResult:
        """POST the version; its archive must already be uploaded with ``put_blob``."""
        path = f"{module_path(module)}/versions"
        body = version.model_dump(mode="json")
        return self._model(PublishResult, "POST", path, json=body, idempotent=False)

    def deprecate(
        self,
        module: str,
        version: str,
        message: str | None = None,
        replaced_by: str | None = None,
    ) -> VersionPublic:
        return self._status_change(module, version, "deprecate", message, replaced_by)

    def yank(self, module: str, version: str, reason: str) -> VersionPublic:
        return self._status_change(module, version, "yank", reason)

    def unyank(self, module: str, version: str) -> VersionPublic:
        return self._status_change(module, version, "unyank", None)

    def _status_change(
        self,
        module: str,
        version: str,
        action: str,
        message: str | None,
        replaced_by: str | None = None,
    ) -> VersionPublic:
        path = f"{version_path(module, version)}/{action}"
        body = StatusChange(message=message, replaced_by=replaced_by).model_dump(mode="json")
        return self._model(VersionPublic, "POST", path, json=body, idempotent=False)

    def list_dependents(self, module: str, range_text: str | None = None) -> list[DependentPublic]:
        """Which pipelines use which versions of ``module`` (those ``range_text`` allows)."""
        query = {"range": range_text} if range_text else {}
        return self._models(DependentPublic, f"{module_path(module)}/dependents", params=query)

    def set_default(self, module: str, version: str | None) -> ModulePublic:
        body = DefaultVersion(version=version).model_dump(mode="json")
        return self._model(ModulePublic, "PUT", f"{module_path(module)}/default", json=body)

    def download_archive(self, module: str, version: str, dest: Path, sha256: str) -> int:
        """Download a version's source archive to ``dest``, verified against ``sha256``."""
        return self._download(f"{version_path(module, version)}/archive", dest, sha256)

    def resolve(self, refs: list[str]) -> list[Resolution]:
        """One bulk call: a Resolution per ref, in order; per-ref errors inside."""
        body = ResolveRequest(refs=refs).model_dump(mode="json")
        answer = self._model(ResolveResponse, "POST", "/resolve", json=body, idempotent=True)
        return answer.results

    # --- blobs ---------------------------------------------------------------------------

    def has_blob(self, sha256: str) -> bool:
        response = self._send(
            "HEAD", f"/blobs/{sha256}", idempotent=True, ok_statuses=frozenset({404})
        )
        return response.status_code < 400

    def put_blob(self, sha256: str, path: Path) -> None:
        """Upload a file whose sha256 is known; a no-op when the blob exists. A file over the
        registry's upload limit goes in chunks (``_put_chunked``)."""
        if self.has_blob(sha256):
            return
        limit = self._max_upload()
        if path.stat().st_size > limit:
            self._put_chunked(sha256, path, min(limit, CHUNK_BYTES))
            return
        headers = {"Content-Type": "application/octet-stream"}
        self._send("PUT", f"/blobs/{sha256}", idempotent=True, upload=path, headers=headers)

    def _max_upload(self) -> int:
        if self._upload_limit is None:
            self._upload_limit = self.health().max_upload_bytes or DEFAULT_UPLOAD_LIMIT
        return self._upload_limit

    def _put_chunked(self, sha256: str, path: Path, chunk_bytes: int) -> None:
        """Upload a file as chunk blobs, then have the registry compose them. Each chunk is
        an upload of its own, skipped when the registry has it: an upload cut off by a broken
        connection resumes from the chunk it lost, in this call (retries) or the next one.
        One chunk at a time sits in a temporary file, never in memory."""
        chunks = []
        with tempfile.TemporaryDirectory(prefix="modreg-chunks-") as temp, path.open("rb") as src:
            part = Path(temp) / "chunk"
            while digest := _copy_chunk(src, part, chunk_bytes):
                self.put_blob(digest, part)
                chunks.append(digest)
        body = BlobCompose(chunks=chunks).model_dump(mode="json")
        self._send("POST", f"/blobs/{sha256}/compose", idempotent=True, json=body)

    def get_blob(self, sha256: str, dest: Path) -> None:
        """Download a blob to ``dest`` (atomically), verifying its sha256."""
        self._download(f"/blobs/{sha256}", dest, sha256)

    # --- step cache, sweeps and runs ----------------------------------------------------------

    def lookup_cache(self, fingerprints: list[str]) -> dict[str, CacheEntryPublic]:
        body = CacheLookup(fingerprints=fingerprints).model_dump(mode="json")
        answer = self._model(CacheLookupResult, "POST", "/cache/lookup", json=body, idempotent=True)
        return answer.entries

    def record_cache(self, fingerprint: str, entry: CacheEntryCreate) -> CacheEntryPublic:
        body = entry.model_dump(mode="json")
        return self._model(
            CacheEntryPublic, "PUT", f"/cache/{quote(fingerprint, safe='')}", json=body
        )

    def claim_lease(self, fingerprint: str, claim: LeaseClaim) -> LeaseGrant:
        """Claim a step's execution for the team (idempotent for the same holder)."""
        path = f"/leases/{quote(fingerprint, safe='')}"
        return self._model(LeaseGrant, "PUT", path, json=claim.model_dump(mode="json"))

    def renew_leases(self, renewal: LeaseRenewal) -> list[str]:
        body = renewal.model_dump(mode="json")
        answer = self._model(LeasesRenewed, "POST", "/leases/renew", json=body, idempotent=True)
        return answer.held

    def release_lease(self, fingerprint: str, holder: str) -> None:
        path = f"/leases/{quote(fingerprint, safe='')}"
        self._send("DELETE", path, idempotent=True, params={"holder": holder})

    def evict_cache(self, eviction: CacheEviction) -> list[CacheEntryPublic]:
        """Drop cache entries (a publish token of the team, or the admin); the evicted ones."""
        body = eviction.model_dump(mode="json", exclude_none=True)
        answer = self._model(CacheEvicted, "POST", "/cache/evict", json=body, idempotent=False)
        return answer.evicted

    def create_sweep(self, sweep: SweepCreate) -> SweepPublic:
        body = sweep.model_dump(mode="json")
        return self._model(SweepPublic, "POST", "/sweeps", json=body, idempotent=False)

    def get_sweep(self, sweep_id: str) -> SweepPublic:
        return self._model(SweepPublic, "GET", f"/sweeps/{quote(sweep_id, safe='')}")

    def create_run(self, run: RunCreate) -> RunPublic:
        body = run.model_dump(mode="json")
        return self._model(RunPublic, "POST", "/runs", json=body, idempotent=False)

    def list_runs(
        self, sweep: str | None = None, pipeline: str | None = None, limit: int | None = None
    ) -> list[RunPublic]:
        params = {"sweep": sweep, "pipeline": pipeline, "limit": limit}
        query = {key: value for key, value in params.items() if value is not None}
        return self._models(RunPublic, "/runs", params=query)

    def get_run(self, run_id: str) -> RunPublic:
        return self._model(RunPublic, "GET", f"/runs/{quote(run_id, safe='')}")

    def pin_run(self, run_id: str, pinned: bool = True) -> RunPublic:
        """Pin a run (garbage collection keeps its outputs, logs and cache entries) or unpin it."""
        method = "PUT" if pinned else "DELETE"
        path = f"/runs/{quote(run_id, safe='')}/pin"
        return self._model(RunPublic, method, path, idempotent=True)

    def collect_garbage(self, grace_seconds: int, dry_run: bool = False) -> GcReport:
        """Delete (``dry_run``: list) the registry's blobs nothing refers to (the admin only)."""
        body = GcRequest(dry_run=dry_run, grace_seconds=grace_seconds).model_dump(mode="json")
        return self._model(GcReport, "POST", "/gc", json=body, idempotent=dry_run)

    def store_roots(self, store: str) -> list[OutputRef]:
        """The outputs the team's shared artifact store at ``store`` must keep."""
        return self._model(StoreRoots, "GET", "/gc/store-roots", params={"store": store}).outputs

    def update_run(self, run_id: str, update: RunUpdate) -> RunPublic:
        body = update.model_dump(mode="json")
        path = f"/runs/{quote(run_id, safe='')}"
        return self._model(RunPublic, "PATCH", path, json=body, idempotent=True)

    def record_steps(self, run_id: str, batch: StepRunBatch) -> None:
        """Every step of a run in one request (idempotent upserts)."""
        path = f"/runs/{quote(run_id, safe='')}/steps"
        self._send("PUT", path, idempotent=True, json=batch.model_dump(mode="json"))


if TYPE_CHECKING:
    from modreg.client.worker_access import RegistryAccess
    from modreg.engine.protocol import RegistryProtocol

    def _implements_the_engine_protocol(client: RegistryClient) -> RegistryProtocol:
        return client  # mypy checks that RegistryClient satisfies RegistryProtocol
