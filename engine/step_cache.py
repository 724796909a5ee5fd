"""The step cache: fingerprint -> outputs, on this machine first, then the team's registry.

Looking up: the local cache (the state dir) answers first, and only for entries whose
outputs are all in the artifact store; the misses go to the registry in ONE bulk call, so a
no-change re-run touches no network. Sharing an executed step: its output blobs go to the
registry first, then the cache entry, so a teammate who finds the entry finds every blob it
names. A failure to share never fails the step: the result stays in the local cache, marked
unshared, and the next run that reuses it tries again.

A hit is only a hit while its outputs exist: a local entry whose blobs are no longer in the
store (pruned) is dropped, and a registry entry whose blobs are neither here nor in the
registry (collected, lost) is a miss, so the step executes again instead of failing the run.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from pathlib import Path

from modreg.engine.protocol import RegistryProtocol
from modreg.engine.state import CacheEntry, StateDir
from modreg.engine.store import ArtifactStore
from modreg.registry.schemas import CacheEntryCreate, OutputRef


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
        misses = [fingerprint for fingerprint in fingerprints if fingerprint not in hits]
        if misses and self.registry is not None:
            hits.update(self._remote_hits(self.registry, misses))
        return hits

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
        self, registry: RegistryProtocol, fingerprints: list[str]
    ) -> dict[str, CacheEntry]:
        try:
            entries = registry.lookup_cache(sorted(fingerprints))
        except Exception as exc:  # noqa: BLE001 - a cache miss, not a failed run
            self.warnings.append(f"registry cache lookup failed, executing instead: {exc}")
            return {}
        wanted = set(fingerprints)
        return {
            fp: CacheEntry(outputs=dict(entry.outputs), run_id=entry.run_id, step=entry.step)
            for fp, entry in entries.items()
            if fp in wanted and self._outputs_exist(registry, fp, entry.outputs.values())
        }

    def _outputs_exist(
        self, registry: RegistryProtocol, fingerprint: str, outputs: Iterable[OutputRef]
    ) -> bool:
        """Whether every output of a registry entry is here or in the registry (one HEAD
        each for those not here); an entry whose blobs are gone is a miss."""
        for ref in outputs:
            if self.store.has_output(ref):
                continue
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
        try:
            for ref in outputs.values():
                for digest in self.store.blobs_of(ref):
                    _upload_blob(self.registry, self.store, digest)
            entry = CacheEntryCreate(outputs=outputs, run_id=run_id, step=step)
            self.registry.record_cache(fingerprint, entry)
        except Exception as exc:  # noqa: BLE001 - the run still succeeded locally
            self.warnings.append(
                f"step {step!r}: could not share its outputs with the registry: {exc}"
            )
            return False
        return True


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
