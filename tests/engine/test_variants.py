"""Variant axes and Python sweeps: expansion, choices, and every combination checked at once."""

from __future__ import annotations

from pathlib import Path

import pytest
from engine_env import EngineEnv
from test_spec_validate import GOOD, MODULES, module

from modreg.engine import (
    LocalArtifactStore,
    LocalExecutor,
    Lock,
    ModuleStep,
    Pipeline,
    PipelineSpecError,
    RunResult,
    StateDir,
    Sweep,
    SweepResult,
    Workspace,
    run_pipeline,
)
from modreg.engine.resolve import Resolved
from modreg.engine.spec import StepOutput, parse_pipeline
from modreg.engine.variants import check, expand
from modreg.registry.schemas import Param

TRAIN2 = module(
    "vision/train2",
    {"dataset": "dir"},
    {"model": "file"},
    {"rate": Param(type="float", required=True)},
)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    return tmp_path


def resolved_for(expansion_pipelines: list[Pipeline]) -> Resolved:
    """A lock that resolves vision/train2 refs to TRAIN2, everything else by step name."""
    lock = Lock("digits")
    for pipeline in expansion_pipelines:
        for name, step in pipeline.steps.items():
            lock.put(name, step.uses, TRAIN2 if "train2" in step.uses else MODULES[name])
    return Resolved(lock)


def problems(text: str, folder: Path, **vary: list[object]) -> list[str]:
    expansion = expand(
        parse_pipeline(text, folder), vary={k.replace("__", "."): v for k, v in vary.items()}
    )
    resolved = resolved_for([p for _, p in expansion.variants])
    return [str(p) for p in check(expansion, resolved)]


def test_vary_replaces_a_file_axis_in_place_and_adds_new_ones(folder: Path) -> None:
    text = GOOD + "variants:\n  train.params.lr: [0.1, 0.2]\n  prep.params.size: [1, 2]\n"
    expansion = expand(
        parse_pipeline(text, folder),
        vary={"train.params.lr": [0.5], "prep.uses": ["vision/prep@1"]},
    )
    assert list(expansion.axes) == ["train.params.lr", "prep.params.size", "prep.uses"]
    assert [choice for choice, _ in expansion.variants] == [
        {"train.params.lr": 0.5, "prep.params.size": 1, "prep.uses": "vision/prep@1"},
        {"train.params.lr": 0.5, "prep.params.size": 2, "prep.uses": "vision/prep@1"},
    ]


@pytest.mark.parametrize(
    ("vary", "expected"),
    [
        ({"ghost.uses": ["x/y"]}, "--vary: ghost.uses: unknown step 'ghost' (steps: prep, train)"),
        (
            {"train.inputs.dataset": ["x"]},
            "--vary: train.inputs.dataset: expected 'STEP.uses' or 'STEP.params.NAME'",
        ),
        ({"train.params.lr": []}, "--vary: train.params.lr: no values given"),
    ],
)
def test_bad_cli_axes_fail_before_resolution(folder: Path, vary: dict, expected: str) -> None:
    with pytest.raises(PipelineSpecError) as caught:
        expand(parse_pipeline(GOOD, folder), vary=vary)
    assert [str(p) for p in caught.value.problems] == [expected]


def test_a_bad_param_axis_is_one_problem_naming_the_axis(folder: Path) -> None:
    text = GOOD + "variants:\n  train.params.lr: [0.1, fast, slow]\n  prep.params.size: [1, 2]\n"
    assert problems(text, folder) == [
        "pipeline.yaml:14: variants.train.params.lr: value 'fast': expected float, got 'fast'",
        "pipeline.yaml:14: variants.train.params.lr: value 'slow': expected float, got 'slow'",
    ]
    assert problems(GOOD, folder, train__params__depth=[1, 2]) == [
        "--vary: train.params.depth: unknown param 'depth' of vision/train (its params: lr)"
    ]


def test_a_problem_of_some_combinations_names_them(folder: Path) -> None:
    text = (
        GOOD
        + "variants:\n  train.uses: [vision/train@^1.0, vision/train2@1]\n"
        + "  prep.params.size: [1, 2]\n"
    )
    assert problems(text, folder) == [
        "pipeline.yaml:12: step 'train': params.lr: unknown param 'lr' (the module's params: rate) "
        "[variants with train.uses=vision/train2@1]",
        "pipeline.yaml:11: step 'train': params: missing required param 'rate' (type float) "
        "[variants with train.uses=vision/train2@1]",
    ]
    one = problems(GOOD, folder, train__uses=["vision/train@^1.0", "vision/train2@1"])
    assert one[0].endswith("[variant train.uses=vision/train2@1]")


