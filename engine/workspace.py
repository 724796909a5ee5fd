"""What a run works with and how: the ``Workspace`` a caller assembles, ``RunOptions``, and
the ``RunObserver`` that hears about every step.

The engine reads no config: the CLI (or a script) builds these and hands them to
``running.run_pipeline``; the scheduler only reads them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from modreg.engine.environments import Interpreter
from modreg.engine.executors.base import Executor
from modreg.engine.protocol import RegistryProtocol
from modreg.engine.state import StateDir
from modreg.engine.store import ArtifactStore
from modreg.registry.schemas import StepStatus


@dataclass(frozen=True, kw_only=True)
class StepEvent:
    """One step instance changed status: what live progress shows, as it happens.

    A step instance may serve several runs of a sweep (the plan deduplicates them); it is
    told once, and ``variant`` holds the choices that set it apart: the axes of its step and
    of the steps it reads from, where those runs agree — so a step no axis touches reads as
    just its name. ``status`` is ``running``
    (its process really started: a step waiting for a worker is not running), then
    ``executed``, ``reused``, ``failed``, ``skipped`` or ``cancelled``. ``seconds`` is how long
    an executed or failed step ran; ``detail`` says why a step failed or was skipped, or
    which attempt a retry is; ``reused_from`` is the run whose result a reused step took.
    """

    step: str
    variant: dict[str, Any] = field(default_factory=dict)
    status: StepStatus
    detail: str = ""
    seconds: float | None = None
    reused_from: str | None = None


class RunObserver(Protocol):
    """Told about every step status change (live progress), from the engine's threads."""

    def step_changed(self, event: StepEvent) -> None: ...


@dataclass(kw_only=True)
class RunOptions:
    """How to run: reuse policy, parallelism, offline."""

    jobs: int | None = None
    no_reuse: bool = False
    regenerate: frozenset[str] = frozenset()
    offline: bool = False
    heartbeat_seconds: float = 30.0  # how often a running run tells the registry it lives


@dataclass
class Workspace:
    """What the engine works with, assembled by the caller (the CLI or a script)."""

    state: StateDir
    store: ArtifactStore
    executor: Executor
    registry: RegistryProtocol | None = None
    observer: RunObserver | None = None
    # the caller's environment: steps get PATH, LANG, LC_* and what they declare from it
    # (executors.environment); empty means steps get only what the engine sets
    caller_env: Mapping[str, str] = field(default_factory=dict, repr=False)
    # who the digests say runs the steps (environments: the MODREG_INTERPRETER seam)
    interpreter: Interpreter = field(default_factory=Interpreter.current)
