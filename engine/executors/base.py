"""The executor role: run one step job, wherever, and hand back its outputs as store blobs.

A ``StepJob`` carries everything a step needs *by content*: the module archive's sha256
(sources come from the source cache), its environment (built where the job runs, from the
environment lock's sha256: ``environments``), inputs as artifact-store references (or, for the
local executor, plain paths given by the user), params, the output ports and a timeout.
A ``JobResult`` carries the outputs already put into the artifact store, the metrics, the
exit code and the log. So an executor on other machines (Dask, later) needs nothing of the
engine's filesystem except the artifact store and the registry.

This module also holds the parts every executor shares: filling the command's
placeholders, materialising inputs into a scratch folder, and collecting outputs.
"""

from __future__ import annotations

import json
import math
import re
import sys
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from modreg.engine.environments import Environments, StepEnvironment
from modreg.engine.sources import SourceCache
from modreg.engine.store import ArtifactStore
from modreg.registry.schemas import OutputRef, PortType

PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\.([^{}]*)\}")
PYTHON_NAMES = frozenset({"python", "python3"})


@dataclass(kw_only=True)
class StepJob:
    """One execution of a step, described by content."""

    step: str
    command: list[str]
    source_sha256: str
    inputs: dict[str, OutputRef | Path]
    params: dict[str, Any]
    outputs: dict[str, PortType]
    optional_outputs: frozenset[str] = frozenset()
    timeout: float | None = None
    environment: StepEnvironment | None = None  # None or not `builds`: the engine's interpreter
    # the caller's variables the step receives (executors.environment.passed_environment);
    # held for the job only, never recorded
    env: dict[str, str] = field(default_factory=dict, repr=False)
    # the names it declares (``[module] env``): a Dask worker passes its own values of them
    env_names: tuple[str, ...] = ()
    # what one execution needs: cpus, memory (bytes), GPU (registry.manifest.parse_resources)
    resources: dict[str, float] = field(default_factory=dict)
    log_path: Path | None = None


@dataclass(kw_only=True)
class JobResult:
    """What running a job produced; ``error`` is None on success."""

    exit_code: int | None
    outputs: dict[str, OutputRef] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    warnings: list[str] = field(default_factory=list)  # the run shows them; success all the same
    log_path: Path | None = None
    timed_out: bool = False
    cancelled: bool = False
    started_at: datetime | None = None
    ended_at: datetime | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class JobContext:
    """What a job may use: the artifact store, the module sources, a scratch root, and the
    module environments of this machine (None: a job that needs one fails).

    ``cancelled`` belongs to one run: once set (Ctrl-C), no job of that run starts, and
    jobs that were running report ``cancelled``. A later run gets a fresh context.
    """

    store: ArtifactStore
    sources: SourceCache
    scratch_root: Path
    environments: Environments | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)


class Executor(ABC):
    """Runs step jobs; ``run`` is called from several threads at once."""

    jobs: int = 1
    # False: jobs run elsewhere, with their own source cache and environments (Dask)
    on_this_machine: bool = True

    @abstractmethod
    def run(self, job: StepJob, context: JobContext) -> JobResult:
        """Run one job to the end (or its timeout) and return its result."""

    def slots(self, resources: dict[str, float], jobs: int) -> int:
        """How many of the run's ``jobs`` slots a step needing ``resources`` holds while it
        runs: its ``cpus`` (rounded up; all of them for a step that needs more, so it runs
        alone rather than never). An executor whose cluster places work by its own resources
        says 1."""
        return min(jobs, max(1, math.ceil(resources.get("cpus", 1))))

    def cancel(self) -> None:  # noqa: B027 - optional for executors with nothing to stop
        """Stop every running job (Ctrl-C; the run has set its context's ``cancelled``)."""

    def close(self) -> None:  # noqa: B027
        """Release what the executor holds."""


def param_text(value: Any) -> str:
    """A param as one command-line argument."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list) or value is None:
        return json.dumps(value, sort_keys=True)
    return str(value)


def fill_command(
    command: list[str], paths: dict[str, dict[str, str]], python: str | None = None
) -> list[str]:
    """The command with ``{inputs.X}``, ``{outputs.X}``, ``{params.X}`` filled in.

    A leading ``python``/``python3`` is ``python``: the interpreter of the module's
    environment, or (None, a module without one) the interpreter modreg runs on, so such
    modules run in the environment modreg was installed into.
    """

    def fill(match: re.Match[str]) -> str:
        return paths.get(match.group(1), {}).get(match.group(2), "")

    argv = [PLACEHOLDER.sub(fill, argument) for argument in command]
    if argv and argv[0] in PYTHON_NAMES:
        argv[0] = python or sys.executable
    return argv


def materialize_inputs(job: StepJob, store: ArtifactStore, folder: Path) -> dict[str, str]:
    """Input name -> path the step reads: user paths as they are, blobs written out."""
    paths = {}
    for name, source in job.inputs.items():
        if isinstance(source, Path):
            paths[name] = str(source)
            continue
        dest = folder / name
        store.materialize(source, dest)
        paths[name] = str(dest)
    return paths


def prepare_outputs(job: StepJob, folder: Path) -> dict[str, str]:
    """Output name -> fresh path: folders created empty, files' parents created."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, port_type in job.outputs.items():
        path = folder / name
        if port_type == PortType.dir:
            path.mkdir()
        paths[name] = str(path)
    return paths


def collect_outputs(
    job: StepJob, store: ArtifactStore, paths: dict[str, str]
) -> dict[str, OutputRef]:
    """Put each written output into the store; ValueError names one that is missing."""
    outputs = {}
    for name, port_type in job.outputs.items():
        path = Path(paths[name])
        wrong = path.is_dir() if port_type == PortType.file else not path.is_dir()
        if not path.exists() or wrong:
            if name in job.optional_outputs and not path.exists():
                continue
            raise ValueError(f"did not write its output {name!r} (a {port_type.value}) to {path}")
        outputs[name] = store.put_output(path, port_type, move=True)
    return outputs


def read_metrics(path: Path) -> tuple[dict[str, Any], str | None]:
    """The metrics a step wrote to $MODREG_METRICS, and a warning if they were unreadable."""
    if not path.exists():
        return {}, None
    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return {}, f"ignored $MODREG_METRICS: not JSON ({exc})"
    if not isinstance(metrics, dict):
        return {}, "ignored $MODREG_METRICS: not a JSON object"
    return metrics, None
