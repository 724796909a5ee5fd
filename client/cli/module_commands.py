"""The module commands: ``init``, ``publish``, ``pull``, browsing, and status changes.

Like ``registry_commands``: each command calls one client operation and hands plain data
(the DESIGN.md ``--json`` keys) to ``modreg.client.output``; heavy modules are imported
inside the commands only.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from modreg.client import output
from modreg.client.cli.context import EXACT_REF, MODULE_NAME, MODULE_REF, App, json_option, pass_app

if TYPE_CHECKING:
    from modreg.client.http import RegistryClient
    from modreg.client.publishing import PublishPlan
    from modreg.registry.schemas import ModulePublic, Resolution, VersionPublic

# --- init, publish, pull ----------------------------------------------------------------


@click.command()
@click.option(
    "--name",
    metavar="TEAM/NAME",
    type=MODULE_NAME,
    help="Module name [your token's team / this folder's name].",
)
@click.option("--version", "version", default="0.1.0", show_default=True)
@click.option("--description", default="")
@pass_app
def init(app: App, name: str | None, version: str, description: str) -> None:
    """Write a modreg.toml for the current folder (never overwrites one).

    Its [environment] comes from the folder's requirements.txt, else from the
    pyproject.toml [project] dependencies, when there are any.

    \b
    Example:
        modreg init --name vision/prep --version 1.0.0
    """
    from modreg.client.errors import ClientError
    from modreg.client.scaffold import (
        environment_text,
        guess_script,
        manifest_text,
        slug,
        write_manifest,
    )
    from modreg.registry.versioning import canonical_version

    folder = Path.cwd()
    if (folder / "modreg.toml").exists():  # checked before asking the registry anything
        raise ClientError(f"{folder / 'modreg.toml'}: already exists; not overwriting it")
    canonical_version(version)
    name = name or f"{_token_team(app)}/{slug(folder.name)}"
    script = guess_script(folder)
    command = ["python", script] if script else _ask_command()
    environment = environment_text(folder)  # from requirements.txt or pyproject.toml
    path = write_manifest(folder, manifest_text(name, version, description, command, environment))
    output.print_message(f"Wrote {path}: edit the command and the interface, then `modreg publish`")
    if command is None:
        output.print_warning(
            f"cannot tell which program runs this module (no main.py, and not one .py file): "
            f"write [module] command in {path}"
        )


def _ask_command() -> list[str] | None:
    """The module's command, asked on a terminal; None when there is nobody to ask."""
    import sys

    from modreg.client.scaffold import split_command

    if not sys.stdin.isatty():
        return None

    def read(text: str) -> list[str]:
        try:
            return split_command(text)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from exc

    command: list[str] = click.prompt(
        "Which command runs this module? (e.g. python train.py)", value_proc=read
    )
    return command


def _token_team(app: App) -> str:
    from modreg.client.errors import ConfigError

    identity = app.client.whoami()
    if not identity.team:
        raise ConfigError("cannot tell which team the module belongs to: pass --name TEAM/NAME")
    return identity.team


@click.command()
@click.argument("path", type=click.Path(path_type=Path, file_okay=False), default=".")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Check, build and pin the environment; show what would be published, send nothing.",
)
@click.option("--skip-existing", is_flag=True, help="Exit 0 if this exact version is published.")
@json_option
@pass_app
def publish(app: App, path: Path, dry_run: bool, skip_existing: bool, as_json: bool) -> None:
    """Publish the module in PATH (default: here) at its git HEAD.

    \b
    Example:
        modreg publish modules/prep --dry-run
        modreg publish modules/prep --skip-existing --json
    """
    import tempfile

    from modreg.client.cli.evolution_commands import dry_run_checks
    from modreg.client.publishing import PublishOutcome, pin_environment, plan_publish, upload

    checks: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="modreg-publish-") as workdir:
        plan = plan_publish(path, Path(workdir))  # checks everything local before any request
        for warning in plan.warnings:
            output.print_warning(warning)
        client = _reading_client(app, plan) if dry_run else app.client
        pinning = not as_json and plan.declared is not None
        with output.progress(f"pinning {plan.ref}'s environment", enabled=pinning):
            plan = pin_environment(plan, Path(workdir), client)
        if dry_run or client is None:
            outcome = PublishOutcome(plan, created=False, dry_run=True)
            checks = dry_run_checks(app, plan)
        else:
            outcome = upload(client, plan, skip_existing)
    data = {**outcome.plan.summary(), "created": outcome.created, "dry_run": outcome.dry_run}
    output.emit({**data, **checks}, as_json, lambda: _show_publish(data, checks))


def _reading_client(app: App, plan: PublishPlan) -> RegistryClient | None:
    """What a dry run may read from: the configured registry, when the module has an
    environment a retry would take from it; None (resolve here) without a registry."""
    from modreg.client.errors import ConfigError

    if plan.declared is None:
        return None
    try:
        return app.client
    except ConfigError:
        return None


