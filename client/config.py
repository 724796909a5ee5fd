"""Where the client finds the registry URL and token, and the file ``modreg login`` writes.

Resolution order, first found wins, for the URL and the token separately:

1. the ``--registry`` / ``--token`` options,
2. the ``MODREG_URL`` / ``MODREG_TOKEN`` environment variables,
3. the config file ``$XDG_CONFIG_HOME/modreg/config.toml`` (``~/.config`` without it).

The file keeps one token per registry URL, and a token from the file is only ever sent to the
registry it was saved for, so ``--registry other`` never leaks it. URLs that name the same
registry match however they are spelled (``same_registry``): a trailing slash or ``/api/v1``,
the case of the host, an explicit default port, and ``localhost`` / ``127.0.0.1`` / ``[::1]``,
which are all this machine. The file is written atomically
(temp file + rename) with mode 0600::

    url = "http://127.0.0.1:8470"

    [tokens]
    "http://127.0.0.1:8470" = "mr_…"
"""

from __future__ import annotations

import json
import os
import tempfile
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from modreg.client.errors import ConfigError

CONFIG_NAME = "config.toml"
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class ClientConfig:
    """The registry to talk to, and the token to talk with (None: anonymous)."""

    url: str
    token: str | None = field(default=None, repr=False)


def normalize_url(url: str) -> str:
    """``http://host:port/`` and ``…/api/v1`` both become ``http://host:port``."""
    url = url.strip().rstrip("/")
    if url.endswith("/api/v1"):
        url = url[: -len("/api/v1")]
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- parsing the port is what checks it
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise ConfigError(f"invalid registry URL {url!r}: expected http://HOST[:PORT]")
    return url


def same_registry(first: str, second: str) -> bool:
    """Whether two URLs name one registry (see the module docstring); False for a bad URL."""
    try:
        return _registry_key(first) == _registry_key(second)
    except ConfigError:
        return False


def _registry_key(url: str) -> tuple[str, str, int, str]:
    parts = urlsplit(normalize_url(url))
    host = parts.hostname or ""  # lower-cased by urlsplit
    host = "loopback" if host in LOOPBACK_HOSTS else host
    return parts.scheme, host, parts.port or DEFAULT_PORTS[parts.scheme], parts.path


def config_dir(env: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CONFIG_HOME/modreg``, or ``~/.config/modreg``."""
    env = os.environ if env is None else env
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "modreg"


def cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CACHE_HOME/modreg``, or ``~/.cache/modreg``."""
    env = os.environ if env is None else env
    base = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "modreg"


def engine_state_dir(env: Mapping[str, str] | None = None) -> Path:
    """The engine's local state (``$XDG_CACHE_HOME/modreg/engine``): caches of results,
    blobs and module sources, which ``modreg pull`` shares."""
    return cache_dir(env) / "engine"


def read_config_file(path: Path) -> dict[str, Any]:
    """The config file's contents, ``{}`` when there is none."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the modreg config: {exc}") from exc


def _file_token(data: Mapping[str, Any], url: str) -> str | None:
    tokens = data.get("tokens", {})
    if not isinstance(tokens, dict):
        return None
    for saved_url, token in tokens.items():
        if isinstance(token, str) and same_registry(saved_url, url):
            return token
    return None


def load_config(
    registry: str | None = None,
    token: str | None = None,
    env: Mapping[str, str] | None = None,
) -> ClientConfig:
    """Resolve URL and token from options, environment and the login file (in that order)."""
    env = os.environ if env is None else env
    data = read_config_file(config_dir(env) / CONFIG_NAME)
    raw_url = registry or env.get("MODREG_URL") or data.get("url")
    if not raw_url or not isinstance(raw_url, str):
        raise ConfigError(
            "no registry configured: pass --registry URL, set MODREG_URL, or run `modreg login URL`"
        )
    url = normalize_url(raw_url)
    return ClientConfig(url=url, token=token or env.get("MODREG_TOKEN") or _file_token(data, url))


def _render(url: str | None, tokens: Mapping[str, str]) -> str:
    # JSON strings are valid TOML basic strings, escapes included.
    lines = ([f"url = {json.dumps(url)}", ""] if url else []) + ["[tokens]"]
    lines += [f"{json.dumps(key)} = {json.dumps(value)}" for key, value in sorted(tokens.items())]
    return "\n".join(lines) + "\n"


def write_private_file(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, readable by the owner only (0600)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(handle, 0o600)
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def save_login(url: str, token: str | None, env: Mapping[str, str] | None = None) -> Path:
    """Make ``url`` the default registry and remember its token; returns the file's path.

    ``token=None`` keeps whatever token is saved for ``url``; ``""`` forgets it.
    """
    path = config_dir(env) / CONFIG_NAME
    data = read_config_file(path)
    url = normalize_url(url)
    tokens = _saved_tokens(data)
    kept = next((v for k, v in tokens.items() if same_registry(k, url)), None)
    tokens = {k: v for k, v in tokens.items() if not same_registry(k, url)}
    token = kept if token is None else token
    if token:
        tokens[url] = token
    write_private_file(path, _render(url, tokens))
    return path


def _saved_tokens(data: Mapping[str, Any]) -> dict[str, str]:
    saved = data.get("tokens")
    saved = saved if isinstance(saved, dict) else {}
    return {k: v for k, v in saved.items() if isinstance(v, str)}


@dataclass(frozen=True)
class Logout:
    """What ``remove_login`` did: the registry, and whether a login of it was saved."""

    url: str
    removed: bool
    path: Path


def remove_login(url: str | None = None, env: Mapping[str, str] | None = None) -> Logout:
    """Forget the token saved for ``url`` (the default registry when None), and the default
    itself when it is that registry; other registries' tokens stay."""
    path = config_dir(env) / CONFIG_NAME
    data = read_config_file(path)
    default = data.get("url") if isinstance(data.get("url"), str) else None
    if not (url or default):
        raise ConfigError(f"no login saved in {path}: name the registry, `modreg logout URL`")
    url = normalize_url(url or str(default))
    tokens = _saved_tokens(data)
    kept = {k: v for k, v in tokens.items() if not same_registry(k, url)}
    forget_default = default is not None and same_registry(default, url)
    if len(kept) == len(tokens) and not forget_default:
        return Logout(url, removed=False, path=path)
    write_private_file(path, _render(None if forget_default else default, kept))
    return Logout(url, removed=True, path=path)
