"""Which modreg clients and registries can talk to each other: versions and API levels.

Every request of a modreg client carries ``User-Agent: modreg/<version>``,
``Modreg-Version: <version>`` and ``Modreg-Api-Level: <n>``; every answer of a registry
carries ``Modreg-Version`` and ``Modreg-Api-Level``.

The API level is an integer that grows only when the wire contract changes in a way an
older peer cannot live with: a field removed or renamed, a meaning changed, a new field an
older client must not ignore. Adding an answer field or an enum value does not raise it:
clients read answers leniently (``schemas.Wire.from_answer``). Each release speaks
``API_LEVEL``, so:

- a registry refuses a client whose level is below ``OLDEST_CLIENT_LEVEL``
  (``ClientTooOldError``, a 400 problem: upgrade the client);
- a client refuses a registry whose level is below ``OLDEST_REGISTRY_LEVEL``
  (``RegistryTooOldError`` on the client's side: upgrade the registry).

Level 2 brought module environments: a version's environment lock (a field a level-1 engine
would ignore, running the module in the wrong interpreter) and step records that carry their
params and warnings (fields a level-1 registry refuses). So a level-2 client needs a level-2
registry, while a level-2 registry still serves level-1 clients everything but the modules
they would run wrongly: resolving a version with an environment is an error for them
(``ENVIRONMENT_LEVEL``, ``api/modules.py``).

A request without the header (curl, a browser, a health probe) is served. Peers older than
this check send no level: clients then sent ``User-Agent: modreg-client``, and both sides
spoke what is now level 1, so a missing header counts as level 1 from a modreg client; an
answer without one (a proxy's, or such a registry's) is judged by its body. Only this module
reads the headers; it imports nothing heavy, since the CLI loads it on every command that
talks to a registry.
"""

from __future__ import annotations

from collections.abc import Mapping

VERSION = "0.1.0"  # the package's version: pyproject.toml reads it from here
API_LEVEL = 2
OLDEST_CLIENT_LEVEL = 1  # the clients a registry serves
OLDEST_REGISTRY_LEVEL = 2  # the registries a client uses
ENVIRONMENT_LEVEL = 2  # the clients that run a module in its environment

VERSION_HEADER = "Modreg-Version"
API_LEVEL_HEADER = "Modreg-Api-Level"
LEGACY_USER_AGENT = "modreg-client"  # what clients older than this check sent
LEGACY_API_LEVEL = 1
UPGRADE_CLIENT = "upgrade the modreg client (pip install -U modreg)"


def request_headers() -> dict[str, str]:
    """The headers a client sends with every request: who it is, which level it speaks."""
    return {
        "User-Agent": f"modreg/{VERSION}",
        VERSION_HEADER: VERSION,
        API_LEVEL_HEADER: str(API_LEVEL),
    }


def answer_headers() -> dict[str, str]:
    """The headers a registry sends with every answer."""
    return {VERSION_HEADER: VERSION, API_LEVEL_HEADER: str(API_LEVEL)}


def parse_level(value: str) -> int:
    """A ``Modreg-Api-Level`` header's value; ValueError naming the header when malformed."""
    try:
        return int(value.strip())
    except ValueError:
        raise ValueError(f"{API_LEVEL_HEADER} header: expected an integer, got {value!r}") from None


def client_refusal(headers: Mapping[str, str]) -> str | None:
    """Why a registry cannot serve the client that sent ``headers``, or None when it can.

    ``headers`` are case-insensitive (starlette's or httpx's); a malformed level raises
    ValueError.
    """
    level = client_level(headers)
    if level is None or level >= OLDEST_CLIENT_LEVEL:
        return None
    client = headers.get(VERSION_HEADER.lower()) or "of an older release"
    return (
        f"this registry runs modreg {VERSION} and serves clients of API level "
        f"{OLDEST_CLIENT_LEVEL} and newer; this client, modreg {client}, speaks level {level}: "
        f"{UPGRADE_CLIENT}"
    )


def client_level(headers: Mapping[str, str]) -> int | None:
    """The API level of the modreg client that sent ``headers``; None for another client
    (curl, a browser, a probe). A malformed level raises ValueError."""
    raw = headers.get(API_LEVEL_HEADER.lower())
    if raw is None and headers.get("user-agent") != LEGACY_USER_AGENT:
        return None
    return LEGACY_API_LEVEL if raw is None else parse_level(raw)


def registry_refusal(headers: Mapping[str, str], url: str) -> str | None:
    """Why this client cannot use the registry at ``url`` that answered with ``headers``.

    None when it can, and when the level is missing or not a number (a proxy's answer, or a
    registry from before the check, is judged by its body, not here).
    """
    raw = headers.get(API_LEVEL_HEADER.lower())
    if raw is None:  # a proxy's answer, or a registry from before the check: the body says
        return None
    try:
        level = parse_level(raw)
    except ValueError:
        return None
    if level >= OLDEST_REGISTRY_LEVEL:
        return None
    registry = headers.get(VERSION_HEADER.lower()) or "of an older release"
    return (
        f"the registry at {url} runs modreg {registry} (API level {level}); this client, "
        f"modreg {VERSION}, needs API level {OLDEST_REGISTRY_LEVEL} or newer: "
        "upgrade the registry server"
    )
