"""``NAME.lock``: the exact module versions the pipeline ``NAME.yaml`` runs with, beside it.

Each pipeline file has its own lock (``pipeline.yaml`` -> ``pipeline.lock``,
``train.yaml`` -> ``train.lock``), so several pipelines in one folder keep theirs. Before
that, every pipeline of a folder shared ``pipeline.lock``; ``read_pipeline_lock`` takes such
a lock over once for the pipeline it names (see there).

The lock maps each step, then each module reference that step uses (one, or several when
the step has variants), to the exact version chosen for it; each chosen version is listed
once under ``modules`` with its commit, archive sha256, the manifest (command and
interface) it was checked against and, for a module with an environment, that environment:
the sha256 of its environment lock (a registry blob) and its ``python`` range. A lock
written before environments existed has no ``environment`` entries and reads as it is.
It is YAML with sorted keys, so it is byte-for-byte stable and diffs well in git::

    lock-version: 2
    pipeline: digits
    steps:
      prep:
        vision/prep@^1.2: vision/prep@1.2.0
    modules:
      vision/prep@1.2.0:
        commit: 3f0c…
        manifest: {…}
        path: ''
        remote: null
        sha256: 9b1e…
        environment:          # only for a module with an environment
          python-range: '>=3.11'
          sha256: 5c0d…

Like cargo, ``modreg run`` keeps every entry whose reference still appears in the pipeline
and resolves only what is new; ``--locked`` refuses to change the lock instead.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from modreg.engine.errors import PipelineSpecError, Problem
from modreg.registry.schemas import COMMIT_PATTERN, SHA256_PATTERN, Manifest, VersionPublic

LOCK_VERSION = 2
COMMIT = re.compile(COMMIT_PATTERN)
SHA256 = re.compile(SHA256_PATTERN)
HEADER = "# written by modreg; keep it in git. `modreg lock --upgrade` re-resolves.\n"
SHARED_LOCK = "pipeline.lock"  # the one lock every pipeline of a folder used to share


@dataclass(frozen=True)
class LockedEnvironment:
    """A module version's environment, as the lock records it."""

    sha256: str  # the environment lock, a registry blob
    python_range: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "python-range": self.python_range}

    @classmethod
    def from_dict(cls, key: str, data: Any) -> LockedEnvironment:
        sha256 = data.get("sha256") if isinstance(data, dict) else None
        if not isinstance(sha256, str) or not SHA256.match(sha256):
            raise ValueError(f"{key}: environment sha256 {sha256!r} is not a hex digest")
        python_range = data.get("python-range")
        return cls(sha256, str(python_range) if python_range is not None else None)


@dataclass(frozen=True, kw_only=True)
class LockedModule:
    """One resolved module version, as the lock records it."""

    module: str
    version: str
    commit: str
    sha256: str
    manifest: Manifest
    path: str = ""
    remote: str | None = None
    environment: LockedEnvironment | None = None

    @classmethod
    def from_version(cls, version: VersionPublic) -> LockedModule:
        env = version.environment
        return cls(
            module=version.module,
            version=version.version,
            commit=version.commit,
            sha256=version.sha256,
            manifest=version.manifest,
            path=version.path,
            remote=version.remote,
            environment=LockedEnvironment(env.sha256, env.python_range) if env else None,
        )

    @property
    def key(self) -> str:
        """``team/name@version``: how steps refer to this entry."""
        return f"{self.module}@{self.version}"

    def to_dict(self) -> dict[str, Any]:
        data = {
            "commit": self.commit,
            "sha256": self.sha256,
            "path": self.path,
            "remote": self.remote,
            "manifest": self.manifest.model_dump(
                # a module without [environment] is written as before the key existed
                mode="json",
                exclude={"environment"} if self.manifest.environment is None else None,
            ),
        }
        if self.environment is not None:  # absent otherwise: older locks stay byte-identical
            data["environment"] = self.environment.to_dict()
        return data

    @classmethod
    def from_dict(cls, key: str, data: dict[str, Any]) -> LockedModule:
        module, _, version = key.partition("@")
        for name, pattern in (("commit", COMMIT), ("sha256", SHA256)):
            if not isinstance(data[name], str) or not pattern.match(data[name]):
                raise ValueError(f"{key}: {name} {data[name]!r} is not a hex digest")
        manifest = Manifest.model_validate(data["manifest"])
        env = data.get("environment")
        environment = LockedEnvironment.from_dict(key, env) if env is not None else None
        if manifest.environment is not None and environment is None:
            raise ValueError(f"{key}: its manifest has an environment the lock does not record")
        return cls(
            module=module,
            version=version,
            commit=data["commit"],
            sha256=data["sha256"],
            manifest=manifest,
            path=data.get("path", ""),
            remote=data.get("remote"),
            environment=environment,
        )


