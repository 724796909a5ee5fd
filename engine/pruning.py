"""``modreg cache prune`` and ``modreg envs prune``: bound the engine's local state, least
recently used first.

What may go: blobs of the local artifact store (``STATE/store/blobs``) and extracted module
sources (``STATE/sources/<sha256>/``, with the record and archive copy kept beside it, and
any folder an interrupted engine set aside); everything else in the state folder is small
(records, logs) or is the registry's to keep. Both are caches: a pruned blob is fetched
from the registry (or its step executes again) and a pruned source is pulled again; a local
step-cache entry whose blobs went is dropped at its next lookup (``step_cache``).

When each was last used: a blob's access or modification time, whichever is later; a
source folder's time, which ``SourceCache.ensure`` refreshes at each use. Items older than
``older_than`` go; then, while the total is above ``max_size``, the oldest go.

Never what a running engine holds: every run holds the state folder's lock shared
(``StateDir.in_use``) and a prune takes it exclusively, refusing at once
(``StateBusyError``) while any engine runs on the folder.

Module environments (``STATE/envs/<digest>/``, ``environments``) are pruned on their own
(``prune_environments``), last used = their marker's time, which each use refreshes. Each is
removed only while its own flock is held exclusively, taken without waiting: one a run uses or
builds is kept, whatever its age, and the prune goes on with the others. A folder a build
that died left (no marker) goes whenever its lock is free.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from modreg.engine.environments import folder_size, held_exclusively, leftovers, list_environments
from modreg.engine.sources import SourceCache
from modreg.engine.state import StateDir


@dataclass(frozen=True, kw_only=True)
class PruneItem:
    """One blob or source folder of the local state."""

    kind: str  # "blob", "source" or "environment"
    name: str  # its sha256 (an environment: its digest)
    size: int
    last_used: float  # seconds since the epoch
    path: Path = field(repr=False)


@dataclass(kw_only=True)
class PruneReport:
    dry_run: bool
    removed: list[PruneItem]
    kept_bytes: int

    @property
    def freed_bytes(self) -> int:
        return sum(item.size for item in self.removed)


def _used(stat: os.stat_result) -> float:
    return max(stat.st_atime, stat.st_mtime)


def _blobs(state: StateDir) -> list[PruneItem]:
    items = []
    for path in (state.store / "blobs").glob("??/*"):
        stat = path.stat()
        items.append(
            PruneItem(
                kind="blob", name=path.name, size=stat.st_size, last_used=_used(stat), path=path
            )  # fmt: skip
        )
    return items


def _kept_size(cache: SourceCache, sha256: str) -> int:
    return sum(path.stat().st_size for path in cache.kept_files(sha256) if path.is_file())


def _sources(state: StateDir) -> list[PruneItem]:
    """Each archive's folder, with its record and archive copy (see ``SourceCache``)."""
    if not state.sources.is_dir():
        return []
    cache = SourceCache(state.sources, None)
    return [
        PruneItem(
            kind="source",
            name=path.name,
            size=folder_size(path) + _kept_size(cache, path.name),
            last_used=path.stat().st_mtime,
            path=path,
        )  # fmt: skip
        for path in state.sources.iterdir()
        if path.is_dir() and not path.name.startswith(".")  # .pull-*: a pull in progress
    ]


def choose(
    items: list[PruneItem], older_than: timedelta | None, max_size: int | None, now: float
) -> list[PruneItem]:
    """What to remove: least recently used first, by age, then until under ``max_size``."""
    ordered = sorted(items, key=lambda item: (item.last_used, item.name))
    total = sum(item.size for item in ordered)
    removed = []
    for item in ordered:
        too_old = older_than is not None and item.last_used < now - older_than.total_seconds()
        too_big = max_size is not None and total > max_size
        if not (too_old or too_big):
            break
        removed.append(item)
        total -= item.size
    return removed


def _remove_folder(path: Path) -> None:
    doomed = path.with_name(f".prune-{uuid.uuid4().hex}")
    os.replace(path, doomed)  # gone from its name at once, removed at leisure
    for folder in [doomed, *(p for p in doomed.rglob("*") if p.is_dir() and not p.is_symlink())]:
        folder.chmod(0o700)  # extracted sources may be read-only
    shutil.rmtree(doomed)


def _remove(item: PruneItem, cache: SourceCache) -> None:
    if item.kind == "blob":
        item.path.unlink(missing_ok=True)
        return
    _remove_folder(item.path)  # the folder first: without it, the kept files serve nothing
    for path in cache.kept_files(item.name):
        path.unlink(missing_ok=True)


def _remove_leftovers(cache: SourceCache) -> None:
    """Folders an interrupted engine set aside: nothing uses them, whatever the limits."""
    for path in cache.leftovers():
        if path.is_dir() and not path.is_symlink():
            _remove_folder(path)


def prune(
    state: StateDir,
    older_than: timedelta | None = None,
    max_size: int | None = None,
    dry_run: bool = False,
) -> PruneReport:
    """Remove the least recently used blobs and sources (see the module docstring)."""
    cache = SourceCache(state.sources, None)
    with state.exclusive():
        items = _blobs(state) + _sources(state)
        removed = choose(items, older_than, max_size, time.time())
        if not dry_run:
            _remove_leftovers(cache)
            for item in removed:
                _remove(item, cache)
    kept = sum(item.size for item in items) - sum(item.size for item in removed)
    return PruneReport(dry_run=dry_run, removed=removed, kept_bytes=kept)


def prune_environments(
    state: StateDir, older_than: timedelta | None = None, dry_run: bool = False
) -> PruneReport:
    """Remove the environments unused for ``older_than`` (all when None) that no run holds,
    and what dead builds left (see the module docstring)."""
    items = [
        PruneItem(
            kind="environment",
            name=info.digest,
            size=info.size,
            last_used=info.last_used,
            path=info.path,
        )  # fmt: skip
        for info in list_environments(state)
    ]
    chosen = choose(items, older_than, None, time.time()) if older_than is not None else items
    removed = [item for item in chosen if dry_run or _remove_unheld(state, item.path)]
    if not dry_run:
        for path in leftovers(state):
            _remove_unheld(state, path)
    kept = sum(item.size for item in items) - sum(item.size for item in removed)
    return PruneReport(dry_run=dry_run, removed=removed, kept_bytes=kept)


def _remove_unheld(state: StateDir, folder: Path) -> bool:
    """Remove an environment folder if no run holds it; False (kept) if one does."""
    with held_exclusively(state, folder.name) as held:
        if held and folder.is_dir():
            _remove_folder(folder)
        return held
