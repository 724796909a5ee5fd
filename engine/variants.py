"""Variant axes: expanding a pipeline (or a Sweep) into its combinations, and checking them all.

Axes come from ``variants:`` in pipeline.yaml and from ``--vary`` (which replaces a file axis
of the same name). ``expand`` turns a pipeline into ``(choices, pipeline)`` pairs; ``check``
validates every combination at once, after resolution, and reports each problem once:

- an axis that names an unknown step or field, or a param the step's module lacks, or holds
  a value of the wrong type, is one problem naming the axis (``--vary: train.params.lr: …``
  or ``pipeline.yaml:14: variants.train.params.lr: …``), not one per combination;
- any other problem found in some combinations is reported once, labelled with the
  combinations it occurs in — by the axis values they share when that describes exactly
  them (``[variants with prep.uses=vision/prep@2]``), else one by one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from modreg.engine.errors import PipelineSpecError, Problem
from modreg.engine.resolve import Resolved
from modreg.engine.spec import AXIS, Pipeline, axis_problem
from modreg.engine.sweep import Sweep, Variant
from modreg.engine.validate import check_pipeline
from modreg.registry.manifest import check_param_value

CLI_SOURCE = "--vary"


@dataclass
class Expansion:
    """Every combination to run, and the axes they came from."""

    variants: list[Variant]
    axes: dict[str, list[Any]] = field(default_factory=dict)
    cli_axes: frozenset[str] = frozenset()
    base: Pipeline | None = None

    def axis_problem(self, axis: str, message: str) -> Problem:
        """A problem located at the axis: on the command line, or in ``variants:``."""
        if axis in self.cli_axes or self.base is None:
            return Problem(message, None, axis, None, CLI_SOURCE)
        return self.base.problem(message, None, "variants", axis)


def expand(
    target: Pipeline | Sweep,
    values: Mapping[str, Any] | None = None,
    vary: Mapping[str, Sequence[Any]] | None = None,
) -> Expansion:
    """The combinations of ``target`` with ``--set`` values and ``--vary`` axes applied."""
    if isinstance(target, Sweep):
        return _expand_sweep(target, values, vary)
    _check_cli_axes(target, vary or {})
    base = target.with_values(values or {})  # a copy: the caller's pipeline stays as it was
    base.variants = {**target.variants, **{axis: list(v) for axis, v in (vary or {}).items()}}
    return Expansion(base.expand(), dict(base.variants), frozenset(vary or {}), base)


def _expand_sweep(
    sweep: Sweep, values: Mapping[str, Any] | None, vary: Mapping[str, Sequence[Any]] | None
) -> Expansion:
    variants: list[Variant] = []
    for choice, pipeline in sweep.variants:
        inner = expand(pipeline, values, vary)
        variants += [({**choice, **more}, each) for more, each in inner.variants]
    return Expansion(
        variants, {axis: list(v) for axis, v in (vary or {}).items()}, frozenset(vary or {})
    )


def _check_cli_axes(pipeline: Pipeline, vary: Mapping[str, Sequence[Any]]) -> None:
    problems = []
    for axis, values in vary.items():
        message = axis_problem(axis, pipeline.steps)
        if message is None and not values:
            message = "no values given"
        if message is not None:
            problems.append(Problem(message, None, axis, None, CLI_SOURCE))
    if problems:
        raise PipelineSpecError(problems)


# --- checking every combination ---------------------------------------------------------


def check(expansion: Expansion, resolved: Resolved) -> list[Problem]:
    """Every problem of every combination, each reported once (see the module docstring)."""
    problems = _param_axis_problems(expansion, resolved)
    skip = _param_axis_fields(expansion)
    found: dict[Problem, list[int]] = {}
    for problem, (step, ref) in resolved.refs.items():
        found[problem] = [i for i, (_, p) in enumerate(expansion.variants) if _uses(p, step) == ref]
    for problem in resolved.problems:
        found.setdefault(problem, list(range(len(expansion.variants))))
    for index, (_, pipeline) in enumerate(expansion.variants):
        for problem in check_pipeline(pipeline, resolved.modules_for(pipeline)):
            if (problem.step, problem.field) not in skip:
                found.setdefault(problem, []).append(index)
    if len(expansion.variants) == 1:
        return problems + list(found)
    return problems + [_labelled(p, runs, expansion.variants) for p, runs in found.items()]


def _uses(pipeline: Pipeline, step: str) -> str | None:
    return pipeline.steps[step].uses if step in pipeline.steps else None


def _param_axis_fields(expansion: Expansion) -> set[tuple[str | None, str | None]]:
    fields: set[tuple[str | None, str | None]] = set()
    for axis in expansion.axes:
        if (match := AXIS.match(axis)) and match.group(2).startswith("params."):
            fields.add((match.group(1), match.group(2)))
    return fields


def _param_axis_problems(expansion: Expansion, resolved: Resolved) -> list[Problem]:
    """Each param axis against every module its step resolves to: the name, each value."""
    problems = []
    for axis, values in expansion.axes.items():
        match = AXIS.match(axis)
        if not match or not match.group(2).startswith("params."):
            continue
        step, name = match.group(1), match.group(2).removeprefix("params.")
        for module in _modules_of(expansion, resolved, step):
            param = module.manifest.interface.params.get(name)
            if param is None:
                known = ", ".join(sorted(module.manifest.interface.params)) or "none"
                message = f"unknown param {name!r} of {module.module} (its params: {known})"
                problems.append(expansion.axis_problem(axis, message))
                continue
            for value in values:
                try:
                    check_param_value(name, param, value)
                except ValueError as exc:
                    problems.append(expansion.axis_problem(axis, f"value {value!r}: {exc}"))
    return list(dict.fromkeys(problems))


def _modules_of(expansion: Expansion, resolved: Resolved, step: str) -> list[Any]:
    refs = dict.fromkeys(_uses(p, step) for _, p in expansion.variants)
    found = [resolved.lock.get(step, ref) for ref in refs if ref is not None]
    unique = {module.sha256: module for module in found if module is not None}
    return list(unique.values())


# --- labels -----------------------------------------------------------------------------


def variant_label(choice: Mapping[str, Any], index: int) -> str:
    """``prep.uses=vision/prep@2, train.params.lr=0.1`` (or ``#3`` when nothing differs)."""
    return ", ".join(f"{axis}={value}" for axis, value in choice.items()) or f"#{index + 1}"


def _labelled(problem: Problem, runs: list[int], variants: list[Variant]) -> Problem:
    label = _describe(sorted(set(runs)), variants)
    message = f"{problem.message} [{label}]" if label else problem.message
    return Problem(message, problem.step, problem.field, problem.line, problem.source)


def _describe(runs: list[int], variants: list[Variant]) -> str:
    if len(runs) == len(variants):
        return ""  # every combination: the problem is the pipeline's own
    if len(runs) == 1:
        return "variant " + variant_label(variants[runs[0]][0], runs[0])
    shared = _shared(variants[i][0] for i in runs)
    matching = [i for i, (choice, _) in enumerate(variants) if _has(choice, shared)]
    if shared and matching == runs:
        return "variants with " + variant_label(shared, 0)
    return "variants " + "; ".join(variant_label(variants[i][0], i) for i in runs)


def _shared(choices: Any) -> dict[str, Any]:
    choices = list(choices)
    first = choices[0]
    return {
        axis: value
        for axis, value in first.items()
        if all(axis in other and other[axis] == value for other in choices[1:])
    }


def _has(choice: Mapping[str, Any], shared: Mapping[str, Any]) -> bool:
    return all(axis in choice and choice[axis] == value for axis, value in shared.items())
