"""The environment a step's process gets: scrubbed, because a module is someone else's code.

A step sees only

- from the caller's environment (handed in as ``Workspace.caller_env``; the engine reads no
  ``os.environ``): ``PATH``, ``LANG``, ``LC_*``, ``TZ``, and the variables its manifest
  declares in ``[module] env``, by name; a declared variable the caller has not set is absent;
- set by the executor for each job: ``HOME`` and ``TMPDIR``, fresh folders inside the job's
  scratch folder, and ``MODREG_METRICS``.

Everything else never reaches it: ``MODREG_TOKEN`` and the rest of the engine's
configuration, ``AWS_*``, and ``XDG_*`` — with ``HOME`` no longer the user's, neither
``~/.config/modreg`` (the login file) nor ``~/.aws`` is found through the environment.
A declared name the registry should have refused (``registry.manifest.env_name_problem``)
is dropped here too, whatever a registry sent.

The values live only in ``StepJob.env`` for the job's lifetime: they are not params, not
part of the fingerprint (the declared *names* are, through the archive's manifest), and no
record, cache entry or log the engine writes holds them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from modreg.registry.manifest import env_name_problem

PASSED_NAMES = frozenset({"PATH", "LANG", "TZ"})
PASSED_PREFIXES = ("LC_",)


def passed_environment(caller: Mapping[str, str], declared: Iterable[str]) -> dict[str, str]:
    """The caller's variables a step receives: the allow-list and what it declares."""
    passed = {
        name: value
        for name, value in caller.items()
        if name in PASSED_NAMES or name.startswith(PASSED_PREFIXES)
    }
    for name in declared:
        if name in caller and env_name_problem(name) is None:
            passed[name] = caller[name]
    passed.setdefault("PATH", os.defpath)
    return passed


def job_environment(passed: Mapping[str, str], scratch: Path, metrics: Path) -> dict[str, str]:
    """``passed`` plus a ``HOME`` and ``TMPDIR`` made fresh inside ``scratch``."""
    home, temp = scratch / "home", scratch / "tmp"
    home.mkdir(parents=True, exist_ok=True)
    temp.mkdir(parents=True, exist_ok=True)
    return {**passed, "HOME": str(home), "TMPDIR": str(temp), "MODREG_METRICS": str(metrics)}
