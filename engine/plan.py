"""The plan: one graph of step instances for a pipeline and all its variants.

Each step of each variant becomes a *node*, identified by a key computed exactly like a
fingerprint, except that an input coming from another step is represented by that step's
node key and output name (its content is not known before it runs). Two variants whose step
has the same module archive, command, resolved params and input sources therefore get the
same node, which executes once and feeds both: an N x M sweep runs each distinct step once.

Nodes are stored in topological order (every node after the nodes it reads from). Each
``PlannedRun`` maps the step names of one variant to node keys. The node's real fingerprint
is computed by the scheduler once its upstream outputs are known (see ``scheduler``); for a node
with only path inputs, key and fingerprint are the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modreg.engine.digests import DigestCache
from modreg.engine.environments import Interpreter, StepEnvironment, step_environment
from modreg.engine.fingerprint import Fingerprint
from modreg.engine.lock import Lock, LockedModule
from modreg.engine.spec import ModuleStep, Pipeline, StepOutput
from modreg.registry.manifest import check_param_value
from modreg.registry.schemas import OutputRef, PortType


@dataclass(frozen=True)
class PathInput:
    """An input given as a local path, with its content digest."""

    path: Path
    type: PortType
    digest: str
    size: int


@dataclass(frozen=True)
class Upstream:
    """An input read from another node's output."""

    node: str
    output: str


@dataclass(frozen=True)
class StepUse:
    """Where a node appears: run (variant) index and step name."""

    run: int
    step: str


@dataclass(eq=False, kw_only=True)
class StepNode:
    """One distinct step instance of the plan."""

    key: str
    module: LockedModule
    params: dict[str, Any]
    inputs: dict[str, PathInput | Upstream]
    environment: StepEnvironment
    timeout: float | None
    retries: int
    resources: dict[str, float] = field(default_factory=dict)  # not in the fingerprint
    users: list[StepUse] = field(default_factory=list)

    @property
    def deps(self) -> set[str]:
        return {source.node for source in self.inputs.values() if isinstance(source, Upstream)}

    @property
    def label(self) -> str:
        """The step's name (the first variant's), for progress and messages."""
        return self.users[0].step

    @property
    def allow_reuse(self) -> bool:
        return self.module.manifest.allow_reuse

    def fingerprint(self, outputs: dict[str, dict[str, OutputRef]]) -> Fingerprint:
        """The real fingerprint, given the outputs of the upstream nodes (by node key)."""
        digests = {}
        for name, source in self.inputs.items():
            if isinstance(source, Upstream):
                digests[name] = outputs[source.node][source.output].digest
            else:
                digests[name] = source.digest
        return self.fingerprint_with(digests)

    def fingerprint_with(self, inputs: dict[str, str]) -> Fingerprint:
        """The fingerprint for these input digests (or, for the node key, stand-ins)."""
        command = tuple(self.module.manifest.command)
        digest = self.environment.digest
        return Fingerprint(self.module.sha256, command, self.params, inputs, digest)


@dataclass
class PlannedRun:
    """One pipeline run of the plan (one variant of a sweep)."""

    index: int
    pipeline: Pipeline
    variant: dict[str, Any]
    nodes: dict[str, str]  # step name -> node key, in topological order


@dataclass
class Plan:
    nodes: dict[str, StepNode]
    runs: list[PlannedRun]
    lock: Lock

    def node_of(self, run: int, step: str) -> StepNode:
        return self.nodes[self.runs[run].nodes[step]]


def resolved_params(step: ModuleStep, module: LockedModule) -> dict[str, Any]:
    """The step's params over the manifest's defaults, coerced to their declared types."""
    params = {}
    for name, param in module.manifest.interface.params.items():
        if name in step.params:
            params[name] = check_param_value(name, param, step.params[name])
        elif not param.required:
            params[name] = param.default
    return params


def topological_steps(pipeline: Pipeline) -> list[str]:
    """Step names, each after the steps it reads from (the pipeline has no cycle)."""
    order: list[str] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        if name in seen:
            return
        seen.add(name)
        for value in pipeline.steps[name].inputs.values():
            if isinstance(value, StepOutput):
                visit(value.step)
        order.append(name)

    for name in pipeline.steps:
        visit(name)
    return order


class _Builder:
    def __init__(self, lock: Lock, digests: DigestCache, interpreter: Interpreter) -> None:
        self.lock = lock
        self.digests = digests
        self.interpreter = interpreter
        self.nodes: dict[str, StepNode] = {}
        self._paths: dict[Path, PathInput] = {}
        self._environments: dict[str, StepEnvironment] = {}

    def environment(self, module: LockedModule) -> StepEnvironment:
        """The module version's environment, worked out once per plan."""
        if module.key not in self._environments:
            env = module.environment
            self._environments[module.key] = step_environment(
                module.key,
                env.sha256 if env else None,
                env.python_range if env else None,
                self.interpreter,
            )
        return self._environments[module.key]

    def path_input(self, path: Path) -> PathInput:
        if path not in self._paths:
            kind, digest, size = self.digests.digest(path)
            self._paths[path] = PathInput(path, PortType(kind), digest, size)
        return self._paths[path]

    def add_run(self, index: int, variant: dict[str, Any], pipeline: Pipeline) -> PlannedRun:
        keys: dict[str, str] = {}
        for name in topological_steps(pipeline):
            keys[name] = self.add_step(index, name, pipeline.steps[name], keys)
        return PlannedRun(index, pipeline, variant, keys)

    def add_step(self, run: int, name: str, step: ModuleStep, keys: dict[str, str]) -> str:
        module = self.lock.get(name, step.uses)
        assert module is not None, f"step {name!r} was not resolved"
        inputs: dict[str, PathInput | Upstream] = {}
        for key, value in step.inputs.items():
            inputs[key] = (
                Upstream(keys[value.step], value.output)
                if isinstance(value, StepOutput)
                else self.path_input(value)
            )
        manifest = module.manifest
        timeout = step.timeout if step.timeout is not None else manifest.timeout
        retries = step.retries if step.retries is not None else manifest.retries
        node = StepNode(
            key="",
            module=module,
            params=resolved_params(step, module),
            inputs=inputs,
            environment=self.environment(module),
            timeout=timeout,
            retries=retries,
            resources={**manifest.resources, **(step.resources or {})},
        )
        key = _node_key(node)
        node = self.nodes.setdefault(key, node)
        node.key = key
        node.users.append(StepUse(run, name))
        return key


def _node_key(node: StepNode) -> str:
    """The fingerprint, with each upstream input standing in as ``node:KEY/OUTPUT``."""
    pending = {
        name: f"node:{src.node}/{src.output}" if isinstance(src, Upstream) else src.digest
        for name, src in node.inputs.items()
    }
    return node.fingerprint_with(pending).digest


def build_plan(
    variants: list[tuple[dict[str, Any], Pipeline]],
    lock: Lock,
    digests: DigestCache,
    interpreter: Interpreter,
) -> Plan:
    """The deduplicated graph of every variant's steps (pipelines already validated), for
    the interpreter identity ``interpreter`` (``environments``)."""
    builder = _Builder(lock, digests, interpreter)
    runs = [
        builder.add_run(index, variant, pipeline)
        for index, (variant, pipeline) in enumerate(variants)
    ]
    return Plan(builder.nodes, runs, lock)
