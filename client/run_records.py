"""Run records from wherever they are: the registry, or this machine's state folder.

Every run ``modreg run`` makes is kept in ``STATE/runs/<run id>.json`` (``LocalRun``); the
registry holds those it could record. A run the registry does not hold — made ``--offline``,
or one the registry could not record (it was unreachable) — is *local*: ``modreg runs``
reads it from here, and says so (``local: true``). Everything else comes from the registry,
and when the registry cannot be asked (none configured, unreachable) this machine's copy
of a run it recorded serves instead. Nothing here needs a registry for a local run.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, TypeAlias

from modreg.client.errors import ConfigError, RegistryUnavailableError

if TYPE_CHECKING:
    from modreg.client.http import RegistryClient
    from modreg.engine import StateDir
    from modreg.engine.state import LocalRun
    from modreg.registry.schemas import RunPublic

    RunRecord: TypeAlias = RunPublic | LocalRun

UNREACHABLE = (ConfigError, RegistryUnavailableError)
LIST_LIMIT = 1000  # the registry's largest page of runs


def is_sweep_id(ident: str) -> bool:
    """A sweep's id (``s-…`` in the registry, ``local-s-…`` on this machine)."""
    return ident.startswith(("s-", "local-s-"))


def _created(run: RunRecord) -> datetime:
    return run.created_at


class RunRecords:
    """Runs by id, by sweep and by listing; ``client`` is called only when needed."""

    def __init__(self, state: StateDir, client: Callable[[], RegistryClient]) -> None:
        self.state = state
        self.client = client

    def get(self, run_id: str) -> RunRecord:
        """One run: this machine's record of a local run, else the registry's."""
        mine = self.state.load_run(run_id)
        if mine is not None and mine.local:
            return mine
        try:
            return self.client().get_run(run_id)
        except UNREACHABLE:
            if mine is None:
                raise
            return mine

    def sweep(self, sweep_id: str) -> list[RunRecord]:
        """The runs of a sweep, in the order it ran them."""
        mine = sorted(
            (run for run in self.state.runs() if run.sweep_id == sweep_id),
            key=lambda run: run.sweep_index,
        )
        if any(run.local for run in mine):
            return list(mine)
        try:
            return self._registry_sweep(sweep_id)
        except UNREACHABLE:
            if not mine:
                raise
            return list(mine)

    def _registry_sweep(self, sweep_id: str) -> list[RunRecord]:
        client = self.client()
        sweep = client.get_sweep(sweep_id)
        limit = max(1, min(LIST_LIMIT, len(sweep.run_ids)))
        listed = {run.id: run for run in client.list_runs(sweep=sweep_id, limit=limit)}
        return [listed.get(run_id) or client.get_run(run_id) for run_id in sweep.run_ids]

    def listed(
        self, pipeline: str | None, sweep: str | None, limit: int
    ) -> tuple[list[RunRecord], str | None]:
        """The newest runs (local ones among them), and a warning when the registry could
        not be asked."""
        local: list[RunRecord] = [
            run
            for run in self.state.runs()
            if run.local
            and (pipeline is None or run.pipeline == pipeline)
            and (sweep is None or run.sweep_id == sweep)
        ]
        remote: list[RunRecord] = []
        warning = None
        if not (sweep or "").startswith("local-"):
            try:
                remote = list(self.client().list_runs(sweep=sweep, pipeline=pipeline, limit=limit))
            except UNREACHABLE as exc:
                warning = f"{exc}; listing the runs of this machine only"
        known = {run.id for run in local}
        runs = local + [run for run in remote if run.id not in known]
        return sorted(runs, key=_created, reverse=True)[:limit], warning


def is_local(run: RunRecord) -> bool:
    """Whether only this machine holds ``run``."""
    from modreg.engine.state import LocalRun

    return isinstance(run, LocalRun) and run.local
