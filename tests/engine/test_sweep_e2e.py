"""Sweeps end to end: real module repos on a real registry, run by the real ``modreg`` CLI.

The 3 x 2 x 3 sweep of a 3-step pipeline (prep -> aug -> train) must execute each distinct
step once — 3 preps + 6 augs + 18 trains = 27, where a naive product runs 54 — counted by
the modules themselves through a side file.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import Result
from engine_env import EngineEnv, Server
from engine_env import make_team as new_team

from modreg.engine import (
    LocalArtifactStore,
    LocalExecutor,
    ModuleStep,
    RunOptions,
    StateDir,
    Sweep,
    SweepResult,
    Workspace,
    run_pipeline,
)

SCRIPT = """\
import json, os, sys
from pathlib import Path
args = {{k.lstrip("-"): v for k, v in zip(sys.argv[1::2], sys.argv[2::2])}}
metrics = {{}}
{body}
Path(os.environ["MODREG_METRICS"]).write_text(json.dumps(metrics))
with open(os.environ["TEST_STEP_COUNTER"], "a") as counter:
    counter.write("{name}\\n")
"""

PREP = 'Path(args["out"]).write_text(Path(args["raw"]).read_text() + "|{tag}")'
AUG = 'Path(args["out"]).write_text(Path(args["data"]).read_text() + "|n" + args["noise"])'
TRAIN = """\
data = Path(args["data"]).read_text()
arch = int(args["arch"])
Path(args["out"]).write_text(data + "|arch" + str(arch))
metrics = {"accuracy": accuracy(data, arch), "arch": arch}
if arch == 3:
    metrics["depth"] = 12
"""
SCORES = {"p1": 0.8, "p2": 0.85, "robust": 0.9}
ACCURACY = f"""\
def accuracy(data, arch):
    scores = {SCORES!r}
    tag, noise = data.split("|")[1], int(data.split("|n")[1])
    return round(scores[tag] + noise * 0.01 + arch * 0.001, 4)
"""

PIPELINE = """\
name: sweep
steps:
  prep:
    uses: TEAM/prep@^1.0
    inputs: {raw: raw.txt}
  aug:
    uses: TEAM/aug@^1.0
    inputs: {data: prep.outputs.out}
  train:
    uses: TEAM/train@^1.0
    inputs: {data: aug.outputs.out}
    params: {arch: 1}
"""
VARIANTS = """\
variants:
  prep.uses: [TEAM/prep@^1.0, TEAM/prep@^2.0, TEAM/prep-robust@0.3.1]
  aug.params.noise: [0, 1]
  train.params.arch: [1, 2, 3]
