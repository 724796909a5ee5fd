"""Auth and state that behave (issue 10, items 13, 14, 17, 18): the exact lines users read.

A bad token reads the same on every command, ``publish`` included (whose first request is a
body-less ``HEAD``); ``login`` matches a registry however its URL is spelled and refuses to
save an anonymous login by accident; ``logout`` forgets a login.
"""

from __future__ import annotations

import json
import os
import pty
import sys
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from factories import make_module_repo

from modreg.client.config import load_config, same_registry, save_login

MODREG = Path(sys.executable).parent / "modreg"
UNKNOWN_TOKEN = "error: unknown token: check --token, MODREG_TOKEN or `modreg login`\n"


def _revoked_token(shared: Any, run: Any) -> tuple[str, int]:
    created = run(*shared.options("admin"), "token", "create", "--team", "vision",
                  "--scope", "publish", "--json")  # fmt: skip
    token = json.loads(created.stdout)
    assert run(*shared.options("admin"), "token", "revoke", token["id"]).exit_code == 0
    return token["token"], token["id"]


@pytest.mark.parametrize("command", [["publish", "{repo}"], ["versions", "{module}"]])
def test_an_unknown_token_is_the_same_line_on_every_command(
    shared: Any, run: Any, tmp_path: Path, module_name: str, command: list[str]
) -> None:
    repo = make_module_repo(tmp_path, name=module_name)
    args = [part.format(repo=repo, module=module_name) for part in command]
    result = run(*shared.options("mr_wrong"), *args)
    assert (result.exit_code, result.stderr, result.stdout) == (1, UNKNOWN_TOKEN, "")


@pytest.mark.parametrize("command", [["publish", "{repo}"], ["versions", "{module}"]])
def test_a_revoked_token_is_the_same_line_on_every_command(
    shared: Any, run: Any, tmp_path: Path, module_name: str, command: list[str]
) -> None:
    token, token_id = _revoked_token(shared, run)
    repo = make_module_repo(tmp_path, name=module_name)
    args = [part.format(repo=repo, module=module_name) for part in command]
    result = run(*shared.options(token), *args)
    expected = f"error: token #{token_id} was revoked; ask for a new one\n"
    assert (result.exit_code, result.stderr, result.stdout) == (1, expected, "")


def test_a_head_answer_carries_its_problem_in_headers(shared: Any) -> None:
    answer = httpx.head(
        f"{shared.url}/api/v1/blobs/{'0' * 64}", headers={"Authorization": "Bearer mr_wrong"}
    )
    assert (answer.status_code, answer.content) == (401, b"")
    assert answer.headers["Modreg-Problem-Type"] == "authentication-required"
    assert unquote(answer.headers["Modreg-Problem-Detail"]) == UNKNOWN_TOKEN[7:-1]


# --- login and logout -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("saved", "asked", "same"),
    [
        ("http://localhost:8470", "http://127.0.0.1:8470", True),
        ("http://LocalHost:8470/", "http://[::1]:8470/api/v1", True),
        ("http://registry.example", "http://registry.example:80", True),
        ("https://Registry.Example/", "https://registry.example:443", True),
        ("http://localhost:8470", "http://127.0.0.1:8471", False),
        ("http://localhost:8470", "https://localhost:8470", False),
        ("http://registry.example", "http://other.example", False),
        ("http://registry.example", "not a url", False),
    ],
)
def test_one_registry_however_its_url_is_spelled(saved: str, asked: str, same: bool) -> None:
    assert same_registry(saved, asked) is same


def test_a_login_to_localhost_is_used_for_127_0_0_1(shared: Any, run: Any) -> None:
    spelled = shared.url.replace("127.0.0.1", "localhost") + "/"
    assert run("login", spelled, "--token", shared.publish).exit_code == 0
    result = run("--registry", shared.url, "whoami")
    assert (result.exit_code, result.stdout) == (0, f"{shared.url}: team vision (publish)\n")


def test_login_without_a_token_or_a_terminal_saves_nothing(
    shared: Any, run: Any, isolated_home: Path
) -> None:
    result = run("login", shared.url)
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == (
        "error: no token to log in with (stdin is not a terminal to ask on): pass --token T or "
        "set MODREG_TOKEN, or --anonymous to save this registry without one\n"
    )
    assert not (isolated_home / "config" / "modreg" / "config.toml").exists()


