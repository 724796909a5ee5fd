"""Versions, ranges, module references, and the rule that picks one version for a range.

Ranges follow npm's node-semver, except that the comparators of one set are joined by
commas (``>=1.2, <2``); ``||`` still separates alternative sets. Every range is first
desugared into sets of plain comparators (``op``, version):

    1.2.0        -> =1.2.0                 (a full bare version is exact)
    1.2 / 1.2.x  -> >=1.2.0, <1.3.0-0      (a partial one is a wildcard)
    ^1.2.3       -> >=1.2.3, <2.0.0-0      (^0.2.3 -> <0.3.0-0, ^0.0.3 -> <0.0.4-0)
    ~1.2.3       -> >=1.2.3, <1.3.0-0      (~1 -> <2.0.0-0)
    A - B        -> >=A, <=B               (a partial B is a wildcard upper bound)
    *, x, ""     -> any

A version satisfies a set when it satisfies every comparator, and — if it is a pre-release —
when one comparator the user wrote names a pre-release of the same major.minor.patch. So
``^1.3.0-rc.0`` may pick ``1.3.0-rc.1``, while ``*`` and ``>=1.0.0-rc.1`` never pick
``2.1.1-beta.1``. Build metadata never counts: ``1.0.0+build`` is ``1.0.0``.

Selection (``select_version``): a range picks the highest non-yanked version it allows
(deprecated ones with a warning); an exact pin gets its version even when yanked (with a
warning); no range means the module's default version, else the highest stable one
(``highest_stable``, which is also what a module shows as its latest version).
"""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import semver

from modreg.registry.errors import (
    InvalidRangeError,
    InvalidVersionError,
    UnsatisfiableRangeError,
)
from modreg.registry.names import check_module_name
from modreg.registry.schemas import VersionStatus

_PARTIAL = re.compile(
    r"^v?(?P<major>\d+|[xX*])(?:\.(?P<minor>\d+|[xX*]))?(?:\.(?P<patch>\d+|[xX*]))?"
    r"(?:-(?P<pre>[0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$"
)
_COMPARATOR = re.compile(r"^(?P<op><=|>=|<|>|=|\^|~>?|)\s*(?P<version>\S+)$")
_WILDCARDS = {"x", "X", "*"}
# said with every range that cannot be read, so the fix is in the same line as the fault
RANGE_FORMS = "ranges look like 1.2.0 (exact), ^1.2, ~1.2.3, 1.2.x, '>=1.2, <2', '1.0 - 1.4' or *"

# semver precedence as a plain tuple; see ``precedence``
Precedence = tuple[int, int, int, int, tuple[tuple[int, int, str], ...]]

