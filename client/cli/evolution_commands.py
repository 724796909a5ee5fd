"""Commands for evolving modules safely: ``diff`` and ``dependents``, and what
``publish --dry-run`` adds (the semver classification and the dependents it would reach).

Like ``module_commands``: each command calls ``modreg.client.evolution`` and hands plain data
to ``modreg.client.output``; heavy modules are imported inside the commands only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from modreg.client import output
from modreg.client.cli.context import EXACT_REF, MODULE_REF, App, json_option, pass_app

if TYPE_CHECKING:
    from modreg.client.evolution import VersionDiff
    from modreg.client.publishing import PublishPlan
    from modreg.registry.schemas import DependentPublic

# --- publish --dry-run -------------------------------------------------------------------


def dry_run_checks(app: App, plan: PublishPlan) -> dict[str, Any]:
    """The semver verdict and the dependents reached, for ``publish --dry-run``: read from
    the registry, nothing written. Without a registry it may read, says so and checks
    nothing: the rest of the dry run still stands."""
    from modreg.client.errors import ConfigError, RegistryUnavailableError
    from modreg.client.evolution import impact, verdict
    from modreg.registry.errors import AuthenticationError, PermissionDeniedError

    unreadable = (ConfigError, RegistryUnavailableError, AuthenticationError, PermissionDeniedError)
    try:
        found = verdict(app.client, plan.manifest)
        reached = impact(app.client, plan.manifest, found)
    except unreadable as exc:
        output.print_warning(f"semver not checked: {exc}")
        return {"semver": None, "refusals": [], "dependents": None}
    return {
        "semver": found.to_dict(),
        "refusals": found.refusals(),
        "dependents": [r.to_dict() for r in reached],
    }


def show_dry_run_checks(data: dict[str, Any]) -> None:
    """The human form of ``dry_run_checks``: changes, the verdict, the dependents reached."""
    semver = data.get("semver")
    if semver is None:
        return
    for change in semver["changes"]:
        output.print_message(f"  {change['change']} ({change['class']})")
    if semver["base"] is None:
        output.print_message("semver: first version of its line; nothing to compare")
    elif semver["ok"]:
        output.print_message(f"semver: a {semver['makes']} bump over {semver['base']}: accepted")
    for line in data["refusals"]:
        output.print_message(f"refused: {line}")
    for dependent in data["dependents"]:
        verb = "would be broken" if dependent["broken"] else "would pick it up"
        written = dependent["range"] or "(no range)"
        output.print_message(
            f"dependent: {dependent['team']} pipeline {dependent['pipeline']} step "
            f"{dependent['step']} ({written}, now {dependent['version']}) {verb}"
        )


# --- diff --------------------------------------------------------------------------------


@click.command()
@click.argument("old", metavar="TEAM/NAME@A", type=EXACT_REF)
@click.argument("new", metavar="TEAM/NAME@B", type=EXACT_REF)
@json_option
@pass_app
def diff(app: App, old: tuple[str, str], new: tuple[str, str], as_json: bool) -> None:
    """Compare two published versions: interface changes with their semver class,
    environment changes, and the files of the archives (a unified diff of text files).

    \b
    Example:
        modreg diff vision/prep@1.2.0 vision/prep@1.3.0
    """
    from modreg.client import evolution
    from modreg.client.pulling import pull as pull_sources

    versions = [app.client.get_version(*old), app.client.get_version(*new)]
    with output.progress("pulling both versions", enabled=not as_json):
        roots = [pull_sources(app.client, f"{v.module}@{v.version}", None).path for v in versions]
    found = evolution.diff(versions[0], versions[1], roots[0], roots[1])
    output.emit(found.to_dict(), as_json, lambda: _show_diff(found))


def _show_diff(found: VersionDiff) -> None:
    output.print_message(
        f"{found.new.module} {found.old.version} -> {found.new.version}: "
        f"needs a {found.needs.name} bump"
    )
    for change in found.changes:
        output.print_message(f"  {change.line()}")
    for name, before, after in found.packages:
        what = "added" if before is None else "removed" if after is None else "upgraded"
        output.print_message(f"  package {name} {what}: {before or '-'} -> {after or '-'}")
    for kind in ("added", "removed", "changed", "binary"):
        for name in found.files[kind]:
            output.print_message(f"  file {kind}: {name}")
    if found.patch:
        click.echo(found.patch, nl=False)


# --- dependents --------------------------------------------------------------------------


@click.command()
@click.argument("ref", metavar="TEAM/NAME[@RANGE]", type=MODULE_REF)
@json_option
@pass_app
def dependents(app: App, ref: str, as_json: bool) -> None:
    """List which teams' pipelines use which versions of a module (from their recorded
    runs): team, pipeline, step, range written, version resolved, last run. Never their
    runs, params or outputs; a private registry shows only teams you may read.

    \b
    Example:
        modreg dependents vision/prep@^1
    """
    module, _, range_text = ref.partition("@")
    found = app.client.list_dependents(module, range_text or None)
    data = [d.model_dump(mode="json") for d in found]
    columns = ["team", "pipeline", "step", "range", "version", "status", "last run"]
    rows = [
        [d.team, d.pipeline, d.step, d.range or "", d.version, _status(d), d.last_run_at]
        for d in found
    ]
    output.emit(data, as_json, lambda: output.print_table(columns, rows, title=ref))


def _status(dependent: DependentPublic) -> str:
    status = str(dependent.status.value)
    return f"{status} -> {dependent.replaced_by}" if dependent.replaced_by else status


COMMANDS: tuple[click.Command, ...] = (diff, dependents)


def register(group: click.Group) -> None:
    """Add the evolution commands to the ``modreg`` group."""
    for command in COMMANDS:
        group.add_command(command)
