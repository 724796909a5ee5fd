"""What changed from one version of a module to the next, as the version page shows it.

The one place the UI compares two versions: the interface (inputs, outputs, params: added,
removed, changed type / optional / required / default) and the environment (the Python it
was resolved for, packages added, removed or at another version). It reads only what a
``VersionPublic`` carries. When ``modreg diff``'s comparison (issue 12) is on main, this is
the function to hand over to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from modreg.registry.schemas import EnvironmentPublic, Interface, VersionPublic


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


def _packages(environment: EnvironmentPublic | None) -> dict[str, str]:
    if environment is None:
        return {"python": "the engine's own interpreter"}
    return {"python": environment.python, **environment.packages}


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
        environment=_compare(_packages(previous.environment), _packages(version.environment)),
    )
