"""pipeline.yaml parsing and validation: every problem, with its step, field and line."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from modreg.engine import CycleError, LockedModule, ModuleStep, Pipeline, PipelineSpecError
from modreg.engine.spec import StepOutput, parse_pipeline
from modreg.engine.validate import check_pipeline, raise_problems
from modreg.registry.schemas import Interface, Manifest, Param, Port

SHA = "a" * 64
COMMIT = "b" * 40


def module(
    name: str,
    inputs: dict[str, str] | None = None,
    outputs: dict[str, str] | None = None,
    params: dict[str, Param] | None = None,
    optional: tuple[str, ...] = (),
) -> LockedModule:
    interface = Interface(
        inputs={k: Port(type=v, optional=k in optional) for k, v in (inputs or {}).items()},
        outputs={k: Port(type=v) for k, v in (outputs or {}).items()},
        params=params or {},
    )
    manifest = Manifest(
        name=name, version="1.0.0", command=["python", "main.py"], interface=interface
    )
    return LockedModule(module=name, version="1.0.0", commit=COMMIT, sha256=SHA, manifest=manifest)


MODULES = {
    "prep": module(
        "vision/prep",
        {"raw": "dir"},
        {"dataset": "dir", "report": "file"},
        {"size": Param(type="int", default=8), "mode": Param(type="str", required=True)},
    ),
    "train": module(
        "vision/train",
        {"dataset": "dir", "labels": "file"},
        {"model": "file"},
        {"lr": Param(type="float", default=0.1)},
        optional=("labels",),
    ),
}

GOOD = """\
name: digits
steps:
  prep:
    uses: vision/prep@^1.0
    inputs: {raw: data}
    params: {mode: fast}
  train:
    uses: vision/train@^1.0
    inputs:
      dataset: prep.outputs.dataset
    params:
      lr: 0.5
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    (tmp_path / "file.txt").write_text("x")
    return tmp_path


def problems_of(text: str, folder: Path) -> list[str]:
    pipeline = parse_pipeline(text, folder)
    modules = {name: MODULES[name] for name in pipeline.steps if name in MODULES}
    return [str(p) for p in check_pipeline(pipeline, modules)]


def test_a_good_pipeline_has_no_problems(folder: Path) -> None:
    assert problems_of(GOOD, folder) == []


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "inputs: {raw: data}",
            "inputs: {raw: data, extra: data}",
            "pipeline.yaml:5: step 'prep': inputs.extra: unknown input 'extra' (the "
            "module's inputs: raw)",
        ),
        (
            "inputs: {raw: data}",
            "inputs: {}",
            "pipeline.yaml:5: step 'prep': inputs: missing required input 'raw' (a dir)",
        ),
        (
            "inputs: {raw: data}",
            "inputs: {raw: nowhere}",
            "pipeline.yaml:5: step 'prep': inputs.raw: input path 'nowhere' does not exist",
        ),
        (
            "inputs: {raw: data}",
            "inputs: {raw: file.txt}",
            "pipeline.yaml:5: step 'prep': inputs.raw: input 'raw' takes a dir, but "
            "'file.txt' is a file",
        ),
        (
            "params: {mode: fast}",
            "params: {mode: fast, speed: 2}",
            "pipeline.yaml:6: step 'prep': params.speed: unknown param 'speed' (the module's "
            "params: mode, size)",
        ),
        (
            "params: {mode: fast}",
            "params: {}",
            "pipeline.yaml:6: step 'prep': params: missing required param 'mode' (type str)",
        ),
        (
            "params: {mode: fast}",
            "params: {mode: fast, size: big}",
            "pipeline.yaml:6: step 'prep': params.size: expected int, got 'big'",
        ),
        (
            "dataset: prep.outputs.dataset",
            "dataset: prep.outputs.report",
            "pipeline.yaml:10: step 'train': inputs.dataset: 'prep.outputs.report' is a "
            "file, but input 'dataset' takes a dir",
        ),
        (
            "dataset: prep.outputs.dataset",
            "dataset: prep.outputs.nope",
            "pipeline.yaml:10: step 'train': inputs.dataset: step 'prep' has no output "
            "'nope' (its outputs: dataset, report)",
        ),
        (
            "dataset: prep.outputs.dataset",
            "dataset: ghost.outputs.dataset",
            "pipeline.yaml:10: step 'train': inputs.dataset: unknown step 'ghost' in "
            "'ghost.outputs.dataset' (steps: prep, train)",
        ),
        (
            "lr: 0.5",
            "lr: fast",
            "pipeline.yaml:12: step 'train': params.lr: expected float, got 'fast'",
        ),
    ],
)
def test_each_validation_problem_names_step_field_and_line(
    folder: Path, old: str, new: str, expected: str
) -> None:
    assert old in GOOD
    assert problems_of(GOOD.replace(old, new), folder) == [expected]


def test_all_problems_are_reported_at_once(folder: Path) -> None:
    text = GOOD.replace("params: {mode: fast}", "params: {}").replace("lr: 0.5", "lr: fast")
    with pytest.raises(PipelineSpecError) as caught:
        raise_problems([p for p in check_pipeline(parse_pipeline(text, folder), MODULES)])
    assert len(caught.value.problems) == 2
    assert str(caught.value).splitlines()[0] == "2 problems in the pipeline:"


