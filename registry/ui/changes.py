"""What changed from one version of a module to the next, as the version page shows it.

The one place the UI compares two versions: the interface (inputs, outputs, params: added,
removed, changed type / optional / required / default) and the environment (the Python it
was resolved for, packages added, removed or at another version). It reads only what a
``VersionPublic`` carries. The packages are compared as ``modreg diff`` compares them
(``semver_check.package_changes``); the interface is shown field by field, before and after,
where ``modreg diff`` lists each change with its semver class.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from modreg.registry.schemas import EnvironmentPublic, Interface, VersionPublic
from modreg.registry.semver_check import package_changes


@dataclass(frozen=True)
class Change:
    """One line of the comparison: ``what`` (``params.lr``) went ``before`` -> ``after``;
    None on one side for an addition or a removal."""

    what: str
    before: str | None
    after: str | None

    @property
    def kind(self) -> str:
        if self.before is None:
            return "added"
        return "removed" if self.after is None else "changed"


@dataclass(frozen=True)
class Changes:
    """The comparison of ``version`` with ``previous`` (None: it is the first one)."""

    previous: str | None
    interface: list[Change] = field(default_factory=list)
    environment: list[Change] = field(default_factory=list)


def _ports(interface: Interface) -> dict[str, str]:
    """Every input, output and param as one line of text, keyed ``inputs.raw`` etc."""
    lines: dict[str, str] = {}
    for kind in ("inputs", "outputs"):
        for name, port in getattr(interface, kind).items():
            lines[f"{kind}.{name}"] = f"{port.type}" + (" (optional)" if port.optional else "")
    for name, param in interface.params.items():
        detail = "required" if param.required else f"default {_text(param.default)}"
        lines[f"params.{name}"] = f"{param.type}, {detail}"
    return lines


def _text(value: Any) -> str:
    return "null" if value is None else repr(value) if isinstance(value, str) else str(value)


def _environment(old: EnvironmentPublic | None, new: EnvironmentPublic | None) -> list[Change]:
    """The Python it was resolved for, then the packages ``modreg diff`` compares
    (``semver_check.package_changes``)."""
    engine = "the engine's own interpreter"
    python = (old.python if old else engine, new.python if new else engine)
    changes = [Change("python", *python)] if python[0] != python[1] else []
    return changes + [Change(*change) for change in package_changes(old, new)]


def _compare(before: dict[str, str], after: dict[str, str]) -> list[Change]:
    names = sorted(before.keys() | after.keys())
    return [
        Change(name, before.get(name), after.get(name))
        for name in names
        if before.get(name) != after.get(name)
    ]


def changes_since(previous: VersionPublic | None, version: VersionPublic) -> Changes:
    """What ``version`` changed from ``previous``, interface then environment."""
    if previous is None:
        return Changes(previous=None)
    return Changes(
        previous=previous.version,
        interface=_compare(_ports(previous.manifest.interface), _ports(version.manifest.interface)),
        environment=_environment(previous.environment, version.environment),
    )
