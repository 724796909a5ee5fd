"""Sweeps built in Python: a cartesian product of step variants, or an explicit list.

The seed of the idea::

    sweep = Sweep.product("digits", {
        "prep": [standardise, minmax, pca],          # three variants of the step "prep"
        "augment": [no_noise, noise],
        "train": [logreg, forest, mlp],
    })                                               # 18 pipelines, one per combination
    result = run_pipeline(sweep, workspace)          # a SweepResult with 18 runs

A step of one slot may read another slot's output through ANY of that slot's variants
(``noise = ModuleStep(..., inputs={"data": standardise.outputs["data"]})``): the reference
means "the ``prep`` step of this combination". ``Sweep.of([p1, p2, ...])`` runs pipelines
built any other way as one sweep. Either way each pipeline's *choices* — what the DESIGN.md
``variant`` object holds — are what differs between them: ``<step>.uses`` and
``<step>.params.<k>`` (and ``<step>.inputs.<k>`` when inputs differ).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from modreg.engine.errors import PipelineSpecError, Problem
from modreg.engine.spec import ModuleStep, Pipeline, StepOutput

Variant = tuple[dict[str, Any], Pipeline]
_MISSING = object()


@dataclass
class Sweep:
    """Pipelines run together as one sweep: each with its variant's choices."""

    name: str
    variants: list[Variant]

    @classmethod
    def of(cls, pipelines: Sequence[Pipeline]) -> Sweep:
        """An explicit list of pipelines; the choices are computed from their differences."""
        if not pipelines:
            raise PipelineSpecError(
                [Problem("a sweep needs at least one pipeline", source="<python>")]
            )
        choices = differences(pipelines)
        return cls(pipelines[0].name, list(zip(choices, pipelines, strict=True)))

    @classmethod
    def product(
        cls,
        name: str,
        steps: Mapping[str, ModuleStep | Sequence[ModuleStep]],
        base_dir: Path | str | None = None,
    ) -> Sweep:
        """One pipeline per combination of the step variants (a lone step is in all)."""
        slots = {slot: _alternatives(slot, value) for slot, value in steps.items()}
        owner = {id(step): slot for slot, steps_ in slots.items() for step in steps_}
        combos = itertools.product(*slots.values())
        pipelines = [
            Pipeline(
                name,
                {slot: _rewired(step, owner) for slot, step in zip(slots, combo, strict=True)},
                base_dir,
            )
            for combo in combos
        ]
        return cls.of(pipelines)

    def __len__(self) -> int:
        return len(self.variants)

    def __iter__(self) -> Iterator[Pipeline]:
        return (pipeline for _, pipeline in self.variants)


def _alternatives(slot: str, value: ModuleStep | Sequence[ModuleStep]) -> list[ModuleStep]:
    steps = [value] if isinstance(value, ModuleStep) else list(value)
    if not steps or not all(isinstance(step, ModuleStep) for step in steps):
        problem = Problem(
            "expected a ModuleStep or a non-empty list of them", slot, source="<python>"
        )
        raise PipelineSpecError([problem])
    return steps


def _rewired(step: ModuleStep, owner: dict[int, str]) -> ModuleStep:
    """A copy whose references to any variant of a slot name that slot."""
    inputs = {
        key: StepOutput(owner.get(id(value.step), value.step), value.output)
        if isinstance(value, StepOutput) and not isinstance(value.step, str)
        else value
        for key, value in step.inputs.items()
    }
    return replace(step, inputs=inputs, params=dict(step.params))


def step_choices(step: ModuleStep | None) -> dict[str, Any]:
    """What a step contributes to a variant: its ``uses``, params and inputs, by field."""
    if step is None:
        return {"uses": None}
    fields: dict[str, Any] = {"uses": step.uses}
    fields.update({f"params.{key}": value for key, value in step.params.items()})
    fields.update({f"inputs.{key}": str(value) for key, value in step.inputs.items()})
    return fields


def differences(pipelines: Sequence[Pipeline]) -> list[dict[str, Any]]:
    """For each pipeline, the ``<step>.<field>`` values that are not the same in all."""
    names = list(dict.fromkeys(name for pipeline in pipelines for name in pipeline.steps))
    table = [
        {
            f"{name}.{key}": value
            for name in names
            for key, value in step_choices(pipeline.steps.get(name)).items()
        }
        for pipeline in pipelines
    ]
    keys = list(dict.fromkeys(key for row in table for key in row))
    varying = [key for key in keys if len({repr(row.get(key, _MISSING)) for row in table}) > 1]
    return [{key: row.get(key) for key in varying} for row in table]
