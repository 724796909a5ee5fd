"""This engine's leases in the registry: one execution per fingerprint across machines.

The local file lock (``StateDir.step_lock``) keeps two runs of one state folder from
executing a fingerprint twice; a lease does the same for engines anywhere. Before executing
a step that may reuse a result, the scheduler claims the fingerprint (``claim``), and the
registry answers one of three things (``registry/leases.py``):

- ``granted``: execute; the lease is renewed by the engine's one heartbeat loop
  (``heartbeat.Heartbeat`` calls ``renew``: one request for every lease held) and ends when
  the cache entry is recorded (the registry drops it in that same request: ``settled``), or
  is released when the step failed or could not be shared;
- ``entry``: another engine finished it meanwhile: reuse that result;
- neither: another engine holds it; the scheduler parks the step (no job slot held) and
  claims again every ``poll`` seconds, until the result appears or the holder's lease
  expires (it died: it stopped renewing) and this engine takes it over.

A registry that cannot answer a claim (unreachable, or too old to know leases) does not
stop the step: executing is always safe, at worst twice. The price, measured by
``benchmarks/bench_lease.py``: one request per executed step, the claim — 8 ms p50 on
SQLite, 13 ms on PostgreSQL, against a 4 ms floor (``GET /health``), on loopback on a
2-core machine under load 4.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from dataclasses import dataclass

from modreg.engine.protocol import RegistryProtocol
from modreg.registry.schemas import CacheEntryPublic, LeaseClaim, LeaseRenewal

TTL_BEATS = 3  # a lease lives three heartbeats: one missed beat does not lose it


@dataclass(frozen=True)
class Claim:
    """What a claim found: ``granted`` (or nobody could say: ``granted`` too), a stored
    ``entry`` to reuse, or else another engine's lease (``holder``) to wait for."""

    granted: bool
    entry: CacheEntryPublic | None = None
    holder: str | None = None


class Leases:
    """The leases one engine holds; thread-safe (claimed from the scheduler's pool)."""

    def __init__(
        self,
        registry: RegistryProtocol,
        heartbeat_seconds: float,
        warnings: list[str],
        machine: str = "",
    ):
        self.registry = registry
        self.ttl = min(3600.0, TTL_BEATS * heartbeat_seconds)
        # the state folder's id first: a lease of this machine's is the step lock's to settle
        self.machine = f"{machine or uuid.uuid4().hex[:16]}:"
        host = socket.gethostname()[:80]
        self.holder = f"{self.machine}{host}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self.warnings = warnings
        self._held: set[str] = set()
        self._lock = threading.Lock()
        self._warned = False

    def claim(self, fingerprint: str) -> Claim:
        """Claim ``fingerprint``; call it holding the fingerprint's step lock
        (``StateDir.step_lock``). A lease another engine of this machine holds is then a
        dead engine's — a live one would hold the step lock — and is taken over at once
        rather than waited out (a killed run, run again, resumes without waiting)."""
        try:
            grant = self.registry.claim_lease(
                fingerprint, LeaseClaim(holder=self.holder, ttl=self.ttl)
            )
            if not grant.granted and grant.entry is None and self._ours(grant.holder):
                replaces = LeaseClaim(holder=self.holder, ttl=self.ttl, replaces=grant.holder)
                grant = self.registry.claim_lease(fingerprint, replaces)
        except Exception as exc:  # noqa: BLE001 - executing without a lease is safe
            if not self._warned:  # once: an old registry would say it for every step
                self._warned = True
                self.warnings.append(
                    f"could not claim the lease of step {fingerprint[:12]} ({exc}): "
                    "executing without one, so another engine may execute it too"
                )
            return Claim(granted=True)
        if grant.granted:
            with self._lock:
                self._held.add(fingerprint)
        return Claim(granted=grant.granted, entry=grant.entry, holder=grant.holder)

    def _ours(self, holder: str | None) -> bool:
        return holder is not None and holder != self.holder and holder.startswith(self.machine)

    def settled(self, fingerprint: str) -> None:
        """The step's cache entry is recorded, which ended its lease in the registry."""
        with self._lock:
            self._held.discard(fingerprint)

    def release(self, fingerprint: str) -> None:
        """Let go of a lease (a no-op for one never held); a failure only lets it expire."""
        with self._lock:
            if fingerprint not in self._held:
                return
            self._held.discard(fingerprint)
        try:
            self.registry.release_lease(fingerprint, self.holder)
        except Exception:  # noqa: BLE001,S110 - it expires after ``ttl`` instead
            pass

    def renew(self) -> None:
        """Extend every lease held (one request); called by the heartbeat loop."""
        with self._lock:
            held = sorted(self._held)
        if held:
            renewal = LeaseRenewal(holder=self.holder, ttl=self.ttl, fingerprints=held)
            self.registry.renew_leases(renewal)
