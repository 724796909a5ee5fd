"""Team and module names: ``team/name``, lowercase letters, digits, ``-`` ``_`` ``.``.

Kept apart from ``versioning`` (which needs semver) because every CLI command checks a
name before it does anything, and importing semver costs that path ~35 ms.
"""

from __future__ import annotations

import re

from modreg.registry.errors import InvalidNameError

TEAM_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,38}$")
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")


def check_team_name(team: str) -> None:
    """Reject a team name that is not lowercase letters, digits, ``- _ .`` (≤39 chars)."""
    if not TEAM_PATTERN.match(team):
        raise InvalidNameError(
            f"invalid team name {team!r}: use lowercase letters, digits, '-', '_' or '.', "
            "starting with a letter or digit, at most 39 characters"
        )


def check_module_name(name: str) -> None:
    """Reject anything but ``team/name`` with both parts well formed."""
    team, slash, short = name.partition("/")
    if not slash or not NAME_PATTERN.match(short):
        raise InvalidNameError(
            f"invalid module name {name!r}: expected team/name in lowercase letters, "
            "digits, '-', '_' or '.', the name at most 100 characters"
        )
    check_team_name(team)
