"""Config resolution (options, then environment, then the login file) and the login file."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from modreg.client.config import ClientConfig, load_config, normalize_url, save_login
from modreg.client.errors import ConfigError

FILE_URL = "http://file.example:1"
ENV_URL = "http://env.example:2"
FLAG_URL = "http://flag.example:3"


@pytest.mark.parametrize(
    ("flags", "env", "expected"),
    [
        ({}, {}, ClientConfig(FILE_URL, "file-token")),
        ({}, {"MODREG_URL": ENV_URL}, ClientConfig(ENV_URL, None)),
        (
            {},
            {"MODREG_URL": ENV_URL, "MODREG_TOKEN": "env-token"},
            ClientConfig(ENV_URL, "env-token"),
        ),
        ({}, {"MODREG_TOKEN": "env-token"}, ClientConfig(FILE_URL, "env-token")),
        ({"registry": FLAG_URL}, {"MODREG_URL": ENV_URL}, ClientConfig(FLAG_URL, None)),
        (
            {"token": "flag-token"},
            {"MODREG_TOKEN": "env-token"},
            ClientConfig(FILE_URL, "flag-token"),
        ),
        ({"registry": FILE_URL + "/api/v1/"}, {}, ClientConfig(FILE_URL, "file-token")),
        (
            {"registry": FLAG_URL, "token": "flag-token"},
            {"MODREG_URL": ENV_URL, "MODREG_TOKEN": "env-token"},
            ClientConfig(FLAG_URL, "flag-token"),
        ),
    ],
)
def test_precedence_is_flags_then_environment_then_login_file(
    isolated_home: Path, flags: dict[str, str], env: dict[str, str], expected: ClientConfig
) -> None:
    environ = {"XDG_CONFIG_HOME": str(isolated_home / "config"), **env}
    save_login(FILE_URL, "file-token", env=environ)
    assert load_config(**flags, env=environ) == expected


def test_a_saved_token_is_sent_only_to_its_own_registry(isolated_home: Path) -> None:
    environ = {"XDG_CONFIG_HOME": str(isolated_home / "config")}
    save_login(FILE_URL, "file-token", env=environ)
    save_login(ENV_URL, "second-token", env=environ)
    assert load_config(env=environ) == ClientConfig(ENV_URL, "second-token")
    assert load_config(FILE_URL, env=environ) == ClientConfig(FILE_URL, "file-token")
    assert load_config(FLAG_URL, env=environ).token is None


def test_login_file_is_private_and_written_atomically(isolated_home: Path) -> None:
    environ = {"XDG_CONFIG_HOME": str(isolated_home / "config")}
    path = save_login(FILE_URL, "secret-token", env=environ)
    assert path == isolated_home / "config" / "modreg" / "config.toml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    save_login(FILE_URL, "newer-token", env=environ)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["config.toml"]  # no temp file left
    assert load_config(env=environ).token == "newer-token"


def test_config_falls_back_to_home_dot_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    path = save_login(FILE_URL, None, env={})
    assert path == tmp_path / ".config" / "modreg" / "config.toml"
    assert load_config(env={}) == ClientConfig(FILE_URL, None)


def test_no_registry_anywhere_is_one_clear_error(isolated_home: Path) -> None:
    with pytest.raises(ConfigError, match=r"^no registry configured: pass --registry URL"):
        load_config(env={"XDG_CONFIG_HOME": str(isolated_home / "config")})


def test_an_unreadable_config_file_is_named(isolated_home: Path) -> None:
    path = isolated_home / "config" / "modreg" / "config.toml"
    path.parent.mkdir(parents=True)
    path.write_text("url = [unclosed")
    with pytest.raises(ConfigError, match=rf"^{path}: cannot read the modreg config"):
        load_config(env={"XDG_CONFIG_HOME": str(isolated_home / "config")})


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("http://h:1", "http://h:1"),
        ("http://h:1/", "http://h:1"),
        ("https://h/api/v1", "https://h"),
        (" http://h:1/api/v1/ ", "http://h:1"),
    ],
)
def test_urls_are_normalised(raw: str, expected: str) -> None:
    assert normalize_url(raw) == expected


@pytest.mark.parametrize("raw", ["h:1", "ftp://h", ""])
def test_bad_urls_are_refused(raw: str) -> None:
    with pytest.raises(ConfigError, match="invalid registry URL"):
        normalize_url(raw)


def test_a_login_without_a_token_keeps_the_saved_one(isolated_home: Path) -> None:
    environ = {"XDG_CONFIG_HOME": str(isolated_home / "config")}
    save_login(FILE_URL, "file-token", env=environ)
    save_login(ENV_URL, None, env=environ)  # switch registries without a token
    save_login(FILE_URL, None, env=environ)  # and back: the token is still there
    assert load_config(env=environ) == ClientConfig(FILE_URL, "file-token")
    save_login(FILE_URL, "", env=environ)  # an explicit empty token forgets it
    assert load_config(env=environ).token is None