@dataclass
class Lock:
    """The lock's content: step -> reference -> LockedModule."""

    pipeline: str
    steps: dict[str, dict[str, LockedModule]] = field(default_factory=dict)

    def get(self, step: str, ref: str) -> LockedModule | None:
        return self.steps.get(step, {}).get(ref)

    def put(self, step: str, ref: str, module: LockedModule) -> None:
        self.steps.setdefault(step, {})[ref] = module

    def pairs(self) -> set[tuple[str, str]]:
        return {(step, ref) for step, refs in self.steps.items() for ref in refs}

    def restricted_to(self, pairs: set[tuple[str, str]]) -> Lock:
        """A copy holding only the given (step, ref) entries."""
        copy = Lock(self.pipeline)
        for step, ref in sorted(pairs):
            if (module := self.get(step, ref)) is not None:
                copy.put(step, ref, module)
        return copy

    def to_dict(self) -> dict[str, Any]:
        steps = {
            step: {ref: module.key for ref, module in refs.items()}
            for step, refs in self.steps.items()
        }
        modules = {
            module.key: module.to_dict() for refs in self.steps.values() for module in refs.values()
        }
        return {
            "lock-version": LOCK_VERSION,
            "pipeline": self.pipeline,
            "steps": steps,
            "modules": modules,
        }

    def dumps(self) -> str:
        dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
        body = yaml.dump(
            self.to_dict(), Dumper=dumper, sort_keys=True, default_flow_style=False, width=100
        )
        return HEADER + body

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Lock:
        lock = cls(str(data.get("pipeline", "")))
        modules = data.get("modules") or {}
        for step, refs in (data.get("steps") or {}).items():
            for ref, key in refs.items():
                lock.put(step, ref, LockedModule.from_dict(key, modules[key]))
        return lock


def lock_path(pipeline_file: Path) -> Path:
    """The lock of ``NAME.yaml``: ``NAME.lock`` beside it."""
    return pipeline_file.with_suffix(".lock")


def lock_name(pipeline_source: str) -> str:
    """How messages name the lock of the pipeline read from ``pipeline_source``."""
    if pipeline_source.endswith((".yaml", ".yml")):
        return lock_path(Path(pipeline_source)).name
    return "the lock"  # a pipeline built in Python: its lock file is the caller's choice


def read_pipeline_lock(lock_file: Path | None, pipeline: str) -> tuple[Lock | None, list[str]]:
    """The lock at ``lock_file`` for the pipeline named ``pipeline``, and warnings.

    When ``lock_file`` is absent but the folder's ``pipeline.lock`` (which every pipeline
    of a folder shared before each got its own) names this pipeline, that lock is the one:
    it is copied to ``lock_file`` and a warning says so, once, since the copy is there next
    time. A shared lock that names another pipeline, or cannot be read, is not this one's.
    """
    if lock_file is None:
        return None, []
    lock = read_lock(lock_file)
    shared = lock_file.with_name(SHARED_LOCK)
    if lock is not None or shared == lock_file:
        return lock, []
    try:
        lock = read_lock(shared)
    except PipelineSpecError:
        return None, []
    if lock is None or lock.pipeline != pipeline:
        return None, []
    write_lock(lock_file, lock)
    return lock, [
        f"{lock_file.name} did not exist: took the versions {SHARED_LOCK} holds for pipeline "
        f"{pipeline!r} and wrote them to {lock_file.name}, now this file's own lock"
    ]


def read_lock(path: Path) -> Lock | None:
    """The lock at ``path``, None if there is none; a broken lock is a clear error."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        data = yaml.load(text, Loader=loader)
        if data.get("lock-version") != LOCK_VERSION:
            raise ValueError(f"unsupported lock-version {data.get('lock-version')!r}")
        return Lock.from_dict(data)
    except (yaml.YAMLError, ValueError, KeyError, TypeError, AttributeError) as exc:
        message = f"unreadable lock ({exc}); `modreg lock --upgrade` writes it anew"
        raise PipelineSpecError([Problem(message, source=path.name)]) from exc


def write_lock(path: Path, lock: Lock) -> bool:
    """Write the lock atomically; False (and no write) when it is unchanged."""
    text = lock.dumps()
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except FileNotFoundError:
        pass
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temp.write_text(text, encoding="utf-8")
    os.replace(temp, path)
    return True
