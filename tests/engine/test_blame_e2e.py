"""Mistakes on the command line are caught and blamed on the option, with the exact lines
users read: a step option naming no step, a bad ``--set`` value, and ``--explain`` saying
that ``--no-reuse`` / ``--regenerate`` was the reason a step executed.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from engine_env import EngineEnv

SCRIPT = """\
import os, sys
from pathlib import Path
args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
args = {{k.lstrip("-"): v for k, v in args.items()}}
Path(args["out"]).write_text(Path(args["{source}"]).read_text() + "|{name}")
with open(os.environ["TEST_STEP_COUNTER"], "a") as counter:
    counter.write("{name}\\n")
"""

PIPELINE = """\
name: pair
steps:
  prep:
    uses: TEAM/prep@^1.0
    inputs: {raw: raw.txt}
    params: {lr: 0.1}
  train:
    uses: TEAM/train@^1.0
    inputs: {data: prep.outputs.out}
"""
FORMS = "ranges look like 1.2.0 (exact), ^1.2, ~1.2.3, 1.2.x, '>=1.2, <2', '1.0 - 1.4' or *"


def publish_pair(env: EngineEnv) -> Path:
    """``prep`` (raw -> out, a float param ``lr`` it ignores) and ``train`` (data -> out)."""
    env.module(
        "prep",
        inputs={"raw": "file"},
        params={"lr": {"type": "float", "default": 0.5}},
        files={"main.py": SCRIPT.format(source="raw", name=f"{env.team}/prep")},
    )
    env.module(
        "train",
        inputs={"data": "file"},
        files={"main.py": SCRIPT.format(source="data", name=f"{env.team}/train")},
    )
    (env.root / "work").mkdir(exist_ok=True)
    (env.root / "work" / "raw.txt").write_text("raw")
    return env.pipeline(PIPELINE)


def test_a_step_option_naming_no_step_is_an_error_listing_the_steps(env: EngineEnv) -> None:
    pipeline = publish_pair(env)
    run = env.run("run", pipeline, "--regenerate", "trian")
    assert (run.exit_code, run.stdout) == (1, "")
    assert run.stderr == (
        "error: 1 problem in the pipeline:\n"
        "  --regenerate: unknown step 'trian' (steps: prep, train)\n"
    )
    assert env.executions() == []
    assert not (pipeline.parent / "pipeline.lock").exists(), "stopped before writing the lock"

    assert env.run("lock", pipeline).exit_code == 0
    lock = (pipeline.parent / "pipeline.lock").read_bytes()
    upgrade = env.run("lock", pipeline, "--upgrade", "pre")
    assert (upgrade.exit_code, upgrade.stdout) == (1, "")
    assert upgrade.stderr == (
        "error: 1 problem in the pipeline:\n  --upgrade: unknown step 'pre' (steps: prep, train)\n"
    )
    assert (pipeline.parent / "pipeline.lock").read_bytes() == lock


def test_a_bad_set_value_is_blamed_on_set_not_on_a_line_of_the_file(env: EngineEnv) -> None:
    pipeline = publish_pair(env)
    result = env.run(
        "run",
        pipeline,
        "--set",
        "prep.params.lr=fast",
        "--set",
        "prep.params.rate=2",
        "--set",
        f"train.uses={env.team}/train@banana",
    )
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr.splitlines() == [
        "error: 3 problems in the pipeline:",
        f"  --set: train.uses: invalid version range 'banana': cannot read 'banana'; {FORMS}",
        "  --set: prep.params.lr: expected float, got 'fast'",
        "  --set: prep.params.rate: unknown param 'rate' (the module's params: lr)",
    ]
    assert env.executions() == []


def test_a_bad_value_in_the_file_is_still_blamed_on_its_line(env: EngineEnv) -> None:
    pipeline = publish_pair(env)
    pipeline.write_text(pipeline.read_text().replace("lr: 0.1", "lr: fast"))
    result = env.run("run", pipeline, "--set", "train.uses=" + f"{env.team}/train@^1.0")
    assert result.stderr.splitlines() == [
        "error: 1 problem in the pipeline:",
        "  pipeline.yaml:6: step 'prep': params.lr: expected float, got 'fast'",
    ]


def test_explain_says_no_reuse_or_regenerate_was_the_reason(env: EngineEnv) -> None:
    pipeline = publish_pair(env)
    assert env.run("run", pipeline).exit_code == 0

    forced = env.run("run", pipeline, "--no-reuse", "--explain")
    assert forced.exit_code == 0, forced.stderr
    assert "  prep: executed because --no-reuse was given\n" in forced.stdout
    assert "  train: executed because --no-reuse was given\n" in forced.stdout

    again = env.run("run", pipeline, "--regenerate", "prep", "--explain")
    assert again.exit_code == 0, again.stderr
    assert "  prep: executed because --regenerate prep was given\n" in again.stdout
    assert Counter(env.executions()) == {"prep": 3, "train": 2}, "prep's output did not change"

    changed = env.run("run", pipeline, "--regenerate", "prep", "--set", "prep.params.lr=0.2")
    assert changed.exit_code == 0, changed.stderr
    explained = env.run("run", pipeline, "--regenerate", "prep", "--explain")
    assert (
        "  prep: executed because --regenerate prep was given "
        "(also: param 'lr' changed: 0.2 -> 0.1)\n"
    ) in explained.stdout
    assert Counter(env.executions()) == {"prep": 5, "train": 2}
