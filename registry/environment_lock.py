"""Environment locks: the hash-pinned requirements a module version runs with.

A module that declares ``[environment]`` publishes, beside its archive, a lock: the
requirements file ``uv pip compile --universal --generate-hashes`` writes (or the module's
own committed ``requirements.lock``, used as it is). The lock is a blob, immutable with the
version; the engine materialises it with ``uv pip sync --require-hashes``. This module is
the one reading of that format that client, server and engine share, and the one answer to
"which Python was it resolved for". Pure functions: no I/O.

What a lock may hold: comments, blank lines, and requirements pinned exactly
(``name==version`` or ``name===version``, with extras and an environment marker if any), each
with at least one ``--hash=sha256:…``; lines continue with a trailing backslash. Nothing else
(no ``-e``, no ``-r``, no index options: uv's own settings say where packages come from), so
a lock installs the same bytes on every machine.
"""

from __future__ import annotations

import re

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

LOCK_FILE = "requirements.lock"  # a module's committed lock, beside its modreg.toml
MAX_LOCK_BYTES = 4 << 20
DEFAULT_PYTHON = "3.11"  # what a module without a `python` range is resolved for
BACKSLASH = "\\"
HASH_OPTION = re.compile(r"--hash[= ]sha256:[0-9a-f]{64}")
# the Python minors a range is searched in for its lowest: older than any uv supports, newer
# than any released, so a range the search finds nothing in allows no Python at all
PYTHON_MINORS = range(6, 40)


def python_range(text: str) -> SpecifierSet:
    """``text`` as a specifier set (``>=3.11,<3.13``), or ValueError saying what is accepted."""
    try:
        return SpecifierSet(text)
    except InvalidSpecifier as exc:
        raise ValueError(
            f"{text!r} is not a Python version range (expected e.g. '>=3.11' or '>=3.11,<3.13')"
        ) from exc


def lowest_python(text: str | None) -> str:
    """The lowest Python version ``text`` allows: ``3.11`` when absent or when ``>=3.11``,
    ``3.12.2`` for ``>=3.12.2``. ValueError when it allows none."""
    if not text:
        return DEFAULT_PYTHON
    allowed = python_range(text)
    for minor in PYTHON_MINORS:
        for micro in range(0, 40):
            if Version(f"3.{minor}.{micro}") in allowed:
                return f"3.{minor}" if micro == 0 else f"3.{minor}.{micro}"
    raise ValueError(f"{text!r} allows no Python 3 version")


def check_requirement(line: str) -> Requirement:
    """One PEP 508 requirement line, or ValueError saying what is wrong with it."""
    try:
        return Requirement(line)
    except InvalidRequirement as exc:
        reason = str(exc).splitlines()[0]
        raise ValueError(f"{line!r} is not a PEP 508 requirement ({reason})") from exc


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, text) of each requirement, comments dropped, continuations joined."""
    lines: list[tuple[int, str]] = []
    pending: tuple[int, str] | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split(" #", 1)[0].strip() if not raw.lstrip().startswith("#") else ""
        start, before = pending if pending else (number, "")
        continued = line.endswith("\\")
        joined = f"{before} {line.removesuffix(BACKSLASH).strip()}".strip()
        if continued:
            pending = (start, joined)
            continue
        pending = None
        if joined:
            lines.append((start, joined))
    if pending and pending[1]:
        lines.append(pending)
    return lines


def _pinned_version(requirement: Requirement) -> str | None:
    specifiers = list(requirement.specifier)
    if len(specifiers) == 1 and specifiers[0].operator in ("==", "==="):
        version = specifiers[0].version
        return None if "*" in version else version
    return None


def parse_lock(text: str) -> dict[str, str]:
    """The packages a lock pins: normalised name -> version (several versions, for different
    markers of a universal lock, are listed as ``1.26.4, 2.1.0``). ValueError naming the
    first line that is not a hash-pinned requirement."""
    if len(text.encode()) > MAX_LOCK_BYTES:
        raise ValueError(f"the lock is over {MAX_LOCK_BYTES} bytes")
    packages: dict[str, list[str]] = {}
    for number, line in _logical_lines(text):
        where = f"line {number}"
        if line.startswith("-"):
            raise ValueError(f"{where}: {line.split()[0]!r} is not allowed in a lock")
        hashes = HASH_OPTION.findall(line)
        requirement_text = HASH_OPTION.sub("", line).strip()
        try:
            requirement = check_requirement(requirement_text)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
        version = _pinned_version(requirement)
        if version is None:
            raise ValueError(f"{where}: {requirement_text!r} is not pinned with '=='")
        if not hashes:
            raise ValueError(f"{where}: {requirement.name}=={version} has no --hash=sha256:")
        found = packages.setdefault(canonicalize_name(requirement.name), [])
        if version not in found:
            found.append(version)
    return {name: ", ".join(versions) for name, versions in sorted(packages.items())}
