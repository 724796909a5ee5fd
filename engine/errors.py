"""The engine's errors, under the one root ``ModregError``.

::

    ModregError
    └── EngineError
        ├── PipelineSpecError        a pipeline is wrong; carries every Problem at once
        │   └── CycleError           ... and some of its steps form a cycle
        ├── LockMismatchError        --locked, but the pipeline's lock no longer matches
        ├── OfflineError             --offline, but something is not in the local caches
        ├── BlobError
        │   ├── MissingBlobError     a blob is in no store we can reach
        │   └── CorruptBlobError     a blob's bytes do not match its digest (it was dropped)
        ├── StateBusyError           an engine runs on the state folder (cache prune waits)
        ├── EnvironmentBuildError    a module environment could not be built (fails its steps)
        └── StepFailedError          the outputs of a step that did not succeed were asked for
"""

from __future__ import annotations

from dataclasses import dataclass

from modreg.registry.errors import ModregError


class EngineError(ModregError):
    """Root of the engine's errors."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a pipeline, located as precisely as known."""

    message: str
    step: str | None = None
    field: str | None = None
    line: int | None = None
    source: str = "pipeline.yaml"

    def __str__(self) -> str:
        where = self.source if self.line is None else f"{self.source}:{self.line}"
        parts = [where]
        if self.step is not None:
            parts.append(f"step {self.step!r}")
        if self.field is not None:
            parts.append(self.field)
        return f"{': '.join(parts)}: {self.message}"


class PipelineSpecError(EngineError):
    """A pipeline is invalid; ``problems`` lists all of it, one line each."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(dict.fromkeys(problems))
        count = len(self.problems)
        head = "1 problem" if count == 1 else f"{count} problems"
        lines = "\n".join(str(problem) for problem in self.problems)
        super().__init__(f"{head} in the pipeline:\n{lines}")


class CycleError(PipelineSpecError):
    """Some steps depend on each other in a circle."""


class LockMismatchError(EngineError):
    """``--locked`` was given but the lock would have to change."""


class OfflineError(EngineError):
    """``--offline`` was given but something needed is not cached locally."""


class BlobError(EngineError):
    """A content-addressed blob could not be read."""

    def __init__(self, digest: str, message: str) -> None:
        super().__init__(message)
        self.digest = digest

    def __reduce__(self) -> tuple[type[BlobError], tuple[str, str]]:
        """Pickled whole: a Dask worker's missing input reaches the engine as itself, which
        then re-executes the step that produced it."""
        return type(self), (self.digest, str(self))


class MissingBlobError(BlobError):
    """The blob is in no store we can reach."""


class CorruptBlobError(BlobError):
    """The blob's bytes did not match its digest; it has been dropped."""


class StoreURLError(EngineError):
    """An artifact store URL that cannot be opened here: an unknown protocol, or one whose
    fsspec package is not installed (``s3://`` needs ``modreg[s3]``)."""


class StateBusyError(EngineError):
    """The state folder is in use by a running engine (``modreg cache prune`` refuses)."""


class EnvironmentBuildError(EngineError):
    """A module environment could not be built: no interpreter fits, uv failed, or
    ``--offline`` lacks its lock; the steps that need it fail with this, uv's output in
    their logs."""


class StepFailedError(EngineError):
    """A step did not succeed, so it has no outputs: names the step, why, and its log.

    A failed run is not an exception: ``run_pipeline`` returns it (status, error, each
    step's log), since its other steps finished. This is raised when a caller asks for what
    a failed, skipped or cancelled step would have produced (``StepResult.download``).
    """

    def __init__(self, step: str, message: str, log_path: str | None, log_tail: str) -> None:
        text = f"step {step!r} {message}"
        if log_path:
            text += f" (full log: {log_path})"
        if log_tail:
            text += "\n" + log_tail
        super().__init__(text)
        self.step = step
        self.log_path = log_path
        self.log_tail = log_tail
