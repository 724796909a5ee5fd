"""Durations and sizes as people write them: ``24h``, ``30d``, ``20G``.

Used where a command or a setting takes one (``modreg gc --grace``, ``MODREG_CACHE_RETENTION``,
``modreg cache prune --older-than / --max-size``); one parser each, so every place accepts
the same spellings and refuses the rest with the same message.
"""

from __future__ import annotations

import re
from datetime import timedelta

_DURATION = re.compile(r"^(\d+)\s*([smhdw])$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?$", re.IGNORECASE)
_BYTES = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
MAX_SECONDS = 100 * 365 * 86400  # a century: beyond it a duration is a typo, not a policy


def parse_duration(text: str) -> timedelta:
    """``90s``, ``15m``, ``24h``, ``30d``, ``2w`` (or plain seconds); ValueError otherwise."""
    value = text.strip().lower()
    if value.isdigit():
        value += "s"
    match = _DURATION.match(value)
    if not match:
        raise ValueError(f"invalid duration {text!r}: expected e.g. 90s, 15m, 24h, 30d or 2w")
    seconds = int(match.group(1)) * _SECONDS[match.group(2)]
    if seconds > MAX_SECONDS:
        raise ValueError(f"invalid duration {text!r}: more than a century")
    return timedelta(seconds=seconds)


def parse_size(text: str) -> int:
    """``500M``, ``20G``, ``1.5T``, ``4096`` (binary units; ``GiB`` and ``GB`` alike)."""
    match = _SIZE.match(text.strip())
    if not match:
        raise ValueError(f"invalid size {text!r}: expected e.g. 500M, 20G or 4096")
    return int(float(match.group(1)) * _BYTES[match.group(2).lower()])
