"""Auth and state that behave (issue 10, items 13, 14, 17, 18): the exact lines users read.

A bad token reads the same on every command, ``publish`` included (whose first request is a
body-less ``HEAD``); ``login`` matches a registry however its URL is spelled and refuses to
save an anonymous login by accident; ``logout`` forgets a login.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from factories import make_module_repo

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
