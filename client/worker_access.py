"""``RegistryAccess``: how a Dask worker reaches the registry, handed to the engine's
``DaskExecutor`` (which cannot import the client) and pickled into every task.

It carries only the registry's URL. The token is the worker's own (``MODREG_TOKEN``, else
what ``modreg login`` saved on the worker), read on the worker, so no credential travels with
a task; the state folder is the worker's own too (``$XDG_CACHE_HOME/modreg/engine``).
"""

from __future__ import annotations

from dataclasses import dataclass

from modreg.client.config import engine_state_dir, load_config
from modreg.client.http import RegistryClient
from modreg.engine.state import StateDir


@dataclass(frozen=True)
class RegistryAccess:
    """The registry at ``url``, as the machine this is unpickled on reaches it."""

    url: str

    def registry(self) -> RegistryClient:
        return RegistryClient.from_config(load_config(registry=self.url))

    def state(self) -> StateDir:
        return StateDir(engine_state_dir())
