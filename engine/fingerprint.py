"""Step fingerprints: what identifies one step execution, and what changed between two.

A fingerprint is the sha256 of the canonical JSON of exactly five things: the module's
archive sha256, its command (the template, before placeholders are filled), the resolved
params, the content digests of its inputs by input name, and the digest of the environment it
runs in (``environments``: the environment lock and interpreter, or for a module without one
the engine's interpreter and what is installed beside it). Nothing else goes in — not
paths, timestamps, or the pipeline's or step's name — so the same work is recognised in
any pipeline, folder or team member's checkout. ``FINGERPRINT_VERSION`` 2 added the
environment: no version 1 fingerprint is ever found again.

The parts are kept beside the digest so ``--explain`` can say which of them changed
against the last run of a step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modreg.engine.digests import canonical_json, sha256_bytes

FINGERPRINT_VERSION = 2


@dataclass(frozen=True)
class Fingerprint:
    """The parts of a fingerprint and their digest."""

    archive: str
    command: tuple[str, ...]
    params: dict[str, Any]
    inputs: dict[str, str]
    environment: str

    @property
    def digest(self) -> str:
        return sha256_bytes(canonical_json(self.to_dict()))

    def to_dict(self) -> dict[str, Any]:
        return {
            "v": FINGERPRINT_VERSION,
            "archive": self.archive,
            "command": list(self.command),
            "params": self.params,
            "inputs": self.inputs,
            "environment": self.environment,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fingerprint:
        return cls(
            data["archive"],
            tuple(data["command"]),
            data["params"],
            data["inputs"],
            data.get("environment", ""),  # a version 1 fingerprint (history) has none
        )


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else canonical_json(value).decode()
    return text[:12] if isinstance(value, str) and len(text) == 64 else text


def _changed_keys(label: str, old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    changes = []
    for key in sorted(set(old) | set(new)):
        if key not in old:
            changes.append(f"{label} {key!r} added")
        elif key not in new:
            changes.append(f"{label} {key!r} removed")
        elif old[key] != new[key]:
            changes.append(f"{label} {key!r} changed: {_short(old[key])} -> {_short(new[key])}")
    return changes


def explain_change(
    old: Fingerprint | None,
    new: Fingerprint,
    old_version: str | None = None,
    new_version: str | None = None,
) -> str:
    """Why ``new`` has no stored result, compared with the last run's fingerprint ``old``."""
    if old is None:
        return "no earlier result"
    changes = fingerprint_changes(old, new, old_version, new_version)
    if not changes:
        return "no earlier result (same fingerprint as the last run, whose result is not stored)"
    return "; ".join(changes)


def fingerprint_changes(
    old: Fingerprint | None,
    new: Fingerprint,
    old_version: str | None = None,
    new_version: str | None = None,
) -> list[str]:
    """What differs between the last run's fingerprint ``old`` and ``new``, part by part."""
    if old is None:
        return []
    changes = []
    if old.archive != new.archive:
        versions = (
            f"{old_version} -> {new_version}" if old_version != new_version else "same version"
        )
        changes.append(
            f"module changed ({versions}, archive {old.archive[:12]} -> {new.archive[:12]})"
        )
    if old.command != new.command:
        changes.append("command changed")
    if old.environment != new.environment:
        changes.append(
            f"environment changed ({old.environment[:12] or 'none'} -> {new.environment[:12]})"
        )
    changes += _changed_keys("param", old.params, new.params)
    changes += _changed_keys("input", old.inputs, new.inputs)
    return changes
