"""The step cache: fingerprint -> outputs, on this machine first, then the team's registry.

Looking up: the local cache (the state dir) answers first, and only for entries whose
outputs are all in the artifact store; the misses go to the registry in ONE bulk call.
A local entry that the registry shares (``shared``) is asked about in that same call: one the
registry no longer holds was evicted (``modreg cache evict``, a poisoned result), so it is
dropped here too and the step executes. An unreachable registry keeps every local entry
(the run does not depend on it). The price: a no-change re-run makes one lookup call per
level of the graph, where it made none (a chain of 20: 20 calls, ~17 ms each on loopback
on a loaded 2-core machine; measured for issue 8).

A hit is only a hit while its outputs exist: a local entry whose blobs are no longer in the
store (pruned) is dropped, and a registry entry whose blobs are neither here nor in the
registry (collected, lost) is a miss, so the step executes again instead of failing the run.

Sharing an executed step: its output blobs go to the registry first, then the cache entry,
so a teammate who finds the entry finds every blob it names. With a shared artifact store
(``ArtifactStore.shared_url``: ``--store s3://…``) the outputs are already where every
teammate and worker reads them: nothing is uploaded (nor read back), and the entry names
the store. An entry naming a store other than ours is a hit only for outputs our store has.
A failure to share never fails the step: the result stays in the local cache, marked
unshared, and the next run that reuses it tries again.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from modreg.engine.protocol import RegistryProtocol
from modreg.engine.state import CacheEntry, StateDir
from modreg.engine.store import ArtifactStore
from modreg.registry.schemas import CacheEntryCreate, CacheEntryPublic, OutputRef


class StepCache:
    """Stored step results; ``registry`` is None offline (then nothing is shared)."""

    def __init__(
        self,
        registry: RegistryProtocol | None,
        state: StateDir,
        store: ArtifactStore,
        warnings: list[str],
    ) -> None:
        self.registry = registry
        self.state = state
        self.store = store
        self.warnings = warnings

    def lookup(self, fingerprints: list[str]) -> dict[str, CacheEntry]:
        """The stored results of those fingerprints that have one: local, then remote."""
        hits: dict[str, CacheEntry] = {}
        for fingerprint in fingerprints:
            if (entry := self.local_hit(fingerprint)) is not None:
                hits[fingerprint] = entry
        asked = [fp for fp in fingerprints if fp not in hits or hits[fp].shared]
        if not asked or self.registry is None:
            return hits
        missing = any(fp not in hits for fp in asked)
        remote = self._remote_hits(self.registry, asked, warn=missing)
        if remote is None:
            return hits
        for fingerprint in asked:
            if fingerprint in hits and fingerprint not in remote:
                self._evicted(fingerprint)
                del hits[fingerprint]
        return {**remote, **hits}

    def _evicted(self, fingerprint: str) -> None:
        self.state.forget(fingerprint)
        self.warnings.append(
            f"cache entry {fingerprint[:12]} was evicted from the registry: executing again"
        )

    def local_hit(self, fingerprint: str) -> CacheEntry | None:
        """The local entry, if every output it names is in the store."""
        entry = self.state.cached(fingerprint)
        if entry is None:
            return None
        if not all(self.store.has_output(r) for r in entry.outputs.values()):
            self.state.forget(fingerprint)  # dangling: its outputs are gone from the store
            return None
        return entry

    def _remote_hits(
        self, registry: RegistryProtocol, fingerprints: list[str], warn: bool
    ) -> dict[str, CacheEntry] | None:
        """The registry's entries among ``fingerprints``; None when it could not answer
        (a warning when that makes steps execute: ``warn``)."""
        try:
            entries = registry.lookup_cache(sorted(fingerprints))
        except Exception as exc:  # noqa: BLE001 - a cache miss, not a failed run
            if warn:
                self.warnings.append(f"registry cache lookup failed, executing instead: {exc}")
            return None
        wanted = set(fingerprints)
        hits = {fp: self.remote_hit(fp, entry) for fp, entry in entries.items() if fp in wanted}
        return {fp: hit for fp, hit in hits.items() if hit is not None}

    def remote_hit(self, fingerprint: str, entry: CacheEntryPublic) -> CacheEntry | None:
        """A registry entry as a local one, if its outputs can be had; else None (a miss)."""
        assert self.registry is not None
        if not self._outputs_exist(self.registry, fingerprint, entry):
            return None
        return CacheEntry(outputs=dict(entry.outputs), run_id=entry.run_id, step=entry.step)

    def _outputs_exist(
        self, registry: RegistryProtocol, fingerprint: str, entry: CacheEntryPublic
    ) -> bool:
        """Whether every output of a registry entry is here or in the registry (one HEAD
        each for those not here); an entry whose blobs are gone is a miss."""
        for ref in entry.outputs.values():
            if self.store.has_output(ref):
                continue
            if entry.store is not None:  # in a store of its own, not registry blobs
                self.warnings.append(
                    f"cache entry {fingerprint[:12]}: its outputs are in {entry.store}, "
                    "not in this run's store; executing the step again"
                )
                return False
            try:
                if registry.has_blob(ref.digest):
                    continue
            except Exception as exc:  # noqa: BLE001 - cannot tell: executing is always safe
                self.warnings.append(f"could not check blob {ref.digest[:12]}: {exc}")
                return False
            self.warnings.append(
                f"cache entry {fingerprint[:12]}: output blob {ref.digest[:12]} is gone "
                "from the registry; executing the step again"
            )
            return False
        return True

    def share(
        self, fingerprint: str, outputs: dict[str, OutputRef], run_id: str | None, step: str
    ) -> bool:
        """Upload the outputs' blobs and record the cache entry; False if that failed."""
        if self.registry is None:
            return False
        shared = self.store.shared_url
        try:
            if shared is None:
                self._upload_outputs(self.registry, outputs)
            entry = CacheEntryCreate(outputs=outputs, run_id=run_id, step=step, store=shared)
            self.registry.record_cache(fingerprint, entry)
        except Exception as exc:  # noqa: BLE001 - the run still succeeded locally
            self.warnings.append(
                f"step {step!r}: could not share its outputs with the registry: {exc}"
            )
            return False
        return True

    def _upload_outputs(self, registry: RegistryProtocol, outputs: dict[str, OutputRef]) -> None:
        for ref in outputs.values():
            for digest in self.store.blobs_of(ref):
                _upload_blob(registry, self.store, digest)


def _upload_blob(registry: RegistryProtocol, store: ArtifactStore, digest: str) -> None:
    """Give the registry one blob of the store (a no-op when the registry has it)."""
    path = store.local_path(digest)
    if path is not None:
        registry.put_blob(digest, path)
        return
    with tempfile.TemporaryDirectory(prefix="modreg-up-") as temp:
        copy = Path(temp) / digest
        store.read_to(digest, copy)
        registry.put_blob(digest, copy)
