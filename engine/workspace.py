"""What a run works with and how: the ``Workspace`` a caller assembles, ``RunOptions``, and
the ``RunObserver`` that hears about every step.

The engine reads no config: the CLI (or a script) builds these and hands them to
``running.run_pipeline``; the scheduler only reads them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from modreg.engine.environments import Interpreter
from modreg.engine.executors.base import Executor
from modreg.engine.protocol import RegistryProtocol
from modreg.engine.state import StateDir
from modreg.engine.store import ArtifactStore
from modreg.registry.schemas import StepStatus


class RunObserver(Protocol):
    """Told about every step status change (live progress).

    ``status`` is ``running``, ``executed``, ``reused``, ``failed``, ``skipped`` or
    ``cancelled``; a ``StepStatus`` is a ``str`` too, so an observer may take it as one.
    """

    def step_changed(self, label: str, status: StepStatus, detail: str = "") -> None: ...


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
