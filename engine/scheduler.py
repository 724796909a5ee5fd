"""The scheduler: runs a plan's nodes in dependency order, reusing every result it can.

State: one ``NodeState`` per plan node, whose ``status`` (a ``NodeStatus``) moves

    waiting -> ready -> running -> executed | failed | cancelled
    waiting -> reused                         (a stored result has the node's fingerprint)
    waiting -> skipped                        (an upstream node failed, was skipped or cancelled)

Algorithm (all on the calling thread, except the work itself):

1. *Advance*: every waiting node whose upstream nodes are all executed or reused gets its real
   fingerprint, computed from the actual output digests of those upstream nodes. That is
   what gives early cutoff: an upstream step that re-executed with identical outputs leaves
   its dependents' fingerprints unchanged, so they are reused. The new fingerprints are
   looked up in the local step cache first and then, for the misses, in the registry's
   team cache with ONE bulk call; hits become ``reused`` and may unblock more nodes, so
   advancing repeats until nothing changes. A no-change re-run thus touches no network.
2. *Dispatch*: ready nodes go to a thread pool of ``jobs`` workers, only as many as are
   free (a node holds as many as the ``cpus`` of its ``resources``: ``Executor.slots``),
   so a node is ``running`` exactly while a worker has it. A worker takes the
   fingerprint's file lock in the state dir, looks in the local cache again (a concurrent
   run may just have finished the same step: then it reuses it), and claims the
   fingerprint's lease in the registry (``leases``): another engine may have just finished
   it (then it reuses that result) or be executing it — then the node is *parked*: it stays
   ``running`` but gives its job slot back, and is dispatched again every
   ``LEASE_POLL_SECONDS`` until the result appears or the holder's lease expires and is
   taken over. Holding the lease, the worker stages the inputs (blobs fetched from the
   registry when not local), runs the job on the executor with retries, records the
   outputs in the local cache and shares them with the registry (blobs, then the cache
   entry, which ends the lease; a failed step releases it). Outputs are in the store before
   the cache entry names them, and both are written atomically, so a run killed at any
   instant loses no completed step.
3. *Complete*: results come back to the scheduler thread, which updates states; a failed
   node makes its dependents ``skipped`` on the next advance, independent nodes go on.
   A node whose reused upstream outputs turn out to be missing or corrupt everywhere sends
   that upstream node back to be re-executed (once).

Ctrl-C stops the executor's processes, cancels queued work and marks unfinished nodes
``cancelled``. Results see a node's ``StepStatus`` (waiting and ready read ``pending``); a
step of a run that never got past them counts as ``skipped``. The observer hears one
``StepEvent`` per node and change, on the scheduler's thread (a retry's, on the worker's).
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from modreg.engine.environments import Environments, uv_environment
from modreg.engine.errors import BlobError, MissingBlobError
from modreg.engine.executors.base import JobContext, JobResult, StepJob
from modreg.engine.executors.environment import passed_environment
from modreg.engine.fingerprint import Fingerprint, explain_change, fingerprint_changes
from modreg.engine.leases import Leases
from modreg.engine.plan import Plan, StepNode, Upstream
from modreg.engine.protocol import RegistryProtocol
from modreg.engine.results import ensure_local
from modreg.engine.sources import SourceCache
from modreg.engine.state import CacheEntry, StepHistory
from modreg.engine.step_cache import StepCache
from modreg.engine.workspace import RunOptions, StepEvent, Workspace
from modreg.registry.schemas import OutputRef, StepStatus

WAIT_SECONDS = 0.25
LEASE_POLL_SECONDS = 1.0  # how often a parked node asks whether another engine finished


class NodeStatus(StrEnum):
    """Where a node is; the module docstring draws the moves between them."""

    waiting = "waiting"
    ready = "ready"
    running = "running"
    executed = "executed"
    reused = "reused"
    failed = "failed"
    skipped = "skipped"
    cancelled = "cancelled"

    @property
    def step_status(self) -> StepStatus:
        """The status a step of a run shows: a node not yet dispatched is ``pending``."""
        if self in (NodeStatus.waiting, NodeStatus.ready):
            return StepStatus.pending
        return StepStatus(self.value)


DONE = frozenset({NodeStatus.executed, NodeStatus.reused})
BROKEN = frozenset({NodeStatus.failed, NodeStatus.skipped, NodeStatus.cancelled})


@dataclass(kw_only=True)
class NodeState:
    """What the scheduler knows of one node; written only on the scheduler's thread."""

    status: NodeStatus = NodeStatus.waiting
    fingerprint: Fingerprint | None = None
    outputs: dict[str, OutputRef] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    metrics_known: bool = True  # False for a registry cache hit: they are in its source run
    reused_from: str | None = None
    explain: str | None = None
    error: str | None = None
    warnings: list[str] = field(default_factory=list)  # e.g. unreadable $MODREG_METRICS
    exit_code: int | None = None
    log_path: Path | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    forced: str | None = None  # why the cache must not be used
    shared: bool = True
    refetched: bool = False


