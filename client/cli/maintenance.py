"""Keeping storage bounded: ``modreg gc`` (the registry's blobs) and ``modreg cache prune``
(this machine's engine state).

Durations and sizes are read by ``modreg.registry.units``, so ``--grace 24h`` here and
``MODREG_CACHE_RETENTION=30d`` on the server take the same spellings.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import click

from modreg.client import output
from modreg.client.cli.context import App, json_option, pass_app


def _duration(ctx: click.Context, param: click.Parameter, value: str | None) -> timedelta | None:
    from modreg.registry.units import parse_duration

    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


def _size(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    from modreg.registry.units import parse_size

    if value is None:
        return None
    try:
        return parse_size(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


@click.command("gc")
@click.option("--dry-run", is_flag=True, help="Only list what would be deleted.")
@click.option(
    "--grace",
    default="24h",
    show_default=True,
    callback=_duration,
    metavar="DURATION",
    help="Spare blobs uploaded or referred to within this long (e.g. 1h, 24h, 7d).",
)
@json_option
@pass_app
def gc_command(app: App, dry_run: bool, grace: timedelta, as_json: bool) -> None:
    """Delete the registry's blobs that nothing refers to any more (admin token).

    Kept: every module version's archive, every cache entry within the registry's retention
    (MODREG_CACHE_RETENTION, default: forever) and every pinned run's outputs and logs.

    \b
    Example:
        modreg gc --dry-run
        modreg gc --grace 7d --json
    """
    report = app.client.collect_garbage(int(grace.total_seconds()), dry_run)
    data = {
        "dry_run": report.dry_run,
        "grace_seconds": report.grace_seconds,
        "expired_cache_entries": report.expired_cache_entries,
        "blobs": [blob.model_dump(mode="json") for blob in report.blobs],
        "deleted": len(report.blobs),
        "bytes": report.bytes,
    }
    output.emit(data, as_json, lambda: _print_gc(data))


def _print_gc(data: dict[str, Any]) -> None:
    verb = "would delete" if data["dry_run"] else "deleted"
    output.print_message(
        f"gc {verb} {data['deleted']} blobs ({data['bytes']} bytes) and "
        f"{data['expired_cache_entries']} expired cache entries"
    )


@click.group("cache")
def cache_group() -> None:
    """This machine's engine cache: blobs of the local store and pulled module sources."""


@cache_group.command("prune")
@click.option(
    "--older-than", callback=_duration, metavar="DURATION", help="Remove what was unused this long."
)
@click.option(
    "--max-size", callback=_size, metavar="SIZE", help="Then remove until under this (e.g. 20G)."
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
    from modreg.client.config import engine_state_dir
    from modreg.engine.pruning import prune
    from modreg.engine.state import StateDir

    if older_than is None and max_size is None:
        raise click.UsageError("say what to prune: --older-than, --max-size or both")
    report = prune(StateDir(engine_state_dir()), older_than, max_size, dry_run)
    data = {
        "dry_run": report.dry_run,
        "removed": [{"kind": i.kind, "name": i.name, "size": i.size} for i in report.removed],
        "freed_bytes": report.freed_bytes,
        "kept_bytes": report.kept_bytes,
    }
    verb = "would remove" if dry_run else "removed"
    message = (
        f"cache prune {verb} {len(report.removed)} items ({report.freed_bytes} bytes); "
        f"{report.kept_bytes} bytes kept"
    )
    output.emit(data, as_json, lambda: output.print_message(message))


def register(group: click.Group) -> None:
    """Add ``gc`` and ``cache`` to the ``modreg`` group."""
    group.add_command(gc_command)
    group.add_command(cache_group)
