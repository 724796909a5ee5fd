"""modreg's pipeline engine: spec, resolution, lock, planning, fingerprints, executors, runs.

The public Python API::

    from modreg.engine import ModuleStep, Pipeline, Workspace, run_pipeline

    prep = ModuleStep("vision/prep@^1.2", inputs={"raw": "data/raw"})
    train = ModuleStep("vision/train@~2.0", inputs={"dataset": prep.outputs["dataset"]})
    result = run_pipeline(Pipeline("digits", {"prep": prep, "train": train}), workspace)
    result.step("train").download("out/")

A sweep runs every combination of step variants as one graph (shared steps execute once)::

    sweep = Sweep.product("digits", {"prep": [prep, robust], "train": [train, deep]})
    outcome = run_pipeline(sweep, workspace)        # a SweepResult, one RunResult per variant

Where things are: ``running`` (prepare, run_pipeline) drives ``resolve``/``lock``,
``validate``/``variants``, ``plan`` and ``scheduler`` (the algorithm, in its docstring),
which runs jobs on ``executors`` (in the module environments of ``environments``) with a
``step_cache`` over ``state`` and ``store``;
``records`` writes what happened to the registry and the state folder; ``results`` is
what a caller gets back; ``workspace`` is what a caller hands in; ``protocol`` is all the
engine asks of a registry.
"""

from modreg.engine.digests import DigestCache
from modreg.engine.environments import Interpreter
from modreg.engine.errors import (
    BlobError,
    CorruptBlobError,
    CycleError,
    EngineError,
    EnvironmentBuildError,
    LockMismatchError,
    MissingBlobError,
    OfflineError,
    PipelineSpecError,
    Problem,
    StateBusyError,
    StepFailedError,
    StoreURLError,
)
from modreg.engine.executors.base import Executor, JobResult, StepJob
from modreg.engine.executors.local import LocalExecutor
from modreg.engine.fingerprint import Fingerprint
from modreg.engine.lock import Lock, LockedModule, lock_path, read_lock
from modreg.engine.outdated import Outdated, find_outdated
from modreg.engine.protocol import RegistryProtocol
from modreg.engine.resolve import ResolveOptions
from modreg.engine.results import RunResult, StepResult, SweepResult
from modreg.engine.running import lock_pipeline, prepare, run_pipeline
from modreg.engine.spec import ModuleStep, Pipeline, StepOutput, load_pipeline, parse_pipeline
from modreg.engine.state import StateDir
from modreg.engine.store import ArtifactStore, FsspecArtifactStore, LocalArtifactStore
from modreg.engine.sweep import Sweep
from modreg.engine.workspace import RunObserver, RunOptions, StepEvent, Workspace

__all__ = [
    "ArtifactStore",
    "BlobError",
    "CorruptBlobError",
    "CycleError",
    "DigestCache",
    "EngineError",
    "EnvironmentBuildError",
    "Executor",
    "Fingerprint",
    "FsspecArtifactStore",
    "Interpreter",
    "JobResult",
    "LocalArtifactStore",
    "LocalExecutor",
    "Lock",
    "LockMismatchError",
    "LockedModule",
    "MissingBlobError",
    "ModuleStep",
    "OfflineError",
    "Outdated",
    "Pipeline",
    "PipelineSpecError",
    "Problem",
    "RegistryProtocol",
    "ResolveOptions",
    "RunObserver",
    "RunOptions",
    "RunResult",
    "StateDir",
    "StateBusyError",
    "StepEvent",
    "StepFailedError",
    "StoreURLError",
    "StepJob",
    "StepOutput",
    "StepResult",
    "Sweep",
    "SweepResult",
    "Workspace",
    "find_outdated",
    "load_pipeline",
    "lock_path",
    "lock_pipeline",
    "parse_pipeline",
    "prepare",
    "read_lock",
    "run_pipeline",
]