def test_a_problem_of_every_combination_is_the_pipelines_own(folder: Path) -> None:
    text = (
        GOOD.replace("lr: 0.5", "lr: 0.5\n      depth: 3")
        + "variants:\n  prep.params.size: [1, 2]\n"
    )
    assert problems(text, folder) == [
        "pipeline.yaml:13: step 'train': params.depth: unknown param 'depth' "
        "(the module's params: lr)"
    ]


# --- Python sweeps ------------------------------------------------------------------------


def test_product_makes_one_pipeline_per_combination_wired_by_slot(tmp_path: Path) -> None:
    preps = [ModuleStep("vision/prep@^1.0", params={"size": n}) for n in (8, 16, 32)]
    augs = [
        ModuleStep("vision/aug@1", inputs={"dataset": preps[0].outputs["dataset"]}),
        ModuleStep("vision/aug-noise@1", inputs={"dataset": preps[0].outputs["dataset"]}),
    ]
    train = ModuleStep("vision/train@^1.0", inputs={"dataset": "aug.outputs.dataset"})
    sweep = Sweep.product("digits", {"prep": preps, "aug": augs, "train": train}, tmp_path)
    assert len(sweep) == 6
    choice, last = sweep.variants[-1]
    assert choice == {"prep.params.size": 32, "aug.uses": "vision/aug-noise@1"}
    assert last.steps["aug"].inputs["dataset"] == StepOutput("prep", "dataset")
    assert last.steps["prep"].params == {"size": 32}
    assert preps[2].params == {"size": 32} and augs[1].name is None, "the variants are not changed"


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        (
            [{"uses": "v/a@1", "params": {"k": 1}}, {"uses": "v/a@1", "params": {"k": 2}}],
            [{"a.params.k": 1}, {"a.params.k": 2}],
        ),
        (
            [{"uses": "v/a@1", "params": {}}, {"uses": "v/b@1", "params": {"k": 2}}],
            [{"a.uses": "v/a@1", "a.params.k": None}, {"a.uses": "v/b@1", "a.params.k": 2}],
        ),
        ([{"uses": "v/a@1", "params": {}}] * 2, [{}, {}]),
    ],
)
def test_an_explicit_list_of_pipelines_is_told_apart_by_what_differs(
    tmp_path: Path, steps: list[dict], expected: list[dict]
) -> None:
    pipelines = [
        Pipeline("p", {"a": ModuleStep(s["uses"], params=s["params"])}, tmp_path) for s in steps
    ]
    assert [choice for choice, _ in Sweep.of(pipelines).variants] == expected


def test_a_slot_without_steps_is_an_error() -> None:
    with pytest.raises(
        PipelineSpecError, match="step 'prep': expected a ModuleStep or a non-empty list"
    ):
        Sweep.product("digits", {"prep": []})


# --- the caller's pipeline is left as it was -----------------------------------------------


def test_vary_does_not_change_the_caller_s_pipeline(folder: Path) -> None:
    pipeline = parse_pipeline(GOOD, folder)
    assert len(expand(pipeline, vary={"train.params.lr": [0.1, 0.2]}).variants) == 2
    assert pipeline.variants == {}
    assert [choice for choice, _ in expand(pipeline).variants] == [{}]


def test_run_pipeline_twice_does_not_carry_the_first_sweep_into_the_second(
    env: EngineEnv, tmp_path: Path
) -> None:
    fit = env.module("fit", params={"lr": {"type": "float", "default": 0.1}})
    pipeline = Pipeline("fit", {"fit": ModuleStep(f"{fit}@^1.0")})
    state = StateDir(tmp_path / "state")
    with env.client() as client:
        workspace = Workspace(state, LocalArtifactStore(state.store), LocalExecutor(1), client)
        swept = run_pipeline(pipeline, workspace, vary={"fit.params.lr": [0.1, 0.2]})
        assert isinstance(swept, SweepResult) and len(swept.runs) == 2
        single = run_pipeline(pipeline, workspace)
    assert isinstance(single, RunResult) and single.variant == {}
    assert pipeline.variants == {}
