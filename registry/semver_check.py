"""Semver checked against the interface: which bump a new version needs, and whether it made it.

Pure (no database, no HTTP): the client runs it before uploading, and the server runs it
again, authoritatively, inside the publish transaction under the module's lock
(``modules.publish_version``).

A new version ``V`` is compared with its **base**: the highest non-yanked *stable* version
below ``V``'s release (``1.3.0-rc.2`` and ``1.3.0`` both compare with the highest stable
``< 1.3.0``). So a pre-release is checked against its release line, and a backport
(``1.2.4`` after ``1.3.0``) only against the versions below it. No base: nothing to check.

Each difference is a ``Change`` with the bump it needs:

    major  (breaking)   an input, output or param removed (a rename is a removal and an
                        addition); a changed type; an optional input made required; an
                        output made optional; a param that became required; a new
                        required input or param
    minor  (addition)   a new optional input, any new output, a new param with a default;
                        an input made optional, a param given a default
    minor  (behaviour)  a changed default; a narrowed ``[environment] python`` range
    patch               the command or the environment lock changed (reported, never
                        refused on its own)

Which bump ``V`` made over its base follows the caret ranges pipelines write (cargo's
rule): ``V`` is a major bump when ``^BASE`` does not allow it — a new major, or for
``0.y.z`` a new minor, for ``0.0.z`` a new patch — so no pipeline that wrote ``^BASE``
silently picks up a breaking change; below 1.0.0 every other bump counts as a minor.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import semver

from modreg.registry.errors import SemverError
from modreg.registry.schemas import (
    EnvironmentPublic,
    Interface,
    Manifest,
    Param,
    Port,
    VersionStatus,
)
from modreg.registry.versioning import parse_version, precedence


class Bump(IntEnum):
    """The size of a version bump, ordered: a change needs at least its own."""

    patch = 0
    minor = 1
    major = 2


class Kind(IntEnum):
    """What a change is, for its label in a report."""

    breaking = 0
    addition = 1
    behaviour = 2
    environment = 3
    other = 4


_LABELS = {
    Kind.breaking: "breaking",
    Kind.addition: "minor",
    Kind.behaviour: "behaviour change",
    Kind.environment: "environment",
    Kind.other: "patch",
}
_NEEDS = {
    Kind.breaking: Bump.major,
    Kind.addition: Bump.minor,
    Kind.behaviour: Bump.minor,
    Kind.environment: Bump.patch,
    Kind.other: Bump.patch,
}


@dataclass(frozen=True, order=True)
class Change:
    """One difference between two versions: ``param 'size' removed`` (breaking)."""

    kind: Kind
    what: str

    @property
    def bump(self) -> Bump:
        return _NEEDS[self.kind]

    @property
    def label(self) -> str:
        return _LABELS[self.kind]

    def line(self) -> str:
        return f"{self.what} ({self.label})"

    def to_dict(self) -> dict[str, str]:
        return {"change": self.what, "class": self.label, "needs": self.bump.name}


# --- comparing two versions ----------------------------------------------------------


def _port_changes(kind: str, name: str, old: Port, new: Port) -> list[Change]:
    found = []
    if old.type != new.type:
        found.append(
            Change(Kind.breaking, f"{kind} {name!r} type changed {old.type} -> {new.type}")
        )
    if old.optional != new.optional:
        # an input made required, or an output made optional, breaks its users; the
        # opposite only promises more
        breaks = new.optional if kind == "output" else not new.optional
        made = "optional" if new.optional else "required"
        found.append(
            Change(Kind.breaking if breaks else Kind.addition, f"{kind} {name!r} made {made}")
        )
    return found


def _added_port(kind: str, name: str, port: Port) -> Change:
    if kind == "input" and not port.optional:
        return Change(Kind.breaking, f"input {name!r} added as required")
    return Change(Kind.addition, f"{kind} {name!r} added")


def _param_changes(name: str, old: Param, new: Param) -> list[Change]:
    found = []
    if old.type != new.type:
        found.append(Change(Kind.breaking, f"param {name!r} type changed {old.type} -> {new.type}"))
    if new.required and not old.required:
        found.append(Change(Kind.breaking, f"param {name!r} made required"))
    elif old.required and not new.required:
        found.append(Change(Kind.addition, f"param {name!r} given a default ({new.default!r})"))
    elif not new.required and old.default != new.default:
        what = f"param {name!r} default changed {old.default!r} -> {new.default!r}"
        found.append(Change(Kind.behaviour, what))
    return found


def _added_param(name: str, param: Param) -> Change:
    if param.required:
        return Change(Kind.breaking, f"param {name!r} added without a default")
    return Change(Kind.addition, f"param {name!r} added")


def interface_changes(old: Interface, new: Interface) -> list[Change]:
    """Every difference between two interfaces, with the bump each needs."""
    found: list[Change] = []
    for kind, before, after in (
        ("input", old.inputs, new.inputs),
        ("output", old.outputs, new.outputs),
    ):
        found += [Change(Kind.breaking, f"{kind} {n!r} removed") for n in before if n not in after]
        found += [_added_port(kind, n, after[n]) for n in after if n not in before]
        for n in before.keys() & after.keys():
            found += _port_changes(kind, n, before[n], after[n])
    found += [
        Change(Kind.breaking, f"param {n!r} removed") for n in old.params if n not in new.params
    ]
    found += [_added_param(n, new.params[n]) for n in new.params if n not in old.params]
    for n in old.params.keys() & new.params.keys():
        found += _param_changes(n, old.params[n], new.params[n])
    return sorted(found)


# Python versions a range is probed at: a specifier set is not a set we can compare
# directly, and every interpreter a module could meet is in this grid.
_PYTHONS = [f"3.{minor}.{patch}" for minor in range(0, 40) for patch in range(0, 30)]


@functools.lru_cache(maxsize=256)
def python_narrowed(old: str | None, new: str | None) -> bool:
    """Whether the range ``new`` refuses some Python that ``old`` allowed.

    Probing the grid costs ~13 ms (measured here), most of a check's time; a module's
    ranges rarely change, so the answers are kept."""
    from packaging.specifiers import SpecifierSet

    if not new:
        return False
    before = set(SpecifierSet(old or "").filter(_PYTHONS))
    return not before <= set(SpecifierSet(new).filter(before))


def _python_range(manifest: Manifest) -> str | None:
    return manifest.environment.python if manifest.environment else None


def package_changes(
    old: EnvironmentPublic | None, new: EnvironmentPublic | None
) -> list[tuple[str, str | None, str | None]]:
    """(package, old version, new version) of every package added, removed or changed."""
    before = old.packages if old else {}
    after = new.packages if new else {}
    names = sorted(before.keys() | after.keys())
    return [(n, before.get(n), after.get(n)) for n in names if before.get(n) != after.get(n)]


def _environment_changes(
    old: Manifest,
    new: Manifest,
    old_env: EnvironmentPublic | None,
    new_env: EnvironmentPublic | None,
) -> list[Change]:
    found = []
    old_range, new_range = _python_range(old), _python_range(new)
    if python_narrowed(old_range, new_range):
        what = f"python range narrowed {old_range or 'any'!r} -> {new_range!r}"
        found.append(Change(Kind.behaviour, what))
    if new_env is not None and old_env is None:
        found.append(Change(Kind.environment, "environment added"))
    elif new_env is not None and old_env is not None and old_env.sha256 != new_env.sha256:
        count = len(package_changes(old_env, new_env))
        found.append(Change(Kind.environment, f"environment lock changed ({count} packages)"))
    elif old_env is not None and new.environment is None:
        found.append(Change(Kind.environment, "environment removed"))
    return found


def classify(
    old: Manifest,
    new: Manifest,
    old_env: EnvironmentPublic | None = None,
    new_env: EnvironmentPublic | None = None,
) -> list[Change]:
    """Every change from ``old`` to ``new``: interface, behaviour, environment, command.

    Environment locks are compared only when ``new_env`` is known: the client checks before
    its lock is resolved, the server once it holds both."""
    found = interface_changes(old.interface, new.interface)
    found += _environment_changes(old, new, old_env, new_env)
    if old.command != new.command:
        found.append(Change(Kind.other, "command changed"))
    return found


# --- the bump a version made, and the one it needs --------------------------------------


def _release(version: semver.Version) -> semver.Version:
    return version.replace(prerelease=None, build=None)


def bump_made(base: semver.Version, new: semver.Version) -> Bump:
    """The bump ``new`` (its release) makes over ``base`` (see the module doc)."""
    b, n = base, _release(new)
    if n.major != b.major or (b.major == 0 and n.minor != b.minor):
        return Bump.major
    if b.major == 0 and b.minor == 0:
        return Bump.major  # ^0.0.z allows only 0.0.z itself
    if n.minor != b.minor or b.major == 0:
        return Bump.minor
    return Bump.patch


def smallest(base: semver.Version, needed: Bump, new: semver.Version) -> str:
    """The smallest version above ``base`` making the ``needed`` bump (``new``'s
    pre-release kept, so an under-bumped ``1.3.0-rc.1`` is told ``2.0.0-rc.1``)."""
    if needed == Bump.major:
        if base.major > 0:
            found = semver.Version(base.major + 1, 0, 0)
        elif base.minor > 0:
            found = semver.Version(0, base.minor + 1, 0)
        else:
            found = semver.Version(0, 0, base.patch + 1)
    elif needed == Bump.minor and base.major > 0:
        found = semver.Version(base.major, base.minor + 1, 0)
    else:
        found = semver.Version(base.major, base.minor, base.patch + 1)
    return str(found.replace(prerelease=new.prerelease))


@dataclass(frozen=True)
class Published:
    """What the check needs of one published version."""

    version: str
    status: VersionStatus
    manifest: Manifest
    environment: EnvironmentPublic | None = None


@dataclass(frozen=True)
class Verdict:
    """The check of one new version against its base (``base`` None: nothing to compare)."""

    module: str
    version: str
    base: str | None = None
    changes: list[Change] = field(default_factory=list)
    needed: Bump = Bump.patch
    made: Bump = Bump.major
    accepted: str | None = None  # the smallest version that would pass, when this one fails

    @property
    def ok(self) -> bool:
        return self.made >= self.needed

    def refusals(self) -> list[str]:
        """One line per change that needs more than the bump made, naming the fix."""
        return [
            f"{self.module} {self.version}: {change.what} ({change.label}): "
            f"publish as {self.accepted}"
            for change in self.changes
            if change.bump > self.made
        ]

    def error(self) -> SemverError:
        """The refusal, as the server answers it and the client raises it."""
        lines = self.refusals()
        return SemverError("\n".join(lines), accepted=self.accepted, base=self.base, refusals=lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "base": self.base,
            "needs": self.needed.name if self.base else None,
            "makes": self.made.name if self.base else None,
            "ok": self.ok,
            "accepted": self.accepted,
            "changes": [change.to_dict() for change in self.changes],
        }


def base_of(version: str, published: Iterable[Published]) -> Published | None:
    """The highest non-yanked stable version below ``version``'s release."""
    ceiling = precedence(_release(parse_version(version)))
    below = [
        p
        for p in published
        if p.status != VersionStatus.yanked
        and not parse_version(p.version).prerelease
        and precedence(parse_version(p.version)) < ceiling
    ]
    return max(below, key=lambda p: precedence(parse_version(p.version)), default=None)


def check(
    module: str,
    manifest: Manifest,
    published: Sequence[Published],
    environment: EnvironmentPublic | None = None,
) -> Verdict:
    """The verdict on publishing ``manifest`` (its version) next to ``published``.

    A version already published is not checked again: sending it once more is a replay or
    a conflict, which the server answers as such."""
    version = parse_version(manifest.version)
    base = base_of(manifest.version, published)
    replay = any(precedence(parse_version(p.version)) == precedence(version) for p in published)
    if base is None or replay:
        return Verdict(module, str(version))
    changes = classify(base.manifest, manifest, base.environment, environment)
    needed = max((change.bump for change in changes), default=Bump.patch)
    base_version = parse_version(base.version)
    made = bump_made(base_version, version)
    accepted = None if made >= needed else smallest(base_version, needed, version)
    return Verdict(module, str(version), base.version, changes, needed, made, accepted)
