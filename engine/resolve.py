"""From module references to exact versions: the lock first, then ONE bulk resolve call.

For every (step, reference) a pipeline and all its variants use, the entry of the lock is
kept while the reference is unchanged; only references the lock lacks (or that
``--upgrade`` names) are resolved. ``--locked`` turns "the lock would change" into an error,
and ``--offline`` turns "something needs resolving" into an error that says what is missing.

Online, the same single ``resolve`` call also carries an exact pin (``team/name@X.Y.Z``) for
every version the lock keeps: the answers say which of them are yanked or deprecated (a
warning; the locked version is still used), and a locked commit, archive digest or
environment lock that no longer matches the registry's is a problem, since published
versions never change.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from modreg.engine.errors import LockMismatchError, OfflineError, Problem
from modreg.engine.lock import Lock, LockedEnvironment, LockedModule, lock_name
from modreg.engine.protocol import RegistryProtocol
from modreg.engine.spec import Pipeline
from modreg.registry.errors import ModregError
from modreg.registry.schemas import EnvironmentPublic, Resolution, VersionStatus
from modreg.registry.versioning import parse_ref


@dataclass(frozen=True)
class ResolveOptions:
    """How to treat the lock: keep it (default), refuse to change it, or re-resolve."""

    locked: bool = False
    offline: bool = False
    upgrade: bool = False
    upgrade_steps: frozenset[str] = frozenset()


@dataclass
class Resolved:
    """What resolution produced: the new lock, problems, warnings, what was re-resolved."""

    lock: Lock
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    resolved: list[tuple[str, str]] = field(default_factory=list)
    changed: bool = False  # the lock must be (re)written
    refs: dict[Problem, tuple[str, str]] = field(default_factory=dict)  # problem -> (step, ref)
    warned: set[str] = field(default_factory=set)  # what the registry warned of, said once

    def warn(self, step: str, warnings: list[str]) -> None:
        """The registry's warnings about a step's version, each said once per run: a
        deprecated version that several steps (or variants) use warns at its first step."""
        for warning in warnings:
            if warning not in self.warned:
                self.warned.add(warning)
                self.warnings.append(f"step {step!r}: {warning}")

    def modules_for(self, pipeline: Pipeline) -> dict[str, LockedModule]:
        """The module of each step of one (variant) pipeline, for steps that resolved."""
        found = {name: self.lock.get(name, step.uses) for name, step in pipeline.steps.items()}
        return {name: module for name, module in found.items() if module is not None}


def _needed(pipelines: list[Pipeline]) -> dict[tuple[str, str], Pipeline]:
    pairs: dict[tuple[str, str], Pipeline] = {}
    for pipeline in pipelines:
        for name, step in pipeline.steps.items():
            pairs.setdefault((name, step.uses), pipeline)
    return pairs


def _to_resolve(
    needed: set[tuple[str, str]], lock: Lock, options: ResolveOptions
) -> set[tuple[str, str]]:
    if options.upgrade and not options.upgrade_steps:
        return set(needed)
    return {
        (step, ref)
        for step, ref in needed
        if lock.get(step, ref) is None or step in options.upgrade_steps
    }


def _refuse(
    pairs: set[tuple[str, str]], stale: set[tuple[str, str]], options: ResolveOptions, lock: str
) -> None:
    listed = "; ".join(f"step {step!r} uses {ref!r}" for step, ref in sorted(pairs))
    if options.offline and pairs:
        raise OfflineError(
            f"--offline: {lock} has no entry for {listed}; run `modreg lock` online first"
        )
    if options.locked and (pairs or stale):
        dropped = "; ".join(f"step {step!r} no longer uses {ref!r}" for step, ref in sorted(stale))
        detail = "; ".join(part for part in (listed and f"not locked: {listed}", dropped) if part)
        raise LockMismatchError(f"--locked: {lock} is out of date ({detail}); run `modreg lock`")


def _syntax_problems(
    needed: dict[tuple[str, str], Pipeline],
) -> tuple[dict[Problem, tuple[str, str]], set[str]]:
    problems, bad = {}, set()
    for (step, ref), pipeline in sorted(needed.items()):
        try:
            parse_ref(ref)
        except ModregError as exc:
            problems[pipeline.problem(str(exc), step, "uses")] = (step, ref)
            bad.add(ref)
    return problems, bad


def resolve_pipelines(
    pipelines: list[Pipeline],
    lock: Lock | None,
    registry: RegistryProtocol | None,
    options: ResolveOptions,
) -> Resolved:
    """Resolve every step reference of ``pipelines`` (a pipeline and its variants)."""
    needed = _needed(pipelines)
    old = lock or Lock(pipelines[0].name)
    result = Resolved(old.restricted_to(set(needed)))
    result.lock.pipeline = pipelines[0].name
    result.changed = (
        lock is None or bool(old.pairs() - set(needed)) or old.pipeline != pipelines[0].name
    )
    wanted = _to_resolve(set(needed), old, options)
    lock_file = lock_name(pipelines[0].source)
    _refuse(wanted, old.pairs() - set(needed), options, lock_file)
    problems, bad = _syntax_problems(needed)
    result.problems += list(problems)
    result.refs.update(problems)
    refs = sorted({ref for _, ref in wanted} - bad)
    pins = {} if options.offline or registry is None else _pins(result.lock, wanted)
    if not refs and not pins:
        return result
    if registry is None:
        raise OfflineError("no registry to resolve module references with")
    answers = {answer.ref: answer for answer in registry.resolve(refs + sorted(pins))}
    _check_pins(result, pins, answers, needed, lock_file)
    for step, ref in sorted(wanted):
        answer = answers.get(ref)
        if answer is None:
            continue
        if answer.version is None or answer.error is not None:
            detail = (answer.error or {}).get("detail") or f"cannot resolve {ref!r}"
            problem = needed[(step, ref)].problem(str(detail), step, "uses")
            result.problems.append(problem)
            result.refs[problem] = (step, ref)
            continue
        result.lock.put(step, ref, LockedModule.from_version(answer.version))
        result.resolved.append((step, ref))
        result.changed = True
        result.warn(step, answer.warnings)
    return result


def _pins(lock: Lock, wanted: set[tuple[str, str]]) -> dict[str, list[tuple[str, str]]]:
    """``team/name@version`` of every locked entry kept, with the (step, ref)s using it."""
    pins: dict[str, list[tuple[str, str]]] = {}
    for step, refs in sorted(lock.steps.items()):
        for ref, module in sorted(refs.items()):
            if (step, ref) not in wanted:
                pins.setdefault(module.key, []).append((step, ref))
    return pins


def _env_sha(environment: EnvironmentPublic | LockedEnvironment | None) -> str:
    return environment.sha256 if environment is not None else ""


def _check_pins(
    result: Resolved,
    pins: dict[str, list[tuple[str, str]]],
    answers: dict[str, Resolution],
    needed: dict[tuple[str, str], Pipeline],
    lock: str,
) -> None:
    """Warn about yanked or deprecated locked versions; a changed one is a problem."""
    for key, users in sorted(pins.items()):
        answer, (step, ref) = answers.get(key), users[0]
        locked = result.lock.get(step, ref)
        if answer is None or locked is None:
            continue
        found = answer.version
        if found is None:
            detail = (answer.error or {}).get("detail") or "not found"
            message = f"{lock} names {key}, which the registry cannot give: {detail}"
        elif (found.commit, found.sha256) != (locked.commit, locked.sha256):
            message = (
                f"{lock} names {key} at commit {locked.commit[:12]} (archive "
                f"{locked.sha256[:12]}), but the registry has commit {found.commit[:12]} "
                f"(archive {found.sha256[:12]}); check the lock, or `modreg lock --upgrade {step}`"
            )
        elif (theirs := _env_sha(found.environment)) != (ours := _env_sha(locked.environment)):
            message = (
                f"{lock} names {key} with environment lock {ours[:12] or 'none'}, but the "
                f"registry has {theirs[:12] or 'none'}; check the lock, or "
                f"`modreg lock --upgrade {step}`"
            )
        else:
            for user, warning in _kept_warnings(needed, users, answer, lock):
                result.warn(user, [warning])
            continue
        problem = needed[(step, ref)].problem(message, step, "uses")
        result.problems.append(problem)
        result.refs[problem] = (step, ref)


def _kept_warnings(
    needed: dict[tuple[str, str], Pipeline],
    users: list[tuple[str, str]],
    answer: Resolution,
    lock: str,
) -> list[tuple[str, str]]:
    """What to say about a locked version the registry still has, for each step using it:
    when it was yanked or deprecated since, why (and its successor), and the command that
    moves the step off it. ``(step, warning)`` pairs, said once per run (``Resolved.warn``)."""
    found = answer.version
    if found is None or found.status not in (VersionStatus.yanked, VersionStatus.deprecated):
        return [(step, warning) for step, _ in users for warning in answer.warnings]
    why = f" ({found.status_message})" if found.status_message else ""
    successor = f"; use {found.replaced_by} instead" if found.replaced_by else ""
    warnings = []
    for step, ref in users:
        source = needed[(step, ref)].source
        target = f"{source} " if source.endswith((".yaml", ".yml")) else ""
        warnings.append((step,
            f"{found.module}@{found.version}, kept by {lock}, is {found.status.value}{why}"
            f"{successor}; `modreg lock {target}--upgrade {step}` moves it to the newest "
            f"version {ref!r} allows"
        ))  # fmt: skip
    return warnings