def test_a_type_only_a_newer_modreg_knows_is_one_problem_not_a_crash(folder: Path) -> None:
    """A newer registry's answer may declare a type this engine cannot run (``Wire``)."""
    answer = MODULES["prep"].manifest.model_dump(mode="json")
    answer["interface"]["outputs"]["dataset"]["type"] = "table"
    answer["interface"]["params"]["mode"]["type"] = "secret"
    prep = dataclasses.replace(MODULES["prep"], manifest=Manifest.from_answer(answer))
    pipeline = parse_pipeline(GOOD, folder)
    assert [str(p) for p in check_pipeline(pipeline, {**MODULES, "prep": prep})] == [
        *(
            f"pipeline.yaml:4: step 'prep': uses: vision/prep@1.0.0 declares {what}, "
            "which this modreg does not know: upgrade modreg"
            for what in ("output 'dataset' of type 'table'", "param 'mode' of type 'secret'")
        ),
        "pipeline.yaml:10: step 'train': inputs.dataset: 'prep.outputs.dataset' is a table, "
        "but input 'dataset' takes a dir",
    ]


def test_a_cycle_is_reported_with_its_steps(folder: Path) -> None:
    text = GOOD.replace("inputs: {raw: data}", "inputs: {raw: train.outputs.model}")
    pipeline = parse_pipeline(text, folder)
    prep = module("vision/prep", {"raw": "file"}, {"dataset": "dir"}, {"mode": Param(type="str")})
    modules = {"prep": prep, "train": MODULES["train"]}
    problems = check_pipeline(pipeline, modules)
    assert [str(p) for p in problems] == [
        "pipeline.yaml:5: step 'prep': inputs: cycle: prep -> train -> prep"
    ]
    with pytest.raises(CycleError):
        raise_problems(problems)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "name: x\nsteps:\n  a:\n    uses: vision/prep\n    colour: red\n",
            [
                "pipeline.yaml:5: step 'a': colour: unknown key 'colour' (allowed: uses, inputs, "
                "params, timeout, retries, resources)"
            ],
        ),
        (
            "name: x\nsteps:\n  a:\n    inputs: {}\n",
            ["pipeline.yaml:3: step 'a': uses: missing 'uses: team/name@RANGE'"],
        ),
        (
            "name: x\nsteps: {}\n",
            ["pipeline.yaml:2: steps: a pipeline needs at least one step under 'steps'"],
        ),
        (
            "steps:\n  a: {uses: vision/prep}\n",
            ["pipeline.yaml: name: expected a pipeline name, got None"],
        ),
        (
            "name: x\nsteps:\n  a: {uses: vision/prep, timeout: -1}\n",
            ["pipeline.yaml:3: step 'a': timeout: expected a positive number of seconds, got -1"],
        ),
        (
            "name: x\nsteps:\n  a: {uses: vision/prep, retries: 1.5}\n",
            ["pipeline.yaml:3: step 'a': retries: expected a whole number >= 0, got 1.5"],
        ),
        (
            "name: x\nsteps:\n  a: {uses: vision/prep, resources: {GPU: 0.5}}\n",
            ["pipeline.yaml:3: step 'a': resources: GPU: expected a whole number, got 0.5"],
        ),
        (
            "name: x\nsteps:\n  a: {uses: vision/prep}\nvariants:\n  b.uses: [x]\n",
            ["pipeline.yaml:5: variants.b.uses: unknown step 'b' (steps: a)"],
        ),
        (
            "name: x\nsteps:\n  a: {uses: vision/prep}\nvariants:\n  a.params.k: []\n",
            ["pipeline.yaml:5: variants.a.params.k: expected a non-empty list of values, got []"],
        ),
        ("name: [x\n", ["pipeline.yaml:2: invalid YAML: did not find expected ',' or ']'"]),
    ],
)
def test_shape_problems_of_pipeline_yaml(tmp_path: Path, text: str, expected: list[str]) -> None:
    with pytest.raises(PipelineSpecError) as caught:
        parse_pipeline(text, tmp_path)
    assert [str(p) for p in caught.value.problems] == expected


def test_python_api_wires_outputs_by_object(tmp_path: Path) -> None:
    prep = ModuleStep("vision/prep@^1.0", inputs={"raw": "data"}, params={"mode": "fast"})
    train = ModuleStep("vision/train@^1.0", inputs={"dataset": prep.outputs["dataset"]})
    pipeline = Pipeline("digits", {"prep": prep, "train": train}, base_dir=tmp_path)
    assert pipeline.steps["train"].inputs["dataset"] == StepOutput("prep", "dataset")
    assert pipeline.steps["prep"].inputs["raw"] == (tmp_path / "data").resolve()


def test_variants_expand_to_the_cartesian_product(tmp_path: Path) -> None:
    text = (
        GOOD + "variants:\n  prep.params.size: [1, 2, 3]\n  train.uses: [vision/train@^1.0, "
        "vision/train2@1.0.0]\n"
    )
    expanded = parse_pipeline(text, tmp_path).expand()
    assert len(expanded) == 6
    choice, pipeline = expanded[-1]
    assert choice == {"prep.params.size": 3, "train.uses": "vision/train2@1.0.0"}
    assert pipeline.steps["prep"].params == {"mode": "fast", "size": 3}
    assert pipeline.steps["train"].uses == "vision/train2@1.0.0"