def _show_publish(data: dict[str, Any], checks: dict[str, Any]) -> None:
    from modreg.client.cli.evolution_commands import show_dry_run_checks

    ref = f"{data['module']}@{data['version']}"
    if data["dry_run"]:
        shown = ("dry_run", "created", "environment")
        fields = [(key, value) for key, value in data.items() if key not in shown]
        output.print_fields(
            fields + _environment_fields(data["environment"]),
            title=f"Would publish {ref} (dry run: nothing sent)",
        )
        show_dry_run_checks(checks)
    elif data["created"]:
        environment, pinned = data["environment"], ""
        if environment:
            count = len(environment["packages"])
            packages = f"{count} package{'' if count == 1 else 's'}"
            pinned = f", environment: {packages} for Python {environment['python']}"
        output.print_message(
            f"Published {ref} (commit {data['commit'][:12]}, sha256 {data['sha256'][:12]}{pinned})"
        )
    else:
        output.print_message(f"{ref} is already published with this commit and archive; skipped")


def _environment_fields(environment: dict[str, Any] | None) -> list[tuple[str, Any]]:
    """An environment's rows in a field list: the Python it holds for, then each package."""
    if environment is None:
        return []
    declared = environment.get("python_range")
    python = f"{environment['python']} ({declared})" if declared else environment["python"]
    summary = f"Python {python}, lock {environment['sha256'][:12]}"
    packages = sorted(environment["packages"].items())
    return [("environment", summary), *((f"package {name}", ver) for name, ver in packages)]


@click.command()
@click.argument("ref", type=MODULE_REF)
@click.option(
    "--dest", type=click.Path(path_type=Path), help="Copy the sources here (new or empty)."
)
@json_option
@pass_app
def pull(app: App, ref: str, dest: Path | None, as_json: bool) -> None:
    """Download a module version's sources (verified, cached by digest).

    \b
    Example:
        modreg pull vision/prep@^1.2 --dest ./prep
    """
    from modreg.client.pulling import pull as pull_sources

    with output.progress(f"pulling {ref}", enabled=not as_json):
        result = pull_sources(app.client, ref, dest)
    for warning in result.warnings:
        output.print_warning(warning)
    data = result.summary()
    origin = "from the cache" if result.cached else "downloaded"
    message = f"{data['module']}@{data['version']} ({origin}) -> {data['path']}"
    output.emit(data, as_json, lambda: output.print_message(message))


# --- browsing ---------------------------------------------------------------------------


@click.command()
@click.argument("text", required=False, default="")
@click.option("--team", "team_name", help="Only this team's modules.")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@json_option
@pass_app
def search(app: App, text: str, team_name: str | None, limit: int, as_json: bool) -> None:
    """Search modules by name and description (all modules without TEXT).

    \b
    Example:
        modreg search prep --team vision
    """
    modules = app.client.search_modules(text or None, team_name, limit)
    data = [_module_data(module) for module in modules]
    columns = ["module", "latest", "default", "description"]
    rows = [[m.name, m.latest_version, m.default_version, m.description] for m in modules]
    output.emit(data, as_json, lambda: output.print_table(columns, rows, title="modules"))


def _module_data(module: ModulePublic) -> dict[str, Any]:
    return {
        "module": module.name,
        "latest_version": module.latest_version,
        "default_version": module.default_version,
        "description": module.description,
    }


@click.command()
@click.argument("ref", type=MODULE_REF)
@json_option
@pass_app
def show(app: App, ref: str, as_json: bool) -> None:
    """Show the version a reference resolves to, and why.

    \b
    Example:
        modreg show vision/prep          # the default, else the highest stable version
        modreg show vision/prep@~1.2
    """
    from modreg.client.pulling import resolve_one

    resolution = resolve_one(app.client, ref)
    for warning in resolution.warnings:
        output.print_warning(warning)
    data = _resolution_data(resolution)
    output.emit(data, as_json, lambda: _show_resolution(data))


def _resolution_data(resolution: Resolution) -> dict[str, Any]:
    version = resolution.version
    assert version is not None
    manifest = version.manifest
    return {
        "module": version.module,
        "version": version.version,
        "range": resolution.range,
        "reason": resolution.reason,
        "warnings": resolution.warnings,
        "status": version.status,
        "status_message": version.status_message,
        "replaced_by": version.replaced_by,
        "description": manifest.description,
        "commit": version.commit,
        "tree_sha": version.tree_sha,
        "path": version.path,
        "remote": version.remote,
        "sha256": version.sha256,
        "size": version.size,
        "published_at": version.published_at,
        "command": manifest.command,
        "interface": manifest.interface.model_dump(mode="json"),
        "environment": version.environment.model_dump(mode="json") if version.environment else None,
    }


def _show_resolution(data: dict[str, Any]) -> None:
    output.print_message(f"{data['module']}@{data['version']}: {data['reason']}")
    keys = [
        "status",
        "status_message",
        "replaced_by",
        "description",
        "commit",
        "remote",
        "path",
        "sha256",
        "size",
        "published_at",
    ]
    fields = [(key, data[key]) for key in keys if data[key] not in (None, "")]
    fields.append(("command", " ".join(data["command"])))
    for kind in ("inputs", "outputs", "params"):
        for name, spec in data["interface"][kind].items():
            fields.append((f"{kind[:-1]} {name}", _describe_port(spec)))
    output.print_fields(fields + _environment_fields(data["environment"]))


