"""Garbage collection of a team's shared artifact store (``modreg gc --store URL``).

Step outputs kept in a shared store (``--store s3://…``) are no registry blobs, so the
registry's own ``modreg gc`` never deletes them. This collection runs in the engine, with
the caller's credentials for the store, and takes its roots from the registry
(``GET /gc/store-roots``: the outputs of the team's live cache entries naming this store,
and of the steps of its pinned runs):

1. *Roots*: every root output's blob, and for a folder output its manifest's files (read
   from the store; a manifest that is gone roots nothing more);
2. *Sweep*: every blob of the store that no root reaches and that was written before the
   grace period — an engine writes a step's outputs before the cache entry that names them,
   so a blob younger than the grace period may belong to a step about to be recorded.

A dry run lists what a real one deletes. A deleted blob that a stale local cache entry still
names is a miss on the next run (``step_cache``): the step executes again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from modreg.engine.errors import BlobError
from modreg.engine.store import ArtifactStore
from modreg.registry.schemas import OutputRef, PortType


@dataclass
class StoreCollection:
    """What a collection found: the blobs deleted (or, in a dry run, to delete), and kept."""

    deleted: list[str] = field(default_factory=list)
    kept: int = 0


def reachable(store: ArtifactStore, roots: Iterable[OutputRef]) -> set[str]:
    """Every blob the root outputs consist of (a folder's files too, while its manifest is)."""
    keep: set[str] = set()
    for ref in roots:
        keep.add(ref.digest)
        if ref.type == PortType.dir:
            try:
                keep.update(digest for digest, _ in store.dir_files(ref.digest).values())
            except BlobError:
                continue  # the manifest is gone: its files are reachable from nothing
    return keep


def collect_store(
    store: ArtifactStore, roots: Iterable[OutputRef], grace: timedelta, dry_run: bool = False
) -> StoreCollection:
    """Delete the store's blobs no root reaches, written before ``grace`` ago."""
    keep = reachable(store, roots)
    cutoff = datetime.now(UTC) - grace
    result = StoreCollection()
    for digest, written in sorted(store.list_blobs()):
        if digest in keep or written >= cutoff:
            result.kept += 1
            continue
        if not dry_run:
            store.drop(digest)
        result.deleted.append(digest)
    return result