def _login_on_a_terminal(url: str, typed: str, home: Path) -> str:
    """``modreg login URL`` on a pseudo-terminal, typing ``typed`` at its prompt; its output."""
    env = {"PATH": os.environ["PATH"], "XDG_CONFIG_HOME": str(home / "config")}
    pid, fd = pty.fork()
    if pid == 0:  # the child: the pty is its controlling terminal
        os.execve(str(MODREG), [str(MODREG), "login", url], env)
    seen = b""
    while b"Token (empty: anonymous): " not in seen:
        seen += os.read(fd, 1024)
    os.write(fd, typed.encode() + b"\n")
    while True:
        try:
            chunk = os.read(fd, 1024)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    assert os.waitpid(pid, 0)[1] == 0, seen
    return seen.decode().replace("\r\n", "\n")


@pytest.mark.parametrize(
    ("with_token", "who"), [(False, "anonymous"), (True, "team vision (publish)")]
)
def test_login_on_a_terminal_asks_for_the_token(
    shared: Any, isolated_home: Path, with_token: bool, who: str
) -> None:
    config = isolated_home / "config" / "modreg" / "config.toml"
    token = shared.publish if with_token else ""
    seen = _login_on_a_terminal(shared.url, token, isolated_home)
    assert seen.endswith(f"Logged in to {shared.url} as {who}; saved in {config}\n")
    assert not token or token not in seen  # typed, never shown


def test_an_anonymous_login_with_a_token_is_a_usage_error(shared: Any, run: Any) -> None:
    result = run("login", shared.url, "--anonymous", "--token", shared.publish)
    assert result.exit_code == 2
    assert "--anonymous saves no token: drop --token, or --anonymous" in result.stderr


def test_an_anonymous_login_is_saved_only_when_asked_for(
    shared: Any, run: Any, isolated_home: Path
) -> None:
    config = isolated_home / "config" / "modreg" / "config.toml"
    result = run("login", shared.url, "--anonymous")
    assert result.exit_code == 0
    assert result.stdout == f"Logged in to {shared.url} as anonymous; saved in {config}\n"
    assert run("whoami").stdout == f"{shared.url}: anonymous\n"


def test_logout_forgets_the_login_and_only_that_one(
    shared: Any, run: Any, isolated_home: Path
) -> None:
    config = isolated_home / "config" / "modreg" / "config.toml"
    other = "http://registry.example:8470"
    save_login(other, "other-token")
    assert run("login", shared.url, "--token", shared.publish).exit_code == 0
    result = run("logout")
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout == f"Logged out of {shared.url}; removed its login from {config}\n"
    assert run("--registry", shared.url, "whoami").stdout == f"{shared.url}: anonymous\n"
    assert load_config(registry=other).token == "other-token"
    again = run("logout", shared.url.replace("127.0.0.1", "localhost"))
    expected = f"No login saved for {shared.url.replace('127.0.0.1', 'localhost')} in {config}\n"
    assert (again.exit_code, again.stdout) == (0, expected)
    nothing = run("logout")
    assert (nothing.exit_code, nothing.stdout) == (1, "")
    assert nothing.stderr == (
        f"error: no login saved in {config}: name the registry, `modreg logout URL`\n"
    )


def test_logout_warns_that_modreg_token_still_applies(shared: Any, run: Any) -> None:
    assert run("login", shared.url, "--token", shared.publish).exit_code == 0
    result = run("logout", env={"MODREG_TOKEN": shared.read})
    assert result.exit_code == 0
    assert result.stderr == "warning: MODREG_TOKEN is set in this environment and is still used\n"


# --- yanked versions ----------------------------------------------------------------------


def test_set_default_refuses_a_yanked_version(
    shared: Any, run: Any, tmp_path: Path, module_name: str
) -> None:
    for version in ("1.0.0", "1.1.0"):
        folder = make_module_repo(tmp_path, name=module_name, version=version)
        assert run(*shared.options(), "publish", folder).exit_code == 0
    assert run(*shared.options(), "yank", f"{module_name}@1.1.0", "--reason", "bad shards")
    result = run(*shared.options(), "set-default", f"{module_name}@1.1.0")
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == (
        f"error: {module_name}@1.1.0 is yanked (bad shards): a yanked version cannot be the "
        f"default; pick another, or `modreg unyank {module_name}@1.1.0` first\n"
    )
    shown = run(*shared.options(), "versions", module_name, "--json")
    assert not any(row["default"] for row in json.loads(shown.stdout))
