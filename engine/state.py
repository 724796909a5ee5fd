"""The engine's local state folder: step cache, per-fingerprint locks, history, run records.

Layout (``STATE`` is handed in by the caller; the CLI uses ``$XDG_CACHE_HOME/modreg/engine``)::

    STATE/digests.json                stat cache of input digests (digests.DigestCache)
    STATE/cache/ab/<fingerprint>.json fingerprint -> outputs, for steps whose blobs are local
    STATE/locks/<fingerprint>.lock    flock held while a step executes (one run at a time)
    STATE/history/<key>.json          the last fingerprint of each pipeline step (--explain)
    STATE/runs/<run id>.json          what each run did (a LocalRun; `modreg runs` reads it)
    STATE/logs/<run id>/<step>.log    step logs
    STATE/scratch/                    fresh folders steps run in
    STATE/sources/<sha256>/           extracted module sources (engine.sources: with
    STATE/sources/<sha256>.files.json what they held when extracted, checked before each use,
    STATE/sources/<sha256>.tar.gz     and the archive, to extract them again offline)
    STATE/store/                      the default local artifact store
    STATE/envs/<digest>/              module environments (venvs; engine.environments),
    STATE/env-locks/<sha256>.txt      built from these environment locks, kept for --offline

Every file is written to a temporary name and renamed, so a reader sees a whole file or
none, and a process killed at any instant leaves no half-written entry.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError

from modreg.engine.errors import StateBusyError
from modreg.engine.fingerprint import Fingerprint
from modreg.registry.schemas import OutputRef, RunBase

RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


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


@dataclass(frozen=True, kw_only=True)
class CacheEntry:
    """A stored step result: its outputs, and which run of which step produced them."""

    outputs: dict[str, OutputRef]
    metrics: dict[str, Any] | None = None  # None: not known here (in the registry's source run)
    run_id: str | None = None
    step: str | None = None
    shared: bool = True  # the registry has this entry and every blob it names

    def to_json(self) -> dict[str, Any]:
        return {
            "outputs": {name: ref.model_dump(mode="json") for name, ref in self.outputs.items()},
            "metrics": self.metrics,
            "run_id": self.run_id,
            "step": self.step,
            "shared": self.shared,
        }

    @classmethod
    def from_json(cls, data: Any) -> CacheEntry:
        """The entry a JSON object holds; ValueError if it holds none."""
        try:
            outputs = {name: OutputRef.model_validate(ref) for name, ref in data["outputs"].items()}
            metrics = data.get("metrics")
            return cls(
                outputs=outputs,
                metrics=dict(metrics) if metrics is not None else None,
                run_id=data.get("run_id"),
                step=data.get("step"),
                shared=bool(data.get("shared", True)),
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"not a step cache entry: {exc}") from exc


@dataclass(frozen=True)
class StepHistory:
    """What the last run of one pipeline step used (``--explain`` compares against it)."""

    fingerprint: Fingerprint
    version: str

    def to_json(self) -> dict[str, Any]:
        return {"fingerprint": self.fingerprint.to_dict(), "version": self.version}

    @classmethod
    def from_json(cls, data: Any) -> StepHistory:
        """The history a JSON object holds; ValueError if it holds none."""
        try:
            return cls(Fingerprint.from_dict(data["fingerprint"]), str(data["version"]))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a step history entry: {exc}") from exc


class LocalRun(RunBase):
    """What one run did, as ``STATE/runs/<run id>.json`` keeps it.

    The fields of every run record (``RunBase``), plus its place in its sweep, the step logs
    on this machine and ``recorded``: whether the registry holds the run too. A run made
    ``--offline``, or one the registry could not record, is ``local``: ``modreg runs`` shows
    it from here. A record is read like a registry's answer (``from_answer_json``), so one a
    newer modreg wrote, with fields or statuses this one does not know, still reads.
    """

    sweep_index: int = 0  # its place among the runs of its sweep
    logs: dict[str, str] = Field(default_factory=dict)  # step -> its log file
    warnings: list[str] = Field(default_factory=list)
    recorded: bool = False

    @property
    def local(self) -> bool:
        """Only this machine holds the run."""
        return not self.recorded


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

    def cached(self, fingerprint: str) -> CacheEntry | None:
        """The local cache entry of a fingerprint, or None (also when it is unreadable)."""
        data = read_json(self._cache_path(fingerprint))
        try:
            return CacheEntry.from_json(data) if data is not None else None
        except ValueError:
            return None

    def remember(self, fingerprint: str, entry: CacheEntry) -> None:
        write_json_atomic(self._cache_path(fingerprint), entry.to_json())

    def forget(self, fingerprint: str) -> bool:
        """Drop the local cache entry of a fingerprint (evicted, or its outputs are gone);
        False if there was none."""
        try:
            self._cache_path(fingerprint).unlink()
        except FileNotFoundError:
            return False
        return True

    def machine_id(self) -> str:
        """This state folder's own random id, made once: the engines that share the folder
        (one machine's) share it, and their step locks (``step_lock``) order them."""
        path = self.root / "machine-id"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            temp = path.with_name(f".machine-id.{uuid.uuid4().hex}")
            temp.write_text(uuid.uuid4().hex[:16], encoding="utf-8")
            with contextlib.suppress(FileExistsError):  # another engine made it first
                os.link(temp, path)  # complete or absent: never read half-written
            temp.unlink()
        return path.read_text(encoding="utf-8").strip()

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

    @contextlib.contextmanager
    def in_use(self) -> Iterator[None]:
        """Held (shared) by every running engine: ``modreg cache prune`` waits for none and
        touches nothing while one runs."""
        with self._state_lock(fcntl.LOCK_SH):
            yield

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Held by ``modreg cache prune``; StateBusyError at once if an engine runs here."""
        busy = f"an engine is running on {self.root}: prune again once it has finished"
        with self._state_lock(fcntl.LOCK_EX | fcntl.LOCK_NB, busy):
            yield

    @contextlib.contextmanager
    def _state_lock(self, mode: int, busy: str = "") -> Iterator[None]:
        path = self.root / "locks" / "state.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as handle:
            try:
                fcntl.flock(handle, mode)
            except BlockingIOError as exc:  # only with LOCK_NB
                raise StateBusyError(busy) from exc
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # --- history and runs ---------------------------------------------------------------

    def _history_path(self, pipeline: str, step: str) -> Path:
        key = hashlib.sha256(f"{pipeline}\0{step}".encode()).hexdigest()[:24]
        return self.root / "history" / f"{key}.json"

    def last_step(self, pipeline: str, step: str) -> StepHistory | None:
        """What the last run of this pipeline step used: fingerprint parts and version."""
        data = read_json(self._history_path(pipeline, step))
        try:
            return StepHistory.from_json(data) if data is not None else None
        except ValueError:
            return None

    def record_step(self, pipeline: str, step: str, entry: StepHistory) -> None:
        write_json_atomic(self._history_path(pipeline, step), entry.to_json())

    def save_run(self, run: LocalRun) -> None:
        write_json_atomic(self.root / "runs" / f"{run.id}.json", run.model_dump(mode="json"))

    def load_run(self, run_id: str) -> LocalRun | None:
        """The record of a run made on this machine, or None (also when it is unreadable)."""
        if not RUN_ID.match(run_id):
            return None
        return _read_run(self.root / "runs" / f"{run_id}.json")

    def runs(self) -> list[LocalRun]:
        """Every readable run record, newest first."""
        found = [_read_run(path) for path in (self.root / "runs").glob("*.json")]
        runs = [run for run in found if run is not None]
        return sorted(runs, key=lambda run: (run.created_at, -run.sweep_index), reverse=True)


def _read_run(path: Path) -> LocalRun | None:
    try:
        return LocalRun.from_answer_json(path.read_bytes())
    except (OSError, ValidationError):
        return None
