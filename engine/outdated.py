"""Which locked versions have newer ones: ``modreg outdated`` and the note ``modreg lock`` prints.

For every (step, reference) of a lock, ONE bulk ``resolve`` call asks two things: what the
reference chooses today (the newest version its range allows, as ``modreg lock --upgrade``
would pick it) and what ``team/name@*`` chooses (the newest stable, unyanked version at all).
An entry is outdated when either is above the locked version; a reference that no longer
resolves (its module gone, every allowed version yanked) says so instead of a version.
"""

from __future__ import annotations

from dataclasses import dataclass

from modreg.engine.lock import Lock
from modreg.engine.protocol import RegistryProtocol
from modreg.registry.schemas import Resolution
from modreg.registry.versioning import version_sort_key


@dataclass(frozen=True)
class Outdated:
    """One locked entry with a newer version: allowed by its range, or only beyond it."""

    step: str
    uses: str
    module: str
    locked: str
    allowed: str | None  # the newest version the range allows (None: it resolves to nothing)
    latest: str | None  # the newest stable, unyanked version of the module

    @property
    def upgradable(self) -> bool:
        """``modreg lock --upgrade STEP`` would move this entry."""
        return self.allowed is not None and _newer(self.allowed, self.locked)

    def to_dict(self) -> dict[str, str | None]:
        return {
            "step": self.step,
            "uses": self.uses,
            "module": self.module,
            "locked": self.locked,
            "allowed": self.allowed,
            "latest": self.latest,
        }


def _newer(version: str | None, than: str) -> bool:
    return version is not None and version_sort_key(version) > version_sort_key(than)


def _chosen(answer: Resolution | None) -> str | None:
    return answer.version.version if answer and answer.version else None


def find_outdated(lock: Lock, registry: RegistryProtocol) -> list[Outdated]:
    """The lock's entries that have newer versions, by step then reference."""
    entries = [
        (step, ref, module) for step, refs in sorted(lock.steps.items())
        for ref, module in sorted(refs.items())
    ]  # fmt: skip
    if not entries:
        return []
    refs = sorted({ref for _, ref, _ in entries} | {f"{m.module}@*" for _, _, m in entries})
    answers = {answer.ref: answer for answer in registry.resolve(refs)}
    found = []
    for step, ref, module in entries:
        allowed = _chosen(answers.get(ref))
        latest = _chosen(answers.get(f"{module.module}@*"))
        if allowed is None or _newer(allowed, module.version) or _newer(latest, module.version):
            found.append(Outdated(step, ref, module.module, module.version, allowed, latest))
    return found