_OPS: dict[str, Callable[[Precedence, Precedence], bool]] = {
    "=": operator.eq,
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


# --- names and versions ----------------------------------------------------------------


def _precedence_of(version: semver.Version) -> Precedence:
    if not version.prerelease:
        return (version.major, version.minor, version.patch, 1, ())
    parts = tuple(
        (0, int(part), "") if part.isdigit() else (1, 0, part)
        for part in str(version.prerelease).split(".")
    )
    return (version.major, version.minor, version.patch, 0, parts)


class _KeyedVersion(semver.Version):
    """A ``semver.Version`` that carries its precedence key, computed once."""

    __slots__ = ("key",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.key = _precedence_of(self)


def precedence(version: semver.Version) -> Precedence:
    """A plain tuple ordered exactly like semver precedence.

    Resolution compares the same few thousand versions over and over; semver's own
    comparison re-splits the pre-release on every call, which dominated bulk resolves, so
    parsed versions carry this key and comparisons use it.
    """
    key = getattr(version, "key", None)
    return key if key is not None else _precedence_of(version)


@functools.lru_cache(maxsize=65536)
def parse_version(text: str) -> semver.Version:
    """A strict semver version, build metadata dropped.

    Exactly the version: no surrounding whitespace (semver's pattern ends in ``$``, which
    lets a trailing newline through, so whitespace is refused here), or a manifest could
    keep ``"1.0.0\\n"`` while the version row says ``1.0.0``.
    """
    try:
        if not isinstance(text, str) or any(char.isspace() for char in text):
            raise ValueError("whitespace in a version")
        version = _KeyedVersion.parse(text)
    except (ValueError, TypeError) as exc:
        raise InvalidVersionError(
            f"invalid version {text!r}: expected strict semver such as 1.2.0 or 1.3.0-rc.1"
        ) from exc
    return version.replace(build=None)


def canonical_version(text: str) -> str:
    """The version as stored: ``1.0.0+build`` -> ``1.0.0``."""
    return str(parse_version(text))


def version_sort_key(text: str) -> Precedence:
    """Sort key giving semver precedence (a plain tuple: cheap to compare)."""
    return precedence(parse_version(text))


def parse_ref(ref: str) -> tuple[str, str | None]:
    """Split ``team/name@RANGE`` into the checked name and the range text (or None)."""
    name, at, range_text = ref.strip().partition("@")
    check_module_name(name)
    if at:
        if not range_text.strip():
            raise InvalidRangeError(f"empty version range in {ref!r}: write {name}@RANGE or {name}")
        parse_range(range_text)
        return name, range_text.strip()
    return name, None


# --- ranges ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparator:
    op: str
    version: semver.Version
    written: bool = True  # written by the user, not a desugared bound; counts for pre-releases
    key: Precedence = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", precedence(self.version))

    def allows(self, version: semver.Version) -> bool:
        return _OPS[self.op](precedence(version), self.key)


@dataclass(frozen=True)
class ComparatorSet:
    comparators: tuple[Comparator, ...]

    def allows(self, version: semver.Version) -> bool:
        if not all(c.allows(version) for c in self.comparators):
            return False
        if not version.prerelease:
            return True
        core = version.replace(prerelease=None)
        return any(
            c.written and c.version.prerelease and c.version.replace(prerelease=None) == core
            for c in self.comparators
        )


@dataclass(frozen=True)
class VersionRange:
    """A parsed range: alternative comparator sets."""

    text: str
    sets: tuple[ComparatorSet, ...]
    exact: semver.Version | None = None  # set when the range is a single full version

    def allows(self, version: semver.Version) -> bool:
        return any(s.allows(version) for s in self.sets)


@dataclass(frozen=True)
class _Partial:
    """A version with maybe-missing parts: ``1``, ``1.2``, ``1.2.3-rc.1``."""

    major: int | None
    minor: int | None
    patch: int | None
    pre: str | None

    @property
    def full(self) -> bool:
        return self.patch is not None

    def floor(self) -> semver.Version:
        return semver.Version(self.major or 0, self.minor or 0, self.patch or 0, self.pre)


def _unreadable(whole: str, problem: str) -> InvalidRangeError:
    """The error of a range that cannot be parsed: what is wrong, then the accepted forms."""
    return InvalidRangeError(f"invalid version range {whole!r}: {problem}; {RANGE_FORMS}")


def _parse_partial(text: str, whole: str) -> _Partial:
    match = _PARTIAL.match(text)
    if not match:
        raise _unreadable(whole, f"cannot read {text!r}")
    parts: list[int | None] = []
    for key in ("major", "minor", "patch"):
        value = match.group(key)
        if value is None or value in _WILDCARDS:
            break
        parts.append(int(value))
    parts += [None] * (3 - len(parts))
    pre = match.group("pre") if parts[2] is not None else None
    return _Partial(parts[0], parts[1], parts[2], pre)


def _bump(partial: _Partial) -> semver.Version:
    """The first version above a partial's wildcard: ``1.2`` -> ``1.3.0-0``."""
    if partial.major is None:
        raise ValueError("no upper bound for '*'")
    if partial.minor is None:
        return semver.Version(partial.major + 1, 0, 0, "0")
    return semver.Version(partial.major, partial.minor + 1, 0, "0")


def _caret(p: _Partial) -> list[Comparator]:
    low = Comparator(">=", p.floor())
    if p.major is None:
        return []
    if p.major > 0 or p.minor is None:
        high = semver.Version(p.major + 1, 0, 0, "0")
    elif p.minor > 0 or p.patch is None:
        high = semver.Version(0, p.minor + 1, 0, "0")
    else:
        high = semver.Version(0, 0, p.patch + 1, "0")
    return [low, Comparator("<", high, written=False)]


def _tilde(p: _Partial) -> list[Comparator]:
    if p.major is None:
        return []
    high = _bump(p if p.minor is None else _Partial(p.major, p.minor, None, None))
    return [Comparator(">=", p.floor()), Comparator("<", high, written=False)]


def _primitive(op: str, p: _Partial) -> list[Comparator]:
    if p.major is None:
        return (
            [] if op in ("", "=", ">=", "<=") else [Comparator("<", semver.Version(0, 0, 0, "0"))]
        )
    if p.full:
        return [Comparator(op or "=", p.floor())]
    if op in ("", "="):
        return [Comparator(">=", p.floor()), Comparator("<", _bump(p), written=False)]
    if op == ">":
        return [Comparator(">=", _bump(p), written=False)]
    if op == "<=":
        return [Comparator("<", _bump(p), written=False)]
    return [Comparator(op, p.floor())]


def _parse_comparator(token: str, whole: str) -> list[Comparator]:
    match = _COMPARATOR.match(token.strip())
    if not match:
        raise _unreadable(whole, f"cannot read {token.strip()!r}")
    op, partial = match.group("op"), _parse_partial(match.group("version"), whole)
    if op == "^":
        return _caret(partial)
    if op in ("~", "~>"):
        return _tilde(partial)
    return _primitive(op, partial)


def _parse_set(text: str, whole: str) -> ComparatorSet:
    if " - " in text:
        low_text, _, high_text = text.partition(" - ")
        low, high = (
            _parse_partial(low_text.strip(), whole),
            _parse_partial(high_text.strip(), whole),
        )
        comparators = _primitive(">=", low) + _primitive("<=", high)
        return ComparatorSet(tuple(comparators))
    comparators = []
    for token in text.split(","):
        if not token.strip():
            raise _unreadable(whole, "empty comparator")
        comparators += _parse_comparator(token, whole)
    return ComparatorSet(tuple(comparators))


@functools.lru_cache(maxsize=4096)
def parse_range(text: str) -> VersionRange:
    """Parse a range such as ``^1.2``, ``>=1.2, <2`` or ``1.2.0`` (exact)."""
    stripped = text.strip()
    if stripped in ("", "*", "x", "X"):
        return VersionRange(stripped or "*", (ComparatorSet(()),))
    exact = None
    match = _PARTIAL.match(stripped.lstrip("="))
    if match and match.group("patch") not in (None, "x", "X", "*"):
        exact = _parse_partial(stripped.lstrip("="), text).floor()
    sets = tuple(_parse_set(part.strip(), text) for part in stripped.split("||"))
    return VersionRange(stripped, sets, exact)


# --- selection ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    version: str
    status: VersionStatus
    message: str | None = None  # why it is deprecated or yanked
    replaced_by: str | None = None  # a deprecated version's successor


@dataclass
class Choice:
    version: str
    reason: str
    warnings: list[str] = field(default_factory=list)


def _status_warnings(name: str, candidate: Candidate) -> list[str]:
    if candidate.status == VersionStatus.yanked:
        return [f"{name}@{candidate.version} is yanked; it is used only because it was pinned"]
    if candidate.status == VersionStatus.deprecated:
        warning = f"{name}@{candidate.version} is deprecated"
        if candidate.message:
            warning += f": {candidate.message}"
        if candidate.replaced_by:
            warning += f"; use {candidate.replaced_by} instead"
        return [warning]
    return []


def _pinned(
    name: str, parsed: list[tuple[semver.Version, Candidate]], exact: semver.Version
) -> Choice:
    for version, candidate in parsed:
        if precedence(version) == precedence(exact):
            return Choice(
                candidate.version, f"exact pin {exact}", _status_warnings(name, candidate)
            )
    raise UnsatisfiableRangeError(f"{name}@{exact} is not published")


def _highest(
    name: str, parsed: list[tuple[semver.Version, Candidate]], rng: VersionRange
) -> Choice:
    matching = [(v, c) for v, c in parsed if rng.allows(v)]
    usable = [(v, c) for v, c in matching if c.status != VersionStatus.yanked]
    if not usable:
        yanked = ", ".join(c.version for _, c in matching)
        hint = f" (only yanked versions match: {yanked})" if yanked else ""
        known = ", ".join(c.version for _, c in parsed[-5:]) or "none"
        raise UnsatisfiableRangeError(
            f"no version of {name} satisfies {rng.text}{hint}; latest published: {known}"
        )
    version, candidate = max(usable, key=lambda pair: precedence(pair[0]))
    reason = f"highest version satisfying {rng.text} ({len(usable)} of {len(parsed)} match)"
    return Choice(candidate.version, reason, _status_warnings(name, candidate))


def _highest_stable(parsed: Sequence[tuple[semver.Version, Candidate]]) -> Candidate | None:
    stable = [(v, c) for v, c in parsed if not v.prerelease and c.status != VersionStatus.yanked]
    if not stable:
        return None
    return max(stable, key=lambda pair: precedence(pair[0]))[1]


def highest_stable(candidates: Sequence[Candidate]) -> str | None:
    """The highest stable (no pre-release), unyanked version, or None when there is none.

    What a module lists as its latest version, and what a reference without a range picks
    when the module has no default: one rule, so the two never disagree.
    """
    found = _highest_stable([(parse_version(c.version), c) for c in candidates])
    return found.version if found is not None else None


def _unranged(
    name: str, parsed: list[tuple[semver.Version, Candidate]], default: str | None
) -> Choice:
    warnings: list[str] = []
    if default is not None:
        for version, candidate in parsed:
            if str(version) == canonical_version(default):
                if candidate.status != VersionStatus.yanked:
                    reason = f"no range given: the default version of {name}"
                    return Choice(candidate.version, reason, _status_warnings(name, candidate))
                warnings.append(f"default version {default} of {name} is yanked; ignoring it")
    latest = _highest_stable(parsed)
    if latest is None:
        raise UnsatisfiableRangeError(
            f"{name} has no stable, unyanked version; name a range such as {name}@^1.0.0-rc.0"
        )
    reason = f"no range given and no default: the highest stable version of {name}"
    return Choice(latest.version, reason, warnings + _status_warnings(name, latest))


def select_version(
    candidates: Sequence[Candidate],
    range_text: str | None,
    default: str | None,
    name: str = "module",
) -> Choice:
    """Choose one version of ``name`` among ``candidates`` for a range (see module doc)."""
    parsed = sorted(
        ((parse_version(c.version), c) for c in candidates), key=lambda p: precedence(p[0])
    )
    if range_text is None:
        return _unranged(name, parsed, default)
    rng = parse_range(range_text)
    if rng.exact is not None and len(rng.sets) == 1:
        return _pinned(name, parsed, rng.exact)
    return _highest(name, parsed, rng)
