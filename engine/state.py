"""The engine's local state folder: step cache, per-fingerprint locks, history, run records.

Layout (``STATE`` is handed in by the caller; the CLI uses ``$XDG_CACHE_HOME/modreg/engine``)::

    STATE/digests.json                stat cache of input digests (digests.DigestCache)
    STATE/cache/ab/<fingerprint>.json fingerprint -> outputs, for steps whose blobs are local
    STATE/locks/<fingerprint>.lock    flock held while a step executes (one run at a time)
    STATE/history/<key>.json          the last fingerprint of each pipeline step (--explain)
    STATE/runs/<run id>.json          what each run did (results, downloads, offline runs)
    STATE/logs/<run id>/<step>.log    step logs
    STATE/scratch/                    fresh folders steps run in
    STATE/sources/<sha256>/           extracted module sources
    STATE/store/                      the default local artifact store

Every file is written to a temporary name and renamed, so a reader sees a whole file or
none, and a process killed at any instant leaves no half-written entry.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def write_json_atomic(path: Path, value: Any) -> None:
    """Write JSON by temp file + rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    temp.write_text(json.dumps(value, sort_keys=True, indent=1), encoding="utf-8")
    os.replace(temp, path)


def read_json(path: Path) -> Any:
    """The JSON at ``path``, or None when it is missing or unreadable."""
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None


class StateDir:
    """Paths and small records inside the local state folder."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    @property
    def digests_file(self) -> Path:
        return self.root / "digests.json"

    @property
    def sources(self) -> Path:
        return self.root / "sources"

    @property
    def store(self) -> Path:
        return self.root / "store"

    def log_path(self, run_id: str, step: str) -> Path:
        path = self.root / "logs" / run_id / f"{step}.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    # --- step cache ----------------------------------------------------------------------

    def _cache_path(self, fingerprint: str) -> Path:
        return self.root / "cache" / fingerprint[:2] / f"{fingerprint}.json"

    def cached(self, fingerprint: str) -> dict[str, Any] | None:
        """The local cache entry of a fingerprint: outputs, run_id, step, shared."""
        entry = read_json(self._cache_path(fingerprint))
        return entry if isinstance(entry, dict) else None

    def remember(self, fingerprint: str, entry: dict[str, Any]) -> None:
        write_json_atomic(self._cache_path(fingerprint), entry)

    @contextlib.contextmanager
    def step_lock(self, fingerprint: str) -> Iterator[None]:
        """Hold the fingerprint's lock: concurrent runs execute a step at most once."""
        path = self.root / "locks" / f"{fingerprint}.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # --- history and runs ---------------------------------------------------------------

    def _history_path(self, pipeline: str, step: str) -> Path:
        key = hashlib.sha256(f"{pipeline}\0{step}".encode()).hexdigest()[:24]
        return self.root / "history" / f"{key}.json"

    def last_step(self, pipeline: str, step: str) -> dict[str, Any] | None:
        """What the last run of this pipeline step used: fingerprint parts and version."""
        entry = read_json(self._history_path(pipeline, step))
        return entry if isinstance(entry, dict) else None

    def record_step(self, pipeline: str, step: str, entry: dict[str, Any]) -> None:
        write_json_atomic(self._history_path(pipeline, step), entry)

    def save_run(self, run_id: str, record: dict[str, Any]) -> None:
        write_json_atomic(self.root / "runs" / f"{run_id}.json", record)

    def load_run(self, run_id: str) -> dict[str, Any] | None:
        record = read_json(self.root / "runs" / f"{run_id}.json")
        return record if isinstance(record, dict) else None
