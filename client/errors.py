"""The client's errors, under the one ``ModregError`` root.

Registry errors (404, 409, 422 …) arrive as problem+json bodies and are raised on this side as
the very same classes of ``modreg.registry.errors`` (a registry that no longer serves this
client says so with ``ClientTooOldError``). The errors below are the client's own::

    ModregError
    └── ClientError
        ├── RegistryUnavailableError   the registry could not be reached, or kept answering 5xx
        ├── RegistryTooOldError        the registry's API level is below what this client needs
        ├── ConfigError                no registry URL, unreadable config file, bad option value
        ├── GitError                   not a git repo, dirty module path, git archive failed
        ├── PublishError
        │   ├── AlreadyPublishedError  the identical version is already in the registry
        │   └── ResolutionError        the environment cannot be pinned (uv, an unhashed lock)
        ├── PullError                  the destination exists, the cache is unusable
        ├── RunLookupError             a run has no such step, or no log of it
        └── CompareError               no such metric, nothing to compare, no matplotlib
"""

from __future__ import annotations

from modreg.registry.errors import ModregError


class ClientError(ModregError):
    """An error raised by the client before or around talking to the registry."""


class RegistryUnavailableError(ClientError):
    """The registry could not be reached, or answered 502/503/504 after every retry."""


class RegistryTooOldError(ClientError):
    """The registry speaks an API level older than this client can use (``compatibility``)."""


class ConfigError(ClientError):
    """The client is not configured well enough to do what was asked."""


class GitError(ClientError):
    """The module's git repository is missing, dirty or cannot be archived."""


class PublishError(ClientError):
    """A publish could not be completed."""


class AlreadyPublishedError(PublishError):
    """The identical version (same commit and archive) is already published."""


class ResolutionError(PublishError):
    """The module's environment could not be pinned: uv cannot satisfy a requirement, or a
    lock (uv's, or the module's committed one) is not hash-pinned."""


class PullError(ClientError):
    """A pull could not place its sources."""


class RunLookupError(ClientError):
    """What ``modreg runs`` was asked for is not in the run: a step, or its log."""


class CompareError(ClientError):
    """Runs could not be compared as asked (``modreg runs compare``)."""
