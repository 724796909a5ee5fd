"""Pipelines as data: ``Pipeline`` and ``ModuleStep``, from ``pipeline.yaml`` or from Python.

A step's input is either a path (relative to the pipeline file) or another step's output,
written ``prep.outputs.dataset`` in YAML and ``prep.outputs["dataset"]`` in Python::

    prep = ModuleStep("vision/prep@^1.2", inputs={"raw": "data/raw"}, params={"size": 8})
    train = ModuleStep("vision/train@~2.0", inputs={"dataset": prep.outputs["dataset"]})
    pipeline = Pipeline("digits", {"prep": prep, "train": train})

This module checks only the shape of the file (keys, types, names); what needs the modules'
interfaces is checked by ``validate``. Every problem found is reported at once, with the
YAML line of the key at fault (from yaml's compose nodes).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from modreg.engine.errors import PipelineSpecError, Problem
from modreg.registry.manifest import parse_resources

STEP_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
OUTPUT_REF = re.compile(r"^([A-Za-z_][A-Za-z0-9_-]*)\.outputs\.([A-Za-z_][A-Za-z0-9_]*)$")
AXIS = re.compile(r"^([A-Za-z_][A-Za-z0-9_-]*)\.(uses|params\.[A-Za-z_][A-Za-z0-9_]*)$")
TOP_KEYS = ("name", "steps", "variants")
STEP_KEYS = ("uses", "inputs", "params", "timeout", "retries", "resources")

Lines = dict[tuple[str, ...], int]


@dataclass(frozen=True)
class StepOutput:
    """A reference to another step's output: ``step`` is its name (or the step itself)."""

    step: Any  # str once inside a Pipeline; a ModuleStep while being built in Python
    output: str

    def __str__(self) -> str:
        name = self.step if isinstance(self.step, str) else (self.step.name or "?")
        return f"{name}.outputs.{self.output}"


class _Outputs:
    """``step.outputs["name"]``: builds references, checked later against the interface."""

    def __init__(self, step: ModuleStep) -> None:
        self._step = step

    def __getitem__(self, name: str) -> StepOutput:
        return StepOutput(self._step.name or self._step, name)


InputValue = Path | StepOutput


@dataclass(eq=False)
class ModuleStep:
    """One step: a module reference (``team/name@RANGE``), its inputs and params."""

    uses: str
    inputs: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    name: str | None = None
    timeout: float | None = None
    retries: int | None = None
    # overrides the manifest's, key by key (registry.manifest.parse_resources)
    resources: dict[str, float] | None = None

    @property
    def outputs(self) -> _Outputs:
        return _Outputs(self)