@dataclass
class _Outcome:
    reused: CacheEntry | None = None
    result: JobResult | None = None
    missing_from: str | None = None  # node key whose outputs could not be staged
    leased_by: str | None = None  # another engine executes the fingerprint: park the node


class Scheduler:
    """Executes one plan; see the module docstring for the algorithm."""

    def __init__(
        self,
        plan: Plan,
        workspace: Workspace,
        options: RunOptions,
        run_ids: list[str],
        leases: Leases | None = None,
        warnings: list[str] | None = None,
    ):
        self.plan = plan
        self.ws = workspace
        self.options = options
        self.run_ids = run_ids
        self.leases = None if options.offline else leases
        self.states = {key: NodeState() for key in plan.nodes}
        self.warnings: list[str] = [] if warnings is None else warnings
        self.parked: dict[str, float] = {}  # node key -> when to claim its lease again
        self.cache = StepCache(
            self._online_registry(), workspace.state, workspace.store, self.warnings
        )
        environments = Environments(
            workspace.state,
            uv_environment(workspace.caller_env),
            self._online_registry(),
            options.offline,
        )
        self.context = JobContext(
            workspace.store,
            SourceCache(workspace.state.sources, workspace.registry),
            workspace.state.root / "scratch",
            environments,
        )
        self.interrupted = False
        self.prefetched: set[str] = set()
        self.upstream_steps = upstream_steps(plan)

    # --- the loop -----------------------------------------------------------------------

    def run(self) -> None:
        jobs = max(1, self.options.jobs or self.ws.executor.jobs)
        pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="modreg-step")
        running: dict[Future[_Outcome], str] = {}
        try:
            self._loop(pool, running, jobs)
        except KeyboardInterrupt:
            self.interrupted = True
            self._cancel(pool, running)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        self._share_unshared()

    def _loop(
        self, pool: ThreadPoolExecutor, running: dict[Future[_Outcome], str], jobs: int
    ) -> None:
        """Hand the pool no more nodes than it has workers: a node is ``running`` only while
        a worker has it, so progress never shows more steps running than there are. A node
        holds as many of the ``jobs`` slots as the executor counts for its ``resources``."""
        while True:
            self._advance()
            ready = [k for k, s in self.states.items() if s.status == NodeStatus.ready]
            self._prefetch([key for key in ready if key not in self.prefetched])
            free = jobs - sum(self._slots(key, jobs) for key in running.values())
            for key in ready:
                if self._slots(key, jobs) > free:
                    break  # in order: a step needing many cpus is not starved by small ones
                free -= self._slots(key, jobs)
                self.states[key].status = NodeStatus.running
                self._notify_running(self.plan.nodes[key], "")
                running[pool.submit(self._work, key)] = key
            for key in self._due():  # parked: claim the lease again, with free slots
                if self._slots(key, jobs) > free:
                    break
                free -= self._slots(key, jobs)
                del self.parked[key]
                running[pool.submit(self._work, key)] = key
            if not running and not self.parked:
                return
            for future in self._wait(running):
                key = running.pop(future)
                try:
                    outcome = future.result()
                except Exception as exc:  # noqa: BLE001 - one step fails, the run goes on
                    error = f"internal error: {exc}"
                    outcome = _Outcome(result=JobResult(exit_code=None, error=error))
                self._complete(key, outcome)

    def _due(self) -> list[str]:
        """Parked nodes whose time to claim their lease again has come, longest waiting
        first."""
        now = time.monotonic()
        return [
            key for key, when in sorted(self.parked.items(), key=lambda kv: kv[1]) if when <= now
        ]

    def _wait(self, running: dict[Future[_Outcome], str]) -> set[Future[_Outcome]]:
        if not running:  # only parked nodes: nothing to wait on but the clock
            time.sleep(WAIT_SECONDS)
            return set()
        done, _ = wait(list(running), timeout=WAIT_SECONDS, return_when=FIRST_COMPLETED)
        return done

    def _slots(self, key: str, jobs: int) -> int:
        return self.ws.executor.slots(self.plan.nodes[key].resources, jobs)

    def _prefetch(self, keys: list[str]) -> None:
        """Pull the sources of the steps about to run, several at once, each node once
        (none for an executor whose workers pull their own)."""
        self.prefetched.update(keys)
        if not self.ws.executor.on_this_machine:
            return
        wanted = [(self.plan.nodes[k].module.sha256, self.plan.nodes[k].label) for k in keys]
        with contextlib.suppress(Exception):  # a missing source fails its step, with the reason
            self.context.sources.ensure_many(wanted)

    def _cancel(self, pool: ThreadPoolExecutor, running: dict[Future[_Outcome], str]) -> None:
        self.context.cancelled.set()
        self.ws.executor.cancel()
        pool.shutdown(wait=True, cancel_futures=True)
        for future, key in running.items():
            if future.done() and not future.cancelled():
                with contextlib.suppress(Exception):
                    self._complete(key, future.result())
        for key, state in self.states.items():
            if state.status not in DONE | BROKEN:
                state.status, state.error = NodeStatus.cancelled, "cancelled (interrupted)"
                self._notify(key)

    # --- advance: fingerprints and lookups ------------------------------------------------

    def _advance(self) -> None:
        while True:
            candidates = [key for key in self.plan.nodes if self._settle(key)]
            if not candidates:
                return
            hits = self._lookup(candidates)
            for key in candidates:
                if key in hits:
                    self._mark_reused(key, hits[key])
                else:
                    self._mark_ready(key)

    def _settle(self, key: str) -> bool:
        """Skip a waiting node with a broken upstream; True if its fingerprint is now known."""
        state = self.states[key]
        if state.status != NodeStatus.waiting:
            return False
        deps = self.plan.nodes[key].deps
        broken = [dep for dep in deps if self.states[dep].status in BROKEN]
        if broken:
            state.status = NodeStatus.skipped
            upstream = self.plan.nodes[broken[0]].label
            state.error = f"skipped: step {upstream!r} {self.states[broken[0]].status}"
            self._notify(key)
            return False
        if not all(self.states[dep].status in DONE for dep in deps):
            return False
        outputs = {dep: self.states[dep].outputs for dep in deps}
        state.fingerprint = self.plan.nodes[key].fingerprint(outputs)
        return True

    def _reuse_blocker(self, node: StepNode) -> str | None:
        """Why a node must execute even if a result exists, or None."""
        if self.states[node.key].forced:
            return self.states[node.key].forced
        if self.options.no_reuse:
            return "--no-reuse was given"
        regenerated = [use.step for use in node.users if use.step in self.options.regenerate]
        if regenerated:
            return f"--regenerate {regenerated[0]} was given"
        if not node.allow_reuse:
            return "allow_reuse = false in the module's manifest"
        return None

    def _lookup(self, keys: list[str]) -> dict[str, CacheEntry]:
        """Stored results for the nodes that may reuse one, by node key."""
        allowed = {self._fp(k): k for k in keys if self._reuse_blocker(self.plan.nodes[k]) is None}
        return {allowed[fp]: entry for fp, entry in self.cache.lookup(list(allowed)).items()}

    def _mark_reused(self, key: str, entry: CacheEntry) -> None:
        state = self.states[key]
        state.status = NodeStatus.reused
        state.outputs = dict(entry.outputs)
        state.metrics = dict(entry.metrics or {})
        state.metrics_known = entry.metrics is not None
        state.reused_from = entry.run_id
        state.shared = entry.shared
        self._remember_history(key)
        self._notify(key)

    def _mark_ready(self, key: str) -> None:
        self.states[key].explain = self._explain(self.plan.nodes[key])
        self.states[key].status = NodeStatus.ready

    def _explain(self, node: StepNode) -> str:
        """Why the node executes (``--explain``): what blocked reuse, else what changed
        since the last run of its step. A blocker is the whole reason: with it, whether a
        result was stored is never asked, so "no earlier result" would be a guess."""
        fingerprint = self.states[node.key].fingerprint
        assert fingerprint is not None
        last = self.ws.state.last_step(self.plan.runs[node.users[0].run].pipeline.name, node.label)
        old, old_version = (last.fingerprint, last.version) if last else (None, None)
        blocker = self._reuse_blocker(node)
        if blocker is None:
            return explain_change(old, fingerprint, old_version, node.module.version)
        changes = fingerprint_changes(old, fingerprint, old_version, node.module.version)
        return f"{blocker} (also: {'; '.join(changes)})" if changes else blocker

    # --- work (on pool threads) -----------------------------------------------------------

    def _fp(self, key: str) -> str:
        fingerprint = self.states[key].fingerprint
        assert fingerprint is not None
        return fingerprint.digest

    def _work(self, key: str) -> _Outcome:
        node, digest = self.plan.nodes[key], self._fp(key)
        with self.ws.state.step_lock(digest):
            reusable = self._reuse_blocker(node) is None
            if reusable and (entry := self.cache.local_hit(digest)):
                return _Outcome(reused=entry)
            if not reusable or self.leases is None:
                return self._execute(node, digest)
            claim = self.leases.claim(digest)
            if claim.entry is not None and (hit := self.cache.remote_hit(digest, claim.entry)):
                return _Outcome(reused=hit)
            if not claim.granted and claim.entry is None:
                return _Outcome(leased_by=claim.holder or "another engine")
            try:
                return self._execute(node, digest)
            finally:
                self.leases.release(digest)

    def _execute(self, node: StepNode, digest: str) -> _Outcome:
        """Run the node's job (the caller holds its locks) and store its result."""
        for _ in range(2):
            try:
                job = self._job(node)
            except MissingBlobError as exc:
                return _Outcome(missing_from=self._producer_of(node, exc.digest))
            try:
                result = self._attempts(node, job)
            except BlobError as exc:
                self.warnings.append(f"step {node.label!r}: {exc}")
                continue
            if result.ok:
                self._store_result(node, digest, result)
            return _Outcome(result=result)
        return _Outcome(missing_from=self._producer_of(node, ""))

    def _job(self, node: StepNode) -> StepJob:
        inputs: dict[str, OutputRef | Path] = {}
        for name, source in node.inputs.items():
            if isinstance(source, Upstream):
                ref = self.states[source.node].outputs[source.output]
                ensure_local(self.ws.store, self._online_registry(), ref)
                inputs[name] = ref
            else:
                inputs[name] = source.path
        manifest = node.module.manifest
        optional = frozenset(
            name for name, port in manifest.interface.outputs.items() if port.optional
        )
        outputs = {name: port.type for name, port in manifest.interface.outputs.items()}
        log_path = self.ws.state.log_path(self.run_ids[node.users[0].run], node.label)
        return StepJob(
            step=node.label,
            command=list(manifest.command),
            source_sha256=node.module.sha256,
            inputs=inputs,
            params=node.params,
            outputs=outputs,
            optional_outputs=optional,
            timeout=node.timeout,
            environment=node.environment,
            env=passed_environment(self.ws.caller_env, manifest.env),
            env_names=tuple(manifest.env),
            resources=dict(node.resources),
            log_path=log_path,
        )

    def _attempts(self, node: StepNode, job: StepJob) -> JobResult:
        assert job.log_path is not None
        job.log_path.write_bytes(b"")
        environments = self.context.environments
        here = self.ws.executor.on_this_machine
        if here and job.environment and environments and not environments.ready(job.environment):
            self._notify_running(node, "building environment")  # a TTY shows it meanwhile
        result = JobResult(exit_code=None, error="not run")
        for attempt in range(node.retries + 1):
            if attempt:
                with open(job.log_path, "a", encoding="utf-8") as log:
                    log.write(f"\n[modreg] attempt {attempt + 1} of {node.retries + 1}\n")
                self._notify_running(node, f"retry {attempt}/{node.retries}")
            try:
                result = self.ws.executor.run(job, self.context)
            except BlobError:
                raise
            except Exception as exc:  # noqa: BLE001 - reported as the step's failure
                error = f"could not run: {exc}"
                result = JobResult(exit_code=None, error=error, log_path=job.log_path)
            if result.ok or result.cancelled:
                break
        return result

    def _producer_of(self, node: StepNode, digest: str) -> str:
        for source in node.inputs.values():
            if isinstance(source, Upstream):
                ref = self.states[source.node].outputs[source.output]
                if not digest or ref.digest == digest:
                    return source.node
        return next(iter(node.deps))

    def _store_result(self, node: StepNode, fingerprint: str, result: JobResult) -> None:
        run_id = self.run_ids[node.users[0].run]
        entry = CacheEntry(
            outputs=result.outputs,
            metrics=result.metrics,
            run_id=run_id,
            step=node.label,
            shared=False,
        )
        self.ws.state.remember(fingerprint, entry)
        if self.cache.share(fingerprint, result.outputs, run_id, node.label):
            self.ws.state.remember(fingerprint, dataclasses.replace(entry, shared=True))
            if self.leases is not None:
                self.leases.settled(fingerprint)

    def _online_registry(self) -> RegistryProtocol | None:
        return None if self.options.offline else self.ws.registry

    def _share_unshared(self) -> None:
        """Results reused from the local cache that never reached the registry: share them."""
        for key, state in self.states.items():
            reused = state.status == NodeStatus.reused
            if reused and not state.shared and state.fingerprint is not None:
                digest, label = state.fingerprint.digest, self.plan.nodes[key].label
                if self.cache.share(digest, state.outputs, state.reused_from, label):
                    entry = self.ws.state.cached(digest)
                    if entry is not None:
                        self.ws.state.remember(digest, dataclasses.replace(entry, shared=True))

    # --- complete (scheduler thread) ------------------------------------------------------

    def _complete(self, key: str, outcome: _Outcome) -> None:
        state = self.states[key]
        if outcome.leased_by is not None:
            self.parked[key] = time.monotonic() + LEASE_POLL_SECONDS
            self._notify_running(self.plan.nodes[key], f"waiting for {outcome.leased_by}")
        elif outcome.missing_from is not None:
            self._refetch(key, outcome.missing_from)
        elif outcome.reused is not None:
            self._mark_reused(key, outcome.reused)
        elif outcome.result is not None:
            self._finish(key, outcome.result)
        else:
            state.status, state.error = NodeStatus.failed, "no result"
            self._notify(key)

    def _refetch(self, key: str, producer: str) -> None:
        """Re-execute an upstream node whose reused outputs are gone; then retry ``key``."""
        upstream = self.states[producer]
        if upstream.refetched:
            state = self.states[key]
            state.status, state.error = (
                NodeStatus.failed,
                f"the outputs of step {self.plan.nodes[producer].label!r} are missing",
            )
            self._notify(key)
            return
        label = self.plan.nodes[producer].label
        self.warnings.append(f"step {label!r}: stored outputs missing or corrupt; re-executing it")
        upstream.refetched, upstream.forced, upstream.status = (
            True,
            "stored outputs missing or corrupt",
            NodeStatus.waiting,
        )
        self.states[key].status = NodeStatus.waiting

    def _finish(self, key: str, result: JobResult) -> None:
        state = self.states[key]
        state.exit_code, state.log_path = result.exit_code, result.log_path
        state.started_at, state.ended_at = result.started_at, result.ended_at
        if result.ok:
            state.status, state.outputs = NodeStatus.executed, result.outputs
            state.metrics, state.warnings = result.metrics, list(result.warnings)
            label = self.plan.nodes[key].label
            self.warnings += [f"step {label!r}: {warning}" for warning in result.warnings]
            self._remember_history(key)
        else:
            state.status = NodeStatus.cancelled if result.cancelled else NodeStatus.failed
            state.error = result.error
        self._notify(key)

    def _remember_history(self, key: str) -> None:
        """The node's fingerprint becomes the "last run" of each step using it (--explain)."""
        node, state = self.plan.nodes[key], self.states[key]
        assert state.fingerprint is not None
        entry = StepHistory(state.fingerprint, node.module.version)
        for use in node.users:
            pipeline = self.plan.runs[use.run].pipeline.name
            if self.ws.state.last_step(pipeline, use.step) != entry:
                self.ws.state.record_step(pipeline, use.step, entry)

    def _notify_running(self, node: StepNode, detail: str) -> None:
        """``node`` went to a worker, or (from that worker's thread, which must not read the
        node's state) starts another attempt."""
        if self.ws.observer is not None:
            status, choices = StepStatus.running, self._choices(node)
            event = StepEvent(step=node.label, variant=choices, status=status, detail=detail)
            self.ws.observer.step_changed(event)

    def _notify(self, key: str) -> None:
        """Tell the observer where node ``key`` is now (on the scheduler's thread)."""
        if self.ws.observer is None:
            return
        node, state = self.plan.nodes[key], self.states[key]
        seconds = None
        if state.started_at is not None and state.ended_at is not None:
            seconds = (state.ended_at - state.started_at).total_seconds()
        event = StepEvent(
            step=node.label,
            variant=self._choices(node),
            status=state.status.step_status,
            detail=state.error or "",
            seconds=seconds,
            reused_from=state.reused_from,
        )
        self.ws.observer.step_changed(event)

    def _choices(self, node: StepNode) -> dict[str, Any]:
        """What sets ``node`` apart in a sweep: the variant axes of its own step and of the
        steps it reads from, where every run using it made the same choice."""
        variants = [self.plan.runs[run].variant for run in sorted({u.run for u in node.users})]
        steps = self.upstream_steps[node.key]
        return {
            axis: value
            for axis, value in variants[0].items()
            if axis.partition(".")[0] in steps
            and all(variant.get(axis) == value for variant in variants[1:])
        }


def upstream_steps(plan: Plan) -> dict[str, frozenset[str]]:
    """For each node: the names of its step and of every step it reads from, transitively."""
    found: dict[str, frozenset[str]] = {}
    for key, node in plan.nodes.items():  # topological: a node's deps come before it
        names = {use.step for use in node.users}
        for dep in node.deps:
            names |= found[dep]
        found[key] = frozenset(names)
    return found
