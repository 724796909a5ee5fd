"""End to end: real module repos published to a real registry, run by the real ``modreg`` CLI.

Executions are counted by the modules themselves (each appends a line to a side file), not
only by the engine's report.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

from click.testing import CliRunner
from engine_env import EngineEnv

from modreg.client.cli.context import App
from modreg.client.cli.runs import runs_group
from modreg.client.errors import RunLookupError
from modreg.engine.errors import EngineError

SCRIPT = """\
import os, sys, time
from pathlib import Path
args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
args = {{k.lstrip("-"): v for k, v in args.items()}}
{body}
with open(os.environ["TEST_STEP_COUNTER"], "a") as counter:
    counter.write("{name}\\n")
"""

COPY = 'Path(args["out"]).write_text(Path(args["data"]).read_text() + "|" + "{name}")'

PIPELINE = """\
name: chain
steps:
  a:
    uses: TEAM/a@^1.0
    inputs: {raw: raw.txt}
    params: {k: 1}
  b:
    uses: TEAM/b@^1.0
    inputs: {data: a.outputs.out}
  c:
    uses: TEAM/c@^1.0
    inputs: {data: b.outputs.out}
  d:
    uses: TEAM/d@^1.0
    inputs: {raw: raw.txt}
"""


def script(env: EngineEnv, name: str, body: str) -> dict[str, str]:
    return {"main.py": SCRIPT.format(body=body, name=f"{env.team}/{name}")}


def publish_chain(env: EngineEnv, b_body: str | None = None, a_body: str | None = None) -> Path:
    """Modules a (raw -> out, param k), b and c (data -> out), d (raw -> out); the pipeline."""
    a_default = 'Path(args["out"]).write_text(Path(args["raw"]).read_text() + "|a" + args["k"])'
    env.module(
        "a",
        inputs={"raw": "file"},
        params={"k": {"type": "int", "default": 0}},
        files=script(env, "a", a_body or a_default),
    )
    env.module(
        "b", inputs={"data": "file"}, files=script(env, "b", b_body or COPY.format(name="b"))
    )
    env.module("c", inputs={"data": "file"}, files=script(env, "c", COPY.format(name="c")))
    d_body = 'Path(args["out"]).write_text(Path(args["raw"]).read_text() + "|d")'
    env.module("d", inputs={"raw": "file"}, files=script(env, "d", d_body))
    (env.root / "work").mkdir(exist_ok=True)
    (env.root / "work" / "raw.txt").write_text("raw")
    return env.pipeline(PIPELINE)


def run_json(env: EngineEnv, *args: object, user: str = "alice") -> dict:
    result = env.run("run", *args, "--json", user=user)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def statuses(body: dict) -> dict[str, str]:
    return {name: step["status"] for name, step in body["steps"].items()}


def test_cold_run_then_no_change_rerun_executes_nothing(env: EngineEnv) -> None:
    pipeline = publish_chain(env)
    body = run_json(env, pipeline)
    assert body["status"] == "succeeded"
    assert statuses(body) == dict.fromkeys("abcd", "executed")
    assert sorted(env.executions()) == ["a", "b", "c", "d"]
    assert set(body["steps"]["c"]) >= {
        "status",
        "module",
        "version",
        "fingerprint",
        "outputs",
        "metrics",
    }
    lock = (pipeline.parent / "pipeline.lock").read_bytes()

    again = run_json(env, pipeline)
    assert statuses(again) == dict.fromkeys("abcd", "reused")
    assert len(env.executions()) == 4, "a no-change re-run executes nothing"
    assert again["steps"]["c"]["outputs"] == body["steps"]["c"]["outputs"]
    assert (pipeline.parent / "pipeline.lock").read_bytes() == lock


def test_param_change_reexecutes_exactly_the_affected_steps(env: EngineEnv) -> None:
    pipeline = publish_chain(env)
    run_json(env, pipeline)
    result = env.run("run", pipeline, "--set", "a.params.k=2", "--explain")
    assert result.exit_code == 0, result.stderr
    assert Counter(env.executions()) == {"a": 2, "b": 2, "c": 2, "d": 1}
    assert "a: executed because param 'k' changed: 1 -> 2" in result.stdout
    assert "b: executed because input 'data' changed" in result.stdout


def test_early_cutoff_when_outputs_do_not_change(env: EngineEnv) -> None:
    ignores_k = 'Path(args["out"]).write_text(Path(args["raw"]).read_text() + "|a")'
    pipeline = publish_chain(env, a_body=ignores_k)
    run_json(env, pipeline)
    body = run_json(env, pipeline, "--set", "a.params.k=5")
    assert statuses(body) == {"a": "executed", "b": "reused", "c": "reused", "d": "reused"}
    assert Counter(env.executions()) == {"a": 2, "b": 1, "c": 1, "d": 1}


def test_failing_step_skips_dependents_and_lets_others_finish(env: EngineEnv) -> None:
    pipeline = publish_chain(env, b_body='print("boom: bad data"); sys.exit(3)')
    result = env.run("run", pipeline, "--json")
    assert result.exit_code == 1
    body = json.loads(result.stdout)
    assert body["status"] == "failed"
    assert statuses(body) == {"a": "executed", "b": "failed", "c": "skipped", "d": "executed"}
    full_log = f"modreg runs logs {body['run']} b"
    assert f"step 'b' exited with code 3 (full log: {full_log})" in result.stderr
    assert "| boom: bad data" in result.stderr
    logs = env.run("runs", "logs", body["run"], "b")
    assert "boom: bad data" in logs.stdout


def test_downloading_a_failed_run_gives_what_succeeded_and_says_why_the_rest_is_absent(
    env: EngineEnv,
) -> None:
    pipeline = publish_chain(env, b_body="sys.exit(3)")
    body = json.loads(env.run("run", pipeline, "--json").stdout)
    failed = env.run("runs", "download", body["run"], "--step", "b", "--to", env.root / "b")
    assert failed.exit_code == 1
    assert failed.stderr == "error: step 'b' has no outputs to download (exited with code 3)\n"
    assert not (env.root / "b").exists()
    whole = env.run("runs", "download", body["run"], "--to", env.root / "all", "--json")
    assert whole.exit_code == 0, whole.stderr
    assert sorted(json.loads(whole.stdout)) == ["a", "d"]
    assert sorted(p.name for p in (env.root / "all").iterdir()) == ["a", "d"]


def test_runs_lookups_fail_with_the_clients_error_and_one_line(env: EngineEnv) -> None:
    pipeline = publish_chain(env, b_body="sys.exit(3)")
    run_id = json.loads(env.run("run", pipeline, "--json").stdout)["run"]
    no_step = f"error: run {run_id} has no step 'e' (steps: a, b, c, d)\n"
    assert env.run("runs", "logs", run_id, "e").stderr == no_step
    assert env.run("runs", "download", run_id, "--step", "e").stderr == no_step
    no_log = f"error: step 'c' of run {run_id} has no log (it was skipped)\n"
    assert env.run("runs", "logs", run_id, "c").stderr == no_log
    app = App(registry=env.server.url, token=env.tokens["alice"])
    raised = CliRunner().invoke(runs_group, ["logs", run_id, "e"], obj=app, env=env.env())
    assert isinstance(raised.exception, RunLookupError), raised.exception
    assert not isinstance(raised.exception, EngineError)


def test_timed_out_step_is_killed(env: EngineEnv) -> None:
    pipeline = publish_chain(env, b_body="time.sleep(60)")
    pipeline.write_text(
        pipeline.read_text().replace(
            "inputs: {data: a.outputs.out}", "inputs: {data: a.outputs.out}\n    timeout: 1"
        )
    )
    result = env.run("run", pipeline, "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["steps"]["b"]["status"] == "failed"
    assert "step 'b' timed out after 1s" in result.stderr


def test_flaky_step_is_retried(env: EngineEnv) -> None:
    marker = env.root / "flaky-marker"
    body = (
        f"m = Path({str(marker)!r})\n"
        'if not m.exists():\n    m.write_text("1"); print("flaked"); sys.exit(1)\n'
        + COPY.format(name="b")
    )
    pipeline = publish_chain(env, b_body=body)
    pipeline.write_text(
        pipeline.read_text().replace(
            "inputs: {data: a.outputs.out}", "inputs: {data: a.outputs.out}\n    retries: 2"
        )
    )
    body_json = run_json(env, pipeline)
    assert body_json["steps"]["b"]["status"] == "executed"
    log = (env.state() / "logs" / body_json["run"] / "b.log").read_text()
    assert "flaked" in log and "[modreg] attempt 2 of 3" in log


def test_offline_run_uses_lock_and_local_caches(env: EngineEnv) -> None:
    pipeline = publish_chain(env)
    run_json(env, pipeline)
    dead = {"MODREG_URL": "http://127.0.0.1:9"}
    result = env.run("run", pipeline, "--offline", "--json", **dead)
    assert result.exit_code == 0, result.stderr
    assert set(statuses(json.loads(result.stdout)).values()) == {"reused"}
    changed = env.run("run", pipeline, "--offline", "--set", "a.params.k=3", "--json", **dead)
    assert changed.exit_code == 0, changed.stderr
    assert Counter(env.executions()) == {"a": 2, "b": 2, "c": 2, "d": 1}
    pipeline.write_text(
        pipeline.read_text().replace("TEAM/d@^1.0".replace("TEAM", env.team), f"{env.team}/d@1.0.0")
    )
    missing = env.run("run", pipeline, "--offline", **dead)
    assert missing.exit_code == 1
    assert missing.stderr.strip() == (
        f"error: --offline: pipeline.lock has no entry for step 'd' uses '{env.team}/d@1.0.0'; "
        "run `modreg lock` online first"
    )


def test_stale_lock_with_locked_fails_and_lock_upgrade_moves_on(env: EngineEnv) -> None:
    pipeline = publish_chain(env)
    run_json(env, pipeline)
    env.module(
        "d",
        "1.1.0",
        inputs={"raw": "file"},
        files=script(env, "d", 'Path(args["out"]).write_text("v11")'),
    )
    again = run_json(env, pipeline, "--locked")
    assert again["steps"]["d"]["version"] == "1.0.0", "the lock keeps the locked version"
    pipeline.write_text(pipeline.read_text().replace(f"{env.team}/d@^1.0", f"{env.team}/d@~1.1"))
    stale = env.run("run", pipeline, "--locked")
    assert stale.exit_code == 1
    assert f"not locked: step 'd' uses '{env.team}/d@~1.1'" in stale.stderr
    upgraded = env.run("lock", pipeline, "--upgrade", "d", "--json")
    assert upgraded.exit_code == 0, upgraded.stderr
    lock = (pipeline.parent / "pipeline.lock").read_text()
    assert f"{env.team}/d@~1.1: {env.team}/d@1.1.0" in lock
    assert f"{env.team}/d@^1.0" not in lock
    assert json.loads(upgraded.stdout)["steps"]["d"] == {
        f"{env.team}/d@~1.1": f"{env.team}/d@1.1.0"
    }


def test_validation_errors_stop_everything_before_running(env: EngineEnv) -> None:
    publish_chain(env)
    text = PIPELINE.replace("TEAM/b@^1.0", "TEAM/ghost@^1.0").replace("TEAM/c@^1.0", "TEAM/c@^7")
    text = text.replace("params: {k: 1}", "params: {k: one, j: 2}")
    pipeline = env.pipeline(text)
    result = env.run("run", pipeline)
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines[0] == "error: 4 problems in the pipeline:"
    assert any("pipeline.yaml:8: step 'b': uses:" in line and "ghost" in line for line in lines)
    assert any("pipeline.yaml:11: step 'c': uses:" in line and "^7" in line for line in lines)
    assert "  pipeline.yaml:6: step 'a': params.k: expected int, got 'one'" in lines
    assert (
        "  pipeline.yaml:6: step 'a': params.j: unknown param 'j' (the module's params: k)" in lines
    )
    assert env.executions() == []


def test_corrupted_blob_is_fetched_again_or_recomputed(env: EngineEnv) -> None:
    pipeline = publish_chain(env)
    body = run_json(env, pipeline)
    digest = body["steps"]["a"]["outputs"]["out"]
    blob = env.state() / "store" / "blobs" / digest[:2] / digest
    os.chmod(blob, 0o644)
    blob.write_text("rotten")
    result = env.run("run", pipeline, "--regenerate", "b", "--json")
    assert result.exit_code == 0, result.stderr
    assert "was corrupt" in result.stderr
    assert Counter(env.executions()) == {"a": 1, "b": 2, "c": 1, "d": 1}, (
        "a's output came back from the registry"
    )
    os.chmod(blob, 0o644)
    blob.write_text("rotten again")
    offline = env.run("run", pipeline, "--regenerate", "b", "--offline", "--json")
    assert offline.exit_code == 0, offline.stderr
    assert Counter(env.executions()) == {"a": 2, "b": 3, "c": 1, "d": 1}, "offline, a is recomputed"
    assert blob.read_text() == "raw|a1"


def test_runs_download_fetches_a_corrupt_local_blob_again_in_the_same_call(
    env: EngineEnv,
) -> None:
    """The store drops a blob it finds corrupt; the download refetches it from the registry
    and succeeds at once, as ``modreg run`` does (it used to exit 1 until called again)."""
    pipeline = publish_chain(env)
    body = run_json(env, pipeline)
    digest = body["steps"]["c"]["outputs"]["out"]
    blob = env.state() / "store" / "blobs" / digest[:2] / digest
    os.chmod(blob, 0o644)
    blob.write_text("rotten")
    dest = env.root / "download"
    result = env.run("runs", "download", body["run"], "--step", "c", "--to", dest)
    assert result.exit_code == 0, result.stderr
    assert (dest / "c" / "out").read_text() == "raw|a1|b|c"
    assert blob.read_text() == "raw|a1|b|c"  # the store holds the good bytes again


def test_teammate_reuses_results_and_downloads_them(env: EngineEnv) -> None:
    pipeline = publish_chain(env)
    first = run_json(env, pipeline)
    theirs = run_json(env, pipeline, user="bob")
    assert set(statuses(theirs).values()) == {"reused"}
    assert len(env.executions()) == 4
    assert theirs["steps"]["c"]["outputs"] == first["steps"]["c"]["outputs"]
    dest = env.root / "download"
    result = env.run("runs", "download", theirs["run"], "--step", "c", "--to", dest, user="reader")
    assert result.exit_code == 0, result.stderr
    assert (dest / "c" / "out").read_text() == "raw|a1|b|c"


def test_runs_show_list_and_clone_reproduce_a_run(env: EngineEnv) -> None:
    pipeline = publish_chain(env)
    body = run_json(env, pipeline)
    shown = json.loads(env.run("runs", "show", body["run"], "--json").stdout)
    assert shown == body
    listed = json.loads(env.run("runs", "list", "--json").stdout)
    assert listed[0]["run"] == body["run"]
    clone = env.root / "clone"
    assert env.run("runs", "clone", body["run"], "--to", clone).exit_code == 0
    again = run_json(env, clone / "pipeline.yaml", "--locked")
    assert set(statuses(again).values()) == {"reused"}
    (clone / "pipeline.yaml").write_text("# my edits\n")
    over = env.run("runs", "clone", body["run"], "--to", clone)
    assert over.exit_code == 1
    assert over.stderr == f"error: {clone}: already exists and is not an empty folder\n"
    assert (clone / "pipeline.yaml").read_text() == "# my edits\n"


def test_a_locked_version_yanked_later_still_runs_with_a_warning(env: EngineEnv) -> None:
    pipeline = publish_chain(env)
    run_json(env, pipeline)
    with env.client() as client:
        client.yank(f"{env.team}/d", "1.0.0", "broken on big inputs")
    again = env.run("run", pipeline, "--json")
    assert again.exit_code == 0, again.stderr
    assert json.loads(again.stdout)["steps"]["d"]["version"] == "1.0.0"
    assert (
        f"warning: step 'd': {env.team}/d@1.0.0, kept by pipeline.lock, is yanked (broken on big "
        f"inputs); `modreg lock pipeline.yaml --upgrade d` moves it to the newest version "
        f"'{env.team}/d@^1.0' allows\n" in again.stderr
    )
    offline = env.run("run", pipeline, "--offline", "--json")
    assert offline.exit_code == 0 and "yanked" not in offline.stderr  # nothing to ask offline


def test_the_command_a_yanked_locked_version_names_moves_the_step_off_it(
    env: EngineEnv,
) -> None:
    pipeline = publish_chain(env)
    run_json(env, pipeline)
    env.module("d", version="1.0.1", inputs={"raw": "file"}, files=script(env, "d", "pass"))
    with env.client() as client:
        client.deprecate(f"{env.team}/d", "1.0.0", "use 1.0.1")
    warned = env.run("lock", pipeline)
    assert warned.exit_code == 0
    assert warned.stderr == (
        f"warning: step 'd': {env.team}/d@1.0.0, kept by pipeline.lock, is deprecated (use "
        f"1.0.1); `modreg lock pipeline.yaml --upgrade d` moves it to the newest version "
        f"'{env.team}/d@^1.0' allows\n"
    )
    moved = env.run("lock", pipeline, "--upgrade", "d", "--json")
    assert moved.exit_code == 0 and moved.stderr == ""
    assert json.loads(moved.stdout)["steps"]["d"] == {f"{env.team}/d@^1.0": f"{env.team}/d@1.0.1"}


def test_a_lock_that_disagrees_with_the_registry_is_refused(env: EngineEnv) -> None:
    pipeline = publish_chain(env)
    run_json(env, pipeline)
    lock = pipeline.parent / "pipeline.lock"
    text = lock.read_text()
    locked_sha = text.split("sha256: ", 1)[1][:64]
    lock.write_text(text.replace(locked_sha, "ab" * 32, 1))
    result = env.run("run", pipeline)
    assert result.exit_code == 1
    assert "but the registry has commit" in result.stderr
    assert "(archive abababababab)" in result.stderr
    lock.write_text(text.replace(locked_sha, "0" * 64, 1))  # YAML reads that as a number
    unreadable = env.run("run", pipeline)
    assert unreadable.exit_code == 1
    assert "unreadable lock" in unreadable.stderr and "is not a hex digest" in unreadable.stderr
    assert "`modreg lock --upgrade` writes it anew" in unreadable.stderr
    assert env.run("lock", pipeline, "--upgrade").exit_code == 0, "the advice works"
    assert run_json(env, pipeline)["status"] == "succeeded"
    assert env.executions().count("a") == 1, "nothing ran after the first run"


def test_an_fsspec_store_shares_outputs_and_logs_with_the_team(env: EngineEnv) -> None:
    """A shared store keeps the outputs: the registry gets cache entries naming the store,
    no output blobs; a teammate reads them from the store, and reuses the steps."""
    pipeline = publish_chain(env)
    store = f"file://{env.root / 'team-store'}"
    body = run_json(env, pipeline, "--store", store)
    assert set(statuses(body).values()) == {"executed"}
    with env.client() as client:
        entry = client.lookup_cache([body["steps"]["c"]["fingerprint"]])
        assert [e.store for e in entry.values()] == [store]
        assert not client.has_blob(body["steps"]["c"]["outputs"]["out"]), "no upload"
    logs = env.run("runs", "logs", body["run"], "a", user="bob")
    assert logs.exit_code == 0, logs.stderr
    out = env.root / "bob-download"
    download = env.run(
        "runs", "download", body["run"], "--step", "c", "--to", out, user="bob", MODREG_STORE=store
    )
    assert download.exit_code == 0, download.stderr
    assert (out / "c" / "out").read_text() == "raw|a1|b|c"
    reused = run_json(env, pipeline, "--store", store, user="bob")
    assert set(statuses(reused).values()) == {"reused"}
    again = env.run("runs", "download", body["run"], "--step", "c", "--to", out, user="bob")
    assert again.exit_code == 1
    assert again.stderr == f"error: {out / 'c'}: already exists and is not an empty folder\n"


def test_sources_pulled_by_hand_serve_an_offline_run(env: EngineEnv) -> None:
    pipeline = publish_chain(env)
    assert env.run("lock", pipeline).exit_code == 0
    missing = env.run("run", pipeline, "--offline")
    assert missing.exit_code == 1 and "not in the local source cache" in missing.stderr
    for name in "abcd":
        assert env.run("pull", f"{env.team}/{name}").exit_code == 0
    body = run_json(env, pipeline, "--offline")
    assert set(statuses(body).values()) == {"executed"}