@dataclass(init=False)
class Pipeline:
    """Named steps, the folder paths are relative to, and optional variant axes."""

    name: str
    steps: dict[str, ModuleStep]
    base_dir: Path = field(default_factory=Path.cwd)
    variants: dict[str, list[Any]] = field(default_factory=dict)
    source: str = "pipeline.yaml"
    lines: Lines = field(default_factory=dict)
    # fields set from outside the file (``--set``): axis -> where, which their problems name
    overrides: dict[str, str] = field(default_factory=dict)

    def __init__(
        self,
        name: str,
        steps: Mapping[str, ModuleStep] | Sequence[ModuleStep],
        base_dir: Path | str | None = None,
        variants: Mapping[str, Sequence[Any]] | None = None,
        source: str = "<python>",
        lines: Lines | None = None,
        overrides: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.base_dir = Path(base_dir or Path.cwd()).resolve()
        self.variants = {axis: list(values) for axis, values in (variants or {}).items()}
        self.source = source
        self.lines = dict(lines or {})
        self.overrides = dict(overrides or {})
        self.steps = _normalise_steps(steps, self.base_dir)

    def line(self, *path: str) -> int | None:
        """The YAML line of the longest known prefix of ``path``."""
        for end in range(len(path), 0, -1):
            if path[:end] in self.lines:
                return self.lines[path[:end]]
        return None

    def problem(self, message: str, step: str | None = None, *path: str) -> Problem:
        """A Problem located at ``steps.<step>.<path>`` (or the top level), or at the option
        that set that field (``--set: train.params.lr: …``): the file is not at fault."""
        where = ("steps", step, *path) if step else tuple(path)
        label = ".".join(path) if path else None
        axis = f"{step}.{label}"
        if step and axis in self.overrides:
            return Problem(message, None, axis, None, self.overrides[axis])
        return Problem(message, step, label, self.line(*where), self.source)

    def with_values(self, assignments: Mapping[str, Any], source: str = "--set") -> Pipeline:
        """A copy with ``step.uses`` / ``step.params.k`` set by ``source``, which the copy's
        problems with those fields then name."""
        copy = self._assigned(assignments, source)
        copy.overrides.update(dict.fromkeys(assignments, source))
        return copy

    def _assigned(self, assignments: Mapping[str, Any], source: str) -> Pipeline:
        """A copy with ``step.uses`` / ``step.params.k`` set (``--set``, a variant's choice)."""
        steps = {name: replace(step, params=dict(step.params)) for name, step in self.steps.items()}
        problems = [
            Problem(message, None, axis, None, source)
            for axis in assignments
            if (message := axis_problem(axis, steps)) is not None
        ]
        if problems:
            raise PipelineSpecError(problems)
        for axis, value in assignments.items():
            name, _, field_name = axis.partition(".")
            if field_name == "uses":
                steps[name].uses = str(value)
            else:
                steps[name].params[field_name.removeprefix("params.")] = value
        overrides = {axis: by for axis, by in self.overrides.items() if axis not in assignments}
        return Pipeline(self.name, steps, self.base_dir, {}, self.source, self.lines, overrides)

    def expand(self) -> list[tuple[dict[str, Any], Pipeline]]:
        """Every combination of the variant axes (the first axis varies slowest)."""
        if not self.variants:
            return [({}, self)]
        axes = list(self.variants)
        combos = itertools.product(*(self.variants[axis] for axis in axes))
        chosen = [dict(zip(axes, combo, strict=True)) for combo in combos]
        # a variant's problems are located by ``variants.check``, not blamed on an option
        return [(choice, self._assigned(choice, "variants")) for choice in chosen]


def _normalise_steps(
    steps: Mapping[str, ModuleStep] | Sequence[ModuleStep], base_dir: Path
) -> dict[str, ModuleStep]:
    """Name the steps, and turn inputs into absolute Paths or named StepOutputs."""
    named = dict(steps) if isinstance(steps, Mapping) else {s.name or "": s for s in steps}
    names = {id(step): name for name, step in named.items()}
    result = {}
    for name, step in named.items():
        inputs = {key: _input_value(value, base_dir, names) for key, value in step.inputs.items()}
        result[name] = replace(step, name=name, inputs=inputs, params=dict(step.params))
    return result


def _input_value(value: Any, base_dir: Path, names: dict[int, str]) -> InputValue:
    if isinstance(value, StepOutput):
        step = value.step if isinstance(value.step, str) else names.get(id(value.step), "?")
        return StepOutput(step, value.output)
    if isinstance(value, str) and (match := OUTPUT_REF.match(value)):
        return StepOutput(match.group(1), match.group(2))
    return (base_dir / Path(value)).resolve()


# --- pipeline.yaml ----------------------------------------------------------------------


def _node_lines(node: yaml.Node, path: tuple[str, ...], lines: Lines) -> None:
    """Record the 1-based line of every mapping key, by its path of keys."""
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            sub = (*path, str(key.value))
            lines[sub] = key.start_mark.line + 1
            _node_lines(value, sub, lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            sub = (*path, str(index))
            lines[sub] = item.start_mark.line + 1
            _node_lines(item, sub, lines)


def _yaml_loader() -> type[yaml.SafeLoader]:
    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _parse_yaml(text: str, source: str) -> tuple[Any, Lines]:
    loader = _yaml_loader()
    try:
        node = yaml.compose(text, Loader=loader)
        data = yaml.load(text, Loader=loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        detail = getattr(exc, "problem", None) or str(exc)
        problem = Problem(f"invalid YAML: {detail}", line=line, source=source)
        raise PipelineSpecError([problem]) from exc
    lines: Lines = {}
    if node is not None:
        _node_lines(node, (), lines)
    return data, lines


class _Reader:
    """Collects the shape problems of one pipeline.yaml while reading it."""

    def __init__(self, source: str, lines: Lines) -> None:
        self.source = source
        self.lines = lines
        self.problems: list[Problem] = []

    def add(self, message: str, step: str | None, *path: str) -> None:
        where = ("steps", step, *path) if step else tuple(path)
        line = next(
            (self.lines[where[:n]] for n in range(len(where), 0, -1) if where[:n] in self.lines),
            None,
        )
        label = ".".join(path) or None
        self.problems.append(Problem(message, step, label, line, self.source))

    def unknown_keys(
        self, table: dict[str, Any], allowed: Sequence[str], step: str | None, *path: str
    ) -> None:
        for key in table:
            if key not in allowed:
                self.add(
                    f"unknown key {key!r} (allowed: {', '.join(allowed)})", step, *path, str(key)
                )

    def mapping(self, value: Any, step: str | None, *path: str) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.add(f"expected a mapping, got {value!r}", step, *path)
            return {}
        return value


def _read_step(reader: _Reader, name: str, raw: Any) -> ModuleStep | None:
    if not STEP_NAME.match(str(name)):
        reader.add("a step name is letters, digits, '_' and '-', starting with a letter", str(name))
    table = reader.mapping(raw, str(name))
    reader.unknown_keys(table, STEP_KEYS, str(name))
    uses = table.get("uses")
    if not isinstance(uses, str) or not uses.strip():
        reader.add(
            "missing 'uses: team/name@RANGE'"
            if uses is None
            else f"expected a module reference, got {uses!r}",
            str(name),
            "uses",
        )
    inputs = reader.mapping(table.get("inputs"), str(name), "inputs")
    for key, value in inputs.items():
        if not isinstance(value, str) or not value:
            reader.add(
                f"expected a path or 'step.outputs.name', got {value!r}",
                str(name),
                "inputs",
                str(key),
            )
    timeout = table.get("timeout")
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0
    ):
        reader.add(f"expected a positive number of seconds, got {timeout!r}", str(name), "timeout")
    retries = table.get("retries")
    if retries is not None and (
        isinstance(retries, bool) or not isinstance(retries, int) or retries < 0
    ):
        reader.add(f"expected a whole number >= 0, got {retries!r}", str(name), "retries")
    resources = None
    if table.get("resources") is not None:
        try:
            resources = parse_resources(table["resources"])
        except ValueError as exc:
            reader.add(str(exc), str(name), "resources")
    params = reader.mapping(table.get("params"), str(name), "params")
    return ModuleStep(
        str(uses or ""),
        {str(k): v for k, v in inputs.items()},
        {str(k): v for k, v in params.items()},
        str(name),
        timeout,
        retries,
        resources,
    )


def unknown_step(name: str, steps: Iterable[str]) -> str:
    """The message for a step name the pipeline lacks, listing the steps it has."""
    return f"unknown step {name!r} (steps: {', '.join(steps) or 'none'})"


def step_option_problems(option: str, names: Iterable[str], steps: Iterable[str]) -> list[Problem]:
    """An option that names steps (``--regenerate STEP``, ``--upgrade STEP``): one problem
    per name that is no step, so a typo is an error instead of an option silently ignored."""
    known = list(dict.fromkeys(steps))
    return [
        Problem(unknown_step(name, known), source=option)
        for name in sorted(names)
        if name not in known
    ]


def axis_problem(axis: str, steps: Mapping[str, ModuleStep]) -> str | None:
    """What is wrong with a variant axis name (``step.uses`` / ``step.params.K``), or None."""
    match = AXIS.match(axis)
    if not match:
        return "expected 'STEP.uses' or 'STEP.params.NAME'"
    if match.group(1) not in steps:
        return unknown_step(match.group(1), steps)
    return None


def _read_variants(reader: _Reader, raw: Any, steps: dict[str, ModuleStep]) -> dict[str, list[Any]]:
    table = reader.mapping(raw, None, "variants")
    variants = {}
    for axis, values in table.items():
        if (message := axis_problem(str(axis), steps)) is not None:
            reader.add(message, None, "variants", str(axis))
        if not isinstance(values, list) or not values:
            reader.add(
                f"expected a non-empty list of values, got {values!r}", None, "variants", str(axis)
            )
            continue
        variants[str(axis)] = values
    return variants


def parse_pipeline(text: str, base_dir: Path, source: str = "pipeline.yaml") -> Pipeline:
    """A Pipeline from YAML text; PipelineSpecError lists every shape problem."""
    data, lines = _parse_yaml(text, source)
    reader = _Reader(source, lines)
    if not isinstance(data, dict):
        raise PipelineSpecError(
            [Problem("expected a mapping with 'name' and 'steps'", line=1, source=source)]
        )
    reader.unknown_keys(data, TOP_KEYS, None)
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        reader.add(f"expected a pipeline name, got {name!r}", None, "name")
    raw_steps = reader.mapping(data.get("steps"), None, "steps")
    if not raw_steps:
        reader.add("a pipeline needs at least one step under 'steps'", None, "steps")
    steps = {
        str(key): step
        for key, raw in raw_steps.items()
        if (step := _read_step(reader, str(key), raw))
    }
    variants = _read_variants(reader, data.get("variants"), steps)
    if reader.problems:
        raise PipelineSpecError(reader.problems)
    return Pipeline(str(name), steps, base_dir, variants, source, lines)


def load_pipeline(path: Path | str) -> Pipeline:
    """Read ``pipeline.yaml``; inputs are relative to its folder."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PipelineSpecError(
            [Problem(f"cannot read: {exc.strerror}", source=str(path))]
        ) from exc
    return parse_pipeline(text, path.resolve().parent, path.name)


def pipeline_to_dict(pipeline: Pipeline) -> dict[str, Any]:
    """The pipeline as ``pipeline.yaml`` data (absolute input paths; no variants)."""
    steps = {}
    for name, step in pipeline.steps.items():
        body: dict[str, Any] = {"uses": step.uses}
        if step.inputs:
            body["inputs"] = {key: str(value) for key, value in step.inputs.items()}
        if step.params:
            body["params"] = dict(step.params)
        if step.timeout is not None:
            body["timeout"] = step.timeout
        if step.retries is not None:
            body["retries"] = step.retries
        if step.resources is not None:
            body["resources"] = dict(step.resources)
        steps[name] = body
    return {"name": pipeline.name, "steps": steps}


def iter_step_outputs(step: ModuleStep) -> Iterator[tuple[str, StepOutput]]:
    """The inputs of ``step`` that are other steps' outputs."""
    for key, value in step.inputs.items():
        if isinstance(value, StepOutput):
            yield key, value
