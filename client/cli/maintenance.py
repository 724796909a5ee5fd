"""Keeping the registry's storage bounded: ``modreg gc`` (``modreg cache prune`` bounds this
machine's engine state: ``cache_commands``).

Durations are read by ``modreg.registry.units``, so ``--grace 24h`` here and
``MODREG_CACHE_RETENTION=30d`` on the server take the same spellings.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import click

from modreg.client import output
from modreg.client.cli.context import App, duration_param, json_option, pass_app


@click.command("gc")
@click.option("--dry-run", is_flag=True, help="Only list what would be deleted.")
@click.option(
    "--grace",
    default="24h",
    show_default=True,
    callback=duration_param,
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


def register(group: click.Group) -> None:
    """Add ``gc`` to the ``modreg`` group."""
    group.add_command(gc_command)
