"""End to end: real runs by two teams teach the registry its dependents, and a deprecated
version with a successor warns once per run, however many steps use it."""

from __future__ import annotations

import json
from datetime import datetime

from engine_env import EngineEnv, make_team

PIPELINE = """\
name: {name}
steps:
  first:
    uses: {module}@^1.0
  second:
    uses: {module}@1.0.0
"""


def test_dependents_after_runs_by_two_teams(env: EngineEnv) -> None:
    module = env.module("prep")
    other_team, tokens = make_team(env.server)
    other = EngineEnv(env.server, other_team, tokens, env.root / "other")
    for who, name in ((env, "digits"), (other, "speech")):
        ran = who.run("run", who.pipeline(PIPELINE.format(name=name, module=module)), "--json")
        assert ran.exit_code == 0, ran.stderr
    listed = other.run("dependents", module, "--json", user="reader")
    assert listed.exit_code == 0, listed.stderr
    found = json.loads(listed.stdout)
    assert [(d["team"], d["pipeline"], d["step"], d["range"], d["version"]) for d in found] == (
        sorted(
            (team, pipeline, step, range_, "1.0.0")
            for team, pipeline in ((env.team, "digits"), (other.team, "speech"))
            for step, range_ in (("first", "^1.0"), ("second", "1.0.0"))
        )
    )
    assert all(datetime.fromisoformat(d["last_run_at"]) for d in found)
    assert not {"run", "params", "outputs"} & set(found[0]), "names and dates, never runs"
    pinned = json.loads(env.run("dependents", f"{module}@^2", "--json").stdout)
    assert pinned == [], "no dependent uses a version ^2 allows"


def test_a_deprecated_version_warns_once_per_run_with_its_successor(env: EngineEnv) -> None:
    module = env.module("prep")
    env.module("prep-fast")
    deprecated = env.run(
        "deprecate", f"{module}@1.0.0", "--message", "too slow",
        "--replaced-by", f"{env.team}/prep-fast@^1",
    )  # fmt: skip
    assert deprecated.exit_code == 0, deprecated.stderr
    ran = env.run("run", env.pipeline(PIPELINE.format(name="digits", module=module)))
    assert ran.exit_code == 0, ran.stderr
    warnings = [line for line in ran.stderr.splitlines() if "deprecated" in line]
    assert warnings == [
        f"warning: step 'first': {module}@1.0.0 is deprecated: too slow; "
        f"use {env.team}/prep-fast@^1 instead"
    ]
    (first, *_) = json.loads(env.run("dependents", module, "--json").stdout)
    assert (first["status"], first["replaced_by"]) == ("deprecated", f"{env.team}/prep-fast@^1")