"""
VARY = (
    "--vary",
    "prep.uses=TEAM/prep@^1.0,TEAM/prep@^2.0,TEAM/prep-robust@0.3.1",
    "--vary",
    "aug.params.noise=0,1",
    "--vary",
    "train.params.arch=1,2,3",
)
DISTINCT = {
    "prep@1.0.0": 1,
    "prep@2.0.0": 1,
    "prep-robust@0.3.1": 1,
    "aug@1.0.0": 6,
    "train@1.0.0": 18,
}


def script(env: EngineEnv, name: str, version: str, body: str) -> dict[str, str]:
    return {"main.py": SCRIPT.format(body=body, name=f"{env.team}/{name}@{version}")}


def publish_sweep(env: EngineEnv, robust_body: str | None = None) -> Path:
    """prep 1.0.0 / 2.0.0 / prep-robust 0.3.1, aug (param noise), train (param arch)."""
    for name, version, tag in (("prep", "1.0.0", "p1"), ("prep", "2.0.0", "p2")):
        body = PREP.format(tag=tag)
        env.module(name, version, inputs={"raw": "file"}, files=script(env, name, version, body))
    robust = robust_body or PREP.format(tag="robust") + '\nmetrics = {"rows": 1797}'
    env.module(
        "prep-robust",
        "0.3.1",
        inputs={"raw": "file"},
        files=script(env, "prep-robust", "0.3.1", robust),
    )
    noise = {"noise": {"type": "int", "default": 0}}
    env.module("aug", inputs={"data": "file"}, params=noise, files=script(env, "aug", "1.0.0", AUG))
    train = ACCURACY + TRAIN
    arch = {"arch": {"type": "int"}}
    env.module(
        "train", inputs={"data": "file"}, params=arch, files=script(env, "train", "1.0.0", train)
    )
    (env.root / "work").mkdir(exist_ok=True)
    (env.root / "work" / "raw.txt").write_text("raw")
    return env.pipeline(PIPELINE + VARIANTS)


def sweep_json(env: EngineEnv, *args: object, code: int = 0) -> dict:
    result = env.run("run", *args, "--json", "--jobs", "2")
    assert result.exit_code == code, result.stderr
    return json.loads(result.stdout)


def variant_key(env: EngineEnv, variant: dict) -> tuple:
    return tuple(sorted((k, str(v).replace(env.team, "TEAM")) for k, v in variant.items()))


def by_variant(env: EngineEnv, body: dict) -> dict[tuple, dict]:
    return {variant_key(env, run["variant"]): run for run in body["runs"]}


def step_statuses(body: dict) -> Counter:
    return Counter(step["status"] for run in body["runs"] for step in run["steps"].values())


def test_sweep_executes_each_distinct_step_once_and_reruns_nothing(env: EngineEnv) -> None:
    pipeline = publish_sweep(env)
    body = sweep_json(env, pipeline)
    assert body["status"] == "succeeded" and body["sweep"].startswith("s-")
    assert len(body["runs"]) == 18 and len(by_variant(env, body)) == 18
    assert Counter(env.executions()) == DISTINCT, "3 + 6 + 18 = 27 executions, not 54"
    assert step_statuses(body) == {"executed": 27, "reused": 27}
    assert {run["status"] for run in body["runs"]} == {"succeeded"}
    assert set(body["runs"][0]) >= {"run", "status", "steps", "variant"}
    assert body["runs"][0]["variant"] == {
        "prep.uses": f"{env.team}/prep@^1.0",
        "aug.params.noise": 0,
        "train.params.arch": 1,
    }

    again = sweep_json(env, pipeline)
    assert again["sweep"] != body["sweep"]
    assert step_statuses(again) == {"reused": 54}
    assert len(env.executions()) == 27, "a no-change re-run executes nothing"

    listed = json.loads(env.run("runs", "list", "--sweep", body["sweep"], "--json").stdout)
    assert sorted(r["run"] for r in listed) == sorted(r["run"] for r in body["runs"])
    assert {r["sweep"] for r in listed} == {body["sweep"]}
    table = env.run("runs", "list", "--limit", "100").stdout
    assert body["sweep"] in table and again["sweep"] in table


def test_vary_equals_the_same_sweep_from_variants(env: EngineEnv) -> None:
    from_file = sweep_json(env, publish_sweep(env))
    plain = env.pipeline(PIPELINE, "plain.yaml")
    vary = [arg.replace("TEAM/", f"{env.team}/") for arg in VARY]
    from_cli = sweep_json(env, plain, *vary)
    assert len(env.executions()) == 27, "the --vary sweep reuses every step"
    assert step_statuses(from_cli) == {"reused": 54}
    file_runs, cli_runs = by_variant(env, from_file), by_variant(env, from_cli)
    assert file_runs.keys() == cli_runs.keys()
    for key, run in file_runs.items():
        fingerprints = {name: step["fingerprint"] for name, step in run["steps"].items()}
        assert fingerprints == {n: s["fingerprint"] for n, s in cli_runs[key]["steps"].items()}

    replaced = sweep_json(env, plain.with_name("pipeline.yaml"), "--vary", "train.params.arch=2,4")
    assert len(replaced["runs"]) == 12, "--vary replaces the file's train.params.arch axis"
    assert Counter(env.executions())["train@1.0.0"] == 18 + 6, "only arch=4 is new"


def test_a_failing_variant_leaves_the_others_succeeded(env: EngineEnv) -> None:
    pipeline = publish_sweep(env, robust_body='print("robust: cannot parse"); sys.exit(3)')
    result = env.run("run", pipeline, "--json", "--jobs", "2")
    assert result.exit_code == 1
    body = json.loads(result.stdout)
    assert body["status"] == "failed"
    robust = [r for r in body["runs"] if "prep-robust" in r["variant"]["prep.uses"]]
    others = [r for r in body["runs"] if r not in robust]
    assert len(robust) == 6 and {r["status"] for r in robust} == {"failed"}
    assert {r["steps"]["aug"]["status"] for r in robust} == {"skipped"}
    assert len(others) == 12 and {r["status"] for r in others} == {"succeeded"}
    assert Counter(env.executions()) == {
        "prep@1.0.0": 1,
        "prep@2.0.0": 1,
        "aug@1.0.0": 4,
        "train@1.0.0": 12,
    }
    assert result.stderr.count("| robust: cannot parse") == 1, "one failure, printed once"
    assert "error: 6 runs (" in result.stderr and "step 'prep' exited with code 3" in result.stderr


def test_bad_axes_and_combinations_are_all_reported_before_anything_runs(env: EngineEnv) -> None:
    pipeline = publish_sweep(env)
    env.module(
        "prep-odd", inputs={"source": "file"}, files=script(env, "prep-odd", "1.0.0", "pass")
    )
    cases = [
        (
            ["--vary", "ghost.params.x=1"],
            ["--vary: ghost.params.x: unknown step 'ghost' (steps: prep, aug, train)"],
        ),
        (
            ["--vary", "train.inputs.data=a,b"],
            ["--vary: train.inputs.data: expected 'STEP.uses' or 'STEP.params.NAME'"],
        ),
        (
            ["--vary", "train.params.depth=1,2"],
            [
                "--vary: train.params.depth: unknown param 'depth' of "
                f"{env.team}/train (its params: arch)"
            ],
        ),
        (
            ["--vary", "train.params.arch=1,two", "--vary", "aug.params.noise=0.5"],
            [
                "--vary: aug.params.noise: value 0.5: expected int, got 0.5",
                "--vary: train.params.arch: value 'two': expected int, got 'two'",
            ],
        ),
        (
            ["--vary", f"prep.uses={env.team}/prep@^1.0,{env.team}/prep-odd@1.0.0"],
            [
                "pipeline.yaml:5: step 'prep': inputs.raw: unknown input 'raw' "
                "(the module's inputs: source) "
                f"[variants with prep.uses={env.team}/prep-odd@1.0.0]",
                "pipeline.yaml:5: step 'prep': inputs: missing required input 'source' (a file)"
                f" [variants with prep.uses={env.team}/prep-odd@1.0.0]",
            ],
        ),
    ]
    for args, expected in cases:
        result = env.run("run", pipeline, *args)
        assert result.exit_code == 1, args
        lines = result.stderr.splitlines()
        assert (
            lines[0]
            == f"error: {len(expected)} problem{'s' if len(expected) > 1 else ''} in the pipeline:"
        ), lines
        assert lines[1:] == [f"  {line}" for line in expected]
    assert env.executions() == []


def test_two_sweeps_at_once_execute_each_step_once(env: EngineEnv) -> None:
    pipeline = publish_sweep(env)
    first, second = (env.spawn("run", pipeline, "--json", "--jobs", "2") for _ in range(2))
    outputs = [process.communicate(timeout=120) for process in (first, second)]
    assert first.returncode == 0 and second.returncode == 0, outputs
    assert Counter(env.executions()) == DISTINCT
    bodies = [by_variant(env, json.loads(out)) for out, _ in outputs]
    for key, run in bodies[0].items():
        assert run["steps"]["train"]["outputs"] == bodies[1][key]["steps"]["train"]["outputs"]


def test_python_product_and_explicit_list_sweeps(env: EngineEnv, tmp_path: Path) -> None:
    publish_sweep(env)
    team, raw = env.team, {"raw": str(env.root / "work" / "raw.txt")}
    data_preparation_variants = [
        ModuleStep(f"{team}/prep@^1.0", inputs=raw),
        ModuleStep(f"{team}/prep@^2.0", inputs=raw),
        ModuleStep(f"{team}/prep-robust@0.3.1", inputs=raw),
    ]
    prepared = data_preparation_variants[0].outputs["out"]  # "the prep step of each combination"
    data_augmentation_variants = [
        ModuleStep(f"{team}/aug@^1.0", inputs={"data": prepared}, params={"noise": n})
        for n in (0, 1)
    ]
    architecture_variants = [
        ModuleStep(f"{team}/train@^1.0", inputs={"data": "aug.outputs.out"}, params={"arch": a})
        for a in (1, 2, 3)
    ]
    sweep = Sweep.product(
        "sweep",
        {
            "prep": data_preparation_variants,
            "aug": data_augmentation_variants,
            "train": architecture_variants,
        },
    )
    assert len(sweep) == 18
    state = StateDir(tmp_path / "state")
    with env.client() as client:
        counter = {"TEST_STEP_COUNTER": str(env.counter)}
        store = LocalArtifactStore(state.store)
        workspace = Workspace(state, store, LocalExecutor(2), client, caller_env=counter)
        outcome = run_pipeline(sweep, workspace, RunOptions(jobs=2))
        assert isinstance(outcome, SweepResult) and outcome.status == "succeeded"
        assert Counter(env.executions()) == DISTINCT
        assert outcome.runs[-1].variant == {
            "prep.uses": f"{team}/prep-robust@0.3.1",
            "aug.params.noise": 1,
            "train.params.arch": 3,
        }
        assert outcome.runs[-1].step("train").metrics["accuracy"] == 0.913
        pair = Sweep.of(list(sweep)[:2])
        again = run_pipeline(pair, workspace)
        assert isinstance(again, SweepResult) and len(again.runs) == 2
        assert [run.variant for run in again.runs] == [
            {"train.params.arch": 1},
            {"train.params.arch": 2},
        ]
        assert {s.status for run in again.runs for s in run.steps.values()} == {"reused"}
        assert client.get_sweep(again.sweep_id or "").run_ids == [run.run_id for run in again.runs]
    assert len(env.executions()) == 27


# --- compare ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def swept(engine_server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Swept]:
    """One 3 x 2 x 3 sweep, run once for every compare test."""
    with pytest.MonkeyPatch.context() as patch:
        for name in ("MODREG_URL", "MODREG_TOKEN", "MODREG_STORE"):
            patch.delenv(name, raising=False)
        team, tokens = new_team(engine_server)
        env = EngineEnv(engine_server, team, tokens, tmp_path_factory.mktemp("swept"))
        body = sweep_json(env, publish_sweep(env))
        yield Swept(env, body["sweep"], [run["run"] for run in body["runs"]])


@dataclass
class Swept:
    env: EngineEnv
    sweep: str
    runs: list[str]


def expected_rows(swept: Swept) -> list[dict]:
    """What compare must say of each run, in the order the sweep ran them."""
    team, rows = swept.env.team, []
    preps = [
        (f"{team}/prep@1.0.0", "p1"),
        (f"{team}/prep@2.0.0", "p2"),
        (f"{team}/prep-robust@0.3.1", "robust"),
    ]
    combos = [(p, n, a) for p in preps for n in (0, 1) for a in (1, 2, 3)]
    for run, ((uses, tag), noise, arch) in zip(swept.runs, combos, strict=True):
        metrics = {
            "train.accuracy": round(SCORES[tag] + noise * 0.01 + arch * 0.001, 4),
            "train.arch": arch,
        }
        if arch == 3:
            metrics["train.depth"] = 12
        if tag == "robust":
            metrics["prep.rows"] = 1797
        variant = {"prep.uses": uses, "aug.params.noise": noise, "train.params.arch": arch}
        row = {"run": run, "status": "succeeded", "variant": variant, "metrics": metrics}
        rows.append({**row, "local": False})
    return rows


def compare(swept: Swept, *args: object, code: int = 0) -> Result:
    result = swept.env.run("runs", "compare", *args, COLUMNS="300")
    assert result.exit_code == code, result.stderr
    return result


def test_compare_json_has_exact_versions_and_metrics(swept: Swept) -> None:
    body = json.loads(compare(swept, swept.sweep, "--json").stdout)
    assert body == expected_rows(swept)
    two = json.loads(compare(swept, swept.runs[5], swept.runs[0], "--json").stdout)
    assert [row["run"] for row in two] == [swept.runs[5], swept.runs[0]]
    assert two[0]["variant"] == expected_rows(swept)[5]["variant"]


def test_compare_csv_is_proper_csv_with_empty_missing_cells(swept: Swept) -> None:
    text = compare(swept, swept.sweep, "--csv").stdout
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == [
        "run", "status", "prep.uses", "aug.params.noise", "train.params.arch",
        "train.accuracy", "train.arch", "train.depth", "prep.rows",
    ]  # fmt: skip
    team = swept.env.team
    assert rows[1] == [
        swept.runs[0],
        "succeeded",
        f"{team}/prep@1.0.0",
        "0",
        "1",
        "0.801",
        "1",
        "",
        "",
    ]
    assert rows[18] == [
        swept.runs[17],
        "succeeded",
        f"{team}/prep-robust@0.3.1",
        "1",
        "3",
        "0.913",
        "3",
        "12",
        "1797",
    ]
    assert len(rows) == 19


@pytest.mark.parametrize(
    ("args", "first", "last"),
    [
        (["--sort", "accuracy"], 17, 0),
        (["--sort", "train.accuracy", "--asc"], 0, 17),
        (["--sort", "depth"], 2, 16),  # runs without the metric come last, in sweep order
        (["--sort", "prep.rows", "--asc"], 12, 11),
    ],
)
def test_compare_sorts_by_a_metric(swept: Swept, args: list[str], first: int, last: int) -> None:
    body = json.loads(compare(swept, swept.sweep, *args, "--json").stdout)
    assert body[0]["run"] == swept.runs[first] and body[-1]["run"] == swept.runs[last]


def test_compare_table_shows_choices_and_metrics(swept: Swept) -> None:
    out = compare(swept, swept.sweep, "--sort", "accuracy").stdout
    header = next(line for line in out.splitlines() if "train.accuracy" in line)
    for column in (
        "run",
        "status",
        "prep.uses",
        "aug.params.noise",
        "train.params.arch",
        "train.depth",
        "prep.rows",
    ):
        assert column in header
    top = next(line for line in out.splitlines() if swept.runs[17] in line)
    assert "prep-robust@0.3.1" in top and "0.913" in top and "1797" in top
    first = next(line for line in out.splitlines() if swept.runs[0] in line)
    assert first.split("│")[-3:-1] == [
        " " * len(first.split("│")[-3]),
        " " * len(first.split("│")[-2]),
    ]


def test_compare_plot_writes_a_png(swept: Swept, tmp_path: Path) -> None:
    chart = tmp_path / "accuracy.png"
    out = compare(swept, swept.sweep, "--plot", chart, "--metric", "accuracy").stdout
    assert f"wrote a chart of 18 runs to {chart}" in out
    data = chart.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 1000


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (
            ["--sort", "loss"],
            1,
            "error: no metric 'loss' in these runs "
            "(metrics: train.accuracy, train.arch, train.depth, prep.rows)",
        ),
        (["--csv", "--json"], 2, "Error: --csv and --json cannot be combined"),
        (["--plot", "x.png"], 2, "Error: --plot needs --metric METRIC (or --sort METRIC)"),
        (
            ["--plot", "x.png", "--metric", "accuracy"],
            1,
            "error: --plot needs matplotlib: pip install 'modreg[plot]'",
        ),
    ],
)
def test_compare_errors_are_one_clear_line(
    swept: Swept, monkeypatch: pytest.MonkeyPatch, args: list[str], code: int, message: str
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # as if matplotlib were absent
    result = compare(swept, swept.sweep, *args, code=code)
    assert message in result.stderr.splitlines()
