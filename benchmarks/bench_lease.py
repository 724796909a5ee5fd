"""Lease benchmark: what one-execution-per-fingerprint adds to each executed step.

An executed step makes one lease request the engine did not make before: the claim before
it runs; recording its cache entry, a request it made already, ends the lease in the same
transaction (``engine/leases.py``). A failed step releases its lease (one more request); the
heartbeat renews every held lease in one request per interval, whatever their number.
Measured against a real registry on loopback, through the engine's own ``RegistryClient``:

- floor: ``GET /health``, the cheapest round trip the client can make, in the same run;
- the claim of a fresh fingerprint (what an executed step pays);
- recording a (store-side) cache entry that ends a lease (a request every step made before);
- a release (a failed step), a claim another engine holds (a parked step, per poll), and one
  renewal of 50 held leases (the heartbeat, per interval).

    .venv/bin/python benchmarks/bench_lease.py [--requests 300] [--db postgresql+psycopg://…]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from registry_servers import create_team_tokens, start_server, stop_server  # noqa: E402

from modreg.client import RegistryClient  # noqa: E402
from modreg.client.config import ClientConfig  # noqa: E402
from modreg.registry.schemas import (  # noqa: E402
    CacheEntryCreate,
    LeaseClaim,
    LeaseRenewal,
    OutputRef,
    PortType,
)

HELD = 50


def _timed(action: Callable[[int], object], count: int) -> list[float]:
    action(-1)  # warm up: connection, first query plans
    times = []
    for index in range(count):
        start = time.perf_counter()
        action(index)
        times.append((time.perf_counter() - start) * 1000)
    return times


def _row(name: str, times: list[float], floor: float) -> str:
    ordered = sorted(times)
    p50, p90 = statistics.median(ordered), ordered[int(len(ordered) * 0.9)]
    return f"{name:<42} {p50:8.2f} {p90:8.2f} {p50 / floor:8.1f}x"


def bench(client: RegistryClient, count: int) -> list[str]:
    run = uuid.uuid4().hex[:8]
    mine = LeaseClaim(holder=f"bench-{run}", ttl=60)
    other = LeaseClaim(holder=f"other-{run}", ttl=60)

    def claim(index: int) -> None:
        assert client.claim_lease(f"{run}-{index}", mine).granted

    entry = CacheEntryCreate(
        outputs={"out": OutputRef(type=PortType.file, digest="ab" * 32)}, store="s3://bench/x"
    )

    def record(index: int) -> None:
        client.record_cache(f"{run}-{index}", entry)

    def release(index: int) -> None:
        client.release_lease(f"{run}-failed-{index}", mine.holder)

    held = [f"{run}-held-{i}" for i in range(HELD)]
    for fingerprint in held:
        client.claim_lease(fingerprint, mine)
    renewal = LeaseRenewal(holder=mine.holder, ttl=60, fingerprints=held)

    def renew(_: int) -> None:
        assert len(client.renew_leases(renewal)) == HELD

    floor = _timed(lambda _: client.health(), count)
    floor_p50 = statistics.median(floor)
    return [
        _row("floor: GET /health", floor, floor_p50),
        _row("per executed step: the claim", _timed(claim, count), floor_p50),
        _row("  then its cache entry, ending the lease", _timed(record, count), floor_p50),
        _row("per failed step: a release", _timed(release, count), floor_p50),
        _row("per poll of a parked step: a held claim",
             _timed(lambda _: client.claim_lease(held[0], other), count), floor_p50),
        _row(f"per heartbeat: renew {HELD} leases", _timed(renew, count), floor_p50),
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--db", help="database URL (default: SQLite in a temp folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="modreg-bench-lease-") as temp:
        server = start_server(Path(temp) / "registry", args.db)
        try:
            tokens = create_team_tokens(server, "bench")
            with RegistryClient.from_config(ClientConfig(server.url, tokens.run)) as client:
                rows = bench(client, args.requests)
        finally:
            stop_server(server.process)
    print(f"{'':<42} {'p50 ms':>8} {'p90 ms':>8} {'p50/floor':>9}")
    print("\n".join(rows))
    load = os.getloadavg()[0]
    print(f"{args.db or 'sqlite'}; load average {load:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
