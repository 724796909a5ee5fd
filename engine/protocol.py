"""What the engine needs from a registry, as a protocol.

The engine never imports the client: it is handed an object with these methods.
``modreg.client.RegistryClient`` implements them over HTTP; methods and argument names
match the endpoints in docs/http-api.md one to one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from modreg.registry.schemas import (
    CacheEntryCreate,
    CacheEntryPublic,
    LeaseClaim,
    LeaseGrant,
    LeaseRenewal,
    Resolution,
    RunCreate,
    RunPublic,
    RunUpdate,
    StepRunBatch,
    SweepCreate,
    SweepPublic,
)


class RegistryProtocol(Protocol):
    """The registry operations a pipeline run uses."""

    def resolve(self, refs: list[str]) -> list[Resolution]:
        """One bulk call: a Resolution per ref, in order; per-ref errors inside."""
        ...

    def put_blob(self, sha256: str, path: Path) -> None:
        """Upload a file whose sha256 is known; a no-op when the blob exists."""
        ...

    def has_blob(self, sha256: str) -> bool:
        """Whether the registry holds the blob (and the caller may read it)."""
        ...

    def get_blob(self, sha256: str, dest: Path) -> None:
        """Download a blob to ``dest`` (atomically), verifying its sha256."""
        ...

    def lookup_cache(self, fingerprints: list[str]) -> dict[str, CacheEntryPublic]: ...

    def record_cache(self, fingerprint: str, entry: CacheEntryCreate) -> CacheEntryPublic: ...

    def claim_lease(self, fingerprint: str, claim: LeaseClaim) -> LeaseGrant:
        """Claim a step's execution for the team: granted, held elsewhere, or already done."""
        ...

    def renew_leases(self, renewal: LeaseRenewal) -> list[str]:
        """Renew every lease named; the ones still held."""
        ...

    def release_lease(self, fingerprint: str, holder: str) -> None: ...

    def create_sweep(self, sweep: SweepCreate) -> SweepPublic: ...

    def create_run(self, run: RunCreate) -> RunPublic: ...

    def record_steps(self, run_id: str, batch: StepRunBatch) -> None:
        """Every step of a run, and with ``batch.finish`` its end, in one call."""
        ...

    def get_run(self, run_id: str) -> RunPublic: ...

    def update_run(self, run_id: str, update: RunUpdate) -> RunPublic:
        """Set a run's status: ``running`` again is a heartbeat; ``abandoned`` closes it."""
        ...
