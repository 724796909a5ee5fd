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
@click.option(
    "--store",
    "store_url",
    metavar="URL",
    help="Collect this shared artifact store of your team instead (any token of the team).",
)
@json_option
@pass_app
def gc_command(
    app: App, dry_run: bool, grace: timedelta, store_url: str | None, as_json: bool
) -> None:
    """Delete the registry's blobs that nothing refers to any more (admin token).

    Kept: every module version's archive, every cache entry within the registry's retention
    (MODREG_CACHE_RETENTION, default: forever) and every pinned run's outputs and logs.
    With --store, the step outputs in the team's shared artifact store are collected the
    same way, with this machine's credentials for the store (AWS_*).

    \b
    Example:
        modreg gc --dry-run
        modreg gc --grace 7d --json
        modreg gc --store s3://ml-artifacts/vision --dry-run
    """
    if store_url:
        _collect_store(app, store_url, grace, dry_run, as_json)
        return
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


def _collect_store(
    app: App, store_url: str, grace: timedelta, dry_run: bool, as_json: bool
) -> None:
    from modreg.engine import FsspecArtifactStore
    from modreg.engine.store_gc import collect_store

    roots = app.client.store_roots(store_url)
    found = collect_store(FsspecArtifactStore(store_url), roots, grace, dry_run)
    data = {"dry_run": dry_run, "store": store_url, "deleted": found.deleted, "kept": found.kept}
    verb = "would delete" if dry_run else "deleted"
    message = f"gc {verb} {len(found.deleted)} blobs of {store_url}; kept {found.kept}"
    output.emit(data, as_json, lambda: output.print_message(message))


def _print_gc(data: dict[str, Any]) -> None:
    verb = "would delete" if data["dry_run"] else "deleted"
    output.print_message(
        f"gc {verb} {data['deleted']} blobs ({data['bytes']} bytes) and "
        f"{data['expired_cache_entries']} expired cache entries"
    )


def register(group: click.Group) -> None:
    """Add ``gc`` to the ``modreg`` group."""
    group.add_command(gc_command)
