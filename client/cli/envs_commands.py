"""The ``envs`` group: this machine's module environments (``engine.environments``).

``modreg envs list`` shows each built environment (digest, size, last use, the module
versions that used it); ``modreg envs prune`` removes those unused for a while, never one a
run holds (``engine.pruning.prune_environments``). A pruned environment is built again, from
uv's cache, by the next run that needs it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import click

from modreg.client.cli.cache_commands import emit_prune
from modreg.client.cli.context import duration_param, json_option
from modreg.client.config import engine_state_dir
from modreg.client.output import emit, print_table


@click.group("envs")
def envs_group() -> None:
    """Module environments built on this machine: list them, prune them."""


@envs_group.command("list")
@json_option
def envs_list(as_json: bool) -> None:
    """List the environments built here, most recently used first.

    \b
    Example:
        modreg envs list --json
    """
    from modreg.engine.environments import list_environments
    from modreg.engine.state import StateDir

    infos = list_environments(StateDir(engine_state_dir()))
    data = {"environments": [info.to_json() for info in infos]}
    rows = [
        (
            info.digest[:12],
            info.size,
            datetime.fromtimestamp(info.last_used, UTC).strftime("%Y-%m-%d %H:%M"),
            ", ".join(info.modules),
        )
        for info in infos
    ]
    columns = ["digest", "bytes", "last used (UTC)", "module versions"]
    emit(data, as_json, lambda: print_table(columns, rows, "Environments"))


@envs_group.command("prune")
@click.option(
    "--older-than",
    callback=duration_param,
    metavar="DURATION",
    help="Remove only those unused this long (default: every one no run holds).",
)
@click.option("--dry-run", is_flag=True, help="Only list what would be removed.")
@json_option
def envs_prune(older_than: timedelta | None, dry_run: bool, as_json: bool) -> None:
    """Remove environments unused for a while; one a run is using is kept.

    \b
    Example:
        modreg envs prune --older-than 30d
    """
    from modreg.engine.pruning import prune_environments
    from modreg.engine.state import StateDir

    report = prune_environments(StateDir(engine_state_dir()), older_than, dry_run)
    rows = [{"digest": i.name, "size": i.size} for i in report.removed]
    emit_prune(report, rows, "envs prune", "environments", as_json)


def register(group: click.Group) -> None:
    """Add the ``envs`` group to the ``modreg`` group."""
    group.add_command(envs_group)
