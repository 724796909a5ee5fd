"""The ``modreg`` registry commands: --help, --json keys, exit codes and exact error lines."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from factories import make_module_repo

from modreg.registry.manifest import parse_manifest

COMMANDS = [
    ["server"],
    ["login"],
    ["logout"],
    ["outdated"],
    ["whoami"],
    ["team", "create"],
    ["token", "create"],
    ["token", "list"],
    ["token", "revoke"],
    ["init"],
    ["publish"],
    ["pull"],
    ["search"],
    ["show"],
    ["versions"],
    ["deprecate"],
    ["yank"],
    ["unyank"],
    ["set-default"],
]
NO_REGISTRY = (
    "error: no registry configured: pass --registry URL, set MODREG_URL, "
    "or run `modreg login URL`\n"
)


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help_with_an_example(run: Any, command: list[str]) -> None:
    result = run(*command, "--help")
    assert result.exit_code == 0
    assert "Example:" in result.stdout and "modreg " in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope"], "No such command 'nope'"),
        (["pull"], "Missing argument 'REF'"),
        (["pull", "Vision/Prep"], "invalid module name 'Vision/Prep'"),
        (["show", "vision/prep@>>1"], "invalid version range"),
        (["yank", "vision/prep@1.0.0"], "Missing option '--reason'"),
        (["yank", "vision/prep", "--reason", "r"], "expected team/name@VERSION, got 'vision/prep'"),
        (["deprecate", "vision/prep@^1"], "invalid version '^1'"),
        (["token", "create", "--team", "v", "--scope", "write"], "'write' is not one of"),
        (
            ["token", "create", "--team", "v", "--scope", "read", "--expires", "3 months"],
            "expected a duration such as 90d, 12w or 1y, got '3 months'",
        ),
        (["versions", "prep"], "invalid module name 'prep'"),
    ],
)
def test_usage_errors_exit_2(run: Any, args: list[str], message: str) -> None:
    result = run(*args)
    assert result.exit_code == 2
    assert message in result.stderr and result.stdout == ""


@pytest.mark.parametrize(
    "args",
    [
        ["whoami"],
        ["versions", "vision/prep"],
        ["pull", "vision/prep"],
        ["search"],
        ["yank", "vision/prep@1.0.0", "--reason", "r"],
    ],
)
def test_no_registry_configured_is_one_line(run: Any, args: list[str]) -> None:
    result = run(*args)
    assert (result.exit_code, result.stderr, result.stdout) == (1, NO_REGISTRY, "")


def test_unreachable_registry_names_the_url_and_debug_adds_a_traceback(run: Any) -> None:
    result = run("--registry", "http://127.0.0.1:9", "versions", "vision/prep")
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "error: cannot reach the registry at http://127.0.0.1:9 "
        "(GET /api/v1/modules/vision/prep/versions): "
    )
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    debug = run("--debug", "--registry", "http://127.0.0.1:9", "versions", "vision/prep")
    assert debug.exit_code == 1 and "Traceback (most recent call last)" in debug.stderr
    assert debug.stderr.endswith(result.stderr)


# --- login, whoami, teams, tokens -------------------------------------------------------


def test_login_verifies_the_token_and_saves_it_privately(
    shared: Any, run: Any, isolated_home: Path
) -> None:
    bad = run("login", shared.url, "--token", "mr_wrong")
    assert bad.exit_code == 1 and bad.stderr.startswith("error: ")
    config = isolated_home / "config" / "modreg" / "config.toml"
    assert not config.exists()
    good = run("login", shared.url + "/", "--token", shared.publish)
    assert good.exit_code == 0
    assert good.stdout == f"Logged in to {shared.url} as team vision (publish); saved in {config}\n"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    whoami = run("whoami", "--json")
    assert whoami.exit_code == 0
    data = json.loads(whoami.stdout)
    assert {k: data[k] for k in ("registry", "authenticated", "team", "scope")} == {
        "registry": shared.url,
        "authenticated": True,
        "team": "vision",
        "scope": "publish",
    }
    assert run("whoami").stdout == f"{shared.url}: team vision (publish)\n"


def test_team_and_token_lifecycle(shared: Any, run: Any) -> None:
    admin = shared.options("admin")
    team = run(*admin, "team", "create", "audio", "--json")
    assert team.exit_code == 0 and set(json.loads(team.stdout)) >= {"name", "created_at"}
    again = run(*admin, "team", "create", "audio")
    assert (
        again.exit_code == 1
        and again.stderr.startswith("error: ")
        and again.stderr.count("\n") == 1
    )
    created = run(
        *admin, "token", "create", "--team", "audio", "--scope", "read", "--expires", "2w", "--json"
    )
    assert created.exit_code == 0, created.stderr
    token = json.loads(created.stdout)
    assert {"token", "team", "scope"} <= set(token) and (token["team"], token["scope"]) == (
        "audio",
        "read",
    )
    assert token["expires_at"] is not None
    listed = run(*admin, "token", "list", "--team", "audio", "--json")
    rows = json.loads(listed.stdout)
    assert [row["id"] for row in rows] == [token["id"]] and "token" not in rows[0]
    assert token["token"] not in listed.stdout
    table = run(*admin, "token", "list", "--team", "audio")
    assert table.exit_code == 0 and "read" in table.stdout
    assert run(*admin, "token", "revoke", token["id"]).stdout == f"Revoked token {token['id']}\n"
    revoked = run("--registry", shared.url, "--token", token["token"], "whoami")
    assert revoked.exit_code == 1 and revoked.stderr.startswith("error: ")


def test_a_run_token_records_runs_and_a_read_token_never_writes(shared: Any, run: Any) -> None:
    from modreg.client import RegistryClient
    from modreg.registry.errors import PermissionDeniedError
    from modreg.registry.schemas import RunCreate

    created = run(
        *shared.options("publish"),
        "token",
        "create",
        "--team",
        "vision",
        "--scope",
        "run",
        "--json",
    )
    assert created.exit_code == 0, created.stderr
    token = json.loads(created.stdout)
    assert (token["team"], token["scope"]) == ("vision", "run")
    assert (
        run(*shared.options(token["token"]), "whoami").stdout
        == f"{shared.url}: team vision (run)\n"
    )
    with RegistryClient(shared.url, token["token"]) as client:
        assert client.create_run(RunCreate(pipeline="p")).status == "running"
    with (
        RegistryClient(shared.url, shared.read) as client,
        pytest.raises(PermissionDeniedError) as denied,
    ):
        client.create_run(RunCreate(pipeline="p"))
    assert "yours is a read token, which never writes" in str(denied.value)


def test_a_publish_token_cannot_create_teams(shared: Any, run: Any) -> None:
    result = run(*shared.options("publish"), "team", "create", "sneaky")
    assert (
        result.exit_code == 1
        and result.stderr.startswith("error: ")
        and result.stderr.count("\n") == 1
    )


# --- init ------------------------------------------------------------------------------


def test_init_writes_a_valid_manifest_and_never_overwrites(
    tmp_path: Path, run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "My Step"
    folder.mkdir()
    (folder / "prep.py").write_text("print('hi')\n")
    monkeypatch.chdir(folder)
    result = run("init", "--name", "vision/my-step", "--version", "1.2.0")
    assert result.exit_code == 0, result.stderr
    manifest = parse_manifest((folder / "modreg.toml").read_text())
    assert (manifest.name, manifest.version, manifest.command) == (
        "vision/my-step",
        "1.2.0",
        ["python", "prep.py"],
    )
    again = run("init", "--name", "vision/other")
    assert again.exit_code == 1
    assert again.stderr == f"error: {folder}/modreg.toml: already exists; not overwriting it\n"


def test_init_takes_the_team_from_the_token(
    shared: Any, tmp_path: Path, run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "Fancy Step"
    folder.mkdir()
    (folder / "main.py").write_text("")
    monkeypatch.chdir(folder)
    assert run(*shared.options(), "init").exit_code == 0
    assert parse_manifest((folder / "modreg.toml").read_text()).name == "vision/fancy-step"
    (folder / "modreg.toml").unlink()
    anonymous = run(*shared.options(None), "init")
    assert anonymous.exit_code == 1
    assert (
        anonymous.stderr
        == "error: cannot tell which team the module belongs to: pass --name TEAM/NAME\n"
    )


# --- browsing and status changes --------------------------------------------------------


@pytest.fixture
def three_versions(shared: Any, tmp_path: Path, run: Any, module_name: str) -> str:
    for version in ("1.0.0", "1.1.0", "2.0.0"):
        folder = make_module_repo(tmp_path, name=module_name, version=version)
        assert run(*shared.options(), "publish", folder).exit_code == 0
    return module_name


def test_versions_search_and_show_json(shared: Any, run: Any, three_versions: str) -> None:
    name = three_versions
    versions = json.loads(run(*shared.options("read"), "versions", name, "--json").stdout)
    assert [v["version"] for v in versions] == ["1.0.0", "1.1.0", "2.0.0"]
    assert all({"version", "status", "commit", "published_at"} <= set(v) for v in versions)
    found = json.loads(run(*shared.options(None), "search", name, "--json").stdout)
    assert [m["module"] for m in found] == [name] and found[0]["latest_version"] == "2.0.0"
    shown = run(*shared.options(None), "show", f"{name}@^1", "--json")
    data = json.loads(shown.stdout)
    assert (data["module"], data["version"], data["range"], data["warnings"]) == (
        name,
        "1.1.0",
        "^1",
        [],
    )
    assert "^1" in data["reason"] and len(data["commit"]) == 40
    table = run(*shared.options(None), "versions", name)
    assert table.exit_code == 0 and "1.1.0" in table.stdout and "active" in table.stdout


def test_status_changes_and_what_show_says_about_them(
    shared: Any, run: Any, three_versions: str
) -> None:
    name, user = three_versions, shared.options()
    deprecated = run(*user, "deprecate", f"{name}@2.0.0", "--message", "use 1.1", "--json")
    assert json.loads(deprecated.stdout) == {
        "module": name,
        "version": "2.0.0",
        "status": "deprecated",
        "status_message": "use 1.1",
        "replaced_by": None,
    }
    shown = run(*user, "show", name)
    assert shown.exit_code == 0 and shown.stdout.startswith(f"{name}@2.0.0: ")
    assert shown.stderr.startswith("warning: ") and "deprecated" in shown.stderr
    yanked = run(*user, "yank", f"{name}@1.1.0", "--reason", "corrupt output", "--json")
    assert json.loads(yanked.stdout)["status"] == "yanked"
    ranged = json.loads(run(*user, "show", f"{name}@~1.0", "--json").stdout)
    assert ranged["version"] == "1.0.0"
    pinned = run(*user, "show", f"{name}@1.1.0")
    assert (
        pinned.exit_code == 0
        and pinned.stderr.startswith("warning: ")
        and "yanked" in pinned.stderr
    )
    assert "corrupt output" in pinned.stdout
    assert json.loads(run(*user, "unyank", f"{name}@1.1.0", "--json").stdout)["status"] == "active"
    default = run(*user, "set-default", f"{name}@1.0.0", "--json")
    assert json.loads(default.stdout) == {"module": name, "default_version": "1.0.0"}
    bare = json.loads(run(*user, "show", name, "--json").stdout)
    assert bare["version"] == "1.0.0" and "default" in bare["reason"]
    rows = json.loads(run(*user, "versions", name, "--json").stdout)
    assert [(r["version"], r["status"], r["default"]) for r in rows] == [
        ("1.0.0", "active", True),
        ("1.1.0", "active", False),
        ("2.0.0", "deprecated", False),
    ]


@pytest.mark.parametrize(
    "args",
    [
        ["versions", "vision/absent"],
        ["show", "vision/absent"],
        ["pull", "vision/absent@^1"],
        ["yank", "vision/absent@1.0.0", "--reason", "r"],
    ],
)
def test_unknown_modules_are_one_error_line(shared: Any, run: Any, args: list[str]) -> None:
    result = run(*shared.options(), *args)
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert "vision/absent" in result.stderr


def test_unsatisfiable_range_is_one_error_line(shared: Any, run: Any, three_versions: str) -> None:
    result = run(*shared.options(), "show", f"{three_versions}@^3")
    assert result.exit_code == 1 and result.stderr.startswith("error: ") and "^3" in result.stderr


# --- the real executable -----------------------------------------------------------------


def _modreg(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).parent / "modreg"
    return subprocess.run(
        [str(script), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def test_the_installed_modreg_executable(
    shared: Any, three_versions: str, isolated_home: Path
) -> None:
    env = {"MODREG_URL": shared.url, "MODREG_TOKEN": shared.read}
    assert _modreg("--help").returncode == 0
    listed = _modreg("versions", three_versions, "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    assert [v["version"] for v in json.loads(listed.stdout)] == ["1.0.0", "1.1.0", "2.0.0"]
    missing = _modreg("versions", "vision/absent", env=env)
    assert missing.returncode == 1 and missing.stdout == ""
    assert missing.stderr.startswith("error: ") and missing.stderr.count("\n") == 1
    usage = _modreg("pull", "Not A Ref", env=env)
    assert usage.returncode == 2 and "Traceback" not in usage.stderr
    nothing = _modreg("whoami", env={"MODREG_URL": "", "XDG_CONFIG_HOME": str(isolated_home / "c")})
    assert (nothing.returncode, nothing.stderr) == (1, NO_REGISTRY)


def test_modreg_server_starts_a_registry_and_writes_the_admin_token(tmp_path: Path) -> None:
    import httpx
    from registry_servers import free_port

    port, data = free_port(), tmp_path / "data"
    script = Path(sys.executable).parent / "modreg"
    log = (tmp_path / "server.log").open("wb")
    process = subprocess.Popen(
        [str(script), "server", "--port", str(port), "--data", str(data)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}/api/v1/health"
        for _ in range(600):
            try:
                if httpx.get(url, timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        token_file = data / "admin.token"
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        printed = (tmp_path / "server.log").read_text()
        assert str(token_file) in printed and token_file.read_text().strip() not in printed
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


def test_a_pipeline_s_own_problems_come_before_any_registry_config(
    run: Any, tmp_path: Path
) -> None:
    pipeline = tmp_path / "pipeline.yaml"
    pipeline.write_text(
        "name: p\nsteps:\n  a:\n    inputs: {}\n  b:\n    uses: vision/b\n    colour: red\n"
    )
    result = run("run", pipeline)
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines[0] == "error: 2 problems in the pipeline:"
    assert all(line.startswith("  pipeline.yaml:") for line in lines[1:]) and len(lines) == 3
    assert "registry" not in result.stderr
