"""``modreg outdated`` and the note of ``modreg lock``: newer versions, allowed or not."""

from __future__ import annotations

import json

from engine_env import EngineEnv

PIPELINE = """\
name: two
steps:
  a:
    uses: TEAM/a@^1.0
  b:
    uses: TEAM/b@1.0.0
"""


def _publish(env: EngineEnv, name: str, *versions: str) -> None:
    for version in versions:
        env.module(name, version=version)


def test_outdated_lists_the_newest_allowed_and_the_newest_at_all(env: EngineEnv) -> None:
    _publish(env, "a", "1.0.0")
    _publish(env, "b", "1.0.0")
    pipeline = env.pipeline(PIPELINE)
    missing = env.run("outdated", pipeline)
    assert (missing.exit_code, missing.stdout) == (1, "")
    assert (
        missing.stderr
        == f"error: pipeline.lock does not exist: run `modreg lock {pipeline}` first\n"
    )
    assert env.run("lock", pipeline).exit_code == 0
    assert json.loads(env.run("outdated", pipeline, "--json").stdout) == []
    _publish(env, "a", "1.0.1", "2.0.0")
    _publish(env, "b", "1.1.0")
    listed = env.run("outdated", pipeline, "--json")
    assert listed.exit_code == 0, listed.stderr
    team = env.team
    assert json.loads(listed.stdout) == [
        {"step": "a", "uses": f"{team}/a@^1.0", "module": f"{team}/a", "locked": "1.0.0",
         "allowed": "1.0.1", "latest": "2.0.0"},
        {"step": "b", "uses": f"{team}/b@1.0.0", "module": f"{team}/b", "locked": "1.0.0",
         "allowed": "1.0.0", "latest": "1.1.0"},
    ]  # fmt: skip
    table = env.run("outdated", pipeline, COLUMNS="200")
    lines = table.stdout.splitlines()
    assert lines[0].rstrip() == "pipeline.lock: steps with newer versions"
    assert [line.split() for line in lines if line.startswith("│ a") or line.startswith("│ b")] == [
        ["│", "a", "│", f"{team}/a@^1.0", "│", "1.0.0", "│", "1.0.1", "│", "2.0.0", "│"],
        ["│", "b", "│", f"{team}/b@1.0.0", "│", "1.0.0", "│", "1.0.0", "│", "1.1.0", "│"],
    ]


def test_lock_says_which_steps_their_ranges_would_move(env: EngineEnv) -> None:
    _publish(env, "a", "1.0.0")
    _publish(env, "b", "1.0.0")
    pipeline = env.pipeline(PIPELINE)
    first = env.run("lock", pipeline)
    assert "newer versions" not in first.stdout
    _publish(env, "a", "1.0.1", "2.0.0")
    _publish(env, "b", "1.1.0")  # beyond b's exact range: `outdated` shows it, lock does not
    again = env.run("lock", pipeline)
    assert again.exit_code == 0 and again.stderr == ""
    assert again.stdout.splitlines()[-1] == (
        f"newer versions the ranges allow: a ({env.team}/a 1.0.0 -> 1.0.1); "
        f"`modreg lock {pipeline} --upgrade STEP` takes one, `modreg outdated {pipeline}` "
        "lists them"
    )
    data = json.loads(env.run("lock", pipeline, "--json").stdout)
    assert [(o["step"], o["allowed"]) for o in data["outdated"]] == [("a", "1.0.1"), ("b", "1.0.0")]
    assert "newer versions" not in env.run("lock", pipeline, "--upgrade", "a").stdout
