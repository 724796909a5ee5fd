"""A poisoned cache entry can be removed: ``modreg cache evict``, then the next run executes.

Through the real CLI against a real registry: alice executes a step, bob (another machine,
his own state folder) reuses it from the team's cache, so both hold it in their local step
caches. A publish token evicts it — by fingerprint, or every entry of a module version — and
the next run of each of them executes the step again: the registry no longer has the entry,
and a local entry the registry shared is checked against it. A read token may not evict.
"""

from __future__ import annotations

import json
from pathlib import Path

from engine_env import EngineEnv
from test_run_e2e import run_json

PIPELINE = """\
name: one
steps:
  a:
    uses: TEAM/a@^1.0
"""


def _one_step(env: EngineEnv) -> tuple[Path, str]:
    env.module("a", params={"k": {"type": "int", "default": 0}})
    pipeline = env.pipeline(PIPELINE)
    body = run_json(env, pipeline)
    assert body["steps"]["a"]["status"] == "executed"
    assert run_json(env, pipeline, user="bob")["steps"]["a"]["status"] == "reused"
    return pipeline, body["steps"]["a"]["fingerprint"]


def _evict(env: EngineEnv, *args: str, user: str = "alice") -> dict:
    result = env.run("cache", "evict", *args, "--json", user=user)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_evicting_a_fingerprint_makes_every_machine_execute_again(env: EngineEnv) -> None:
    pipeline, fingerprint = _one_step(env)
    assert env.executions() == ["a"]

    evicted = _evict(env, fingerprint)
    assert [(e["team"], e["fingerprint"]) for e in evicted["evicted"]] == [(env.team, fingerprint)]

    again = run_json(env, pipeline, user="bob")  # bob's local entry came from the registry
    assert again["steps"]["a"]["status"] == "executed"
    assert again["steps"]["a"]["fingerprint"] == fingerprint
    assert env.executions() == ["a", "a"]
    # bob's fresh result is the team's entry now: alice's next run reuses it
    assert run_json(env, pipeline)["steps"]["a"]["status"] == "reused"
    assert env.executions() == ["a", "a"]


def test_evicting_a_module_version_evicts_all_its_entries(env: EngineEnv) -> None:
    pipeline, fingerprint = _one_step(env)
    other = run_json(env, pipeline, "--set", "a.params.k=1")["steps"]["a"]["fingerprint"]
    evicted = _evict(env, "--module", f"{env.team}/a@1.0.0")
    assert sorted(e["fingerprint"] for e in evicted["evicted"]) == sorted([fingerprint, other])
    assert run_json(env, pipeline)["steps"]["a"]["status"] == "executed"
    assert run_json(env, pipeline, "--set", "a.params.k=1")["steps"]["a"]["status"] == "executed"


def test_eviction_needs_a_publish_token_and_an_existing_entry(env: EngineEnv) -> None:
    pipeline, fingerprint = _one_step(env)
    refused = env.run("cache", "evict", fingerprint, user="reader")
    assert refused.exit_code == 1
    assert refused.stderr == (
        f"error: evicting cache entries needs a publish token of team {env.team!r}, "
        "yours is a read token\n"
    )
    unknown = env.run("cache", "evict", "f" * 64)
    assert unknown.exit_code == 1
    assert unknown.stderr == f"error: team {env.team!r} has no cache entry {'f' * 64}\n"
    usage = env.run("cache", "evict")
    assert usage.exit_code == 2
    assert run_json(env, pipeline)["steps"]["a"]["status"] == "reused"