def _describe_port(spec: dict[str, Any]) -> str:
    text = spec["type"]
    if spec.get("optional"):
        text += " (optional)"
    if "required" in spec:
        text += " (required)" if spec["required"] else f" = {spec['default']!r}"
    return text


@click.command()
@click.argument("module", type=MODULE_NAME)
@json_option
@pass_app
def versions(app: App, module: str, as_json: bool) -> None:
    """List a module's versions, oldest first, with their status.

    \b
    Example:
        modreg versions vision/prep --json
    """
    found = app.client.list_versions(module)
    default = app.client.get_module(module).default_version
    data = [_version_data(version, default) for version in found]
    columns = ["version", "status", "commit", "published", "note"]
    rows = [
        [v.version, v.status, v.commit[:12], v.published_at, _version_note(v, default)]
        for v in found
    ]
    output.emit(data, as_json, lambda: output.print_table(columns, rows, title=module))


def _version_data(version: VersionPublic, default: str | None) -> dict[str, Any]:
    return {
        "version": version.version,
        "status": version.status,
        "commit": version.commit,
        "published_at": version.published_at,
        "sha256": version.sha256,
        "status_message": version.status_message,
        "default": version.version == default,
    }


def _version_note(version: VersionPublic, default: str | None) -> str:
    notes = ["default"] if version.version == default else []
    if version.status_message:
        notes.append(version.status_message)
    if version.replaced_by:
        notes.append(f"replaced by {version.replaced_by}")
    return "; ".join(notes)


# --- status changes ---------------------------------------------------------------------


def _status_result(version: VersionPublic, as_json: bool, verb: str) -> None:
    data = {
        "module": version.module,
        "version": version.version,
        "status": version.status,
        "status_message": version.status_message,
        "replaced_by": version.replaced_by,
    }
    message = f"{verb} {version.module}@{version.version} (status: {version.status.value})"
    if version.replaced_by:
        message += f"; replaced by {version.replaced_by}"
    output.emit(data, as_json, lambda: output.print_message(message))


@click.command()
@click.argument("ref", metavar="TEAM/NAME@VERSION", type=EXACT_REF)
@click.option("--message", help="Why, and what to use instead (shown to users).")
@click.option(
    "--replaced-by", metavar="TEAM/NAME[@RANGE]", type=MODULE_REF, help="The successor to use."
)
@json_option
@pass_app
def deprecate(
    app: App, ref: tuple[str, str], message: str | None, replaced_by: str | None, as_json: bool
) -> None:
    """Deprecate a version: still chosen by ranges, with a warning (once per run) that
    gives the message and the successor.

    \b
    Example:
        modreg deprecate vision/prep@1.2.0 --message "slow" --replaced-by vision/prep-fast@^2
    """
    version = app.client.deprecate(*ref, message=message, replaced_by=replaced_by)
    _status_result(version, as_json, "Deprecated")


@click.command()
@click.argument("ref", metavar="TEAM/NAME@VERSION", type=EXACT_REF)
@click.option("--reason", required=True, help="Why it must not be used (shown to users).")
@json_option
@pass_app
def yank(app: App, ref: tuple[str, str], reason: str, as_json: bool) -> None:
    """Yank a version: never chosen by a range; exact pins still get it, with a warning.

    \b
    Example:
        modreg yank vision/prep@1.2.0 --reason "writes corrupt shards"
    """
    _status_result(app.client.yank(*ref, reason=reason), as_json, "Yanked")


@click.command()
@click.argument("ref", metavar="TEAM/NAME@VERSION", type=EXACT_REF)
@json_option
@pass_app
def unyank(app: App, ref: tuple[str, str], as_json: bool) -> None:
    """Make a yanked version active again.

    \b
    Example:
        modreg unyank vision/prep@1.2.0
    """
    _status_result(app.client.unyank(*ref), as_json, "Unyanked")


@click.command("set-default")
@click.argument("ref", metavar="TEAM/NAME@VERSION", type=EXACT_REF)
@json_option
@pass_app
def set_default(app: App, ref: tuple[str, str], as_json: bool) -> None:
    """Make a version the one a bare `team/name` resolves to.

    \b
    Example:
        modreg set-default vision/prep@1.2.0
    """
    module = app.client.set_default(*ref)
    data = {"module": module.name, "default_version": module.default_version}
    message = f"{module.name} now resolves to {module.default_version} by default"
    output.emit(data, as_json, lambda: output.print_message(message))


COMMANDS: tuple[click.Command, ...] = (
    init,
    publish,
    pull,
    search,
    show,
    versions,
    deprecate,
    yank,
    unyank,
    set_default,
)


def register(group: click.Group) -> None:
    """Add the module commands to the ``modreg`` group."""
    for command in COMMANDS:
        group.add_command(command)
