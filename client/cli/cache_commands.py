"""The ``cache`` group: ``evict`` removes wrong (poisoned) step results from the team's cache;
``prune`` bounds this machine's engine state (``engine.pruning``).

``modreg cache evict FINGERPRINT…`` or ``--module team/name@VERSION`` asks the registry to
drop the team's entries (a publish token of the team, or the admin with ``--team`` or for
every team); the registry records an audit event per entry. The entries are dropped from this
machine's step cache too; other machines drop theirs on their next run, when the registry no
longer confirms them (``engine.step_cache``), so every next run executes those steps again.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

import click

from modreg.client.cli.context import (
    EXACT_REF,
    App,
    duration_param,
    json_option,
    pass_app,
    size_param,
)
from modreg.client.config import engine_state_dir
from modreg.client.output import emit, print_message, print_table

if TYPE_CHECKING:
    from modreg.engine.pruning import PruneReport
    from modreg.registry.schemas import CacheEntryPublic


@click.group("cache")
def cache_group() -> None:
    """The step cache: evict wrong results; prune this machine's blobs and sources."""


def _forget_locally(entries: list[CacheEntryPublic]) -> None:
    from modreg.engine import StateDir

    state = StateDir(engine_state_dir())
    for entry in entries:
        state.forget(entry.fingerprint)


@cache_group.command("evict")
@click.argument("fingerprints", nargs=-1)
@click.option(
    "--module",
    "ref",
    type=EXACT_REF,
    metavar="TEAM/NAME@VERSION",
    help="Evict every entry a step of this module version produced.",
)
@click.option("--team", help="Whose cache (the admin token; a team token evicts in its own).")
@json_option
@pass_app
def evict(
    app: App,
    fingerprints: tuple[str, ...],
    ref: tuple[str, str] | None,
    team: str | None,
    as_json: bool,
) -> None:
    """Evict step cache entries: the next run of those steps executes them again.

    Needs a publish token of the team (or the admin token).

    \b
    Example:
        modreg cache evict 3f2a9c...e1
        modreg cache evict --module vision/prep@1.2.0
    """
    from modreg.registry.schemas import CacheEviction

    if bool(fingerprints) == (ref is not None):
        raise click.UsageError("name FINGERPRINT… or --module TEAM/NAME@VERSION (one of them)")
    module, version = ref or (None, None)
    eviction = CacheEviction(
        team=team, fingerprints=list(fingerprints), module=module, version=version
    )
    evicted = app.client.evict_cache(eviction)
    _forget_locally(evicted)
    data = {"evicted": [entry.model_dump(mode="json") for entry in evicted]}
    rows = [(e.team, e.fingerprint, e.run_id or "", e.step or "") for e in evicted]
    title = f"Evicted {len(evicted)} cache entr{'y' if len(evicted) == 1 else 'ies'}"
    emit(data, as_json, lambda: print_table(["team", "fingerprint", "run", "step"], rows, title))


@cache_group.command("prune")
@click.option(
    "--older-than",
    callback=duration_param,
    metavar="DURATION",
    help="Remove what was unused this long.",
)
@click.option(
    "--max-size",
    callback=size_param,
    metavar="SIZE",
    help="Then remove until under this (e.g. 20G).",
)
@click.option("--dry-run", is_flag=True, help="Only list what would be removed.")
@json_option
def cache_prune(
    older_than: timedelta | None, max_size: int | None, dry_run: bool, as_json: bool
) -> None:
    """Remove local blobs and sources, least recently used first (never during a run).

    What goes is fetched or pulled again when a run needs it.

    \b
    Example:
        modreg cache prune --older-than 30d --max-size 20G
    """
    from modreg.engine.pruning import prune
    from modreg.engine.state import StateDir

    if older_than is None and max_size is None:
        raise click.UsageError("say what to prune: --older-than, --max-size or both")
    report = prune(StateDir(engine_state_dir()), older_than, max_size, dry_run)
    rows = [{"kind": i.kind, "name": i.name, "size": i.size} for i in report.removed]
    emit_prune(report, rows, "cache prune", "items", as_json)


def emit_prune(
    report: PruneReport, rows: list[dict[str, Any]], command: str, noun: str, as_json: bool
) -> None:
    """A prune's answer: ``rows`` (one per item removed) and the bytes freed and kept."""
    data = {
        "dry_run": report.dry_run,
        "removed": rows,
        "freed_bytes": report.freed_bytes,
        "kept_bytes": report.kept_bytes,
    }
    verb = "would remove" if report.dry_run else "removed"
    message = (
        f"{command} {verb} {len(report.removed)} {noun} ({report.freed_bytes} bytes); "
        f"{report.kept_bytes} bytes kept"
    )
    emit(data, as_json, lambda: print_message(message))


def register(group: click.Group) -> None:
    """Add the ``cache`` group to the ``modreg`` group."""
    group.add_command(cache_group)
