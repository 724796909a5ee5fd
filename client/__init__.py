"""modreg's client: the HTTP ``RegistryClient``, config, git operations, publish and pull.

Everything is re-exported here, lazily: ``import modreg.client`` is cheap, and a name pulls
in its module (httpx, gitpython …) only when first used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modreg.client.config import ClientConfig, load_config, save_login
    from modreg.client.errors import (
        AlreadyPublishedError,
        ClientError,
        CompareError,
        ConfigError,
        GitError,
        PublishError,
        PullError,
        RegistryTooOldError,
        RegistryUnavailableError,
        ResolutionError,
        RunLookupError,
    )
    from modreg.client.gitops import BuiltArchive, ModuleSource, build_archive, module_source
    from modreg.client.http import RegistryClient, problem_error, resolution_error
    from modreg.client.publishing import PublishOutcome, PublishPlan, plan_publish, publish
    from modreg.client.pulling import PullResult, pull

_EXPORTS = {
    "ClientConfig": "config",
    "load_config": "config",
    "save_login": "config",
    "AlreadyPublishedError": "errors",
    "ClientError": "errors",
    "CompareError": "errors",
    "ConfigError": "errors",
    "GitError": "errors",
    "PublishError": "errors",
    "PullError": "errors",
    "RegistryTooOldError": "errors",
    "RegistryUnavailableError": "errors",
    "ResolutionError": "errors",
    "RunLookupError": "errors",
    "BuiltArchive": "gitops",
    "ModuleSource": "gitops",
    "build_archive": "gitops",
    "module_source": "gitops",
    "RegistryClient": "http",
    "problem_error": "http",
    "resolution_error": "http",
    "PublishOutcome": "publishing",
    "PublishPlan": "publishing",
    "plan_publish": "publishing",
    "publish": "publishing",
    "PullResult": "pulling",
    "pull": "pulling",
}

__all__ = [
    "AlreadyPublishedError",
    "BuiltArchive",
    "ClientConfig",
    "ClientError",
    "CompareError",
    "ConfigError",
    "GitError",
    "ModuleSource",
    "PublishError",
    "PublishOutcome",
    "PublishPlan",
    "PullError",
    "PullResult",
    "RegistryClient",
    "RegistryTooOldError",
    "RegistryUnavailableError",
    "ResolutionError",
    "RunLookupError",
    "build_archive",
    "load_config",
    "module_source",
    "plan_publish",
    "problem_error",
    "publish",
    "pull",
    "resolution_error",
    "save_login",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'modreg.client' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"modreg.client.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
