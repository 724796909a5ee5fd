"""Checking a pipeline against its modules' interfaces, reporting every problem at once.

``check_pipeline`` needs the module each step resolved to (its manifest holds the
interface). It reports unknown / missing inputs and params, ill-typed params, input paths
that do not exist or have the wrong kind, references to unknown steps or outputs, an output
wired to an input of the other type (``dir`` -> ``file``), and cycles — each as a
``Problem`` naming the step, the field and the YAML line.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from modreg.engine.errors import CycleError, PipelineSpecError, Problem
from modreg.engine.lock import LockedModule
from modreg.engine.spec import ModuleStep, Pipeline, StepOutput, iter_step_outputs
from modreg.registry.manifest import check_param_value
from modreg.registry.schemas import Interface, PortType


def _names(names: Iterable[str]) -> str:
    listed = ", ".join(sorted(names))
    return listed or "none"


def _shown(path: Path, base: Path) -> str:
    try:
        return path.relative_to(base).as_posix()
    except ValueError:
        return str(path)


def _check_params(
    pipeline: Pipeline, name: str, step: ModuleStep, iface: Interface
) -> list[Problem]:
    problems = []
    for key, value in step.params.items():
        param = iface.params.get(key)
        if param is None:
            message = f"unknown param {key!r} (the module's params: {_names(iface.params)})"
            problems.append(pipeline.problem(message, name, "params", key))
            continue
        try:
            check_param_value(key, param, value)
        except ValueError as exc:
            problems.append(pipeline.problem(str(exc), name, "params", key))
    for key, param in iface.params.items():
        if param.required and key not in step.params:
            message = f"missing required param {key!r} (type {param.type.value})"
            problems.append(pipeline.problem(message, name, "params"))
    return problems


def _check_path(
    pipeline: Pipeline, name: str, key: str, path: Path, wanted: PortType
) -> list[Problem]:
    shown = _shown(path, pipeline.base_dir)
    if not path.exists():
        return [pipeline.problem(f"input path {shown!r} does not exist", name, "inputs", key)]
    actual = PortType.dir if path.is_dir() else PortType.file
    if actual != wanted:
        message = f"input {key!r} takes a {wanted.value}, but {shown!r} is a {actual.value}"
        return [pipeline.problem(message, name, "inputs", key)]
    return []


def _check_reference(
    pipeline: Pipeline,
    name: str,
    key: str,
    ref: StepOutput,
    wanted: PortType,
    modules: dict[str, LockedModule],
) -> list[Problem]:
    if ref.step not in pipeline.steps:
        message = f"unknown step {ref.step!r} in {str(ref)!r} (steps: {_names(pipeline.steps)})"
        return [pipeline.problem(message, name, "inputs", key)]
    upstream = modules.get(ref.step)
    if upstream is None:
        return []
    outputs = upstream.manifest.interface.outputs
    if ref.output not in outputs:
        message = f"step {ref.step!r} has no output {ref.output!r} (its outputs: {_names(outputs)})"
        return [pipeline.problem(message, name, "inputs", key)]
    actual = outputs[ref.output].type
    if actual != wanted:
        message = f"{str(ref)!r} is a {actual.value}, but input {key!r} takes a {wanted.value}"
        return [pipeline.problem(message, name, "inputs", key)]
    return []


def _check_inputs(
    pipeline: Pipeline, name: str, step: ModuleStep, modules: dict[str, LockedModule]
) -> list[Problem]:
    iface = modules[name].manifest.interface
    problems = []
    for key, value in step.inputs.items():
        port = iface.inputs.get(key)
        if port is None:
            message = f"unknown input {key!r} (the module's inputs: {_names(iface.inputs)})"
            problems.append(pipeline.problem(message, name, "inputs", key))
        elif isinstance(value, StepOutput):
            problems += _check_reference(pipeline, name, key, value, port.type, modules)
        else:
            problems += _check_path(pipeline, name, key, value, port.type)
    for key, port in iface.inputs.items():
        if not port.optional and key not in step.inputs:
            message = f"missing required input {key!r} (a {port.type.value})"
            problems.append(pipeline.problem(message, name, "inputs"))
    return problems


def _unknown_steps(pipeline: Pipeline, modules: dict[str, LockedModule]) -> list[Problem]:
    """References to unknown steps from steps whose module did not resolve."""
    problems = []
    for name, step in pipeline.steps.items():
        if name in modules:
            continue
        for key, ref in iter_step_outputs(step):
            if ref.step not in pipeline.steps:
                message = (
                    f"unknown step {ref.step!r} in {str(ref)!r} (steps: {_names(pipeline.steps)})"
                )
                problems.append(pipeline.problem(message, name, "inputs", key))
    return problems


def find_cycles(pipeline: Pipeline) -> list[list[str]]:
    """Each cycle among the steps' output references, as a list of step names."""
    edges = {
        name: sorted({ref.step for _, ref in iter_step_outputs(step) if ref.step in pipeline.steps})
        for name, step in pipeline.steps.items()
    }
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for dep in edges[node]:
            if state.get(dep) == 1:
                cycles.append(stack[stack.index(dep) :] + [dep])
            elif dep not in state:
                visit(dep, stack)
        stack.pop()
        state[node] = 2

    for name in sorted(edges):
        if name not in state:
            visit(name, [])
    return cycles


def _unknown_types(pipeline: Pipeline, name: str, module: LockedModule) -> list[Problem]:
    """Types a newer modreg published and this one cannot run: one problem each."""
    iface = module.manifest.interface
    declared = [
        *(("input", key, port.type) for key, port in iface.inputs.items()),
        *(("output", key, port.type) for key, port in iface.outputs.items()),
        *(("param", key, param.type) for key, param in iface.params.items()),
    ]
    return [
        pipeline.problem(
            f"{module.key} declares {kind} {key!r} of type {kind_type.value!r}, "
            "which this modreg does not know: upgrade modreg",
            name,
            "uses",
        )
        for kind, key, kind_type in declared
        if not kind_type.is_known()
    ]


def check_pipeline(pipeline: Pipeline, modules: dict[str, LockedModule]) -> list[Problem]:
    """Every interface and wiring problem of ``pipeline`` (steps without a module skipped)."""
    problems: list[Problem] = []
    for name, step in pipeline.steps.items():
        if name in modules and (unknown := _unknown_types(pipeline, name, modules[name])):
            problems += unknown
        elif name in modules:
            problems += _check_inputs(pipeline, name, step, modules)
            problems += _check_params(pipeline, name, step, modules[name].manifest.interface)
    problems += _unknown_steps(pipeline, modules)
    for cycle in find_cycles(pipeline):
        message = "cycle: " + " -> ".join(cycle)
        problems.append(pipeline.problem(message, cycle[0], "inputs"))
    return problems


def raise_problems(problems: list[Problem]) -> None:
    """Raise CycleError / PipelineSpecError when there is anything to report."""
    if not problems:
        return
    if any(problem.message.startswith("cycle: ") for problem in problems):
        raise CycleError(problems)
    raise PipelineSpecError(problems)
